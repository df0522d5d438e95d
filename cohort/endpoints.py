"""Endpoints are derived, never stored: RFS, PFS and OS from the outcome dates.

RFS = first of recurrence or death; PFS = first of progression or death; OS = death;
each censored at last follow-up and, when a horizon is given, administratively there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cohort.vocabulary import (
    DEATH_DATE,
    ENDPOINTS,
    EVENT,
    LAST_FOLLOWUP_DATE,
    PATIENT_ID,
    PROGRESSION_DATE,
    RECURRENCE_DATE,
    TIME,
    day_column,
)

_EVENT_DATES: dict[str, tuple[str, ...]] = {
    "rfs": (RECURRENCE_DATE, DEATH_DATE),
    "pfs": (PROGRESSION_DATE, DEATH_DATE),
    "os": (DEATH_DATE,),
}


def _check_endpoint(endpoint: str, horizon_days: float | None) -> None:
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be one of {ENDPOINTS}, got {endpoint!r}")
    if horizon_days is not None and not horizon_days > 0:
        raise ValueError(f"horizon_days must be > 0, got {horizon_days!r}")


def derive_endpoint(
    outcomes: pd.DataFrame, endpoint: str, horizon_days: float | None = None
) -> pd.DataFrame:
    """One row per patient: ``patient_id``, ``time`` (days since index), ``event`` (0/1).

    ``outcomes`` carries the ``*_day`` columns the loader derives from the outcome dates.
    """
    _check_endpoint(endpoint, horizon_days)
    event_days = np.column_stack(
        [outcomes[day_column(c)].to_numpy(dtype=float) for c in _EVENT_DATES[endpoint]]
    )
    first_event = np.fmin.reduce(event_days, axis=1)  # fmin ignores NaN (no such event)
    followup = outcomes[day_column(LAST_FOLLOWUP_DATE)].to_numpy(dtype=float)
    has_event = ~np.isnan(first_event)
    time = np.where(has_event, first_event, followup)
    event = has_event.astype(int)
    if horizon_days is not None:
        beyond = time > horizon_days
        time = np.where(beyond, float(horizon_days), time)
        event = np.where(beyond, 0, event)
    return pd.DataFrame(
        {PATIENT_ID: outcomes[PATIENT_ID].to_numpy(), TIME: time, EVENT: event}
    ).reset_index(drop=True)
