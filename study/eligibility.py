"""Protocol eligibility checked from the data: who fails which criterion, who is not evaluable.

Rules come from the manifest (proposed ``[study.eligibility]``) or ``describe_cohort``::

    age = ">= 18"              # numeric comparison: >=, >, <=, <, ==, !=
    platelet = "> 75"          # a marker code: its latest value on or before index
    bili = "<= 1.5 ULN"        # times the marker's upper_normal from the manifest
    child_pugh = "A"           # equality (text)
    ecog = [0, 1]              # membership

A key is a patients column, a study role (``ecog``, ``child_pugh``, ``arm``, ... → the column
``[study]`` names) or a marker code. A missing value makes the criterion "not evaluable".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cohort.cohort import Cohort
from cohort.vocabulary import PATIENT_ID, VALUE
from study.baseline import baseline_values
from study.names import (
    CRITERION,
    FAIL,
    NOT_EVALUABLE_STATUS,
    PASS,
    RULE,
    STATUS,
)
from study.options import StudyOptions
from study.parts import Part, skip
from study.survival import group_level_text

ELIGIBLE = "eligible"
FAILED = "failed"
NOT_EVALUABLE_LIST = "not_evaluable"
_COMPARISON = re.compile(
    r"^\s*(>=|<=|==|!=|>|<)\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(\*?\s*ULN)?\s*$"
)
_OPS = {
    ">=": np.greater_equal,
    "<=": np.less_equal,
    ">": np.greater,
    "<": np.less,
    "==": np.equal,
    "!=": np.not_equal,
}


@dataclass(frozen=True)
class Rule:
    """One parsed criterion: ``op`` is a comparison or ``in`` (a set of accepted levels)."""

    criterion: str
    text: str
    op: str
    number: float = float("nan")
    levels: frozenset[str] = frozenset()
    uln: bool = False


def _text(value: object) -> str:
    return str(group_level_text(pd.Series([value])).iloc[0])


def parse_rule(criterion: str, value: Any) -> Rule:
    """A rule from its manifest value: comparison string, list of levels, or one level."""
    if isinstance(value, list | tuple):
        return Rule(
            criterion,
            "in " + ", ".join(map(_text, value)),
            "in",
            levels=frozenset(map(_text, value)),
        )
    if isinstance(value, str) and (m := _COMPARISON.match(value)):
        op, num, uln = m.groups()
        text = f"{op} {num}" + (" × ULN" if uln else "")
        return Rule(criterion, text, op, number=float(num), uln=bool(uln))
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        if isinstance(value, str) and value.strip()[:1] in "<>=!":
            raise ValueError(
                f"eligibility {criterion!r}: cannot read {value!r}; expected e.g. "
                "'>= 18', '<= 1.5 ULN', a level like 'A' or a list like [0, 1]"
            )
        return Rule(criterion, f"= {_text(value)}", "in", levels=frozenset([_text(value)]))
    raise TypeError(f"eligibility {criterion!r}: expected a string, number or list, got {value!r}")


def _check_rules(rules: list[Rule], cohort: Cohort, opts: StudyOptions) -> None:
    known = set(cohort.patients.columns) | set(opts.roles()) | set(cohort.manifest.markers)
    unknown = sorted(r.criterion for r in rules if r.criterion not in known)
    if unknown:
        raise ValueError(
            f"eligibility criteria {unknown} name no patients column, study role "
            f"or marker; available: {sorted(known)}"
        )
    for r in rules:
        spec = cohort.manifest.markers.get(r.criterion)
        if r.uln and (spec is None or spec.upper_normal is None):
            raise ValueError(
                f"eligibility {r.criterion!r} uses ULN but the manifest declares "
                f"no upper_normal for marker {r.criterion!r}"
            )


def criterion_values(cohort: Cohort, opts: StudyOptions, criterion: str) -> pd.Series:
    """The value each patient is judged on, indexed by patient_id (NaN when missing)."""
    ids = cohort.patients[PATIENT_ID].astype(str)
    column = opts.roles().get(criterion, criterion)
    if column in cohort.patients:
        return pd.Series(cohort.patients[column].to_numpy(), index=ids, name=VALUE)
    return baseline_values(cohort.measurements, criterion).reindex(ids).rename(VALUE)


def evaluate(rule: Rule, values: pd.Series, uln: float | None = None) -> pd.Series:
    """pass / fail / not evaluable for each value."""
    missing = values.isna().to_numpy()
    if rule.op == "in":
        ok = group_level_text(values).isin(rule.levels).fillna(False).to_numpy(dtype=bool)
    else:
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        missing |= np.isnan(x)
        limit = rule.number * (uln if rule.uln and uln is not None else 1.0)
        ok = _OPS[rule.op](np.nan_to_num(x), limit)
    status = np.where(missing, NOT_EVALUABLE_STATUS, np.where(ok, PASS, FAIL))
    return pd.Series(status, index=values.index, name=STATUS)


def eligibility_detail(cohort: Cohort, opts: StudyOptions, rules: list[Rule]) -> pd.DataFrame:
    """Long listing: one row per patient and criterion."""
    frames = []
    for rule in rules:
        spec = cohort.manifest.markers.get(rule.criterion)
        values = criterion_values(cohort, opts, rule.criterion)
        status = evaluate(rule, values, spec.upper_normal if spec else None)
        frames.append(
            pd.DataFrame(
                {
                    PATIENT_ID: values.index,
                    CRITERION: rule.criterion,
                    RULE: rule.text,
                    VALUE: values.astype(object).to_numpy(),
                    STATUS: status.to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _join(rows: pd.DataFrame) -> str:
    return "; ".join(
        f"{c} {r} (was {v})"
        for c, r, v in zip(rows[CRITERION], rows[RULE], rows[VALUE], strict=True)
    )


def eligibility_summary(detail: pd.DataFrame) -> pd.DataFrame:
    """One row per patient: eligible yes / no / not evaluable, failed and unevaluable criteria."""
    rows = []
    for pid, mine in detail.groupby(PATIENT_ID, sort=True):
        failed, unknown = mine[mine[STATUS] == FAIL], mine[mine[STATUS] == NOT_EVALUABLE_STATUS]
        verdict = "no" if len(failed) else NOT_EVALUABLE_STATUS if len(unknown) else "yes"
        rows.append(
            {
                PATIENT_ID: pid,
                ELIGIBLE: verdict,
                FAILED: _join(failed),
                NOT_EVALUABLE_LIST: "; ".join(unknown[CRITERION]),
            }
        )
    return pd.DataFrame(rows)


def eligibility_part(cohort: Cohort, opts: StudyOptions, rules: Mapping[str, Any]) -> Part:
    """Eligibility listing, per-criterion counts and detail; skipped when no rules declared."""
    if not rules:
        return skip("Eligibility", "no eligibility criteria declared ([study.eligibility])")
    parsed = [parse_rule(k, v) for k, v in rules.items()]
    _check_rules(parsed, cohort, opts)
    detail = eligibility_detail(cohort, opts, parsed)
    counts = pd.crosstab([detail[CRITERION], detail[RULE]], detail[STATUS])
    counts = counts.reindex(columns=[PASS, FAIL, NOT_EVALUABLE_STATUS], fill_value=0).reset_index()
    summary = eligibility_summary(detail)
    n_no = int((summary[ELIGIBLE] == "no").sum())
    return Part(
        tables={
            "eligibility": summary,
            "eligibility_criteria": counts,
            "eligibility_detail": detail,
        },
        notes=[
            f"Eligibility: {n_no} of {len(summary)} patients fail at least one criterion; "
            "markers are judged on their latest value on or before index."
        ],
    )
