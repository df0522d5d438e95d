"""The marker-rule language: parsing, precedence, errors, three-valued evaluation, no eval."""

from __future__ import annotations

import builtins

import numpy as np
import pandas as pd
import pytest

from alarms.rules import (
    Both,
    Comparison,
    Either,
    Rise,
    default_rules,
    evaluate,
    parse_rule,
)
from cohort.manifest import parse_manifest

MANIFEST = parse_manifest(
    {
        "name": "m",
        "time_zero": "resection",
        "markers": {
            "ctc_total": {"unit": "cells/7.5mL", "positive_at": 2},
            "afp": {"unit": "ng/mL", "upper_normal": 20, "positive_at": 400},
            "pivka_ii": {"unit": "mAU/mL", "positive_at": 40},
        },
    }
)


def draws(**columns: list) -> pd.DataFrame:
    """A wide draw table: ``afp=[...]`` adds afp, its qualifier (``afp__q``) and previous value."""
    n = len(next(iter(columns.values())))
    frame = pd.DataFrame({"patient_id": ["p"] * n, "day": np.arange(1.0, n + 1)})
    for name, values in columns.items():
        frame[name] = values
    for marker in ("ctc_total", "afp", "pivka_ii"):
        if marker in frame and f"{marker}__q" not in frame:
            frame[f"{marker}__q"] = pd.NA
        if marker in frame and f"{marker}__prev" not in frame:
            frame[f"{marker}__prev"] = np.nan
    return frame


def truth(rule: str, table: pd.DataFrame) -> list[str]:
    t, f = evaluate(parse_rule(rule, MANIFEST), table, MANIFEST)
    return ["T" if a else "F" if b else "?" for a, b in zip(t, f, strict=True)]


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("ctc_total>=2", Comparison("ctc_total", ">=", 2.0)),
        (" afp > 20.5 ", Comparison("afp", ">", 20.5)),
        ("afp<1e2", Comparison("afp", "<", 100.0)),
        ("afp_rise", Rise("afp")),
        (
            "ctc_total>=2 & afp_rise",
            Both(Comparison("ctc_total", ">=", 2.0), Rise("afp")),
        ),
    ],
)
def test_valid_rules_parse_to_their_tree(text: str, tree: object) -> None:
    assert parse_rule(text, MANIFEST).tree == tree


def test_and_binds_tighter_than_or_and_parentheses_override_it() -> None:
    a, b, c = (Comparison("ctc_total", ">=", 2.0), Comparison("afp", ">", 20.0), Rise("afp"))
    assert parse_rule("ctc_total>=2 | afp>20 & afp_rise", MANIFEST).tree == Either(a, Both(b, c))
    assert parse_rule("(ctc_total>=2 | afp>20) & afp_rise", MANIFEST).tree == Both(Either(a, b), c)
    assert parse_rule("(ctc_total>=2 | afp>20) & afp_rise", MANIFEST).text == (
        "(ctc_total>=2 | afp>20) & afp_rise"
    )


def test_an_unknown_marker_is_named_with_the_valid_ones() -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown marker 'ctc' .*valid markers: \['afp', 'ctc_total', 'pivka_ii'\]",
    ):
        parse_rule("ctc>=2", MANIFEST)


def test_an_unknown_derived_predicate_lists_the_derived_ones() -> None:
    with pytest.raises(
        ValueError, match=r"unknown marker 'alt_rise'.*derived predicates: \['afp_rise'"
    ):
        parse_rule("alt_rise", MANIFEST)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty rule"),
        ("ctc_total>=", "rule ends early; expected a number"),
        ("ctc_total", "rule ends early; expected a comparison"),
        ("ctc_total=2", "unexpected character '='"),
        ("ctc_total>=2 &", "rule ends early"),
        ("(ctc_total>=2", "rule ends early; expected '\\)'"),
        ("ctc_total>=2)", "unexpected '\\)'"),
        ("afp_rise>2", "yes/no predicate"),
        ("ctc_total>=afp", "expected a number after ctc_total>=, got 'afp'"),
        ("2>=ctc_total", "expected a marker, got '2'"),
        ("ctc_total>=2 and afp>20", "unexpected 'and'"),
    ],
)
def test_malformed_rules_are_refused_with_the_offending_token(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_rule(text, MANIFEST)


def test_rules_are_never_evaluated_as_python(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*_a: object, **_k: object) -> None:
        raise AssertionError("eval/exec must never be called")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    with pytest.raises(ValueError, match="unexpected character"):
        parse_rule("__import__('os').system('true')", MANIFEST)
    assert truth("ctc_total>=2 | afp>20", draws(ctc_total=[3.0], afp=[1.0])) == ["T"]


def test_comparisons_on_missing_markers_are_unknown_in_kleene_logic() -> None:
    table = draws(ctc_total=[3.0, 0.0, np.nan, np.nan], afp=[np.nan, np.nan, 30.0, np.nan])
    assert truth("ctc_total>=2", table) == ["T", "F", "?", "?"]
    assert truth("ctc_total>=2 | afp>20", table) == ["T", "?", "T", "?"]
    assert truth("ctc_total>=2 & afp>20", table) == ["?", "F", "?", "?"]


def test_detection_limits_decide_only_when_the_interval_does() -> None:
    table = draws(afp=[2.0, 2.0, 500.0, 500.0])
    table["afp__q"] = ["<", "<", ">", ">"]
    assert truth("afp>20", table.iloc[:1]) == ["F"]  # <2 is below 20
    assert truth("afp>1", table.iloc[:1]) == ["?"]  # <2 may or may not exceed 1
    assert truth("afp<2", table.iloc[:1]) == ["T"]
    assert truth("afp>=400", table.iloc[2:3]) == ["T"]  # >500
    assert truth("afp<600", table.iloc[2:3]) == ["?"]


def test_a_rise_needs_25_percent_and_a_quarter_of_the_reference_level() -> None:
    table = draws(afp=[3.0, 10.0, 30.0, 31.0, 8.0])
    table["afp__prev"] = [2.0, 5.0, 20.0, 30.0, np.nan]
    # 2→3: +50% but only +1 ng/mL (floor 5); 5→10 doubles (+5); 20→30 +50%; 30→31 +3%; no previous
    assert truth("afp_rise", table) == ["F", "T", "T", "F", "?"]


def test_default_rules_start_with_the_cellsearch_cut_off_then_the_manifest_cut_offs() -> None:
    assert default_rules(MANIFEST) == ["ctc_total>=2", "afp>20", "afp>=400", "pivka_ii>=40"]
