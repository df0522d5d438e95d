"""The alarm's operating point as a clinician meets it: per patient, over the monitoring course.

A risk is issued after every blood draw, for years. So the figures that describe an alarm rule
(``risk >= threshold`` at ``confirm`` consecutive draws) are the lead-time analysis's, replayed
over each patient's whole course (:mod:`alarms.metrics`): a recurrence-free patient alarmed
once is a false-alarm patient; a recurrence is detected by an alarm in the ``lookback`` days
before it. ``choose`` picks the rule on out-of-fold risks at every draw of the training
patients; ``figures`` states any given rule on any cohort. Training, ``ctcmon leadtime`` and
the model report all call these two functions, so the service, the lead-time report and the
model report quote the same definition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from alarms.metrics import (
    interval,
    patient_summary,
    point_metrics,
    replicates,
    resample_index,
)
from alarms.series import POSITIVE, SCORE, AlarmSeries, score_alarms
from alarms.surveillance import END_DAY, RECURRED
from cohort.vocabulary import PATIENT_ID
from models.alarm import OperatingPoint

DEFAULT_LOOKBACK_DAYS: Final = 365.0
DEFAULT_CONFIRMS: Final = (1, 2)
DEFINITION: Final = (
    "Per patient over the monitoring course, out of sample: the alarm is '{rule}', checked "
    "after every post-operative blood draw. patient_specificity = share of recurrence-free "
    "patients never alarmed over their whole follow-up; sensitivity = share of recurrences "
    "with an alarm in the {lookback:g} days before imaging confirmed them; false alarms per "
    "patient-year count every alarming draw outside such a window; median lead = days from "
    "the first alarm in that window to the confirming scan; per_draw_specificity = share of "
    "draws of recurrence-free patients below the rule (for reference only). {source} 95% "
    "intervals: patient bootstrap ({n_boot} resamples)."
)


@dataclass(frozen=True)
class Target:
    """What the rule is chosen for: a patient-level specificity, or a false-alarm rate."""

    patient_specificity: float | None = 0.9
    false_alarms_per_year: float | None = None

    def __post_init__(self) -> None:
        if (self.patient_specificity is None) == (self.false_alarms_per_year is None):
            raise ValueError("give exactly one target: a specificity or a false-alarm rate")
        if self.patient_specificity is not None and not 0 < self.patient_specificity < 1:
            raise ValueError(f"specificity must be in (0, 1), got {self.patient_specificity!r}")
        if self.false_alarms_per_year is not None and not self.false_alarms_per_year > 0:
            raise ValueError(
                f"false alarms per patient-year must be > 0, got {self.false_alarms_per_year!r}"
            )

    def met(self, m: dict[str, Any]) -> bool:
        if self.patient_specificity is not None:
            spec = m.get("specificity")
            return spec is not None and spec >= self.patient_specificity
        rate, limit = m.get("false_alarms_per_patient_year"), self.false_alarms_per_year
        return rate is not None and limit is not None and rate <= limit

    def text(self) -> str:
        if self.patient_specificity is not None:
            return f"patient_specificity>={self.patient_specificity:g}"
        return f"false_alarms_per_patient_year<={self.false_alarms_per_year:g}"


def choose(
    risks: pd.DataFrame,
    surv: pd.DataFrame,
    target: Target,
    *,
    lookback_days: float = DEFAULT_LOOKBACK_DAYS,
    confirms: Sequence[int] = DEFAULT_CONFIRMS,
    n_boot: int = 200,
    seed: int = 0,
    source: str = "",
) -> OperatingPoint:
    """The most sensitive rule that meets ``target``, over thresholds and ``confirms``.

    ``risks``: ``patient_id``, ``day``, ``score`` (risk at the alarm horizon) at every
    post-index draw, out of fold. For each confirmation K the threshold is the lowest risk
    whose rule meets the target (specificity and the false-alarm rate are monotone in the
    threshold, so a bisection over the observed risks finds it); among the K the one with the
    higher sensitivity wins, then the longer median lead, then the smaller K.
    """
    candidates = []
    for k in confirms:
        threshold, reached = _lowest_meeting(risks, surv, target, lookback_days, int(k))
        m = point_metrics(patient_summary(_series(risks, threshold, k), surv, lookback_days))
        key = (reached, m.get("sensitivity") or 0.0, _lead(m) or 0.0, -int(k))
        candidates.append((key, threshold, int(k), reached))
    _, threshold, k, reached = max(candidates)
    return figures(
        risks,
        surv,
        threshold,
        k,
        lookback_days=lookback_days,
        n_boot=n_boot,
        seed=seed,
        target=target.text(),
        reached=reached,
        source=source,
    )


def figures(
    risks: pd.DataFrame,
    surv: pd.DataFrame,
    threshold: float,
    confirm: int,
    *,
    lookback_days: float = DEFAULT_LOOKBACK_DAYS,
    n_boot: int = 200,
    seed: int = 0,
    target: str = "",
    reached: bool = True,
    source: str = "",
) -> OperatingPoint:
    """The figures of the rule ``risk >= threshold`` at ``confirm`` consecutive draws."""
    series = _series(risks, threshold, confirm)
    summary = patient_summary(series, surv, lookback_days)
    m = point_metrics(summary)
    reps = replicates(summary, resample_index(len(summary), n_boot, seed)) if n_boot > 1 else {}
    ci = {k: interval(v) for k, v in reps.items()}

    def trio(name: str, key: str, value: float | None) -> dict[str, float | None]:
        low, high = ci.get(key, (None, None))
        return {name: value, f"{name}_low": low, f"{name}_high": high}

    rule = f"risk >= {threshold:.3g}" + (
        f" at {confirm} consecutive draws" if confirm > 1 else " at a draw"
    )
    return OperatingPoint(
        threshold=float(threshold),
        confirm=int(confirm),
        lookback_days=float(lookback_days),
        target=target,
        target_reached=bool(reached),
        **trio("patient_specificity", "specificity", m.get("specificity")),
        **trio("sensitivity", "sensitivity", m.get("sensitivity")),
        **trio(
            "false_alarms_per_patient_year",
            "false_alarms_per_patient_year",
            m.get("false_alarms_per_patient_year"),
        ),
        **trio("median_lead_days", "lead_median", _lead(m)),
        per_draw_specificity=_per_draw_specificity(series, surv),
        n_patients=int(m["n_patients"]),
        n_recurrences=int(m["n_recurrences"]),
        n_controls=int(m["n_controls"]),
        definition=DEFINITION.format(
            rule=rule, lookback=lookback_days, source=source, n_boot=max(n_boot, 0)
        ),
    )


def _series(risks: pd.DataFrame, threshold: float, confirm: int) -> AlarmSeries:
    return score_alarms(
        risks,
        name="model",
        kind="model",
        threshold=float(threshold),
        confirm=int(confirm),
        score_name="risk",
        description="risk at every draw",
    )


def _lead(m: dict[str, Any]) -> float | None:
    return m.get("lead_median")


def _lowest_meeting(
    risks: pd.DataFrame, surv: pd.DataFrame, target: Target, lookback: float, confirm: int
) -> tuple[float, bool]:
    """Bisection over the distinct observed risks for the lowest one meeting the target."""
    values = np.unique(risks[SCORE].to_numpy(dtype=float))
    values = values[np.isfinite(values)]
    if len(values) == 0:
        raise ValueError("no finite risk to choose an alarm threshold from")

    def meets(i: int) -> bool:
        series = _series(risks, float(values[i]), confirm)
        return target.met(point_metrics(patient_summary(series, surv, lookback)))

    lo, hi = 0, len(values) - 1
    if not meets(hi):  # not even the strictest observed threshold: say so, don't pretend
        return float(np.nextafter(values[hi], np.inf)), False
    while lo < hi:
        mid = (lo + hi) // 2
        if meets(mid):
            hi = mid
        else:
            lo = mid + 1
    return float(values[lo]), True


def _per_draw_specificity(series: AlarmSeries, surv: pd.DataFrame) -> float | None:
    """Share of the draws of recurrence-free patients (during follow-up) below the rule."""
    f = series.frame.merge(surv[[PATIENT_ID, RECURRED, END_DAY]], on=PATIENT_ID)
    f = f[~f[RECURRED].to_numpy(dtype=bool) & (f["day"] <= f[END_DAY])]
    if f.empty:
        return None
    return float(1.0 - f[POSITIVE].to_numpy(dtype=bool).mean())
