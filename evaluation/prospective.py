"""Prospective mode: the alarms the service actually issued (``GET /v1/export``).

The export folder holds the site's cohort in the data contract plus ``assessments.csv``,
one row per assessment the service issued: ``patient_id, assessment_id, issued_at, as_of,
model_name, model_version, risk_180, risk_365, risk_730, risk_band, alarm,
alarm_threshold, alarm_horizon_days``.

Only what was issued is used, as it was issued: the ``alarm`` column as is (never
recomputed from the risk, a later model or later data), dated by when the clinician could
act on it — ``issued_at`` (an assessment back-filled after the fact does not count before
it was issued; ``as_of`` when that is later). The risk at the alarm horizon is kept as the
score of a what-if threshold sweep, clearly labelled as such.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from alarms.series import SCORE, AlarmSeries, score_alarms
from alarms.surveillance import END_DAY, surveillance_table
from cohort.cohort import Cohort
from cohort.vocabulary import (
    AS_OF,
    ASSESSMENT_ID,
    ASSESSMENTS_FILE,
    DAY,
    INDEX_DATE,
    ISSUED_AT,
    PATIENT_ID,
    risk_column,
)

log = logging.getLogger(__name__)

ASSESSMENT_COLUMNS: Final = (
    PATIENT_ID,
    ASSESSMENT_ID,
    ISSUED_AT,
    AS_OF,
    "model_name",
    "model_version",
    "risk_180",
    "risk_365",
    "risk_730",
    "risk_band",
    "alarm",
    "alarm_threshold",
    "alarm_horizon_days",
)
ISSUED_RULE: Final = "service alarms (as issued)"
BY_AS_OF_RULE: Final = "service alarms (dated by as_of: back-entered data, not prospective)"
# An assessment issued more than this many days after its as_of was entered after the fact
# (e.g. a study's records typed in later), not issued in clinic on the day of the draw.
BACKFILL_DAYS: Final = 7
_TRUE = {"true", "1", "yes", "t", "1.0"}
_FALSE = {"false", "0", "no", "f", "0.0"}


def assessments_path(location: str | Path) -> Path:
    """``assessments.csv`` itself, or the export folder holding it."""
    path = Path(location)
    if path.is_dir():
        path = path / f"{ASSESSMENTS_FILE}.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"no issued assessments at {str(path)!r}; pass the export folder of GET /v1/export "
            f"or its {ASSESSMENTS_FILE}.csv"
        )
    return path


def read_assessments(location: str | Path) -> pd.DataFrame:
    """The issued assessments, checked (all columns present, alarm parsable, dates valid)."""
    path = assessments_path(location)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ASSESSMENT_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(
            f"{path.name} lacks column(s) {missing}; the service exports {list(ASSESSMENT_COLUMNS)}"
        )
    return _parsed(raw, path.name)


def _parsed(raw: pd.DataFrame, name: str) -> pd.DataFrame:
    out = raw.copy()
    alarm = out["alarm"].str.strip().str.lower()
    bad = ~alarm.isin(_TRUE | _FALSE)
    if bad.any():
        row = int(np.argmax(bad.to_numpy()))
        raise ValueError(
            f"{name}, row {row + 2}, column 'alarm': expected true/false, got {raw['alarm'].iloc[row]!r}"
        )
    out["alarm"] = alarm.isin(_TRUE)
    for col in (AS_OF, ISSUED_AT):
        out[col] = _dates(out[col], col, name)
    for col in ("risk_180", "risk_365", "risk_730", "alarm_threshold", "alarm_horizon_days"):
        out[col] = pd.to_numeric(out[col].replace("", np.nan), errors="coerce")
    return out


def _dates(s: pd.Series, col: str, name: str) -> pd.Series:
    parsed = pd.to_datetime(s, errors="coerce", utc=True, format="mixed")
    if parsed.isna().any():
        row = int(np.argmax(parsed.isna().to_numpy()))
        raise ValueError(f"{name}, row {row + 2}, column {col!r}: not a date, got {s.iloc[row]!r}")
    return parsed.dt.tz_localize(None).dt.normalize()


def issued_alarms(cohort: Cohort, assessments: pd.DataFrame, confirm: int = 1) -> list[AlarmSeries]:
    """The issued alarms dated by when the clinician could act on them (``issued_at``, or
    ``as_of`` when later) — and, when some were back-filled, the same alarms dated by their
    ``as_of`` as a second, clearly labelled series (what they would have been in clinic)."""
    a, notes = _known_patients(cohort, assessments)
    backfill = _backfill_notes(cohort, a)
    acted = a[[ISSUED_AT, AS_OF]].max(axis=1)
    series = [_series(cohort, a, acted, confirm, ISSUED_RULE, "as issued", notes + backfill)]
    if backfill:
        series.append(
            _series(cohort, a, a[AS_OF], confirm, BY_AS_OF_RULE, "dated by as_of", backfill)
        )
    return series


def _series(
    cohort: Cohort,
    a: pd.DataFrame,
    when: pd.Series,
    confirm: int,
    name: str,
    dated: str,
    notes: tuple[str, ...],
) -> AlarmSeries:
    index = cohort.patients.set_index(PATIENT_ID)[INDEX_DATE]
    day = (when - a[PATIENT_ID].map(index)).dt.days.astype(float)
    horizon = _alarm_horizon(a)
    score = a.get(risk_column(horizon), np.nan)
    frame = pd.DataFrame({PATIENT_ID: a[PATIENT_ID], DAY: day, SCORE: score})
    order = np.lexsort((a[ASSESSMENT_ID].to_numpy(), a[ISSUED_AT].to_numpy(), day.to_numpy()))
    versions = sorted(set(a["model_name"] + " v" + a["model_version"]))
    series = score_alarms(
        frame.iloc[order],
        name=name,
        kind="issued",
        threshold=float(a["alarm_threshold"].median()) if len(a) else float("nan"),
        confirm=confirm,
        score_name=f"issued {risk_column(horizon)}",
        description=f"alarms issued by the service ({', '.join(versions) or 'none'}), {dated}",
        positive=a["alarm"].to_numpy(dtype=bool)[order],
    )
    return replace(series, notes=notes)


def _backfill_notes(cohort: Cohort, a: pd.DataFrame) -> tuple[str, ...]:
    """Say how many assessments were issued long after their draw, and what that does."""
    late = (a[ISSUED_AT] - a[AS_OF]).dt.days > BACKFILL_DAYS
    if not late.any():
        return ()
    index = cohort.patients.set_index(PATIENT_ID)[INDEX_DATE]
    issued_day = (a[ISSUED_AT] - a[PATIENT_ID].map(index)).dt.days.astype(float)
    end = surveillance_table(cohort).set_index(PATIENT_ID)[END_DAY]
    after_end = issued_day > a[PATIENT_ID].astype(str).map(end).to_numpy(dtype=float)
    return (
        f"{int(late.sum())} of {len(a)} assessments ({a.loc[late, PATIENT_ID].nunique()} "
        f"patients) were issued more than {BACKFILL_DAYS} days after their as_of date: the data "
        f"were entered after the fact. Dated by issued_at (the prospective clock) an alarm counts "
        f"only from the day it was issued; {int(after_end.sum())} were issued after the "
        "patient's surveillance had ended (recurrence, death or last follow-up) and cannot "
        f"count at all. '{BY_AS_OF_RULE}' dates each at its as_of instead: what the alarms "
        "would have been had they been issued on the day of the draw — a retrospective "
        "replay of the issued scores, not prospective evidence.",
    )


def _known_patients(
    cohort: Cohort, assessments: pd.DataFrame
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    known = assessments[PATIENT_ID].isin(cohort.patients[PATIENT_ID])
    notes: tuple[str, ...] = ()
    if not known.all():
        unknown = sorted(assessments.loc[~known, PATIENT_ID].unique())
        notes = (
            f"{int((~known).sum())} assessment(s) of {len(unknown)} patient(s) not in the cohort "
            f"ignored, e.g. {unknown[:5]}",
        )
        log.warning("%s", notes[0])
    return assessments[known].reset_index(drop=True), notes


def _alarm_horizon(a: pd.DataFrame) -> float:
    h = a["alarm_horizon_days"].dropna()
    return float(h.mode().iloc[0]) if len(h) else 365.0
