"""Lead-time study metrics of one alarm rule, with a paired patient bootstrap.

Definitions (``R`` = imaging-confirmed recurrence day, ``L`` = last negative scan before it,
window = [R − lookback, R]; see :mod:`alarms.surveillance`):

- an alarm is *true* when it sounds inside the window of the patient's recurrence, else
  *false* (recurrence-free patients; alarms older than the look-back). Every alarming
  point counts: each would trigger a work-up. Alarms in the last ``lookback`` days of a
  censored patient count as false although a later recurrence might explain them.
- **sensitivity**: recurrences with an alarm in their window / all recurrences (those
  without any evaluable point in the window count as missed, and are reported);
- **specificity**: recurrence-free patients with at least one evaluable post-index point
  who were never alarmed / all such patients (over their whole follow-up);
- **false alarms per patient-year**: false alarms / post-index follow-up of all patients
  (to recurrence, death or last follow-up);
- **PPV**: detected recurrences / patients ever alarmed; ``ppv_alarm`` is per alarm;
- **lead time** (the primary figure): ``R − A`` for the first alarm ``A`` in the window
  (0 = the draw of the confirming visit), and ``L − A`` against the other end of the
  interval (negative when the alarm came after the last negative scan);
  ``share_before_last_negative`` = share of detected recurrences with ``A <= L``, where the
  lead is not an artefact of the schedule.
- **episode lead time**: ``R − E``, where ``E`` is the first alarm of the *alarm episode
  still ongoing at R*. An episode is a maximal run of alarming points among the patient's
  evaluable points, in day order: it ends at the first evaluable point that does not alarm
  (a negative draw, or a risk below the threshold). Points that cannot be evaluated (the
  rule's markers not measured, no risk) are skipped, exactly as confirmation skips them:
  they neither extend nor end an episode. With ``confirm = K`` a run of positive points
  alarms from its K-th point on, so ``E`` is that K-th point and a negative point ends the
  episode. The episode is ongoing at ``R`` when the last evaluable point in the window
  (draws up to and including the confirming visit; nothing after R counts) alarms;
  otherwise the recurrence has no episode lead although it may have a first-alarm lead (an
  earlier alarm that lapsed). Like the first alarm, ``E`` is taken inside the window: an
  episode that began before it counts from its first alarming point in the window. So
  ``0 <= R − E <= R − A``: the episode lead drops the chance alarms that came and went
  before the signal that persisted into the recurrence; it is what a latent marker
  onset should bound (:mod:`evaluation.truth`). Model alarms are episodes of
  ``risk >= threshold`` over the assessment points, issued alarms over the assessments.

Confidence intervals: percentile patient bootstrap. Rows here are patients, so resampling
rows *is* the cluster bootstrap; all rules share the same resamples, which makes the
differences between rules paired (``compare``).
"""

from __future__ import annotations

import warnings
from typing import Any, Final

import numpy as np
import pandas as pd

from alarms.series import ALARM, EVALUABLE, AlarmSeries
from alarms.surveillance import (
    END_DAY,
    FOLLOWUP_YEARS,
    LAST_NEGATIVE_DAY,
    RECURRED,
    RECURRENCE_DAY,
)
from cohort.vocabulary import DAY, PATIENT_ID

FIRST_ALARM_DAY: Final = "first_alarm_day"
LEAD: Final = "lead_days"  # to the confirming scan
LEAD_NEGATIVE: Final = "lead_days_vs_last_negative"
EPISODE_START_DAY: Final = "episode_start_day"  # first alarm of the episode ongoing at R
EPISODE_LEAD: Final = "episode_lead_days"
BOOTSTRAPPED: Final = (
    "sensitivity",
    "specificity",
    "false_alarms_per_patient_year",
    "ppv",
    "lead_median",
    "lead_vs_last_negative_median",
    "share_before_last_negative",
    "episode_lead_median",
)
_PER_DETECTION: Final = ("lead", "lead_negative", "before", "episode_lead")  # NaN elsewhere
LEVEL: Final = 0.95


# --------------------------------------------------------------------------- per patient
def surveillance_points(series: AlarmSeries, surv: pd.DataFrame) -> pd.DataFrame:
    """The series' points during surveillance (0 < day <= end), with the patient's facts."""
    cols = [PATIENT_ID, RECURRED, RECURRENCE_DAY, LAST_NEGATIVE_DAY, END_DAY]
    pts = series.frame.merge(surv[cols], on=PATIENT_ID, how="inner")
    return pts[pts[DAY] <= pts[END_DAY]].reset_index(drop=True)


