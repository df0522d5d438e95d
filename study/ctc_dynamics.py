"""CTC dynamics after resection and relapse: rise vs fall, persistent positivity, and a
time-dependent Cox model of recurrence on the current CTC status.

Groups use the latest pre-operative count (within ``pre_window_days`` before index) and the
count nearest ``post_target_day`` inside ``post_window`` (Sun, Hepatology 2013: one month).
Only patients still event-free and followed at their post-operative draw are grouped, so a
group never borrows time before it could be known (no immortal-time bias); curves still run
from index so the 2-year rates read as in the papers.

The (start, stop] table is built here, vectorised; if ``features/`` later offers a shared
counting-process builder, this one should defer to it.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
from lifelines import CoxTimeVaryingFitter

from cohort.cohort import Cohort
from cohort.vocabulary import DAY, EVENT, MARKER, PATIENT_ID, START, STOP, TIME, VALUE
from study.baseline import baseline_values
from study.names import GROUP, LOWER, P_VALUE, UPPER, N
from study.options import CtcOptions, StudyOptions
from study.parts import Part, Skipped, skip
from study.survival import EndpointSpec, endpoint_data, km_analysis

log = logging.getLogger(__name__)

PRE = "ctc_pre"
POST = "ctc_post"
POST_DAY = "ctc_post_day"
CHANGE = "ctc_change"
PERSISTENCE = "ctc_persistence"
POSITIVE = "ctc_positive"
HAZARD_RATIO = "hazard_ratio"
COVARIATE = "covariate"


def ctc_pairs(measurements: pd.DataFrame, opts: CtcOptions) -> pd.DataFrame:
    """Per patient: pre-operative count, the post-operative count nearest the target and its day."""
    m = measurements[measurements[MARKER] == opts.marker]
    lo, hi = opts.post_window
    post = m[(m[DAY] >= lo) & (m[DAY] <= hi)]
    post = post.assign(_gap=(post[DAY] - opts.post_target_day).abs())
    post = post.sort_values([PATIENT_ID, "_gap", DAY]).drop_duplicates(PATIENT_ID)
    pre = baseline_values(measurements, opts.marker, opts.pre_window_days).rename(PRE)
    pairs = post.set_index(PATIENT_ID)[[VALUE, DAY]].rename(columns={VALUE: POST, DAY: POST_DAY})
    return pd.concat([pre, pairs], axis=1, join="inner").rename_axis(PATIENT_ID).reset_index()


def ctc_groups(pairs: pd.DataFrame, positive_at: float | None) -> pd.DataFrame:
    """Adds ``ctc_change`` (rise / fall / stable) and, with a cut-off, ``ctc_persistence``."""
    pre, post = pairs[PRE], pairs[POST]
    out = pairs.assign(**{CHANGE: np.select([post > pre, post < pre], ["rise", "fall"], "stable")})
    if positive_at is not None:
        a, b = pre >= positive_at, post >= positive_at
        labels = np.select(
            [a & b, ~a & ~b, a & ~b],
            ["persistent positive", "persistent negative", "turned negative"],
            "turned positive",
        )
        out[PERSISTENCE] = labels
    return out


def counting_table(
    measurements: pd.DataFrame, endpoint: pd.DataFrame, marker: str, positive_at: float
) -> pd.DataFrame:
    """(start, stop] rows per patient with the CTC status current on each interval."""
    m = measurements.loc[measurements[MARKER] == marker, [PATIENT_ID, DAY, VALUE]]
    m = m.merge(endpoint[[PATIENT_ID, TIME, EVENT]], on=PATIENT_ID)
    pre = m[m[DAY] <= 0].sort_values(DAY).drop_duplicates(PATIENT_ID, keep="last")
    rows = pd.concat([pre.assign(**{DAY: 0.0}), m[(m[DAY] > 0) & (m[DAY] < m[TIME])]])
    rows = rows.sort_values([PATIENT_ID, DAY], kind="stable")
    rows = rows.drop_duplicates([PATIENT_ID, DAY], keep="last").reset_index(drop=True)
    stop = rows.groupby(PATIENT_ID)[DAY].shift(-1)
    last = stop.isna()
    table = pd.DataFrame(
        {
            PATIENT_ID: rows[PATIENT_ID],
            START: rows[DAY],
            STOP: stop.fillna(rows[TIME]),
            EVENT: (last & rows[EVENT].astype(bool)).astype(int),
            POSITIVE: (rows[VALUE] >= positive_at).astype(int),
        }
    )
    return table[table[STOP] > table[START]].reset_index(drop=True)


def time_dependent_cox(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Hazard ratio of current CTC positivity (lifelines CoxTimeVaryingFitter) and its warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = CoxTimeVaryingFitter().fit(
            table, id_col=PATIENT_ID, event_col=EVENT, start_col=START, stop_col=STOP
        )
    s = fit.summary.loc[POSITIVE]
    row = {
        COVARIATE: POSITIVE,
        HAZARD_RATIO: s["exp(coef)"],
        LOWER: s["exp(coef) lower 95%"],
        UPPER: s["exp(coef) upper 95%"],
        P_VALUE: s["p"],
        N: table[PATIENT_ID].nunique(),
        "events": int(table[EVENT].sum()),
        "intervals": len(table),
    }
    return pd.DataFrame([row]), [f"time-dependent Cox: {w.message}" for w in caught]


def _grouped_km(
    data: pd.DataFrame, groups: pd.DataFrame, column: str, label: str, opts: StudyOptions
) -> Part:
    mine = data.drop(columns=GROUP).merge(groups[[PATIENT_ID, column]], on=PATIENT_ID)
    mine = mine.rename(columns={column: GROUP})
    return km_analysis(
        mine,
        name=column,
        label=f"{label} by {column}",
        group_column=column,
        years=opts.years,
        horizon_days=opts.horizon_days,
    )


def ctc_part(cohort: Cohort, opts: StudyOptions) -> Part:
    """CTC groups, KM + log-rank by group, and the time-dependent Cox model."""
    title, ctc = "CTC dynamics", opts.ctc
    spec = cohort.manifest.markers.get(ctc.marker)
    if spec is None:
        return skip(title, f"marker {ctc.marker!r} is not declared in the manifest")
    pairs = ctc_pairs(cohort.measurements, ctc)
    if pairs.empty:
        return skip(
            title,
            f"no patient has a {ctc.marker} count both before index (within "
            f"{ctc.pre_window_days:g} days) and on days {ctc.post_window[0]:g}–"
            f"{ctc.post_window[1]:g}",
        )
    endpoint = cohort.manifest.endpoint
    label = endpoint.upper()
    data = endpoint_data(cohort, EndpointSpec(endpoint, label, endpoint), opts.horizon_days, None)
    at_draw = data.merge(pairs[[PATIENT_ID, POST_DAY]], on=PATIENT_ID)
    eligible = at_draw.loc[at_draw[TIME] > at_draw[POST_DAY], PATIENT_ID]
    groups = ctc_groups(pairs[pairs[PATIENT_ID].isin(eligible)], spec.positive_at)
    part = Part(tables={"ctc_groups": groups})
    part.notes.append(
        f"CTC groups: {len(pairs)} patients have a pre-operative and a ~1-month "
        f"count; {len(groups)} of them were event-free and followed at that draw "
        "and are grouped."
    )
    for column in (CHANGE, PERSISTENCE):
        if column in groups:
            part.absorb(_grouped_km(data, groups, column, label, opts))
    if spec.positive_at is None:
        part.skipped.append(
            Skipped(
                f"{title}: persistence and Cox model",
                f"marker {ctc.marker!r} has no positive_at cut-off",
            )
        )
        return part
    return part.absorb(_cox_part(cohort, data, ctc.marker, spec.positive_at))


def _cox_part(cohort: Cohort, data: pd.DataFrame, marker: str, positive_at: float) -> Part:
    table = counting_table(cohort.measurements, data, marker, positive_at)
    if table[POSITIVE].nunique() < 2 or table[EVENT].sum() == 0:
        return skip("CTC time-dependent Cox", "CTC status never varies or no events occur")
    cox, warned = time_dependent_cox(table)
    for w in warned:
        log.warning(w)
    return Part(tables={"ctc_cox": cox}, notes=warned)
