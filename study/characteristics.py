"""Table 1: patient characteristics overall and by group, with missing counts and p-values.

Numeric: median [Q1, Q3], Kruskal–Wallis across groups. Binary and categorical: n (%) of
the group's N, missing shown as its own row, chi-square (Fisher's exact for a sparse 2×2).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

from cohort.cohort import Cohort
from cohort.vocabulary import INDEX_DATE, PATIENT_ID, SITE_ID
from study.names import LEVEL, MISSING, N_TOTAL, OVERALL, P_VALUE, TEST, VARIABLE
from study.options import StudyOptions
from study.parts import Part
from study.survival import group_level_text, is_truthy

log = logging.getLogger(__name__)

_NOT_VARIABLES = {PATIENT_ID, INDEX_DATE}


def fmt_number(x: float) -> str:
    """A readable number: fewer decimals for larger values."""
    if not np.isfinite(x):
        return "NA"
    digits = 0 if abs(x) >= 100 else 1 if abs(x) >= 10 else 2
    return f"{x:.{digits}f}"


def _pct(k: int, n: int) -> str:
    return f"{k} ({100.0 * k / n:.1f}%)" if n else "0"


def variable_types(cohort: Cohort, opts: StudyOptions, exclude: set[str]) -> dict[str, str]:
    """Variables for Table 1: declared covariates, then study columns, then the centre."""
    pats = cohort.patients
    declared = {k: v for k, v in cohort.manifest.covariates.items() if k in pats}
    roles = opts.roles()
    for role, col in roles.items():
        if col not in pats:
            continue
        if role == "metastatic":
            declared.setdefault(col, "binary")
        else:  # ECOG and Child-Pugh are ordinal: counts per level, not a median
            declared[col] = "categorical"
    if SITE_ID in pats and pats[SITE_ID].nunique() > 1:
        declared.setdefault(SITE_ID, "categorical")
    return {k: v for k, v in declared.items() if k not in exclude | _NOT_VARIABLES}


def _numeric_rows(name: str, values: pd.Series, groups: dict[str, pd.Index]) -> list[dict]:
    x = pd.to_numeric(values, errors="coerce")
    med, miss = {}, {}
    for label, idx in groups.items():
        q = x.loc[idx].dropna().quantile([0.25, 0.5, 0.75])
        has = x.loc[idx].notna().any()
        med[label] = (
            f"{fmt_number(q[0.5])} [{fmt_number(q[0.25])}, {fmt_number(q[0.75])}]" if has else "NA"
        )
        miss[label] = str(int(x.loc[idx].isna().sum()))
    rows = [{VARIABLE: name, LEVEL: "median [IQR]", **med}]
    if x.isna().any():
        rows.append({VARIABLE: name, LEVEL: MISSING, **miss})
    return rows


def _level_rows(name: str, values: pd.Series, groups: dict[str, pd.Index]) -> list[dict]:
    levels = sorted(values.dropna().unique(), key=str)
    rows = []
    for level in levels:
        cells = {
            g: _pct(int((values.loc[idx] == level).sum()), len(idx)) for g, idx in groups.items()
        }
        rows.append({VARIABLE: name, LEVEL: str(level), **cells})
    if values.isna().any():
        cells = {g: _pct(int(values.loc[idx].isna().sum()), len(idx)) for g, idx in groups.items()}
        rows.append({VARIABLE: name, LEVEL: MISSING, **cells})
    return rows


def _as_levels(values: pd.Series, kind: str) -> pd.Series:
    if kind == "binary":
        return is_truthy(values).map({True: "yes", False: "no"}, na_action="ignore")
    return group_level_text(values)


def group_test(values: pd.Series, group: pd.Series, kind: str) -> tuple[float, str]:
    """p-value and test name for a difference across groups (NaN when not testable)."""
    ok = values.notna() & group.notna()
    v, g = values[ok], group[ok]
    if g.nunique() < 2 or v.nunique() < 2:
        return float("nan"), ""
    if kind == "numeric":
        samples = [pd.to_numeric(v[g == lv]).to_numpy() for lv in g.unique()]
        return float(stats.kruskal(*samples).pvalue), "Kruskal-Wallis"
    table = pd.crosstab(v, g).to_numpy()
    expected = stats.contingency.expected_freq(table)
    if table.shape == (2, 2) and (expected < 5).any():
        return float(stats.fisher_exact(table).pvalue), "Fisher exact"
    return float(stats.chi2_contingency(table, correction=False).pvalue), "chi-square"


def characteristics_table(
    patients: pd.DataFrame, variables: dict[str, str], group: str | None = None
) -> pd.DataFrame:
    """Table 1 of ``patients`` (not modified): rows per variable level, columns per group."""
    pats = patients.reset_index(drop=True)
    labels = group_level_text(pats[group]) if group else pd.Series(pd.NA, index=pats.index)
    groups = {OVERALL: pats.index}
    for level in sorted(labels.dropna().unique(), key=str):
        groups[str(level)] = pats.index[labels == level]
    rows: list[dict] = [
        {VARIABLE: N_TOTAL, LEVEL: "", **{g: str(len(i)) for g, i in groups.items()}}
    ]
    for name, kind in variables.items():
        values = pats[name] if kind == "numeric" else _as_levels(pats[name], kind)
        block = (_numeric_rows if kind == "numeric" else _level_rows)(name, values, groups)
        if group:
            p, test = group_test(values, labels, kind)
            block[0] = {**block[0], P_VALUE: p, TEST: test}
        rows.extend(block)
    table = pd.DataFrame(rows)
    if group and pats[group].isna().any():
        log.info(
            "Table 1: %d patient(s) with no %r are in Overall only", pats[group].isna().sum(), group
        )
    return table


def characteristics_part(cohort: Cohort, opts: StudyOptions, group: str | None) -> Part:
    """Table 1 by the main group, and by histology and by centre when those apply."""
    part = Part()
    by = {"characteristics": group}
    if opts.histology and opts.histology in cohort.patients and opts.histology != group:
        by["characteristics_by_histology"] = opts.histology
    if cohort.patients[SITE_ID].nunique() > 1 and group != SITE_ID:
        by["characteristics_by_site"] = SITE_ID
    for name, column in by.items():
        exclude = {column} if column else set()
        variables = variable_types(cohort, opts, exclude)
        part.tables[name] = characteristics_table(cohort.patients, variables, column)
    return part
