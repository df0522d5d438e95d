"""In-process latency of ``POST /v1/risk`` with and without the mixed-model features (by hand).

    python benchmarks/bench_mixed_serving.py [--requests 300]

Trains a cox model on 300 simulated patients twice (``--features summary`` and ``mixed``),
registers each in its own MLflow store, and times, for one patient with 20 draws,
``RiskPipeline.assess`` alone and the whole app in process (``bench_serving.in_process``:
auth, validation, assessment with its BLUPs, stored with its audit row). Target: p99 ≤ 15 ms.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serving import CHAMPION, in_process, twenty_draws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    from cohort.load import load_cohort
    from cohort.simulate import simulate_cohort
    from serving.auth import create_key
    from serving.model import ModelHolder
    from serving.store import Store
    from training.train import TrainConfig, train

    work = Path(tempfile.mkdtemp(prefix="bench-mixed-serving-"))
    cohort_dir = work / "cohort"
    simulate_cohort(cohort_dir, n_patients=300, seed=2)
    cohort = load_cohort(cohort_dir)
    for features in ("summary", "mixed"):
        uri = f"sqlite:///{(work / f'{features}.db').as_posix()}"
        config = TrainConfig(models=["cox"], folds=3, n_boot=0, features=features)
        train(cohort, config, tracking_uri=uri, experiment="bench", register=True)
        holder = ModelHolder(CHAMPION, uri)
        holder.refresh()
        body = twenty_draws(cohort_dir, holder.current.pipeline.manifest)
        db = f"sqlite:///{(work / f'{features}-service.db').as_posix()}"
        store = Store(db)
        store.migrate()
        _, token = create_key(store, "clinician", body["patient"].get("site_id") or "site-a")
        store.dispose()
        lines, *_ = in_process(holder, db, token, body, args.requests)
        n_features = len(holder.current.pipeline.featurizer.get_feature_names_out())
        print(f"--features {features} ({n_features} features, 20 draws):")
        for line in lines:
            print("  " + line, flush=True)


if __name__ == "__main__":
    main()
