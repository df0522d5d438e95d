"""Per-patient marker values at baseline (latest draw on or before index)."""

from __future__ import annotations

import pandas as pd

from cohort.vocabulary import DAY, MARKER, PATIENT_ID, VALUE


def baseline_values(
    measurements: pd.DataFrame, marker: str, window_days: float | None = None
) -> pd.Series:
    """Latest ``marker`` value on or before day 0 (within ``window_days`` of it), by patient_id."""
    m = measurements
    keep = (m[MARKER] == marker) & (m[DAY] <= 0)
    if window_days is not None:
        keep &= m[DAY] >= -window_days
    rows = m.loc[keep, [PATIENT_ID, DAY, VALUE]].sort_values([PATIENT_ID, DAY])
    return rows.groupby(PATIENT_ID)[VALUE].last().astype(float)
