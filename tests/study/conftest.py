"""Fixtures building small cohorts shaped like ``cohort.load.load_cohort``'s output.

Inputs are given in days since index (easier to reason about in hand-made histories);
dates are derived from a fixed index date, as the loader derives days from dates.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cohort.cohort import Cohort
from cohort.load import load_cohort
from cohort.manifest import parse_manifest
from cohort.vocabulary import (
    AFP,
    CTC_TOTAL,
    DATE,
    DAY,
    DEATH_DATE,
    INDEX_DATE,
    LAST_FOLLOWUP_DATE,
    OUTCOME_DATES,
    PATIENT_ID,
    PROGRESSION_DATE,
    RECURRENCE_DATE,
    SITE_ID,
    day_column,
)

INDEX = pd.Timestamp("2020-01-01")

BASE_MANIFEST: dict[str, Any] = {
    "name": "test",
    "time_zero": "resection",
    "endpoint": "rfs",
    "markers": {
        CTC_TOTAL: {"unit": "cells/7.5mL", "positive_at": 2},
        AFP: {"unit": "ng/mL", "upper_normal": 20},
    },
}

_COLUMNS = {
    "measurements": [PATIENT_ID, DATE, DAY, "marker", "value", "unit", "qualifier", "draw_id"],
    "imaging": [PATIENT_ID, DATE, DAY, "modality", "finding", "response", "criteria"],
    "treatments": [PATIENT_ID, "start_date", "end_date", "treatment", "start_day", "end_day"],
    "adverse_events": [PATIENT_ID, DATE, DAY, "term", "grade"],
}


def _dated(rows: list[dict[str, Any]] | None, name: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows or [], columns=None if rows else _COLUMNS[name])
    if rows:
        frame[PATIENT_ID] = frame[PATIENT_ID].astype(str)
        frame[DATE] = _dates(frame[DAY].astype(float))
        for col in _COLUMNS[name]:
            if col not in frame:
                frame[col] = pd.NA
    return frame


def _dates(days: pd.Series) -> pd.Series:
    """INDEX + days; NaN → NaT. NaN is kept out of to_timedelta: pandas casts it to int64
    internally, and the garbage it gets there can overflow (a RuntimeWarning, an error here)."""
    return (INDEX + pd.to_timedelta(days.fillna(0.0), unit="D")).where(days.notna())


def _outcomes(rows: list[dict[str, Any]]) -> pd.DataFrame:
    out = pd.DataFrame(rows)
    out[PATIENT_ID] = out[PATIENT_ID].astype(str)
    for col in OUTCOME_DATES:
        days = out.get(day_column(col), pd.Series(np.nan, index=out.index)).astype(float)
        out[day_column(col)] = days
        out[col] = _dates(days)
    return out


def make_cohort(
    patients: list[dict[str, Any]],
    outcomes: list[dict[str, Any]],
    manifest: dict[str, Any] | None = None,
    **tables: list[dict[str, Any]],
) -> Cohort:
    """A Cohort from rows; outcome rows use ``*_day`` keys (``last_followup_day`` ...)."""
    pats = pd.DataFrame(patients)
    pats[PATIENT_ID] = pats[PATIENT_ID].astype(str)
    if SITE_ID not in pats:
        pats[SITE_ID] = "site-a"
    pats[INDEX_DATE] = INDEX
    return Cohort(
        manifest=parse_manifest(manifest or BASE_MANIFEST),
        patients=pats,
        measurements=_dated(tables.get("measurements"), "measurements"),
        imaging=_dated(tables.get("imaging"), "imaging"),
        outcomes=_outcomes(outcomes),
        treatments=_dated(tables.get("treatments"), "treatments"),
        adverse_events=_dated(tables.get("adverse_events"), "adverse_events"),
    )


def simulated_cohort(n: int = 240, seed: int = 7) -> Cohort:
    """Post-resection HCC with CTC pre-op and at 1 month, scans, responses and AEs."""
    rng = np.random.default_rng(seed)
    ids = [f"p{i:03d}" for i in range(n)]
    pre = rng.negative_binomial(1, 0.3, n)
    post = rng.negative_binomial(1, 0.5, n)
    rise = post > pre
    rec = rng.exponential(np.where(rise, 700, 1800))
    death = rng.exponential(4000, n)
    follow = rng.uniform(300, 2200, n)
    outcomes = [
        {
            PATIENT_ID: pid,
            day_column(LAST_FOLLOWUP_DATE): round(min(f, d), 0),
            day_column(RECURRENCE_DATE): round(r, 0) if r < min(f, d) else np.nan,
            day_column(PROGRESSION_DATE): np.nan,
            day_column(DEATH_DATE): round(d, 0) if d <= f else np.nan,
        }
        for pid, r, d, f in zip(ids, rec, death, follow, strict=True)
    ]
    patients = [
        {
            PATIENT_ID: pid,
            SITE_ID: f"site-{'ab'[i % 2]}",
            "age": float(rng.normal(58, 10)),
            "sex": ["M", "F"][int(rng.random() < 0.2)],
            "arm": ["TACE+lenvatinib", "TACE+anti-PD-1"][i % 3 % 2],
            "ecog": float(rng.integers(0, 3)),
            "child_pugh": "AB"[int(rng.random() < 0.2)],
        }
        for i, pid in enumerate(ids)
    ]
    meas = [
        {PATIENT_ID: pid, DAY: day, "marker": CTC_TOTAL, "value": float(v), "unit": "cells/7.5mL"}
        for pid, a, b in zip(ids, pre, post, strict=True)
        for day, v in ((-2.0, a), (30.0, b))
    ]
    imaging = [
        {
            PATIENT_ID: pid,
            DAY: 60.0 * k,
            "modality": "CT",
            "finding": "no_evidence",
            "response": rng.choice(["CR", "PR", "SD", "PD"]),
            "criteria": "mRECIST",
        }
        for pid in ids[: n // 2]
        for k in (1, 2)
    ]
    aes = [
        {
            PATIENT_ID: pid,
            DAY: 20.0,
            "term": rng.choice(["neutropenia", "fatigue"]),
            "grade": int(rng.integers(1, 5)),
        }
        for pid in ids[::3]
    ]
    manifest = {
        **BASE_MANIFEST,
        "covariates": {
            "age": "numeric",
            "sex": "categorical",
            "arm": "categorical",
            "ecog": "numeric",
            "child_pugh": "categorical",
        },
        "study": {"arm": "arm", "ecog": "ecog", "child_pugh": "child_pugh"},
    }
    return make_cohort(
        patients, outcomes, manifest, measurements=meas, imaging=imaging, adverse_events=aes
    )


@pytest.fixture
def cohort_builder() -> Callable[..., Cohort]:
    """``make_cohort(patients, outcomes, manifest=None, **tables)``."""
    return make_cohort


@pytest.fixture(scope="session")
def simulated() -> Cohort:
    return simulated_cohort()


@pytest.fixture(scope="session")
def pbcseq() -> Cohort:
    return load_cohort(Path(__file__).resolve().parents[2] / "cohort" / "datasets" / "pbcseq")