def patient_summary(series: AlarmSeries, surv: pd.DataFrame, lookback_days: float) -> pd.DataFrame:
    """One row per patient of ``surv``: alarms, true/false alarms, first alarm in window, leads."""
    pts = surveillance_points(series, surv)
    rec = pts[RECURRENCE_DAY].to_numpy(dtype=float)
    day = pts[DAY].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        window = pts[RECURRED].to_numpy() & (day >= rec - lookback_days) & (day <= rec)
    alarm = pts[ALARM].to_numpy(dtype=bool)
    evaluable = pts[EVALUABLE].to_numpy(dtype=bool)
    flags = pd.DataFrame(
        {
            PATIENT_ID: pts[PATIENT_ID],
            "n_points": evaluable.astype(int),
            "n_points_in_window": (evaluable & window).astype(int),
            "n_alarms": alarm.astype(int),
            "n_true_alarms": (alarm & window).astype(int),
            FIRST_ALARM_DAY: np.where(alarm & window, day, np.nan),
        }
    )
    per = flags.groupby(PATIENT_ID).agg(
        {c: "sum" for c in flags.columns[1:-1]} | {FIRST_ALARM_DAY: "min"}
    )
    counts = list(per.columns[:-1])
    per[EPISODE_START_DAY] = _episode_start(pts[PATIENT_ID], day, alarm, evaluable & window)
    out = surv.join(per, on=PATIENT_ID)
    out[counts] = out[counts].fillna(0).astype(int)
    out[LEAD] = out[RECURRENCE_DAY] - out[FIRST_ALARM_DAY]
    out[LEAD_NEGATIVE] = out[LAST_NEGATIVE_DAY] - out[FIRST_ALARM_DAY]
    out[EPISODE_LEAD] = out[RECURRENCE_DAY] - out[EPISODE_START_DAY]
    return out


def _episode_start(
    patient: pd.Series, day: np.ndarray, alarm: np.ndarray, in_window: np.ndarray
) -> pd.Series:
    """Per patient, the first alarm after the last non-alarming evaluable point in the window
    (NaN when that last point does not alarm: no episode is ongoing at the recurrence)."""
    quiet = pd.Series(np.where(in_window & ~alarm, day, np.nan)).groupby(patient.to_numpy()).max()
    last_quiet = patient.map(quiet).fillna(-np.inf).to_numpy(dtype=float)
    ongoing = in_window & alarm & (day > last_quiet)
    return pd.Series(np.where(ongoing, day, np.nan)).groupby(patient.to_numpy()).min()


