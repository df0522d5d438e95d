"""Each patient's surveillance facts: recurrence, the imaging interval around it, follow-up.

Recurrence is only known to lie in the interval (last negative scan, confirming scan]:

- ``recurrence_day``: the contract's imaging-confirmed recurrence date (NaN if none);
- ``last_negative_day``: the last scan *before* it whose finding is ``no_evidence``
  (an ``indeterminate`` scan does not exclude recurrence, so it does not close the
  interval); day 0 (curative treatment) when there is none;
- ``end_day``: where surveillance for recurrence ends — the recurrence, else the first of
  death and last follow-up; ``followup_years`` = ``end_day`` / 365.25 (from index).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from cohort.cohort import Cohort
from cohort.endpoints import derive_endpoint
from cohort.vocabulary import (
    DAY,
    DEATH_DATE,
    EVENT,
    FINDING,
    LAST_FOLLOWUP_DATE,
    PATIENT_ID,
    RECURRENCE_DATE,
    TIME,
    day_column,
)

DAYS_PER_YEAR: Final = 365.25
NEGATIVE_FINDING: Final = "no_evidence"
RECURRENCE_DAY: Final = day_column(RECURRENCE_DATE)
LAST_NEGATIVE_DAY: Final = "last_negative_day"
END_DAY: Final = "end_day"
RECURRED: Final = "recurred"
FOLLOWUP_YEARS: Final = "followup_years"


def check_imaging(cohort: Cohort) -> None:
    """Lead time is measured against imaging: refuse a cohort without scans."""
    if not cohort.has_imaging_file or cohort.imaging.empty:
        where = f" ({cohort.source})" if cohort.source else ""
        raise ValueError(
            f"lead time over imaging needs imaging.csv with the surveillance scans; cohort "
            f"{cohort.manifest.name!r}{where} has "
            f"{'an empty imaging table' if cohort.has_imaging_file else 'no imaging file'}"
        )


def surveillance_table(cohort: Cohort) -> pd.DataFrame:
    """One row per patient: recurrence, last negative scan, end of surveillance, follow-up."""
    o = cohort.outcomes
    rec = o[RECURRENCE_DAY].to_numpy(dtype=float)
    censor = np.fmin(
        o[day_column(DEATH_DATE)].to_numpy(dtype=float),
        o[day_column(LAST_FOLLOWUP_DATE)].to_numpy(dtype=float),
    )
    recurred = np.isfinite(rec)
    end = np.where(recurred, rec, censor)
    table = pd.DataFrame(
        {
            PATIENT_ID: o[PATIENT_ID].astype(str).to_numpy(),
            RECURRENCE_DAY: rec,
            RECURRED: recurred,
            END_DAY: end,
            FOLLOWUP_YEARS: np.clip(end, 0.0, None) / DAYS_PER_YEAR,
        }
    )
    table[LAST_NEGATIVE_DAY] = _last_negative(cohort.imaging, table)
    return table


def _last_negative(imaging: pd.DataFrame, table: pd.DataFrame) -> np.ndarray:
    """Last ``no_evidence`` scan strictly before each recurrence; 0 when none; NaN without one."""
    scans = imaging.loc[imaging[FINDING] == NEGATIVE_FINDING, [PATIENT_ID, DAY]]
    scans = scans.merge(table[[PATIENT_ID, RECURRENCE_DAY]], on=PATIENT_ID, how="inner")
    scans = scans[scans[DAY] < scans[RECURRENCE_DAY]]
    last = scans.groupby(PATIENT_ID)[DAY].max()
    found = table[PATIENT_ID].map(last).to_numpy(dtype=float)
    found = np.where(np.isfinite(found), np.maximum(found, 0.0), 0.0)
    return np.where(table[RECURRED].to_numpy(), found, np.nan)


def course_table(cohort: Cohort) -> pd.DataFrame:
    """``surveillance_table``, or for a cohort whose endpoint is not recurrence (pbcseq: death)
    the endpoint's event in its place, with no scan interval (``last_negative_day`` NaN)."""
    if cohort.manifest.endpoint != "os" and cohort.outcomes[RECURRENCE_DAY].notna().any():
        return surveillance_table(cohort)
    ep = derive_endpoint(cohort.outcomes, cohort.manifest.endpoint, None)
    event = ep[EVENT].to_numpy(dtype=bool)
    time = ep[TIME].to_numpy(dtype=float)
    return pd.DataFrame(
        {
            PATIENT_ID: ep[PATIENT_ID].astype(str).to_numpy(),
            RECURRENCE_DAY: np.where(event, time, np.nan),
            RECURRED: event,
            END_DAY: time,
            FOLLOWUP_YEARS: np.clip(time, 0.0, None) / DAYS_PER_YEAR,
            LAST_NEGATIVE_DAY: np.nan,
        }
    )
