"""A short, machine-readable summary of a loaded cohort (what ``ctcmon validate`` prints)."""

from __future__ import annotations

from typing import Any

import numpy as np
from lifelines import KaplanMeierFitter

from cohort.cohort import Cohort
from cohort.vocabulary import DATE, DAY, ENDPOINTS, EVENT, MARKER, PATIENT_ID, SITE_ID, TIME


def summarize(cohort: Cohort) -> dict[str, Any]:
    """Counts of patients, draws, markers, scans and events, and median follow-up."""
    m = cohort.measurements
    draws = m[[PATIENT_ID, DATE]].drop_duplicates()
    per_patient = draws.groupby(PATIENT_ID).size()
    return {
        "name": cohort.manifest.name,
        "time_zero": cohort.manifest.time_zero,
        "endpoint": cohort.manifest.endpoint,
        "patients": cohort.n_patients,
        "sites": {
            str(k): int(v) for k, v in cohort.patients[SITE_ID].value_counts().sort_index().items()
        },
        "draws": len(draws),
        "draws_per_patient_median": float(per_patient.median()) if len(per_patient) else 0.0,
        "pre_index_draws": int((m.drop_duplicates([PATIENT_ID, DATE])[DAY] < 0).sum()),
        "measurement_rows": len(m),
        "markers": {str(k): int(v) for k, v in m[MARKER].value_counts().sort_index().items()},
        "imaging_exams": len(cohort.imaging),
        "events": {e: int(cohort.endpoint(e, None)[EVENT].sum()) for e in ENDPOINTS},
        "median_followup_days": _median_followup(cohort),
        "digest": cohort.digest,
    }


def _median_followup(cohort: Cohort) -> float | None:
    """Median potential follow-up by reverse Kaplan–Meier (death/event counts as censoring)."""
    os_ = cohort.endpoint("os", None)
    if os_.empty:
        return None
    kmf = KaplanMeierFitter().fit(os_[TIME], event_observed=1 - os_[EVENT])
    median = kmf.median_survival_time_
    return float(median) if np.isfinite(median) else None
