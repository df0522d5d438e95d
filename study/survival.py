"""RFS / PFS / OS from a cohort: Kaplan–Meier (lifelines), medians, landmark rates, log-rank.

Every estimate comes from ``lifelines.KaplanMeierFitter`` (log-log confidence intervals,
lifelines' default, the same as R ``survfit(conf.type = "log-log")``); the log-rank test
from ``lifelines.statistics.multivariate_logrank_test``. This module only arranges them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test
from lifelines.utils import median_survival_times

from cohort.cohort import Cohort
from cohort.vocabulary import (
    EVENT,
    PATIENT_ID,
    PROGRESSION_DATE,
    RECURRENCE_DATE,
    TIME,
    day_column,
)
from study.names import (
    AT_RISK,
    CENSORED,
    CHISQ,
    DAYS_PER_YEAR,
    DF,
    ENDPOINT_LABEL,
    EVENTS,
    GROUP,
    GROUP_COLUMN,
    LOWER,
    MEDIAN_DAYS,
    MEDIAN_LOWER,
    MEDIAN_UPPER,
    OVERALL,
    P_VALUE,
    SURVIVAL,
    UPPER,
    YEARS,
    N,
)
from study.options import StudyOptions
from study.parts import Curves, Part, Skipped

log = logging.getLogger(__name__)

_LABELS = {"rfs": "RFS", "pfs": "PFS", "os": "OS"}
_TRUTHY = {"1", "1.0", "true", "yes", "y", "metastatic", "m1"}


@dataclass(frozen=True)
class EndpointSpec:
    """One survival analysis: an endpoint on all patients or on a subset."""

    name: str  # file-safe key, e.g. "rfs_nonmetastatic"
    label: str  # shown in tables, e.g. "RFS (non-metastatic)"
    endpoint: str  # rfs | pfs | os
    patient_ids: frozenset[str] | None = None


def is_truthy(values: pd.Series) -> pd.Series:
    """1/0, yes/no, true/false → bool, NaN kept as NA (the manifest does not fix the coding)."""
    text = values.astype("string").str.strip().str.lower()
    out = text.isin(_TRUTHY).astype("boolean")
    return out.mask(values.isna())


def _has_dates(cohort: Cohort, date_column: str) -> bool:
    col = day_column(date_column)
    return col in cohort.outcomes and bool(cohort.outcomes[col].notna().any())


def endpoint_specs(cohort: Cohort, opts: StudyOptions) -> tuple[list[EndpointSpec], list[Skipped]]:
    """Endpoints that apply: per-patient RFS/PFS by metastatic status when declared, and OS."""
    if opts.metastatic:
        meta = is_truthy(cohort.patients[opts.metastatic])
        ids = cohort.patients[PATIENT_ID]
        specs = [
            EndpointSpec(
                "rfs_nonmetastatic",
                "RFS (non-metastatic)",
                "rfs",
                frozenset(ids[meta.eq(False).fillna(False)]),
            ),
            EndpointSpec(
                "pfs_metastatic",
                "PFS (metastatic)",
                "pfs",
                frozenset(ids[meta.eq(True).fillna(False)]),
            ),
        ]
        return [*specs, EndpointSpec("os", "OS", "os")], []
    specs, skipped = [], []
    for endpoint, date_col in (("rfs", RECURRENCE_DATE), ("pfs", PROGRESSION_DATE)):
        if _has_dates(cohort, date_col) or cohort.manifest.endpoint == endpoint:
            specs.append(EndpointSpec(endpoint, _LABELS[endpoint], endpoint))
        else:
            reason = (
                f"no {date_col} recorded in outcomes and the manifest endpoint is not {endpoint}"
            )
            skipped.append(Skipped(_LABELS[endpoint], reason))
    return [*specs, EndpointSpec("os", "OS", "os")], skipped


def endpoint_data(
    cohort: Cohort, spec: EndpointSpec, horizon_days: float | None, group: str | None
) -> pd.DataFrame:
    """``patient_id``, ``time``, ``event``, ``group`` for one endpoint (copy, never a view)."""
    data = cohort.endpoint(spec.endpoint, horizon_days)
    if spec.patient_ids is not None:
        data = data[data[PATIENT_ID].isin(spec.patient_ids)]
    labels = _group_labels(cohort.patients, group)
    return data.merge(labels, on=PATIENT_ID, how="left").reset_index(drop=True)


def _group_labels(patients: pd.DataFrame, group: str | None) -> pd.DataFrame:
    values = patients[group] if group else pd.Series(OVERALL, index=patients.index)
    return pd.DataFrame({PATIENT_ID: patients[PATIENT_ID], GROUP: group_level_text(values)})


def group_level_text(values: pd.Series) -> pd.Series:
    """Group labels as text: 1.0 → "1", missing stays NA."""

    def fmt(v: object) -> object:
        if pd.isna(v):  # type: ignore[call-overload]
            return pd.NA
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    return values.map(fmt).astype("string")


def fit_km(data: pd.DataFrame, label: str = SURVIVAL) -> KaplanMeierFitter:
    """The lifelines Kaplan–Meier fit of ``time``/``event``."""
    return KaplanMeierFitter(label=label).fit(data[TIME], data[EVENT])


def km_table(kmf: KaplanMeierFitter) -> pd.DataFrame:
    """The full step function with its CI and the event table, one row per time."""
    ci = kmf.confidence_interval_survival_function_
    table = pd.DataFrame(
        {
            TIME: kmf.survival_function_.index.to_numpy(dtype=float),
            SURVIVAL: kmf.survival_function_.iloc[:, 0].to_numpy(dtype=float),
            LOWER: ci.iloc[:, 0].to_numpy(dtype=float),
            UPPER: ci.iloc[:, 1].to_numpy(dtype=float),
        }
    )
    events = kmf.event_table.reindex(kmf.survival_function_.index)
    table[AT_RISK] = events["at_risk"].to_numpy(dtype=int)
    table[EVENTS] = events["observed"].to_numpy(dtype=int)
    table[CENSORED] = events["censored"].to_numpy(dtype=int)
    return table


def _finite(x: float) -> float:
    return float(x) if np.isfinite(x) else float("nan")


def km_median(kmf: KaplanMeierFitter) -> dict[str, float]:
    """Median and its CI (NaN when not reached)."""
    ci = median_survival_times(kmf.confidence_interval_)
    return {
        MEDIAN_DAYS: _finite(kmf.median_survival_time_),
        MEDIAN_LOWER: _finite(ci.iloc[0, 0]),
        MEDIAN_UPPER: _finite(ci.iloc[0, 1]),
    }


def km_rates(
    kmf: KaplanMeierFitter, data: pd.DataFrame, years: Sequence[float], horizon_days: float | None
) -> pd.DataFrame:
    """Survival, CI and number at risk at each landmark year; NaN past follow-up or horizon."""
    table = km_table(kmf)
    last = float(data[TIME].max()) if len(data) else 0.0
    rows = []
    for y in years:
        day = y * DAYS_PER_YEAR
        beyond = day > last or (horizon_days is not None and day > horizon_days + 1e-9)
        step = table[table[TIME] <= day].iloc[-1]
        rows.append(
            {
                YEARS: y,
                TIME: day,
                SURVIVAL: np.nan if beyond else step[SURVIVAL],
                LOWER: np.nan if beyond else step[LOWER],
                UPPER: np.nan if beyond else step[UPPER],
                AT_RISK: int((data[TIME] >= day).sum()),
            }
        )
    return pd.DataFrame(rows)


def logrank(data: pd.DataFrame) -> dict[str, float]:
    """Log-rank test across the ``group`` levels present (needs two or more)."""
    res = multivariate_logrank_test(data[TIME], data[GROUP].astype(str), data[EVENT])
    return {
        CHISQ: float(res.test_statistic),
        DF: float(res.degrees_of_freedom),
        P_VALUE: float(res.p_value),
    }


def _lead(frame: pd.DataFrame, head: Mapping[str, object]) -> pd.DataFrame:
    """``frame`` with the ``head`` columns first."""
    out = pd.DataFrame({k: [v] * len(frame) for k, v in head.items()}, index=frame.index)
    return pd.concat([out, frame], axis=1)


def _level_tables(
    sub: pd.DataFrame, head: Mapping[str, object], years: Sequence[float], horizon: float | None
) -> Part:
    kmf = fit_km(sub)
    summary = {**head, N: len(sub), EVENTS: int(sub[EVENT].sum()), **km_median(kmf)}
    return Part(
        tables={
            "km": _lead(km_table(kmf), head),
            "survival_summary": pd.DataFrame([summary]),
            "survival_rates": _lead(km_rates(kmf, sub, years, horizon), head),
        }
    )


def km_analysis(
    data: pd.DataFrame,
    *,
    name: str,
    label: str,
    group_column: str | None,
    years: Sequence[float],
    horizon_days: float | None,
) -> Part:
    """KM tables for one endpoint: overall, per ``group`` level, and the log-rank test."""
    part = Part()
    grouped = data[data[GROUP].notna()] if group_column else data.iloc[0:0]
    levels = [(OVERALL, data), *((str(k), g) for k, g in grouped.groupby(GROUP, sort=True))]
    for level, sub in levels:
        head = {ENDPOINT_LABEL: label, GROUP_COLUMN: group_column or "", GROUP: level}
        part.absorb(_level_tables(sub, head, years, horizon_days))
    p_value = None
    if group_column and grouped[GROUP].nunique() >= 2:
        test = logrank(grouped)
        p_value = test[P_VALUE]
        row = {ENDPOINT_LABEL: label, GROUP_COLUMN: group_column, N: len(grouped), **test}
        part.tables["logrank"] = pd.DataFrame([row])
    n_missing = len(data) - len(grouped)
    if group_column and n_missing:
        part.notes.append(
            f"{label}: {n_missing} patient(s) with no {group_column!r} are in "
            "Overall only, not in the group comparison"
        )
    curves_data = grouped if group_column else data
    part.curves.append(Curves(name, label, curves_data, group_column, p_value))
    return part


def survival_part(cohort: Cohort, opts: StudyOptions, group: str | None) -> Part:
    """Every applicable endpoint, overall and by ``group``, with horizon censoring."""
    specs, skipped = endpoint_specs(cohort, opts)
    part = Part(skipped=list(skipped))
    for spec in specs:
        data = endpoint_data(cohort, spec, opts.horizon_days, group)
        if data.empty:
            part.skipped.append(Skipped(spec.label, "no patients in this analysis set"))
            continue
        log.info("%s: %d patients, %d events", spec.label, len(data), int(data[EVENT].sum()))
        part.absorb(
            km_analysis(
                data,
                name=spec.name,
                label=spec.label,
                group_column=group,
                years=opts.years,
                horizon_days=opts.horizon_days,
            )
        )
    if opts.horizon_days is not None:
        part.notes.append(f"Administrative censoring at {opts.horizon_days:g} days from index.")
    return part
