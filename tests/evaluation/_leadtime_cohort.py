"""A hand-made cohort whose lead-time figures are known by hand (shared by the leadtime tests).

All patients start on 2024-01-01 (day 0); days below are days since then.

- p1 recurs on day 400 (confirming scan); negative scans on days 90, 180, 310 (the last
  negative scan is 90 days before). CTC 0, 1, 3, 4, 5 on days 30, 100, 200, 300, 400: first
  alarm of ``ctc_total>=2`` on day 200 (lead 200 days; 110 before the last negative scan).
  An AFP-only draw on day 250 is not evaluable for the CTC rule.
- p2 is recurrence-free for 730 days with one positive draw (CTC 2 on day 200): one false alarm.
- p3 is recurrence-free for 730 days, never positive.
- p4 recurs on day 900; its only positive draw is on day 100, older than a 365-day look-back.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tests.conftest import write_cohort

MANIFEST = """\
name = "leadtime-tiny"
time_zero = "resection"
endpoint = "rfs"

[markers.ctc_total]
unit = "cells/7.5mL"
positive_at = 2

[markers.afp]
unit = "ng/mL"
upper_normal = 20

[imaging]
schedule_days = [90, 180, 270, 360]
"""

INDEX = pd.Timestamp("2024-01-01")
CTC = {
    "p1": [(30, 0), (100, 1), (200, 3), (300, 4), (400, 5)],
    "p2": [(30, 0), (200, 2), (400, 0), (600, 1)],
    "p3": [(30, 0), (200, 1), (400, 0), (600, 1)],
    "p4": [(100, 3), (600, 0), (800, 1), (900, 1)],
}
AFP = {"p1": [(-5, 300.0), (30, 4.0), (250, 30.0)], "p2": [(30, 3.0), (200, 3.5)]}
SCANS = {
    "p1": [(90, "no_evidence"), (180, "indeterminate"), (310, "no_evidence"), (400, "recurrence")],
    "p2": [(90, "no_evidence"), (180, "no_evidence"), (360, "no_evidence"), (720, "no_evidence")],
    "p3": [(90, "no_evidence"), (360, "no_evidence"), (720, "no_evidence")],
    "p4": [(360, "no_evidence"), (720, "no_evidence"), (900, "recurrence")],
}
RECURRENCE = {"p1": 400, "p4": 900}
FOLLOWUP = {"p1": 400, "p2": 730, "p3": 730, "p4": 900}


def date(day: float) -> str:
    return (INDEX + pd.Timedelta(days=day)).strftime("%Y-%m-%d")


def tables() -> dict[str, pd.DataFrame]:
    ids = sorted(FOLLOWUP)
    rows = [
        (pid, date(d), "ctc_total", str(v), "cells/7.5mL") for pid, vs in CTC.items() for d, v in vs
    ] + [(pid, date(d), "afp", str(v), "ng/mL") for pid, vs in AFP.items() for d, v in vs]
    scans = [(pid, date(d), "MRI", f) for pid, ss in SCANS.items() for d, f in ss]
    return {
        "patients": pd.DataFrame({"patient_id": ids, "site_id": "site-a", "index_date": date(0)}),
        "measurements": pd.DataFrame(
            rows, columns=["patient_id", "date", "marker", "value", "unit"]
        ),
        "imaging": pd.DataFrame(scans, columns=["patient_id", "date", "modality", "finding"]),
        "outcomes": pd.DataFrame(
            {
                "patient_id": ids,
                "last_followup_date": [date(FOLLOWUP[p]) for p in ids],
                "recurrence_date": [date(RECURRENCE[p]) if p in RECURRENCE else "" for p in ids],
                "death_date": "",
            }
        ),
    }


def write_tiny(folder: Path, edit: object = None, manifest: str = MANIFEST) -> Path:
    t = tables()
    if callable(edit):
        edit(t)
    return write_cohort(folder, t, manifest)
