"""Build small ``Cohort`` objects from plain rows, days since index instead of dates."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cohort.cohort import Cohort
from cohort.manifest import parse_manifest
from cohort.vocabulary import (
    DATE,
    DAY,
    DEATH_DATE,
    DRAW_ID,
    INDEX_DATE,
    LAST_FOLLOWUP_DATE,
    MARKER,
    OUTCOME_DATES,
    PATIENT_ID,
    PROGRESSION_DATE,
    QUALIFIER,
    RECURRENCE_DATE,
    SITE_ID,
    UNIT,
    VALUE,
    day_column,
)

INDEX = pd.Timestamp("2024-01-01")

BASE_MANIFEST: dict[str, Any] = {
    "name": "tiny",
    "time_zero": "resection",
    "endpoint": "rfs",
    "covariates": {"age": "numeric", "sex": "categorical", "mvi": "binary"},
    "markers": {
        "ctc_total": {"unit": "cells/7.5mL", "positive_at": 2},
        "afp": {"unit": "ng/mL", "upper_normal": 20},
    },
}

OUTCOME_KEYS = {
    "followup": LAST_FOLLOWUP_DATE,
    "recurrence": RECURRENCE_DATE,
    "progression": PROGRESSION_DATE,
    "death": DEATH_DATE,
}


def _dates(days: pd.Series) -> pd.Series:
    # NaN kept out of to_timedelta: pandas' internal int64 cast of NaN can overflow (a warning)
    days = days.astype(float)
    return (INDEX + pd.to_timedelta(days.fillna(0.0), unit="D")).where(days.notna())


def make_cohort(
    patients: Iterable[Mapping[str, Any]],
    measurements: Iterable[tuple[Any, ...]],
    outcomes: Iterable[Mapping[str, Any]],
    manifest: Mapping[str, Any] | None = None,
    **manifest_keys: Any,
) -> Cohort:
    """A Cohort as the loader would build it.

    ``patients``: dicts with patient_id and covariates; ``measurements``: tuples
    (patient_id, day, marker, value[, qualifier]); ``outcomes``: dicts with patient_id and
    days ``followup``, optionally ``recurrence``, ``progression``, ``death``. The manifest
    defaults to ``BASE_MANIFEST``; ``manifest_keys`` add or replace top-level keys.
    """
    spec = parse_manifest({**(manifest or BASE_MANIFEST), **manifest_keys})
    return Cohort(
        manifest=spec,
        patients=_patients(patients),
        measurements=_measurements(measurements, {m: s.unit for m, s in spec.markers.items()}),
        imaging=pd.DataFrame(columns=[PATIENT_ID, DATE, DAY, "modality", "finding"]),
        outcomes=_outcomes(outcomes),
        treatments=pd.DataFrame(columns=[PATIENT_ID, "start_date", "treatment"]),
        adverse_events=pd.DataFrame(columns=[PATIENT_ID, DATE, "term", "grade"]),
    )


def _patients(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    frame.insert(1, SITE_ID, "site-a")
    frame.insert(2, INDEX_DATE, INDEX)
    return frame.sort_values(PATIENT_ID, kind="stable").reset_index(drop=True)


def _measurements(rows: Iterable[tuple[Any, ...]], units: dict[str, str]) -> pd.DataFrame:
    rows = [(*r, pd.NA) if len(r) == 4 else r for r in rows]
    frame = pd.DataFrame(rows, columns=[PATIENT_ID, DAY, MARKER, VALUE, QUALIFIER])
    frame[DAY] = frame[DAY].astype(float)
    frame[VALUE] = frame[VALUE].astype(float)
    frame[DATE] = _dates(frame[DAY])
    frame[UNIT] = frame[MARKER].map(units)
    frame[DRAW_ID] = pd.NA
    frame["original_value"] = frame[VALUE]
    frame["original_unit"] = frame[UNIT]
    cols = [PATIENT_ID, DATE, DAY, MARKER, VALUE, UNIT, QUALIFIER, DRAW_ID]
    cols += ["original_value", "original_unit"]
    return frame[cols].sort_values([PATIENT_ID, DAY, MARKER], kind="stable").reset_index(drop=True)


def _outcomes(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    rows = list(rows)
    frame = pd.DataFrame({PATIENT_ID: [r[PATIENT_ID] for r in rows]})
    for key, date_col in OUTCOME_KEYS.items():
        days = pd.Series([r.get(key, np.nan) for r in rows], dtype=float)
        frame[date_col] = _dates(days)
        frame[day_column(date_col)] = days
    return frame[[PATIENT_ID, *OUTCOME_DATES, *map(day_column, OUTCOME_DATES)]]


@pytest.fixture(scope="session")
def cohort_factory() -> Callable[..., Cohort]:
    """``make_cohort`` as a fixture, for tests that build their own cohort."""
    return make_cohort
