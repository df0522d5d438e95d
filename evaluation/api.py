"""``run_leadtime``: do alarms see recurrence earlier than scheduled imaging, and at what cost?

One call evaluates every rule — marker rules at each blood draw, a model's risk threshold,
the alarms the service issued — with the same definitions (``alarms.metrics``),
the same patient bootstrap resamples (so rules are compared paired), a threshold sweep per
score and the truth check on simulated cohorts. It computes only: ``reporting.leadtime``
writes the report and logs the analysis to the model's MLflow experiment.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from alarms.metrics import (
    compare,
    patient_summary,
    point_metrics,
    replicates,
    resample_index,
    with_intervals,
)
from alarms.rules import default_rules, parse_rule
from alarms.series import AlarmSeries, check_confirm, marker_alarms
from alarms.surveillance import RECURRED, check_imaging, surveillance_table
from alarms.sweep import Sweep, sweep
from cohort.cohort import Cohort
from cohort.vocabulary import DAY, PATIENT_ID
from evaluation.hazard import alarm_hazard_ratio
from evaluation.model_source import ModelSource, model_alarms
from evaluation.prospective import issued_alarms, read_assessments
from evaluation.results import LeadtimeResult, RuleResult
from evaluation.truth import latent_summary, read_truth, truth_check
from tracking.locations import resolve_tracking_uri
from training.progress import Progress, quiet

log = logging.getLogger(__name__)

DEFAULT_N_BOOT = 500
KM_LANDMARK_DAY = 90.0  # alarm status by the 3-month visit; followed from there


@dataclass(frozen=True)
class _Settings:
    rules: list[str]
    confirm: int
    specificity: float
    lookback_days: float
    n_boot: int
    seed: int
    km_landmark_day: float


def run_leadtime(
    cohort: Cohort,
    *,
    model_uri: str | None = None,
    rules: Sequence[str] | None = None,
    confirm: int = 1,
    specificity: float = 0.9,
    lookback_days: float = 365.0,
    prospective_assessments: str | Path | pd.DataFrame | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    tracking_uri: str | None = None,
    progress: Progress | None = None,
) -> LeadtimeResult:
    """Lead time of each alarm rule over imaging-confirmed recurrence (see module docs).

    ``rules`` default to ``default_rules(manifest)``; ``model_uri`` adds the model's alarms;
    ``prospective_assessments`` (export folder, ``assessments.csv`` or its frame) adds the
    alarms the service issued. Raises ValueError for an unknown rule token, a cohort without
    imaging, or an out-of-range setting. No recurrence: metrics that need one are None,
    with a note (specificity and false-alarm rate stay defined).
    """
    s = _check_args(cohort, rules, confirm, specificity, lookback_days, n_boot, seed)
    say: Progress = progress or quiet
    surv = surveillance_table(cohort)
    notes = _cohort_notes(surv)
    series, source = _all_series(
        cohort, s, surv, model_uri, prospective_assessments, tracking_uri, say
    )
    say("threshold sweeps", 0.3)
    sweeps, variants = _sweeps(series, surv, s)
    notes += _series_notes(series, sweeps)
    return _evaluate([*series, *variants], cohort, surv, s, sweeps, notes, source, say)


def _check_args(
    cohort: Cohort,
    rules: Sequence[str] | None,
    confirm: int,
    specificity: float,
    lookback_days: float,
    n_boot: int,
    seed: int,
) -> _Settings:
    if not isinstance(cohort, Cohort):
        raise TypeError(
            f"cohort must be a Cohort (cohort.load.load_cohort), got {type(cohort).__name__}"
        )
    if isinstance(rules, str):
        raise TypeError(f"rules must be a list of rule strings, got the string {rules!r}")
    if not 0 < float(specificity) < 1:
        raise ValueError(f"specificity must be in (0, 1), got {specificity!r}")
    if not float(lookback_days) > 0:
        raise ValueError(f"lookback_days must be > 0, got {lookback_days!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0 or n_boot == 1:
        raise ValueError(f"n_boot must be 0 (no intervals) or an integer >= 2, got {n_boot!r}")
    check_imaging(cohort)
    texts = list(rules) if rules else default_rules(cohort.manifest)
    for text in texts:
        parse_rule(text, cohort.manifest)  # fail before any work
    return _Settings(
        texts,
        check_confirm(confirm),
        float(specificity),
        float(lookback_days),
        n_boot,
        seed,
        KM_LANDMARK_DAY,
    )


def _cohort_notes(surv: pd.DataFrame) -> list[str]:
    if surv[RECURRED].any():
        return []
    return [
        "no recurrence in this cohort: sensitivity, PPV, lead time and hazard ratio are "
        "undefined (reported as null); specificity and false alarms per patient-year stand"
    ]


def _all_series(
    cohort: Cohort,
    s: _Settings,
    surv: pd.DataFrame,
    model_uri: str | None,
    prospective: str | Path | pd.DataFrame | None,
    tracking_uri: str | None,
    say: Progress,
) -> tuple[list[AlarmSeries], ModelSource | None]:
    say("marker rules", 0.05)
    series = [marker_alarms(cohort, parse_rule(t, cohort.manifest), s.confirm) for t in s.rules]
    source = None
    if model_uri is not None:
        say(f"model alarms from {model_uri}", 0.1)
        _point_mlflow(resolve_tracking_uri(tracking_uri))
        model_series, source = model_alarms(cohort, model_uri, surv, s.confirm)
        series.append(model_series)
    if prospective is not None:
        series.extend(_issued(cohort, prospective, s.confirm))
    _check_unique_names(series)
    return series, source


def _point_mlflow(uri: str) -> None:
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def _issued(
    cohort: Cohort, prospective: str | Path | pd.DataFrame, confirm: int
) -> list[AlarmSeries]:
    frame = prospective if isinstance(prospective, pd.DataFrame) else read_assessments(prospective)
    return issued_alarms(cohort, frame, confirm)


def _check_unique_names(series: list[AlarmSeries]) -> None:
    names = [x.name for x in series]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"rule(s) given twice: {dupes}")


def _sweeps(
    series: list[AlarmSeries], surv: pd.DataFrame, s: _Settings
) -> tuple[list[Sweep], list[AlarmSeries]]:
    """One sweep per distinct score; a variant rule at each chosen threshold."""
    sweeps, variants, seen = [], [], set()
    for x in series:
        if not x.sweepable or x.score_name in seen:
            continue
        seen.add(x.score_name)
        sw = sweep(x, surv, lookback_days=s.lookback_days, target_specificity=s.specificity)
        sweeps.append(sw)
        if sw.chosen is not None and sw.chosen != x.threshold:
            label = "specificity ≥" if sw.reached else "strictest tried; target specificity"
            name = f"{x.score_name}>={sw.chosen:.4g} ({label} {s.specificity:.2f})"
            variants.append(
                replace(
                    x.at_threshold(sw.chosen, name),
                    description=f"{x.description}; threshold chosen by the sweep",
                    variant_of=x.name,
                )
            )
    return sweeps, variants


def _series_notes(series: list[AlarmSeries], sweeps: list[Sweep]) -> list[str]:
    notes = []
    swept = {sw.score_name for sw in sweeps}
    for x in series:
        notes += [f"{x.name}: {n}" for n in x.notes]
        if x.score_name not in swept:
            notes.append(
                f"{x.name}: no threshold sweep (only single 'marker>=x' rules and risk scores are swept)"
            )
        if x.kind == "model" and "at the training landmarks" in x.description:
            notes.append(
                f"{x.name}: risks are out-of-fold at the training landmarks (scheduled draw days), "
                "so model alarms can only sound on those days, not on every actual draw"
            )
    if swept:
        notes.append(
            "thresholds chosen by the sweep are picked on this cohort and evaluated on it: their "
            "figures are optimistic until validated on another cohort"
        )
    return notes


def _hr_notes(rules: Sequence[RuleResult]) -> list[str]:
    return [
        f"{r.name}: hazard ratio: {r.hazard_ratio['note']}"
        for r in rules
        if r.hazard_ratio.get("note")
    ]


def _evaluate(
    series: list[AlarmSeries],
    cohort: Cohort,
    surv: pd.DataFrame,
    s: _Settings,
    sweeps: list[Sweep],
    notes: list[str],
    source: ModelSource | None,
    say: Progress,
) -> LeadtimeResult:
    idx = resample_index(len(surv), s.n_boot, s.seed)
    truth = read_truth(cohort)
    rules, summaries, reps_by = [], {}, {}
    for i, x in enumerate(series):
        say(f"evaluating {x.name}", 0.4 + 0.5 * i / max(len(series), 1))
        summary = patient_summary(x, surv, s.lookback_days)
        reps = replicates(summary, idx)
        rules.append(_rule_result(x, summary, reps, surv, truth))
        summaries[x.name], reps_by[x.name] = summary, reps
    rules = _paired(rules, reps_by)
    return LeadtimeResult(
        cohort=_cohort_info(cohort, surv),
        settings=s.__dict__.copy(),
        rules=tuple(rules),
        sweeps=tuple(sweeps),
        truth=None if truth is None else _truth_block(surv, truth, rules),
        notes=(*notes, *_hr_notes(rules)),
        model=None if source is None else source.__dict__.copy(),
        series={x.name: x for x in series},
        summaries=summaries,
        surveillance=surv,
        imaging=cohort.imaging,
        draw_days=_draw_days(cohort),
    )


def _draw_days(cohort: Cohort) -> pd.DataFrame:
    m = cohort.measurements
    return m.loc[m[DAY] > 0, [PATIENT_ID, DAY]].drop_duplicates().reset_index(drop=True)


def _rule_result(
    x: AlarmSeries,
    summary: pd.DataFrame,
    reps: dict[str, np.ndarray],
    surv: pd.DataFrame,
    truth: pd.DataFrame | None,
) -> RuleResult:
    return RuleResult(
        name=x.name,
        kind=x.kind,
        description=x.description,
        threshold=x.threshold,
        confirm=x.confirm,
        metrics=with_intervals(point_metrics(summary), reps),
        hazard_ratio=alarm_hazard_ratio(x, surv),
        variant_of=x.variant_of,
        truth=None if truth is None else truth_check(summary, truth),
    )


def _paired(rules: list[RuleResult], reps_by: dict[str, dict[str, np.ndarray]]) -> list[RuleResult]:
    """Each rule minus the first (the reference, ``ctc_total>=2`` by default)."""
    ref = rules[0]
    return [ref] + [
        replace(
            r,
            vs_reference={
                "reference": ref.name,
                **compare(reps_by[r.name], reps_by[ref.name], dict(r.metrics), dict(ref.metrics)),
            },
        )
        for r in rules[1:]
    ]


def _cohort_info(cohort: Cohort, surv: pd.DataFrame) -> dict[str, Any]:
    return {
        "name": cohort.manifest.name,
        "source": None if cohort.source is None else str(cohort.source),
        "digest": cohort.digest,
        "n_patients": len(surv),
        "n_recurrences": int(surv[RECURRED].sum()),
        "imaging_schedule_days": cohort.manifest.imaging_schedule().schedule_days,
    }


def _truth_block(
    surv: pd.DataFrame, truth: pd.DataFrame, rules: list[RuleResult]
) -> dict[str, Any]:
    return {"latent": latent_summary(surv, truth), "rules": {r.name: r.truth for r in rules}}
