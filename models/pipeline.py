"""The packaged prediction pipeline: features + model + horizons + alarm threshold.

This object is what training packages into MLflow and what serving loads: one
implementation of "patient history → assessment" for batch scoring, the HTTP API and
the MLflow pyfunc alike. It never sees data dated after the assessment day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from cohort.cohort import Cohort
from cohort.manifest import Manifest
from cohort.records import PatientHistory, history_to_cohort, parse_day
from cohort.vocabulary import DAY, INDEX_DATE, LANDMARK_DAY, PATIENT_ID, risk_column
from features.landmark import LandmarkFeatures, LandmarkInput
from models.base import SurvivalModel
from models.explain import drivers

DEFAULT_HORIZONS = (180.0, 365.0, 730.0)
BRING_FORWARD_MIN_DAYS = 14.0  # a scan due within two weeks is already "soon": keep it


@dataclass
class AlarmPolicy:
    """How a risk becomes an alarm and a band; set from out-of-fold validation results."""

    horizon_days: float = 365.0
    threshold: float = 0.5
    low_below: float = 0.1  # "low" below this, "high" at or above ``threshold``
    target_specificity: float | None = None
    expected_lead_days: float | None = None

    def band(self, risk: float) -> str:
        if risk >= self.threshold:
            return "high"
        return "low" if risk < self.low_below else "intermediate"


@dataclass
class RiskPipeline:
    """A fitted featuriser and survival model, with what serving needs to explain a score."""

    manifest: Manifest
    featurizer: LandmarkFeatures
    model: SurvivalModel
    model_name: str
    horizons: tuple[float, ...] = DEFAULT_HORIZONS
    alarm: AlarmPolicy = field(default_factory=AlarmPolicy)
    reference: dict[str, float] = field(default_factory=dict)
    trained_at: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    cohort_digest: str = ""  # the training cohort's digest: scoring it again is not validation

    # ---- batch: a cohort at landmarks (external validation, lead time) ----
    def features(self, cohort: Cohort, points: pd.DataFrame) -> pd.DataFrame:
        """Feature rows for (patient_id, landmark_day) points, using data up to each landmark."""
        table = self.featurizer.transform(LandmarkInput.from_cohort(cohort, points))
        return table

    def score(
        self, cohort: Cohort, points: pd.DataFrame, horizons: Sequence[float] | None = None
    ) -> pd.DataFrame:
        """``patient_id``, ``landmark_day`` and ``risk_<h>`` for each point and horizon."""
        hs = _check_horizons(horizons or self.horizons)
        table = self.features(cohort, points)
        risk = self.model.predict_risk(self._x(table), hs)
        out = table[[PATIENT_ID, LANDMARK_DAY]].copy()
        for j, h in enumerate(hs):
            out[risk_column(h)] = risk[:, j]
        return out

    # ---- one patient: the assessment served after each draw ----
    def assess(self, history: PatientHistory, today: date | None = None) -> dict[str, Any]:
        """The assessment of one patient's history as of ``history.as_of`` (default today)."""
        cohort = history_to_cohort(history, self.manifest)
        index_date = cohort.patients[INDEX_DATE].iloc[0]
        as_of = history.as_of or (today or date.today()).isoformat()
        as_of_day = parse_day(as_of, index_date, "as_of")
        if as_of_day is None:  # unreachable: as_of is always set above; keeps the types honest
            raise ValueError("as_of is required")
        # Before index (a pre-operative draw) the model speaks for time zero: the risk after
        # surgery given everything known so far. Landmarks are never negative.
        landmark = max(as_of_day, 0.0)
        points = pd.DataFrame({PATIENT_ID: [history.patient.patient_id], LANDMARK_DAY: [landmark]})
        x = self._x(self.features(cohort, points))
        next_day = parse_day(history.next_imaging_date, index_date, "next_imaging_date")
        return self._assessment(cohort, x, as_of, as_of_day, next_day)

    def _assessment(
        self, cohort: Cohort, x: pd.DataFrame, as_of: str, as_of_day: float, next_day: float | None
    ) -> dict[str, Any]:
        hs = tuple(sorted({*self.horizons, self.alarm.horizon_days}))
        risks = dict(zip(hs, self.model.predict_risk(x, hs)[0], strict=True))
        alarm_risk = float(risks[self.alarm.horizon_days])
        alarm = alarm_risk >= self.alarm.threshold
        return {
            "patient_id": str(cohort.patients[PATIENT_ID].iloc[0]),
            "as_of": as_of,
            "risk": {str(int(h)): round(float(risks[h]), 4) for h in self.horizons},
            "risk_band": self.alarm.band(alarm_risk),
            "alarm": bool(alarm),
            "alarm_threshold": round(self.alarm.threshold, 4),
            "alarm_horizon_days": self.alarm.horizon_days,
            "imaging": self._imaging(cohort, x, as_of_day, next_day, alarm),
            "drivers": drivers(self.model, x, self.reference, top=3),
        }

    def _imaging(
        self, cohort: Cohort, x: pd.DataFrame, as_of_day: float, next_day: float | None, alarm: bool
    ) -> dict[str, Any]:
        index_date = cohort.patients[INDEX_DATE].iloc[0]
        seen = cohort.imaging[cohort.imaging[DAY] <= as_of_day]
        last_day = float(seen[DAY].max()) if len(seen) else None
        if next_day is None or next_day <= as_of_day:
            next_day = self.manifest.imaging_schedule().next_after(max(as_of_day, last_day or 0.0))
        gap = None if next_day is None else next_day - as_of_day
        before = None if gap is None else float(self.model.predict_risk(x, [max(gap, 1.0)])[0, 0])
        forward = alarm and (gap is None or gap > BRING_FORWARD_MIN_DAYS)
        return {
            "last_imaging_date": _date(index_date, last_day),
            "next_imaging_date": _date(index_date, next_day),
            "days_to_next_imaging": gap,
            "risk_before_next_imaging": None if before is None else round(before, 4),
            "recommendation": "bring_imaging_forward" if forward else "keep_schedule",
            "expected_lead_days": self.alarm.expected_lead_days,
        }

    def _x(self, table: pd.DataFrame) -> pd.DataFrame:
        return table[list(self.featurizer.get_feature_names_out())]


def _date(index_date: pd.Timestamp, day: float | None) -> str | None:
    if day is None or not np.isfinite(day):
        return None
    return (index_date + pd.Timedelta(days=float(day))).strftime("%Y-%m-%d")


def _check_horizons(horizons: Sequence[float]) -> tuple[float, ...]:
    hs = tuple(float(h) for h in horizons)
    if not hs or any(not h > 0 for h in hs):
        raise ValueError(f"horizons must be positive days, got {list(horizons)!r}")
    return hs
