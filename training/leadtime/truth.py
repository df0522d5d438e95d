"""Truth check on simulated cohorts: observed lead times against the simulator's latent lead.

``truth.csv`` (written by ``cohort.simulate``) gives, per patient, ``visible_day`` (the
lesion reaches the imaging threshold) and ``lead_time_days`` = ``visible_day`` −
``marker_detectable_day`` (the tumour-derived CTC or AFP level crosses its cut-off): the
lead a perfect marker rule could have had. For each detected recurrence (first alarm ``A``,
recurrence ``R``, last negative scan ``L``):

- ``available`` = the latent lead, clipped at 0 (0 when the marker never became detectable);
- **bound**: ``R − A <= available + (R − L)`` — an observed lead can exceed the latent one
  only by the imaging interval, because imaging confirms a visible lesion at the next scan
  (or a later one when a scan misses it). The share of detected recurrences within it is
  the check; a violation is an alarm that came before the marker signal existed (noise,
  or a model driven by baseline covariates);
- **captured**: (``visible_day`` − ``A``) / ``available``, clipped to [0, 1] — the share of
  the latent lead the rule realised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from cohort.cohort import Cohort
from cohort.vocabulary import PATIENT_ID, TRUTH_FILE
from training.leadtime.metrics import FIRST_ALARM_DAY, LEAD
from training.leadtime.surveillance import LAST_NEGATIVE_DAY, RECURRED, RECURRENCE_DAY

TRUTH_COLUMNS: Final = (PATIENT_ID, "visible_day", "marker_detectable_day", "lead_time_days")


def read_truth(cohort: Cohort) -> pd.DataFrame | None:
    """The simulator's ``truth.csv`` beside the cohort, or None when there is none."""
    if cohort.source is None or not (Path(cohort.source) / TRUTH_FILE).is_file():
        return None
    truth = pd.read_csv(Path(cohort.source) / TRUTH_FILE, dtype={PATIENT_ID: str})
    missing = [c for c in TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise ValueError(f"{TRUTH_FILE} lacks column(s) {missing}; has {list(truth.columns)}")
    return truth[list(TRUTH_COLUMNS)]


def truth_rows(summary: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Detected recurrences with their latent lead, bound check and captured share."""
    d = summary[summary[RECURRED] & summary[LEAD].notna()]
    d = d.merge(truth, on=PATIENT_ID, how="inner")
    available = np.clip(d["lead_time_days"].fillna(0.0).to_numpy(dtype=float), 0.0, None)
    interval = (d[RECURRENCE_DAY] - d[LAST_NEGATIVE_DAY]).to_numpy(dtype=float)
    realised = (d["visible_day"] - d[FIRST_ALARM_DAY]).to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        captured = np.where(available > 0, np.clip(realised / available, 0, 1), np.nan)
    return pd.DataFrame(
        {
            PATIENT_ID: d[PATIENT_ID].to_numpy(),
            "observed_lead_days": d[LEAD].to_numpy(dtype=float),
            "latent_lead_days": available,
            "scan_interval_days": interval,
            "within_bound": d[LEAD].to_numpy(dtype=float) <= available + interval,
            "lead_over_visible_days": realised,
            "captured_share": captured,
        }
    )


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
    """One rule's check: share within the bound, median observed vs latent lead, captured."""
    if rows.empty:
        return {"n_detected": 0, "share_within_bound": None, "captured_median": None}
    return {
        "n_detected": len(rows),
        "share_within_bound": float(rows["within_bound"].mean()),
        "n_outside_bound": int((~rows["within_bound"]).sum()),
        "observed_lead_median": _num(rows["observed_lead_days"].median()),
        "latent_lead_median": _num(rows["latent_lead_days"].median()),
        "captured_median": _num(rows["captured_share"].median()),
        "captured_mean": _num(rows["captured_share"].mean()),
    }


def _num(x: Any) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None