# --------------------------------------------------------------------------- aggregation
def _arrays(summary: pd.DataFrame) -> dict[str, np.ndarray]:
    recurred = summary[RECURRED].to_numpy(dtype=bool)
    lead = summary[LEAD].to_numpy(dtype=float)
    detected = recurred & np.isfinite(lead)
    control = ~recurred & (summary["n_points"].to_numpy() > 0)
    alarmed = summary["n_alarms"].to_numpy() > 0
    n_true = summary["n_true_alarms"].to_numpy(dtype=float)
    lead_negative = summary[LEAD_NEGATIVE].to_numpy(dtype=float)
    episode_lead = summary[EPISODE_LEAD].to_numpy(dtype=float)
    return {
        "recurred": recurred.astype(float),
        "detected": detected.astype(float),
        "control": control.astype(float),
        "control_alarmed": (control & alarmed).astype(float),
        "alarmed": alarmed.astype(float),
        "alarms": summary["n_alarms"].to_numpy(dtype=float),
        "true_alarms": n_true,
        "years": summary[FOLLOWUP_YEARS].to_numpy(dtype=float),
        "lead": np.where(detected, lead, np.nan),
        "lead_negative": np.where(detected, lead_negative, np.nan),
        "before": np.where(detected, (lead_negative >= 0).astype(float), np.nan),
        "episode_lead": np.where(detected, episode_lead, np.nan),
    }


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _nan_stat(fn: Any, values: np.ndarray) -> np.ndarray:
    """Row-wise nan-aware statistic; an all-NaN row (no detected recurrence) gives NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(fn(values, axis=-1), dtype=float)


def _estimates(a: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    """The bootstrapped metrics for each row of ``idx`` (resampled patient positions)."""
    s = {k: v[idx] for k, v in a.items()}
    total = {k: v.sum(axis=-1) for k, v in s.items() if k not in _PER_DETECTION}
    false_alarms = total["alarms"] - total["true_alarms"]
    return {
        "sensitivity": _ratio(total["detected"], total["recurred"]),
        "specificity": 1 - _ratio(total["control_alarmed"], total["control"]),
        "false_alarms_per_patient_year": _ratio(false_alarms, total["years"]),
        "ppv": _ratio(total["detected"], total["alarmed"]),
        "lead_median": _nan_stat(np.nanmedian, s["lead"]),
        "lead_vs_last_negative_median": _nan_stat(np.nanmedian, s["lead_negative"]),
        "share_before_last_negative": _nan_stat(np.nanmean, s["before"]),
        "episode_lead_median": _nan_stat(np.nanmedian, s["episode_lead"]),
    }


def _spread(values: np.ndarray) -> dict[str, float | None]:
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return {"n": 0, "median": None, "q1": None, "q3": None, "min": None, "max": None}
    q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75])
    return {
        "n": len(v),
        "median": float(med),
        "q1": float(q1),
        "q3": float(q3),
        "min": float(v.min()),
        "max": float(v.max()),
    }


def point_metrics(summary: pd.DataFrame) -> dict[str, Any]:
    """Every metric of one rule, without intervals."""
    a = _arrays(summary)
    est = {k: _scalar(v) for k, v in _estimates(a, np.arange(len(summary))[None, :]).items()}
    counts = {
        "n_patients": len(summary),
        "n_recurrences": int(a["recurred"].sum()),
        "n_detected": int(a["detected"].sum()),
        "n_detected_ongoing_episode": int(np.isfinite(a["episode_lead"]).sum()),
        "n_recurrences_without_points_in_window": int(
            (a["recurred"].astype(bool) & (summary["n_points_in_window"].to_numpy() == 0)).sum()
        ),
        "n_controls": int(a["control"].sum()),
        "n_controls_alarmed": int(a["control_alarmed"].sum()),
        "n_alarmed_patients": int(a["alarmed"].sum()),
        "n_alarms": int(a["alarms"].sum()),
        "n_false_alarms": int(a["alarms"].sum() - a["true_alarms"].sum()),
        "patient_years": float(a["years"].sum()),
        "ppv_alarm": _scalar(_ratio(a["true_alarms"].sum(), a["alarms"].sum())),
    }
    spreads = {
        "lead": _spread(a["lead"]),
        "lead_vs_last_negative": _spread(a["lead_negative"]),
        "episode_lead": _spread(a["episode_lead"]),
    }
    return {**counts, **est, **spreads}


def _scalar(x: Any) -> float | None:
    value = float(np.asarray(x).ravel()[0])
    return value if np.isfinite(value) else None


# --------------------------------------------------------------------------- bootstrap
def resample_index(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """``n_boot`` × ``n`` patient positions drawn with replacement (shared by every rule)."""
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def replicates(summary: pd.DataFrame, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Bootstrap replicates of each metric in BOOTSTRAPPED (the rows of ``idx``)."""
    return _estimates(_arrays(summary), idx)


def interval(reps: np.ndarray) -> tuple[float | None, float | None]:
    ok = reps[np.isfinite(reps)]
    if len(ok) < 2:
        return None, None
    low, high = np.quantile(ok, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(low), float(high)


def with_intervals(point: dict[str, Any], reps: dict[str, np.ndarray]) -> dict[str, Any]:
    """``point`` plus ``<metric>_ci`` = [low, high] for each bootstrapped metric."""
    out = dict(point)
    for key in BOOTSTRAPPED:
        out[f"{key}_ci"] = list(interval(reps[key])) if key in reps else [None, None]
    return out


def compare(
    reps: dict[str, np.ndarray], ref: dict[str, np.ndarray], point: dict, ref_point: dict
) -> dict[str, Any]:
    """Paired difference (rule − reference) of each bootstrapped metric with its 95% CI."""
    out: dict[str, Any] = {}
    for key in BOOTSTRAPPED:
        a, b = point.get(key), ref_point.get(key)
        diff = None if a is None or b is None else a - b
        out[key] = {"difference": diff, "ci": list(interval(reps[key] - ref[key]))}
    return out
