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

from bench_serving import in_process, summary, twenty_draws

from models.base import SurvivalModel


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


BLOCK = 20


class _AskedAlone(SurvivalModel):
    """A fitted model asked on its own, with no kind to share a pass with: the interval as
    served before bfbfe0f (each fold model, and each of its base models, in turn)."""

    def __init__(self, model: Any = None):
        self.model = model

    def _fit(self, X: Any, event: Any, time: Any) -> None:
        raise TypeError("only wraps a fitted model")

    def _risk(self, X: Any) -> Any:
        raise TypeError("asked for survival only")

    def _survival(self, X: Any, times: Any) -> Any:
        return self.model.predict_survival_matrix(X, times)


def interval_price(pipeline: Any, body: dict, n: int) -> list[str]:
    """``RiskPipeline.assess`` with the fold models asked by kind (as served), one by one (as
    before) and without the interval, the three taking turns in blocks of ``BLOCK`` calls
    so that a shared machine's load weighs on each alike (call by call, each would evict
    the others' trees from the caches): wall time and process CPU per call."""
    from cohort.records import PatientHistory

    alone = [_AskedAlone(m) for m in pipeline.interval_models]
    for wrapper, model in zip(alone, pipeline.interval_models, strict=True):
        wrapper.n_features_in_, wrapper.max_time_ = model.n_features_in_, model.max_time_
    variants = {
        "by kind (served)": pipeline,
        "one by one (before bfbfe0f)": replace(pipeline, interval_models=alone),
        "without the interval": replace(pipeline, interval_models=[]),
    }
    history = PatientHistory.model_validate(body)
    wall: dict[str, list[float]] = {k: [] for k in variants}
    cpu = dict.fromkeys(variants, 0.0)
    for _ in range(0, n, BLOCK):
        for name, variant in variants.items():
            for _ in range(BLOCK):
                start, start_cpu = time.perf_counter(), time.process_time()
                variant.assess(history)
                wall[name].append(time.perf_counter() - start)
                cpu[name] += time.process_time() - start_cpu
    return [
        summary(f"assess, fold models {name}", wall[name])
        + f"  CPU {cpu[name] / len(wall[name]) * 1e3:.1f} ms"
        for name in variants
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
        lines, *_ = in_process(holder, db, token, body, args.requests)
        lines.append(cpu_per_assessment(pipeline, body, args.requests))
        if pipeline.interval_models:
            lines += interval_price(pipeline, body, args.requests)
        kept = getattr(pipeline.model, "names_", None)
        what = f"stacking {', '.join(kept)}" if kept else type(pipeline.model).__name__
        intervals = len(pipeline.interval_models)
        print(f"{name} ({what}; {intervals} interval models; load {os.getloadavg()}):")
        for line in lines:
            print("  " + line, flush=True)


if __name__ == "__main__":
    main()
