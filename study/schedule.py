"""Serial markers and assessment schedule adherence.

Markers: draws per patient and the baseline value (latest on or before index), so a serial
marker such as CA19-9 or AFP is described whatever it is. Adherence: for each planned scan
day of the manifest's imaging schedule, the patients still event-free and followed then, and
how many had a scan within ± ``window_days`` of it.
"""

from __future__ import annotations

import pandas as pd

from cohort.cohort import Cohort
from cohort.vocabulary import DAY, MARKER, PATIENT_ID, TIME, UNIT
from study.baseline import baseline_values
from study.characteristics import fmt_number
from study.names import N_TOTAL, N
from study.parts import Part, skip
from study.proportions import proportion

PLANNED_DAY = "planned_day"


def _median_iqr(x: pd.Series) -> str:
    if x.empty:
        return "NA"
    q = x.quantile([0.25, 0.5, 0.75])
    return f"{fmt_number(q[0.5])} [{fmt_number(q[0.25])}, {fmt_number(q[0.75])}]"


def marker_summary(cohort: Cohort) -> pd.DataFrame:
    """One row per declared marker: patients, draws, draws per patient, baseline median [IQR]."""
    rows = []
    for code, spec in cohort.manifest.markers.items():
        m = cohort.measurements[cohort.measurements[MARKER] == code]
        base = baseline_values(cohort.measurements, code)
        rows.append(
            {
                MARKER: code,
                UNIT: spec.unit,
                "patients": m[PATIENT_ID].nunique(),
                "draws": len(m),
                "draws_per_patient": _median_iqr(m.groupby(PATIENT_ID).size().astype(float)),
                "baseline_n": len(base),
                "baseline_median_iqr": _median_iqr(base),
            }
        )
    return pd.DataFrame(rows)


def schedule_adherence(cohort: Cohort, window_days: float) -> pd.DataFrame:
    """Per planned scan day: patients expected (event-free, followed) and scanned within window."""
    follow = cohort.endpoint()
    planned = cohort.manifest.imaging_schedule().days_until(float(follow[TIME].max()))
    scans = cohort.imaging[[PATIENT_ID, DAY]]
    rows = []
    for day in planned:
        expected = set(follow.loc[follow[TIME] > day + window_days, PATIENT_ID])
        near = scans[(scans[DAY] - day).abs() <= window_days]
        scanned = expected & set(near[PATIENT_ID])
        rows.append({PLANNED_DAY: day, **proportion(len(scanned), len(expected))})
    return pd.DataFrame(rows).rename(columns={N: "scanned", N_TOTAL: "expected"})


def schedule_part(cohort: Cohort, window_days: float) -> Part:
    """Marker summary always; adherence when the cohort has imaging."""
    part = Part(tables={"markers": marker_summary(cohort)})
    if cohort.imaging.empty:
        return part.absorb(skip("Imaging schedule adherence", "the cohort has no imaging"))
    part.tables["schedule_adherence"] = schedule_adherence(cohort, window_days)
    source = "manifest [imaging]" if cohort.manifest.imaging else "default schedule (none declared)"
    part.notes.append(
        f"Schedule adherence: planned scans from the {source}, "
        f"a scan within ± {window_days:g} days counts."
    )
    return part
