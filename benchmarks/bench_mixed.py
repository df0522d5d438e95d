"""Mixed-model marker summaries against the summary statistics alone (run by hand).

    python benchmarks/bench_mixed.py [--patients 1000] [--models cox,xgb_aft,...]
        [--workdir /tmp/ctcmon-bench-mixed] [--skip-sim] [--skip-pbc]

Each row is one `ctcmon train` run (`--features summary` and `--features mixed`):

- pbcseq, the shipped folds, death in (s, s + 3 y] at s = 1..5 y, fitted on the landmark
  rows (`--fit-on landmarks --landmarks 365,730,1095,1461,1826 --horizon 1095
  --folds-file cohort/datasets/pbcseq_folds.csv`) and on every visit (`--fit-on draws`):
  each model's AUC and Brier at every landmark and their means, beside R's reference rows
  (two-stage landmarking with LME BLUPs: mean AUC 0.870, mean Brier 0.0926);
- a simulated cohort (default landmarks, horizon 365 d): the mean AUC and Brier over the
  landmarks, and the train wall time.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pandas as pd

from cohort.load import load_cohort
from cohort.simulate import simulate_cohort
from training.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
PBCSEQ = ROOT / "cohort" / "datasets" / "pbcseq"
PBC_FOLDS = ROOT / "cohort" / "datasets" / "pbcseq_folds.csv"
PBC_LANDMARKS = [365.0, 730.0, 1095.0, 1461.0, 1826.0]


def run(
    label: str, cohort_dir: Path, config: TrainConfig, workdir: Path, *, keep: bool = False
) -> Any:
    """One train run; a row per model with the AUC and Brier at each landmark and the means
    (and, with ``keep``, the run's results beside it)."""
    cohort = load_cohort(cohort_dir)
    uri = f"sqlite:///{(workdir / 'mlflow.db').as_posix()}"
    start = time.perf_counter()
    result = train(cohort, config, tracking_uri=uri, experiment=label)
    seconds = time.perf_counter() - start
    rows = []
    for r in result.results:
        by = r.by_landmark.set_index("landmark_day")
        row = {"run": label, "model": r.name, "features": config.features}
        for score in ("auc", "brier"):
            for day in by.index:
                row[f"{score}@{day:g}"] = by.loc[day, score]
        row["auc_mean"] = by["auc"].mean()
        row["brier_mean"] = by["brier"].mean()
        row["seconds"] = seconds
        rows.append(row)
    return (pd.DataFrame(rows), result.results) if keep else pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--models", default=None, help="comma-separated (default: all)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ctcmon-bench-mixed"))
    parser.add_argument("--skip-sim", action="store_true")
    parser.add_argument("--skip-pbc", action="store_true")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    models = {"models": args.models.split(",")} if args.models else {}
    frames = []
    for features in ("summary", "mixed"):
        if not args.skip_pbc:
            for fit_on in ("landmarks", "draws"):
                config = TrainConfig(
                    landmarks=PBC_LANDMARKS,
                    horizon_days=1095.0,
                    folds_file=PBC_FOLDS,
                    fit_on=fit_on,
                    features=features,
                    n_boot=0,
                    **models,
                )
                frames.append(run(f"pbcseq-{fit_on}", PBCSEQ, config, args.workdir))
        if not args.skip_sim:
            sim = args.workdir / f"sim{args.patients}"
            if not (sim / "cohort.toml").exists():
                simulate_cohort(sim, n_patients=args.patients, seed=1)
            config = TrainConfig(features=features, n_boot=0, **models)
            frames.append(run(f"sim{args.patients}", sim, config, args.workdir))
    table = pd.concat(frames, ignore_index=True).sort_values(["run", "model", "features"])
    with pd.option_context("display.width", 250, "display.max_columns", 50):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
