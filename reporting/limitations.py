"""Limitations written from the facts, never by hand: each check returns its sentences."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

from reporting.facts import ReportFacts
from reporting.related import BASELINE

MIN_EVENTS: Final = 100  # Collins et al. 2016: at least 100 events to validate a model
MIN_EVENTS_PER_FEATURE: Final = 10.0
MIN_LANDMARK_EVENTS: Final = 10
SLOPE_RANGE: Final = (0.8, 1.2)
MIN_BOOT: Final = 200

Check = Callable[[ReportFacts], list[str]]


def limitations(facts: ReportFacts) -> list[str]:
    """Every limitation the facts support, most serious first."""
    return [text for check in CHECKS for text in check(facts)]


def _simulated(f: ReportFacts) -> list[str]:
    if not f.simulated:
        return []
    return [
        f"Simulated data: cohort {f.cohort['name']!r} comes from the ctcmon simulator, so every "
        "figure in this report describes the simulator's assumptions, not patients. It shows the "
        "pipeline works; it is no evidence for clinical use."
    ]


def _internal_only(f: ReportFacts) -> list[str]:
    folds = f.params.get("folds_file") if f.params.get("folds_file") not in (None, "None") else None
    how = (
        f"the folds in {folds}"
        if folds
        else f"patient-grouped {f.params.get('folds', '?')}-fold cross-validation"
    )
    return [
        f"Internal validation only ({how} on the development cohort). Performance in other "
        "centres, with other CTC assays or surveillance schedules is unknown: external "
        "validation (`ctcmon predict` on an independent cohort) is needed before any use."
    ]


def _events(f: ReportFacts) -> list[str]:
    out = []
    n = f.metrics.get("n_events")
    if n is not None and n < MIN_EVENTS:
        out.append(
            f"Few events: {n:.0f} patients with an event (fewer than {MIN_EVENTS}, the usual "
            "minimum for a validation study); every estimate is imprecise."
        )
    p = f.predictors.get("n_used") or 0
    if n is not None and p and n / p < MIN_EVENTS_PER_FEATURE:
        out.append(
            f"{n:.0f} events for {p} candidate features ({n / p:.1f} per feature, below "
            f"{MIN_EVENTS_PER_FEATURE:g}): a high risk of overfitting; the calibration slope shows how much."
        )
    return out


def _landmarks(f: ReportFacts) -> list[str]:
    rows = f.tables.get("by_landmark", [])
    out = []
    unscored = [r for r in rows if r.get("reason")]
    if unscored:
        which = "; ".join(f"day {r['landmark_day']:g}: {r['reason']}" for r in unscored)
        out.append(f"Landmarks not scored ({len(unscored)}): {which}.")
    thin = [
        r for r in rows if not r.get("reason") and (r.get("n_events") or 0) < MIN_LANDMARK_EVENTS
    ]
    if thin:
        days = ", ".join(f"{r['landmark_day']:g} ({r['n_events']:.0f})" for r in thin)
        out.append(
            f"Fewer than {MIN_LANDMARK_EVENTS} events within the horizon at landmark day(s) {days}: "
            "the AUC and Brier score at those landmarks are unstable; read the trend, not the points."
        )
    return out


def _notes(f: ReportFacts) -> list[str]:
    return [f"Training note: {n}." for n in f.notes]


def _calibration(f: ReportFacts) -> list[str]:
    slope = f.metrics.get("calibration_slope")
    if slope is None or not math.isfinite(slope):
        return ["The calibration slope could not be estimated: calibration is not established."]
    low, high = SLOPE_RANGE
    if slope < low:
        return [
            f"Calibration slope {slope:.3f} (< {low}): predicted risks are too extreme — high risks "
            "too high, low risks too low — a sign of overfitting; recalibrate before relying on "
            "absolute risks."
        ]
    if slope > high:
        return [
            f"Calibration slope {slope:.3f} (> {high}): predicted risks are too modest (too close "
            "to the average); absolute risks understate the spread of true risk."
        ]
    return []


def _baseline(f: ReportFacts) -> list[str]:
    if f.model["name"] == BASELINE:
        return [
            "This is the covariates-only baseline: it uses no blood markers and is the reference monitoring models must beat, not a monitoring model."
        ]
    base = next((r for r in f.comparison if r["model"] == BASELINE), None)
    if base is None:
        return [
            "No covariates-only baseline was trained on this cohort and horizon: the value the blood markers add is not shown."
        ]
    auc, low, base_auc = f.metrics.get("auc"), f.metrics.get("auc_low"), base.get("auc")
    if auc is None or low is None or base_auc is None:
        return []
    if low <= base_auc:
        return [
            f"The AUC gain over the covariates-only baseline ({auc - base_auc:+.3f}) is within the "
            "model's 95% CI: the markers' added value is not established."
        ]
    return []


def _uncertainty(f: ReportFacts) -> list[str]:
    out = [
        "Confidence intervals resample patients with the out-of-fold predictions held fixed: they "
        "leave out the variability of refitting the model, so they are somewhat too narrow."
    ]
    n_boot = _int(f.params.get("n_boot"))
    if n_boot is not None and n_boot < MIN_BOOT:
        out.append(
            f"Only {n_boot} bootstrap resamples: the CI limits themselves are imprecise (use ≥ {MIN_BOOT})."
        )
    return out


def _alarm(f: ReportFacts) -> list[str]:
    spec = f.alarm.get("target_specificity")
    if spec is None:
        return []
    return [
        f"The alarm threshold was chosen on the same out-of-fold predictions it is reported on "
        f"(target specificity {spec:g}): its specificity and sensitivity are optimistic until "
        "checked on other patients."
    ]


def _not_analysed(f: ReportFacts) -> list[str]:
    return [
        "No subgroup, fairness or between-centre heterogeneity analysis: performance by sex, "
        "age, aetiology or site is not reported."
    ]


def _files(f: ReportFacts) -> list[str]:
    state = f.cohort.get("files")
    why: dict[str, Any] = {
        "missing": "are no longer at the logged source",
        "changed": "changed since training (digest differs)",
        "unreadable": "could not be read",
    }
    if state not in why:
        return []
    return [
        f"The cohort files {why[state]} ({f.cohort.get('source') or 'no source logged'}): accrual "
        "dates, centres and follow-up are not reported."
    ]


def _int(text: str | None) -> int | None:
    try:
        return int(float(text)) if text is not None else None
    except ValueError:
        return None


CHECKS: Final[tuple[Check, ...]] = (
    _simulated,
    _internal_only,
    _baseline,
    _events,
    _calibration,
    _landmarks,
    _notes,
    _alarm,
    _uncertainty,
    _not_analysed,
    _files,
)
