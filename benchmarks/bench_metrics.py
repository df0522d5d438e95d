"""Where ctcmon keeps its own arithmetic beside a library's: the gain, measured. By hand only.

    python benchmarks/bench_metrics.py [--rows 3000,32000] [--boot 3]

Each re-derivation is pinned to the library's answer by a test (bit for bit or to float
round-off); this script shows why it is kept, at the sizes a training run meets (3,000
simulated patients give 32,327 landmark rows; a boosted Cox fold ~26,000):

- Harrell's C: ``training.metrics.harrell_c`` vs ``sksurv.metrics.concordance_index_censored``;
- the Cox gradient of each boosting stage: ``models.breslow.martingale_residuals`` vs
  ``sksurv.ensemble._coxph_loss.coxph_negative_gradient`` (what scikit-survival's boosting
  calls, 150 stages per fit);
- the bootstrap of the landmark AUC: ``bootstrap_landmark_auc`` vs resampling the table and
  calling ``landmark_metrics`` per replicate (``--boot`` replicates timed, per replicate).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sksurv.ensemble._coxph_loss import coxph_negative_gradient
from sksurv.metrics import concordance_index_censored

from cohort.vocabulary import EVENT, EVENT_FULL, LANDMARK_DAY, PATIENT_ID, RESIDUAL_TIME_FULL
from models.breslow import martingale_residuals
from training.metrics import bootstrap_landmark_auc, harrell_c, landmark_metrics


def seconds(fn: Callable[..., Any], *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def survival(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    time_ = np.ceil(rng.exponential(600 * np.exp(-risk)))  # whole days: tied times
    return time_, rng.random(n) < 0.4, risk


def landmark_table(n_patients: int, landmarks: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    parts = []
    for k in range(landmarks):
        t, e, r = survival(n_patients, seed=k)
        parts.append(
            pd.DataFrame(
                {
                    PATIENT_ID: [f"p{i}" for i in range(n_patients)],
                    LANDMARK_DAY: 90.0 * k,
                    RESIDUAL_TIME_FULL: t + rng.random(n_patients),
                    EVENT_FULL: e.astype(int),
                    EVENT: (e & (t <= 365)).astype(int),
                    "risk": r,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="3000,32000")
    parser.add_argument("--boot", type=int, default=3)
    args = parser.parse_args()
    for n in (int(x) for x in args.rows.split(",")):
        t, e, r = survival(n)
        ours = seconds(harrell_c, t, e, r)
        lib = seconds(concordance_index_censored, e, t, r)
        print(f"Harrell's C, {n:,} rows: ours {ours:.3f} s, sksurv {lib:.3f} s ({lib / ours:.0f}x)")
        order = np.argsort(t, kind="stable")
        t, e, r = t[order], e[order], r[order]
        ours = seconds(martingale_residuals, r, t, e)
        lib = seconds(coxph_negative_gradient, e.astype(np.uint8), t, r)
        print(
            f"Cox gradient, {n:,} rows: ours {ours:.4f} s, sksurv {lib:.3f} s "
            f"({lib / ours:.0f}x; x150 boosting stages per fit)"
        )
    table = landmark_table(3000)
    fast = seconds(lambda: bootstrap_landmark_auc(table, "risk", 365, n_boot=200)) / 200
    slow = seconds(lambda: _slow_replicates(table, args.boot)) / args.boot
    print(
        f"bootstrap AUC replicate, {len(table):,} rows: ours {fast * 1000:.1f} ms, "
        f"resampling the table {slow * 1000:.0f} ms ({slow / fast:.0f}x)"
    )


def _slow_replicates(table: pd.DataFrame, n_boot: int) -> None:
    ids = table[PATIENT_ID].unique()
    rng = np.random.default_rng(0)
    by_patient = dict(tuple(table.groupby(PATIENT_ID)))
    for _ in range(n_boot):
        draw = rng.integers(0, len(ids), len(ids))
        sample = pd.concat(
            [by_patient[ids[k]].assign(**{PATIENT_ID: f"{k}#{j}"}) for j, k in enumerate(draw)],
            ignore_index=True,
        )
        landmark_metrics(sample, "risk", None, 365, scores=("auc",))


if __name__ == "__main__":
    main()
