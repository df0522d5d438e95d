"""``ctcmon predict``: score a cohort (external validation) with a packaged model."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cohort.cohort import Cohort
from cohort.vocabulary import EVENT, LANDMARK_DAY, PATIENT_ID, TIME, risk_column
from features.landmark import default_landmarks
from models.packaging import load_pipeline
from training.metrics import landmark_metrics

log = logging.getLogger(__name__)


def at_risk_points(cohort: Cohort, landmarks: Sequence[float]) -> pd.DataFrame:
    """(patient_id, landmark_day) for every patient still event-free and followed after s."""
    ep = cohort.endpoint(horizon_days=None)
    rows = [
        ep.loc[ep[TIME] > s, [PATIENT_ID]].assign(**{LANDMARK_DAY: float(s)}) for s in landmarks
    ]
    points = (
        pd.concat(rows, ignore_index=True)
        if rows
        else pd.DataFrame(columns=[PATIENT_ID, LANDMARK_DAY])
    )
    return points.sort_values([PATIENT_ID, LANDMARK_DAY], kind="stable").reset_index(drop=True)


def score_cohort(
    cohort: Cohort,
    model_uri: str,
    landmarks: Sequence[float] | None = None,
    horizons: Sequence[float] | None = None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Risks at each horizon for each at-risk (patient, landmark), using data up to the landmark
    only; plus the external-validation AUC at each horizon when the cohort has outcomes."""
    pipeline = load_pipeline(model_uri)
    days = list(landmarks) if landmarks else default_landmarks(cohort)
    points = at_risk_points(cohort, days)
    if points.empty:
        raise ValueError(f"no patient is at risk at landmarks {days}")
    scored = pipeline.score(cohort, points, horizons)
    metrics = _external_metrics(cohort, scored)
    if pipeline.cohort_digest and pipeline.cohort_digest == cohort.digest:
        log.warning("this cohort is the model's training cohort: its metrics are resubstitution")
        metrics = {f"{k}_resubstitution": v for k, v in metrics.items()}
    return scored, metrics


def _external_metrics(cohort: Cohort, scored: pd.DataFrame) -> dict[str, float]:
    ep = cohort.endpoint(horizon_days=None).set_index(PATIENT_ID)
    table = scored[[PATIENT_ID, LANDMARK_DAY]].copy()
    t = ep.loc[scored[PATIENT_ID], TIME].to_numpy()
    table["residual_time_full"] = t - scored[LANDMARK_DAY].to_numpy()
    table["event_full"] = ep.loc[scored[PATIENT_ID], EVENT].to_numpy()
    table["residual_time"], table[EVENT] = table["residual_time_full"], table["event_full"]
    out: dict[str, Any] = {}
    for col in [c for c in scored.columns if c.startswith("risk_")]:
        h = float(col.removeprefix("risk_"))
        try:
            res = landmark_metrics(table, scored[col].to_numpy(), 1 - scored[col].to_numpy(), h)
        except ValueError:
            continue
        if np.isfinite(res["auc"]):
            out[f"auc_{int(h)}"] = float(res["auc"])
            out[f"brier_{int(h)}"] = float(res["brier"])
    return out


__all__ = ["at_risk_points", "risk_column", "score_cohort"]
