"""Alarms per assessment point: marker rules at each blood draw, model risks, issued alarms.

Every source becomes one :class:`AlarmSeries`: a frame with one row per patient and
assessment day (``patient_id``, ``day``, ``score``, ``evaluable``, ``positive``, ``alarm``).
``positive`` is the rule at that point; ``alarm`` adds confirmation: with ``confirm = K`` an
alarm sounds at the K-th consecutive positive evaluable point of a patient and stays on
while the points stay positive. Points that cannot be evaluated (the rule's markers were
not measured) are skipped: they neither alarm nor break a run. Only post-index points
(day > 0) count: a pre-operative draw reflects the primary tumour, not a recurrence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import pandas as pd

from alarms.rules import MarkerRule, evaluate
from cohort.cohort import Cohort
from cohort.vocabulary import DAY, MARKER, PATIENT_ID, QUALIFIER, VALUE

SCORE: Final = "score"
EVALUABLE: Final = "evaluable"
POSITIVE: Final = "positive"
ALARM: Final = "alarm"
SERIES_COLUMNS: Final = (PATIENT_ID, DAY, SCORE, EVALUABLE, POSITIVE, ALARM)


@dataclass(frozen=True)
class AlarmSeries:
    """One rule's points and alarms, with what a report needs to describe it."""

    name: str
    kind: str  # "marker" | "model" | "issued"
    frame: pd.DataFrame
    confirm: int = 1
    threshold: float | None = None
    score_name: str | None = None  # what ``score`` holds, e.g. "ctc_total" or "risk_365"
    description: str = ""
    sweepable: bool = False  # positive == (score >= threshold): a threshold sweep applies
    variant_of: str | None = None  # the rule whose score a sweep re-thresholded
    notes: tuple[str, ...] = ()

    def at_threshold(self, threshold: float, name: str | None = None) -> AlarmSeries:
        """The same scores with ``positive = score >= threshold`` (sweeps, chosen cut-offs)."""
        if not self.sweepable:
            raise ValueError(f"rule {self.name!r} has no single threshold to vary")
        score = self.frame[SCORE].to_numpy(dtype=float)
        known = np.isfinite(score)
        frame = self.frame.assign(**{EVALUABLE: known, POSITIVE: known & (score >= threshold)})
        frame = with_alarms(frame, self.confirm)
        return replace(self, name=name or self.name, frame=frame, threshold=float(threshold))


def check_confirm(confirm: object) -> int:
    if isinstance(confirm, bool) or not isinstance(confirm, int | np.integer) or confirm < 1:
        raise ValueError(
            f"confirm must be an integer >= 1 (consecutive positive draws), got {confirm!r}"
        )
    return int(confirm)


# --------------------------------------------------------------------------- confirmation
def with_alarms(frame: pd.DataFrame, confirm: int) -> pd.DataFrame:
    """``frame`` (patient_id, day, evaluable, positive) sorted, with ``alarm`` added (a copy)."""
    f = frame.sort_values([PATIENT_ID, DAY], kind="stable").reset_index(drop=True)
    evaluable = f[EVALUABLE].to_numpy(dtype=bool)
    alarm = np.zeros(len(f), dtype=bool)
    patient = f[PATIENT_ID].to_numpy()[evaluable]
    alarm[evaluable] = run_lengths(patient, f[POSITIVE].to_numpy(dtype=bool)[evaluable]) >= confirm
    f[ALARM] = alarm
    return f


def run_lengths(patient: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Consecutive positives ending at each row, restarting at each patient (rows sorted)."""
    n = len(positive)
    idx = np.arange(n)
    new_patient = np.ones(n, dtype=bool)
    new_patient[1:] = patient[1:] != patient[:-1]
    breaks = np.where(~positive, idx, np.where(new_patient, idx - 1, -1))
    last_break = np.maximum.accumulate(breaks) if n else breaks
    return np.where(positive, idx - last_break, 0)


# --------------------------------------------------------------------------- marker rules
def draw_table(cohort: Cohort, markers: tuple[str, ...]) -> pd.DataFrame:
    """One row per (patient, draw day > 0): each marker's value, qualifier and previous value.

    Values on the same day are one draw (the last row wins for a marker measured twice).
    The previous value is the patient's measurement before that day, pre-operative included.
    """
    m = cohort.measurements
    m = m.loc[m[MARKER].isin(markers), [PATIENT_ID, DAY, MARKER, VALUE, QUALIFIER]]
    m = m.sort_values([PATIENT_ID, MARKER, DAY], kind="stable")
    m = m.drop_duplicates([PATIENT_ID, MARKER, DAY], keep="last")
    m = m.assign(prev=m.groupby([PATIENT_ID, MARKER], sort=False)[VALUE].shift(1))
    m = m[m[DAY] > 0]
    days = m[[PATIENT_ID, DAY]].drop_duplicates().sort_values([PATIENT_ID, DAY])
    wide = days.reset_index(drop=True)
    for marker in markers:
        part = m[m[MARKER] == marker].rename(
            columns={VALUE: marker, QUALIFIER: f"{marker}__q", "prev": f"{marker}__prev"}
        )
        cols = [PATIENT_ID, DAY, marker, f"{marker}__q", f"{marker}__prev"]
        wide = wide.merge(part[cols], on=[PATIENT_ID, DAY], how="left")
    return wide


def marker_alarms(cohort: Cohort, rule: MarkerRule, confirm: int = 1) -> AlarmSeries:
    """The rule at every post-index draw of every patient."""
    draws = draw_table(cohort, rule.markers)
    true, false = evaluate(rule, draws, cohort.manifest)
    single = rule.single_threshold
    score = draws[single.marker] if single is not None else np.nan
    frame = pd.DataFrame(
        {
            PATIENT_ID: draws[PATIENT_ID],
            DAY: draws[DAY].astype(float),
            SCORE: score,
            EVALUABLE: true | false,
            POSITIVE: true,
        }
    )
    return AlarmSeries(
        name=rule.text,
        kind="marker",
        frame=with_alarms(frame, confirm),
        confirm=confirm,
        threshold=None if single is None else single.value,
        score_name=None if single is None else single.marker,
        description=f"marker rule {rule.text} at each blood draw",
        # ``>`` and ``>=`` differ only at the cut-off; a sweep uses ``>=``
        sweepable=single is not None,
    )


# --------------------------------------------------------------------------- scores
def score_alarms(
    scores: pd.DataFrame,
    *,
    name: str,
    kind: str,
    threshold: float,
    confirm: int,
    score_name: str,
    description: str,
    positive: np.ndarray | None = None,
) -> AlarmSeries:
    """Series from ``patient_id, day, score``; positive is ``score >= threshold`` unless given
    (issued alarms are taken as issued, whatever the score)."""
    values = scores[SCORE].to_numpy(dtype=float)
    given = positive is not None
    evaluable = np.ones(len(scores), dtype=bool) if given else np.isfinite(values)
    pos = np.asarray(positive, dtype=bool) if given else evaluable & (values >= threshold)
    frame = pd.DataFrame(
        {
            PATIENT_ID: scores[PATIENT_ID].astype(str).to_numpy(),
            DAY: scores[DAY].to_numpy(dtype=float),
            SCORE: values,
            EVALUABLE: evaluable,
            POSITIVE: pos,
        }
    )
    frame = frame[frame[DAY] > 0]
    return AlarmSeries(
        name=name,
        kind=kind,
        frame=with_alarms(frame, confirm),
        confirm=confirm,
        threshold=threshold,
        score_name=score_name,
        description=description,
        sweepable=True,
    )
