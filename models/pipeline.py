"""The packaged prediction pipeline: features + model + horizons + alarm threshold.

This object is what training packages into MLflow and what serving loads: one
implementation of "patient history → assessment" for batch scoring, the HTTP API and
the MLflow pyfunc alike. It never sees data dated after the assessment day.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from cohort.cohort import Cohort
from cohort.manifest import Manifest
from cohort.parsed import ParsedHistory, parsed_from_cohort, quick_parse
from cohort.records import PatientHistory, history_to_cohort, parse_day
from cohort.vocabulary import LANDMARK_DAY, PATIENT_ID, risk_column
from features.landmark import LandmarkFeatures, LandmarkInput
from models.base import SurvivalModel, survival_by_kind
from models.explain import top_effects

DEFAULT_HORIZONS = (180.0, 365.0, 730.0)
BRING_FORWARD_MIN_DAYS = 14.0  # a scan due within two weeks is already "soon": keep it
INTERVAL_LEVEL = 0.95
# landmark days of the rows ``RiskPipeline.warm`` asks: from index to past five years
WARM_DAYS = (0.0, 15.0, 45.0, 120.0, 250.0, 500.0, 1000.0, 2000.0)


@dataclass
class AlarmPolicy:
    """How a risk becomes an alarm and a band; set from out-of-fold validation results."""

    horizon_days: float = 365.0
    threshold: float = 0.5
    low_below: float = 0.1  # "low" below this, "high" at or above ``threshold``
    target_specificity: float | None = None
    expected_lead_days: float | None = None
    # alarm = risk >= threshold at this many consecutive post-index draws (the latest included)
    confirm: int = 1
    # the rule's figures per patient over the monitoring course, out of fold, with 95% CIs
    # (``alarms.operating_point.OperatingPoint.to_dict()``); None for models packaged before
    operating_point: dict[str, Any] | None = None

    def rule(self) -> dict[str, Any]:
        """What every assessment states about the alarm that set (or did not set) it."""
        return {
            "threshold": round(self.threshold, 4),
            "confirm": self.confirm,
            "horizon_days": self.horizon_days,
            "operating_point": self.operating_point,
        }

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
    # the cross-validation's fold models: each risk's interval is their grouped jackknife
    interval_models: list[SurvivalModel] = field(default_factory=list)
    # which rows the model was fitted on, and which were scored, in words (model report)
    rows: dict[str, str] = field(default_factory=dict)
    # the training patients (``patient_key`` of their ids) -> the position in
    # ``interval_models`` of the fold model fitted without them: cross-fitting
    held_out: dict[str, int] = field(default_factory=dict)
    # with a fitted feature stage (the mixed-model summaries): each fold model's own fits of
    # it, refitted without that fold's patients, in ``interval_models``' order. A fold model
    # is asked with the features it was trained and validated on: the packaged fits' columns
    # replaced by its own (empty: every model reads the packaged featuriser's columns)
    interval_mixed: list[dict[str, Any]] = field(default_factory=list)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle a pipeline packaged before a field existed: the field's default."""
        defaults: dict[str, Any] = {
            "interval_models": [],
            "rows": {},
            "held_out": {},
            "interval_mixed": [],
        }
        self.__dict__.update({**defaults, **state})

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
        """The assessment of one patient's history as of ``history.as_of`` (default today).

        A plainly valid history is parsed straight into arrays (``cohort.parsed``); anything
        else goes through the data contract, which refuses it with every problem listed or
        parses it the long way. Both end in the same features and the same model call.
        """
        parsed = quick_parse(history, self.manifest)
        if parsed is None:
            parsed = parsed_from_cohort(history_to_cohort(history, self.manifest))
        index = pd.Timestamp(parsed.index_date)
        as_of = history.as_of or (today or date.today()).isoformat()
        as_of_day = parse_day(as_of, index, "as_of")
        if as_of_day is None:  # unreachable: as_of is always set above; keeps the types honest
            raise ValueError("as_of is required")
        next_day = parse_day(history.next_imaging_date, index, "next_imaging_date")
        # Before index (a pre-operative draw) the model speaks for time zero: the risk after
        # surgery given everything known so far. Landmarks are never negative.
        day = max(as_of_day, 0.0)
        x = self._x_at(parsed, day)
        at = self._held_out_at(parsed.patient_id, history.patient.site_id)
        xs = self._fold_xs(parsed, day, x, at)
        return self._assessment(parsed, x, as_of, as_of_day, next_day, at, xs)

    def fold_model_for(self, patient_id: str, site_id: str | None) -> SurvivalModel | None:
        """For a patient the model was trained on — the same id at the same site — the
        cross-validation's model fitted without them (None for anyone else, or a package
        without fold models; a training patient recorded without a site matches by id).

        The packaged model saw a training patient's outcome, so its risk for them is
        in-sample: lower before their recurrence than a new patient's with the same history
        would be. The alarm's threshold and its stated figures were set on out-of-fold
        risks, so a training patient is served the risk of the fold model that left them
        out — the one those figures describe."""
        at = self._held_out_at(patient_id, site_id)
        return None if at is None else self.interval_models[at]

    def _held_out_at(self, patient_id: str, site_id: str | None) -> int | None:
        """``fold_model_for``'s model as its position in ``interval_models``."""
        if not self.held_out:
            return None
        at = self.held_out.get(patient_key(site_id, patient_id))
        if at is None and site_id:
            at = self.held_out.get(patient_key(None, patient_id))
        return None if at is None or at >= len(self.interval_models) else at

    def _x_at(self, parsed: ParsedHistory, day: float, fold: int | None = None) -> np.ndarray:
        """The model's one-row matrix at ``day`` from the draws dated up to that day; with
        ``fold`` (a position in ``interval_models``), as that fold model saw its rows."""
        x = self._packaged_x_at(parsed, day)
        if fold is None or not self.interval_mixed:
            return x
        return self._fold_row(parsed, day, x, fold)

    def _fold_xs(
        self, parsed: ParsedHistory, day: float, x: np.ndarray, at: int | None
    ) -> np.ndarray | None:
        """One row per fold model, each read with its own fold's mixed-model fits (fitted
        without that fold's patients), as it saw its rows in training; None without such a
        stage (every fold model then reads ``x``). ``at``: a training patient's fold model,
        whose row (their stated risk) is computed exactly as in training (``_fold_row``); the
        others' rows, for the interval only, side by side (``mixed_at_each(exact=False)``).

        A new patient's interval is then the grouped jackknife of the whole fitted pipeline,
        the mixed-model stage included. Read with the packaged fits' columns instead (before
        this), the fold models' spread moved a patient's interval width by −34% to +41%
        (5th–95th centiles over 487 held-out assessments; median −1 to −2%): a mismatch
        between the rows a fold model was trained on and the rows it was asked about, not a
        narrower interval."""
        if not self.interval_mixed or len(self.interval_mixed) != len(self.interval_models):
            return None  # no such stage, or no fold models to ask (a package without them)
        seen = parsed.day <= day
        each = self.featurizer.mixed_at_each(
            self.interval_mixed,
            day=parsed.day[seen],
            marker=parsed.marker[seen],
            value=parsed.value[seen],
            below=parsed.below_limit[seen],
            landmark_day=day,
            exact=False,
        )
        rows = np.repeat(x, len(self.interval_models), axis=0)
        for k, mine in enumerate(each):
            for j, name in self._mixed_positions:
                rows[k, j] = mine[name]
        if at is not None:  # the risk stated to a training patient: their fold's exact row
            rows[at] = self._fold_row(parsed, day, x, at)[0]
        return rows

    def _fold_row(self, parsed: ParsedHistory, day: float, x: np.ndarray, fold: int) -> np.ndarray:
        """``x`` (the packaged featuriser's row at ``day``) as fold model ``fold`` saw rows:
        its own mixed-model fits' columns in place of the packaged ones."""
        seen = parsed.day <= day
        mine = self.featurizer.mixed_at(
            self.interval_mixed[fold],
            day=parsed.day[seen],
            marker=parsed.marker[seen],
            value=parsed.value[seen],
            below=parsed.below_limit[seen],
            landmark_day=day,
        )
        row = x.copy()
        for j, name in self._mixed_positions:
            row[0, j] = mine[name]
        return row

    @cached_property
    def _mixed_positions(self) -> list[tuple[int, str]]:
        """(position among the model's columns, name) of each mixed-model column it reads."""
        names = [str(c) for c in self.model.feature_names_in_]
        return [(names.index(n), n) for n in self.featurizer.mixed_names() if n in names]

    def _packaged_x_at(self, parsed: ParsedHistory, day: float) -> np.ndarray:
        """``_x_at`` with the packaged featuriser's own fits."""
        seen = parsed.day <= day
        scanned = parsed.imaging_day <= day
        return self.featurizer.features_at(
            day=parsed.day[seen],
            marker=parsed.marker[seen],
            value=parsed.value[seen],
            below=parsed.below_limit[seen],
            covariates=parsed.covariates,
            landmark_day=day,
            scan_day=parsed.imaging_day[scanned],
            scan_finding=parsed.imaging_finding[scanned],
        )[None, self._model_order]

    def _assessment(
        self,
        parsed: ParsedHistory,
        x: np.ndarray,
        as_of: str,
        as_of_day: float,
        next_day: float | None,
        at: int | None = None,
        xs: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """The assessment at ``as_of_day``; ``at``: a training patient's fold model (its
        position in ``interval_models``); ``xs``: each fold model's row (``_fold_xs``)."""
        seen = parsed.imaging_day[parsed.imaging_day <= as_of_day]
        last_day = float(seen[-1]) if len(seen) else None
        if next_day is None or next_day <= as_of_day:
            next_day = self.manifest.imaging_schedule().next_after(max(as_of_day, last_day or 0.0))
        gap = None if next_day is None else max(next_day - as_of_day, 1.0)
        # one model call for every horizon the assessment quotes
        hs = sorted({*self.horizons, self.alarm.horizon_days, *([gap] if gap else [])})
        surv, effects = self.model.survival_and_contributions(x, self._reference_row, hs)
        risks = dict(zip(hs, 1.0 - surv[0], strict=True))
        folds = self._fold_risks(x, xs)  # every fold model at ``horizons``, asked once
        own = None
        if at is not None and folds is not None:  # a training patient: the fold model's risks
            own = self.interval_models[at]
            risks.update(zip(self.horizons, folds[at], strict=True))
            extra = [h for h in hs if h not in self.horizons and own.answers([h])]
            if extra:  # the risk before the next scan, where the fold model answers any day
                mine = x if xs is None else xs[at : at + 1]
                surv_extra = own.predict_survival_matrix(mine, extra)[0]
                risks.update(zip(extra, 1.0 - surv_extra, strict=True))
        alarm_risk = float(risks[self.alarm.horizon_days])
        alarm = alarm_risk >= self.alarm.threshold and self._confirmed(parsed, as_of_day, own, at)
        days_to_next = None if next_day is None else next_day - as_of_day
        forward = alarm and (days_to_next is None or days_to_next > BRING_FORWARD_MIN_DAYS)
        return {
            "patient_id": parsed.patient_id,
            "as_of": as_of,
            "risk": {str(int(h)): round(float(risks[h]), 4) for h in self.horizons},
            "risk_band": self.alarm.band(alarm_risk),
            "alarm": bool(alarm),
            "alarm_threshold": round(self.alarm.threshold, 4),
            "alarm_horizon_days": self.alarm.horizon_days,
            "alarm_rule": self.alarm.rule(),
            "risk_interval": self._intervals(folds, risks),
            "cross_fitted": own is not None,
            "imaging": {
                "last_imaging_date": _date(parsed, last_day),
                "next_imaging_date": _date(parsed, next_day),
                "days_to_next_imaging": days_to_next,
                "risk_before_next_imaging": None if gap is None else round(float(risks[gap]), 4),
                "recommendation": "bring_imaging_forward" if forward else "keep_schedule",
                "expected_lead_days": self.alarm.expected_lead_days,
            },
            "drivers": top_effects(self.model, x, effects, top=3),
        }

    def _confirmed(
        self,
        parsed: ParsedHistory,
        as_of_day: float,
        own: SurvivalModel | None = None,
        at: int | None = None,
    ) -> bool:
        """With ``confirm = K``: the K − 1 post-index draws before this point alarm too (by
        ``own``, a training patient's fold model at position ``at``, when given)."""
        k = int(self.alarm.confirm)
        if k <= 1:
            return True
        draws = np.unique(parsed.day[(parsed.day > 0) & (parsed.day < as_of_day)])
        if len(draws) < k - 1:
            return False
        fold = at if own is not None else None
        x = np.vstack([self._x_at(parsed, float(d), fold) for d in draws[-(k - 1) :]])
        surv = (own or self.model).predict_survival_matrix(x, [self.alarm.horizon_days])
        return bool(np.all(1.0 - surv[:, 0] >= self.alarm.threshold))

    def _fold_risks(self, x: np.ndarray, xs: np.ndarray | None = None) -> np.ndarray | None:
        """Each fold model's risks at ``horizons`` (one row a model), asked together, each
        kind in one pass (``survival_by_kind``); None without fold models. With ``xs`` (one
        row a fold model, ``_fold_xs``) each model answers for its own row."""
        if not self.interval_models:
            return None
        hs = list(self.horizons)
        rows = x if xs is None else xs
        surv = survival_by_kind(self.interval_models, rows, [hs] * len(self.interval_models))
        return 1.0 - np.vstack([s[0 if xs is None else i] for i, s in enumerate(surv)])

    def _intervals(
        self, folds: np.ndarray | None, risks: dict[float, float]
    ) -> dict[str, dict[str, float]]:
        """95% interval of each quoted risk: grouped jackknife over the CV's fold models.

        Each fold model was fitted without one of g groups of patients; the spread of their
        risks for this patient estimates the variance of the risk over training cohorts
        (v = (g − 1)/g · Σ (r_k − r̄)², on the logit scale), and the interval is centred on
        the served risk with a t quantile on g − 1 degrees of freedom. It describes how much
        the model's risk for this history depends on which patients trained it — wider where
        few training patients looked like this one — not the uncertainty in the patient's own
        tumour state. ``folds``: the fold models' risks (``_fold_risks``). Empty with fewer
        than two fold models (a package from before them has none).
        """
        if folds is None or len(folds) < 2:
            return {}
        hs = list(self.horizons)
        g = len(folds)
        z = _logit(folds)
        var = (g - 1) / g * ((z - z.mean(axis=0)) ** 2).sum(axis=0)
        half = _t_quantile(g - 1) * np.sqrt(var)
        centre = _logit(np.array([risks[h] for h in hs]))
        low, high = _expit(centre - half), _expit(centre + half)
        return {
            str(int(h)): {"low": round(float(lo), 4), "high": round(float(hi), 4)}
            for h, lo, hi in zip(hs, low, high, strict=True)
        }

    def warm(self) -> None:
        """Build what the one-row path otherwise builds on its first call — the XGBoost
        boosters' flat trees (~30 ms a booster: a stack's interval holds ten), the fold
        forests packed together — so that no request waits for it: the reference row at
        days since index spanning every band, asked of the model and the fold models once."""
        names = [str(c) for c in self.model.feature_names_in_]
        x = np.repeat(self._reference_row, len(WARM_DAYS), axis=0)
        if LANDMARK_DAY in names:
            x[:, names.index(LANDMARK_DAY)] = WARM_DAYS
        hs = list(self.horizons)
        models = [self.model, *self.interval_models]
        survival_by_kind(models, x, [hs] * len(models))

    @cached_property
    def _model_order(self) -> np.ndarray:
        """Positions of the model's columns among the featuriser's (normally 0..n-1)."""
        names = list(self.featurizer.get_feature_names_out())
        return np.array([names.index(str(c)) for c in self.model.feature_names_in_])

    @cached_property
    def _reference_row(self) -> np.ndarray:
        """``reference`` as a one-row matrix in the model's column order (NaN where absent)."""
        names = [str(c) for c in self.model.feature_names_in_]
        return np.array([[self.reference.get(c, np.nan) for c in names]], dtype=float)

    def _x(self, table: pd.DataFrame) -> pd.DataFrame:
        return table[list(self.featurizer.get_feature_names_out())]


def patient_key(site_id: str | None, patient_id: str) -> str:
    """How a packaged model names a training patient: a SHA-256 digest of site and id (ids
    are unique within a site only), so the artifact does not list the cohort in clear."""
    text = f"ctcmon-patient:{site_id or ''}\x1f{patient_id}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _date(parsed: ParsedHistory, day: float | None) -> str | None:
    if day is None or not np.isfinite(day):
        return None
    return parsed.date_of(math.floor(day)).isoformat()


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(q / (1 - q)), dtype=float)


def _expit(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=float)


@lru_cache(maxsize=8)
def _t_quantile(df: int) -> float:
    return float(student_t.ppf(0.5 + INTERVAL_LEVEL / 2, df))


def _check_horizons(horizons: Sequence[float]) -> tuple[float, ...]:
    hs = tuple(float(h) for h in horizons)
    if not hs or any(not h > 0 for h in hs):
        raise ValueError(f"horizons must be positive days, got {list(horizons)!r}")
    return hs
