"""In-process latency of ``POST /v1/risk`` for each model of a training run (by hand).

    python benchmarks/bench_stack_serving.py --tracking-uri sqlite:///mlflow.db \
        --cohort sim [--experiment ctcmon] [--models stack,xgb_aft] [--requests 300]

Loads each model's latest training run in the experiment (``runs:/<id>/model``, the artifact
the registry serves), and times for one patient with 20 draws of ``--cohort``
``RiskPipeline.assess`` alone (with its risk interval, and without: the fold models' price)
and the whole app in process (``bench_serving.in_process``: auth, validation, assessment,
stored with its audit row). Target: p99 ≤ 15 ms. Prints the machine's load average beside
the figures (a shared machine's waits for a core count too).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serving import in_process, summary, timed, twenty_draws


def cpu_per_assessment(pipeline: object, body: dict, n: int, what: str = "") -> str:
    """Process CPU per ``RiskPipeline.assess`` (mean of n): what a busy machine cannot inflate
    the way it inflates wall time (waits for a core are not counted)."""
    from cohort.records import PatientHistory

    history = PatientHistory.model_validate(body)
    start = time.process_time()
    for _ in range(n):
        pipeline.assess(history)  # type: ignore[attr-defined]
    mean = (time.process_time() - start) / n * 1000
    return f"RiskPipeline.assess{what} CPU time: mean {mean:.1f} ms"


def without_interval(pipeline: Any, body: dict, n: int) -> list[str]:
    """``RiskPipeline.assess`` without the risk interval (no fold models): its price."""
    from cohort.records import PatientHistory

    bare = replace(pipeline, interval_models=[])
    history = PatientHistory.model_validate(body)
    what = " without the interval"
    return [
        summary(f"in-process RiskPipeline.assess{what}", timed(lambda: bare.assess(history), n)),
        cpu_per_assessment(bare, body, n, what),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--cohort", type=Path, required=True)
    parser.add_argument("--experiment", default="ctcmon")
    parser.add_argument("--models", default="stack")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    import mlflow

    from serving.auth import create_key
    from serving.model import ModelHolder
    from serving.store import Store
    from tracking.vocabulary import Tag

    mlflow.set_tracking_uri(args.tracking_uri)
    work = Path(tempfile.mkdtemp(prefix="bench-stack-serving-"))
    for name in args.models.split(","):
        runs = mlflow.search_runs(
            experiment_names=[args.experiment],
            filter_string=Tag.MODEL.equals(name),
            order_by=["start_time DESC"],
        )
        if runs.empty:
            raise SystemExit(f"no run of model {name!r} in experiment {args.experiment!r}")
        holder = ModelHolder(f"runs:/{runs['run_id'].iloc[0]}/model", args.tracking_uri)
        holder.refresh()
        pipeline = holder.current.pipeline
        body = twenty_draws(args.cohort, pipeline.manifest)
        db = f"sqlite:///{(work / f'{name}-service.db').as_posix()}"
        store = Store(db)
        store.migrate()
        _, token = create_key(store, "clinician", body["patient"].get("site_id") or "site-a")
        store.dispose()
        lines, _, _ = in_process(holder, db, token, body, args.requests)
        lines.append(cpu_per_assessment(pipeline, body, args.requests))
        if pipeline.interval_models:
            lines += without_interval(pipeline, body, args.requests)
        kept = getattr(pipeline.model, "names_", None)
        what = f"stacking {', '.join(kept)}" if kept else type(pipeline.model).__name__
        intervals = len(pipeline.interval_models)
        print(f"{name} ({what}; {intervals} interval models; load {os.getloadavg()}):")
        for line in lines:
            print("  " + line, flush=True)


if __name__ == "__main__":
    main()
