"""Threshold sweep of a score (a marker's value, a model's risk): lead time vs false alarms.

The grid runs over quantiles of the score at the evaluable points, denser towards the top:
patient-level specificity ("never alarmed over the whole follow-up") needs a per-point
false-positive rate far below 1 − specificity when patients have a dozen draws. The chosen
threshold is the lowest one whose specificity reaches the target (the most sensitive rule
that meets it). It is chosen on the cohort it is then evaluated on, so its figures are
optimistic; fix the threshold on one cohort and validate it on another before use.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from alarms.metrics import patient_summary, point_metrics
from alarms.series import EVALUABLE, SCORE, AlarmSeries

log = logging.getLogger(__name__)

GRID_POINTS: Final = 40
SWEEP_COLUMNS: Final = (
    "threshold",
    "sensitivity",
    "specificity",
    "false_alarms_per_patient_year",
    "ppv",
    "lead_median",
    "lead_vs_last_negative_median",
)


@dataclass(frozen=True)
class Sweep:
    """One score's sweep table and the threshold chosen at the target specificity."""

    score_name: str
    table: pd.DataFrame
    target_specificity: float
    chosen: float | None
    reached: bool  # False: no threshold reaches the target (chosen = the strictest tried)

    def to_dict(self) -> dict[str, Any]:
        rows = [
            {k: (None if v != v else float(v)) for k, v in row.items()}  # NaN -> None
            for row in self.table.to_dict(orient="records")
        ]
        return {
            "score": self.score_name,
            "target_specificity": self.target_specificity,
            "chosen_threshold": self.chosen,
            "target_reached": self.reached,
            "rows": rows,
        }


def threshold_grid(series: AlarmSeries, points: int = GRID_POINTS) -> np.ndarray:
    """Distinct score values at quantiles 0.5 … 0.9995 (geometrically closer to the top)."""
    f = series.frame
    score = f.loc[f[EVALUABLE], SCORE].to_numpy(dtype=float)
    score = score[np.isfinite(score)]
    if len(score) == 0:
        return np.array([])
    q = 1 - np.geomspace(0.5, 0.0005, points)
    grid = np.unique(np.quantile(score, q, method="inverted_cdf"))
    return grid[grid > 0] if (grid > 0).any() else grid


def sweep(
    series: AlarmSeries, surv: pd.DataFrame, *, lookback_days: float, target_specificity: float
) -> Sweep:
    """Metrics at every grid threshold (``score >= t`` with the series' confirmation)."""
    rows = []
    for t in threshold_grid(series):
        m = point_metrics(patient_summary(series.at_threshold(t), surv, lookback_days))
        rows.append({"threshold": float(t), **{k: m[k] for k in SWEEP_COLUMNS[1:]}})
    table = pd.DataFrame(rows, columns=list(SWEEP_COLUMNS)).astype(float)
    chosen, reached = _choose(table, target_specificity)
    name = series.score_name or series.name
    log.info("sweep of %s: %d thresholds, chosen %s", name, len(table), chosen)
    return Sweep(name, table, target_specificity, chosen, reached)


def _choose(table: pd.DataFrame, target: float) -> tuple[float | None, bool]:
    if table.empty:
        return None, False
    ok = table[table["specificity"] >= target]
    if ok.empty:
        return float(table["threshold"].max()), False
    return float(ok["threshold"].min()), True
