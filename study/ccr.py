"""Clinical complete response (cCR), as in surgery vs watch-and-wait trials.

cCR needs AFP ≥ ``baseline_min`` (400 ng/mL) at some draw before treatment (index), then after
treatment both two consecutive mRECIST CR scans at least ``confirm_days`` apart and two
consecutive AFP ≤ upper normal draws at least ``confirm_days`` apart. "Consecutive" means no
non-CR scan (no AFP above normal) in between; the cCR day is the later confirmation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cohort.cohort import Cohort
from cohort.vocabulary import CRITERIA, DAY, MARKER, PATIENT_ID, RESPONSE, VALUE
from study.names import NOT_EVALUABLE_STATUS, REASON
from study.options import CcrOptions
from study.parts import Part, skip

CCR = "ccr"
CCR_DAY = "ccr_day"
PRE_MAX = "afp_pretreatment_max"
CR_CONFIRMED_DAY = "cr_confirmed_day"
AFP_NORMAL_CONFIRMED_DAY = "afp_normal_confirmed_day"


def confirmed_day(frame: pd.DataFrame, ok: pd.Series, confirm_days: float) -> pd.Series:
    """Per patient, the first day a run of consecutive ``ok`` rows spans ≥ ``confirm_days``.

    ``frame`` (patient_id, day) must be sorted by patient then day; ``ok`` aligned with it.
    """
    new_patient = frame[PATIENT_ID].ne(frame[PATIENT_ID].shift())
    run = (new_patient | ~ok | ok.ne(ok.shift())).cumsum()
    run_start = frame[DAY].groupby(run).transform("min")
    confirmed = ok & (frame[DAY] - run_start >= confirm_days)
    return frame.loc[confirmed].groupby(PATIENT_ID)[DAY].min()


def _post(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame[DAY] > 0].sort_values([PATIENT_ID, DAY]).reset_index(drop=True)


def _reason(row: pd.Series, opts: CcrOptions, has_scans: bool, has_afp: bool) -> str:
    if np.isnan(row[PRE_MAX]):
        return "not evaluable: no AFP before treatment"
    if row[PRE_MAX] < opts.baseline_min:
        return f"AFP before treatment < {opts.baseline_min:g} (max {row[PRE_MAX]:g})"
    missing = [
        what
        for what, has in (
            ("no post-treatment scans", has_scans),
            ("no post-treatment AFP", has_afp),
        )
        if not has
    ]
    if missing:
        return "not evaluable: " + ", ".join(missing)
    fails = []
    if np.isnan(row[CR_CONFIRMED_DAY]):
        fails.append(f"no two consecutive {opts.criteria} CR ≥ {opts.confirm_days:g} days apart")
    if np.isnan(row[AFP_NORMAL_CONFIRMED_DAY]):
        fails.append(f"no two consecutive AFP ≤ ULN ≥ {opts.confirm_days:g} days apart")
    return "; ".join(fails)


def derive_ccr(cohort: Cohort, opts: CcrOptions, upper_normal: float) -> pd.DataFrame:
    """One row per patient: pre-treatment AFP max, confirmation days, cCR yes/no and why."""
    afp = cohort.measurements[cohort.measurements[MARKER] == opts.marker]
    scans = cohort.imaging[
        (cohort.imaging[CRITERIA] == opts.criteria) & cohort.imaging[RESPONSE].notna()
    ]
    post_afp, post_scans = _post(afp), _post(scans)
    out = pd.DataFrame({PATIENT_ID: cohort.patients[PATIENT_ID].astype(str)}).set_index(PATIENT_ID)
    out[PRE_MAX] = afp[afp[DAY] <= 0].groupby(PATIENT_ID)[VALUE].max()
    out[CR_CONFIRMED_DAY] = confirmed_day(
        post_scans, post_scans[RESPONSE].eq("CR"), opts.confirm_days
    )
    out[AFP_NORMAL_CONFIRMED_DAY] = confirmed_day(
        post_afp, post_afp[VALUE].le(upper_normal), opts.confirm_days
    )
    out = out.astype(float)
    scanned, drawn = set(post_scans[PATIENT_ID]), set(post_afp[PATIENT_ID])
    out[REASON] = [_reason(row, opts, pid in scanned, pid in drawn) for pid, row in out.iterrows()]
    out[CCR] = np.where(
        out[REASON] == "",
        "yes",
        np.where(out[REASON].str.startswith("not evaluable"), NOT_EVALUABLE_STATUS, "no"),
    )
    out[CCR_DAY] = out[[CR_CONFIRMED_DAY, AFP_NORMAL_CONFIRMED_DAY]].max(axis=1, skipna=False)
    out.loc[out[CCR] != "yes", CCR_DAY] = np.nan
    return out.reset_index()[
        [PATIENT_ID, CCR, CCR_DAY, PRE_MAX, CR_CONFIRMED_DAY, AFP_NORMAL_CONFIRMED_DAY, REASON]
    ]


def ccr_part(cohort: Cohort, opts: CcrOptions) -> Part:
    """The cCR listing, or why it could not be derived."""
    title = "Clinical complete response"
    spec = cohort.manifest.markers.get(opts.marker)
    if spec is None or spec.upper_normal is None:
        return skip(title, f"the manifest declares no upper_normal for marker {opts.marker!r}")
    imaging = cohort.imaging
    if imaging.empty or not (imaging[CRITERIA] == opts.criteria).any():
        return skip(title, f"no {opts.criteria} assessments in imaging")
    if not (cohort.measurements[MARKER] == opts.marker).any():
        return skip(title, f"no {opts.marker} measurements")
    table = derive_ccr(cohort, opts, spec.upper_normal)
    n_yes = int((table[CCR] == "yes").sum())
    return Part(tables={"ccr": table}, notes=[f"{title}: {n_yes} of {len(table)} patients."])
