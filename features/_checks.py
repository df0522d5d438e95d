"""Validators shared by the feature builders; each message quotes the offending value."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from numbers import Real

import numpy as np
import pandas as pd

from cohort.vocabulary import DAY, MARKER, PATIENT_ID, QUALIFIER, VALUE


def first_of(values: np.ndarray, mask: np.ndarray) -> object:
    """The first masked value as a plain Python object, for quoting in a message."""
    first = values[mask][0]
    return first.item() if isinstance(first, np.generic) else first


def check_frame(obj: object, what: str, required: Sequence[str]) -> pd.DataFrame:
    """``obj`` is a DataFrame holding the ``required`` columns."""
    if not isinstance(obj, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(obj).__name__}")
    missing = [c for c in required if c not in obj.columns]
    if missing:
        raise ValueError(
            f"{what} is missing column(s) {missing}; expected {list(required)}, "
            f"got {list(obj.columns)}"
        )
    return obj


def numeric_column(frame: pd.DataFrame, column: str, what: str) -> np.ndarray:
    """The column as float, refusing text and missing values."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(values)
    if bad.any():
        first = first_of(frame[column].to_numpy(), bad)
        raise ValueError(f"{what} column {column!r} must be numbers, got {first!r}")
    return values


def check_non_negative(values: np.ndarray, what: str) -> None:
    bad = ~(np.isfinite(values) & (values >= 0))
    if bad.any():
        raise ValueError(f"{what} must be finite and >= 0, got {first_of(values, bad)!r}")


def check_day(value: object, what: str) -> float:
    """One finite, non-negative number of days (bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{what} must be a number of days >= 0, got {value!r}")
    day = float(value)
    if not (math.isfinite(day) and day >= 0):
        raise ValueError(f"{what} must be a number of days >= 0, got {value!r}")
    return day


def check_landmarks(landmarks: Iterable[object]) -> np.ndarray:
    """Sorted distinct landmark days, each a finite number >= 0."""
    if isinstance(landmarks, str | bytes) or not isinstance(landmarks, Iterable):
        raise ValueError(f"landmarks must be a list of days >= 0, got {landmarks!r}")
    days = [check_day(v, "each landmark") for v in landmarks]
    if not days:
        raise ValueError("landmarks is empty: give at least one landmark day")
    return np.unique(np.asarray(days, dtype=float))


def check_horizon(horizon_days: object) -> float | None:
    """None (no truncation) or a finite number of days > 0."""
    if horizon_days is None:
        return None
    if (
        isinstance(horizon_days, bool)
        or not isinstance(horizon_days, Real)
        or not (math.isfinite(float(horizon_days)) and float(horizon_days) > 0)
    ):
        raise ValueError(f"horizon_days must be a number of days > 0 or None, got {horizon_days!r}")
    return float(horizon_days)


def check_measurements(measurements: object) -> pd.DataFrame:
    """Measurements with finite days and values >= 0, rebuilt from plain arrays (a copy)."""
    frame = check_frame(measurements, "measurements", [PATIENT_ID, DAY, MARKER, VALUE])
    day = numeric_column(frame, DAY, "measurements")
    value = numeric_column(frame, VALUE, "measurements")
    if not np.isfinite(day).all():
        raise ValueError(
            f"measurements column {DAY!r} must be finite, got {first_of(day, ~np.isfinite(day))!r}"
        )
    check_non_negative(value, f"measurements column {VALUE!r}")
    out = {PATIENT_ID: frame[PATIENT_ID].to_numpy(), DAY: day, MARKER: frame[MARKER].to_numpy()}
    out[VALUE] = value
    if QUALIFIER in frame:
        out[QUALIFIER] = frame[QUALIFIER].to_numpy()
    return pd.DataFrame(out)
