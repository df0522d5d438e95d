"""Truth check on simulated cohorts: observed lead times against the simulator's latent lead.

``truth.csv`` (written by ``cohort.simulate``) gives, per patient, ``visible_day`` (the
lesion reaches the imaging threshold), ``doubling_time_days`` and ``lead_time_days`` = ``visible_day`` − ``marker_detectable_day`` (the
*expected* tumour-derived CTC or AFP level crosses its cut-off): the lead a perfect marker
rule could have had. For each detected recurrence (alarm ``A``, recurrence ``R``, last
negative scan ``L``):

- ``available`` = the latent lead, clipped at 0 (0 when the marker never became detectable);
- **bound**: ``R − A <= available + (R − L)`` — an observed lead can exceed the latent one
  only by the imaging interval, because imaging confirms a lesion that became visible after
  ``L`` at the next scan. The share of detected recurrences within it is the check;
- **captured**: (``visible_day`` − ``A``) / ``available``, clipped to [0, 1] — the share of
  the latent lead the rule realised.

Both leads of :mod:`alarms.metrics` are checked: ``A`` = the first alarm in the
look-back window (the primary figure; a chance alarm early in the window, which lapsed
before the tumour signal came, makes it exceed the bound) and ``A`` = the first alarm of
the episode still ongoing at ``R`` (``episode``, over the recurrences with such an
episode), the lead the latent signal should bound. A detection outside the bound has one
of two causes, each counted so that neither hides behind the share:

- ``after_missed_scan``: ``L`` > ``visible_day`` — a scan came back negative although the
  lesion was already visible (scan sensitivity < 1), so ``R − L`` understates how long
  imaging lagged (``R − visible_day``) and the bound is too tight for that patient;
- the alarm came before ``marker_detectable_day`` (``alarm_after_signal`` false:
  ``visible_day`` − ``A`` > ``available``): a draw is a noisy count on top of the patient's
  background, so it can cross the cut-off while the *expected* tumour-derived level is
  still below it. ``signal_doublings_at_alarm`` = (``A`` − ``marker_detectable_day``) /
  ``doubling_time_days`` says how far below: at −1 the tumour-derived level was half the
  cut-off (an early sighting of a real, growing signal); many doublings below it, the
  alarm is noise (or a model driven by baseline covariates).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from alarms.metrics import EPISODE_LEAD, EPISODE_START_DAY, FIRST_ALARM_DAY, LEAD
from alarms.surveillance import LAST_NEGATIVE_DAY, RECURRED, RECURRENCE_DAY
from cohort.cohort import Cohort
from cohort.vocabulary import PATIENT_ID, TRUTH_FILE

TRUTH_COLUMNS: Final = (
    PATIENT_ID,
    "visible_day",
    "doubling_time_days",
    "marker_detectable_day",
    "lead_time_days",
)


def read_truth(cohort: Cohort) -> pd.DataFrame | None:
    """The simulator's ``truth.csv`` beside the cohort, or None when there is none."""
    if cohort.source is None or not (Path(cohort.source) / TRUTH_FILE).is_file():
        return None
    truth = pd.read_csv(Path(cohort.source) / TRUTH_FILE, dtype={PATIENT_ID: str})
    missing = [c for c in TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise ValueError(f"{TRUTH_FILE} lacks column(s) {missing}; has {list(truth.columns)}")
    return truth[list(TRUTH_COLUMNS)]


def truth_rows(
    summary: pd.DataFrame, truth: pd.DataFrame, *, episode: bool = False
) -> pd.DataFrame:
    """Detected recurrences with their latent lead, bound check and captured share; of the
    first alarm in the window, or with ``episode`` of the episode ongoing at recurrence."""
    alarm_day, lead_col = (EPISODE_START_DAY, EPISODE_LEAD) if episode else (FIRST_ALARM_DAY, LEAD)
    d = summary[summary[RECURRED] & summary[lead_col].notna()]
    d = d.merge(truth, on=PATIENT_ID, how="inner")
    available = np.clip(d["lead_time_days"].fillna(0.0).to_numpy(dtype=float), 0.0, None)
    interval = (d[RECURRENCE_DAY] - d[LAST_NEGATIVE_DAY]).to_numpy(dtype=float)
    lead = d[lead_col].to_numpy(dtype=float)
    alarm = d[alarm_day].to_numpy(dtype=float)
    realised = d["visible_day"].to_numpy(dtype=float) - alarm
    signal = d["marker_detectable_day"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        captured = np.where(available > 0, np.clip(realised / available, 0, 1), np.nan)
    return pd.DataFrame(
        {
            PATIENT_ID: d[PATIENT_ID].to_numpy(),
            "alarm_day": alarm,
            "observed_lead_days": lead,
            "latent_lead_days": available,
            "scan_interval_days": interval,
            "within_bound": lead <= available + interval,
            "after_missed_scan": (d[LAST_NEGATIVE_DAY] > d["visible_day"]).to_numpy(),
            "alarm_after_signal": realised <= available,
            "signal_doublings_at_alarm": (alarm - signal) / d["doubling_time_days"].to_numpy(float),
            "lead_over_visible_days": realised,
            "captured_share": captured,
        }
    )


def truth_check(summary: pd.DataFrame, truth: pd.DataFrame) -> dict[str, Any]:
    """One rule's check of the first-alarm lead, with the episode lead's under ``episode``."""
    return {
        **rule_truth(truth_rows(summary, truth)),
        "episode": rule_truth(truth_rows(summary, truth, episode=True)),
    }


def latent_summary(surv: pd.DataFrame, truth: pd.DataFrame) -> dict[str, Any]:
    """The latent lead available over the observed recurrences."""
    rec = surv[surv[RECURRED]].merge(truth, on=PATIENT_ID, how="inner")
    lead = rec["lead_time_days"].to_numpy(dtype=float)
    ok = lead[np.isfinite(lead)]
    q = np.quantile(ok, [0.25, 0.5, 0.75]) if len(ok) else [np.nan] * 3
    return {
        "n_recurrences_with_truth": len(rec),
        "n_marker_detectable": len(ok),
        "n_marker_detectable_before_visible": int((ok > 0).sum()),
        "latent_lead_median": _num(q[1]),
        "latent_lead_q1": _num(q[0]),
        "latent_lead_q3": _num(q[2]),
    }


def rule_truth(rows: pd.DataFrame) -> dict[str, Any]:
    """One rule's check: share within the bound (and why not), median observed vs latent lead,
    captured. Every key is present (None) when nothing was detected, for the report."""
    outside = ~rows["within_bound"].to_numpy(dtype=bool)
    return {
        "n_detected": len(rows),
        "share_within_bound": _mean(rows["within_bound"]),
        "n_outside_bound": int(outside.sum()),
        "n_outside_bound_after_missed_scan": int(
            (outside & rows["after_missed_scan"].to_numpy(dtype=bool)).sum()
        ),
        "share_alarm_after_signal": _mean(rows["alarm_after_signal"]),
        **_below_signal(rows),
        "observed_lead_median": _num(rows["observed_lead_days"].median()),
        "latent_lead_median": _num(rows["latent_lead_days"].median()),
        "captured_median": _num(rows["captured_share"].median()),
        "captured_mean": _num(rows["captured_share"].mean()),
    }


def _below_signal(rows: pd.DataFrame) -> dict[str, float | None]:
    """How far below the cut-off the expected tumour-derived level was at the alarms that
    came before the latent signal, in tumour doublings (median and worst)."""
    early = -rows.loc[~rows["alarm_after_signal"], "signal_doublings_at_alarm"].dropna()
    return {
        "before_signal_doublings_median": _num(early.median()) if len(early) else None,
        "before_signal_doublings_max": _num(early.max()) if len(early) else None,
    }


def _mean(flags: pd.Series) -> float | None:
    return float(flags.mean()) if len(flags) else None


def _num(x: Any) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None
