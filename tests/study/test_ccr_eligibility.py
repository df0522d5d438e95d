"""Clinical complete response and eligibility on hand-made patient histories."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from cohort.cohort import Cohort
from cohort.vocabulary import AFP, DAY, PATIENT_ID
from study.ccr import ccr_part
from study.eligibility import eligibility_part, parse_rule
from study.options import CcrOptions, study_options


def _afp(pid: str, day: float, value: float) -> dict:
    return {PATIENT_ID: pid, DAY: day, "marker": AFP, "value": value, "unit": "ng/mL"}


def _cr(pid: str, day: float, response: str = "CR") -> dict:
    return {
        PATIENT_ID: pid,
        DAY: day,
        "modality": "MRI",
        "finding": "indeterminate",
        "response": response,
        "criteria": "mRECIST",
    }


@pytest.fixture
def histories(cohort_builder: Callable[..., Cohort]) -> Cohort:
    # q qualifies; w has CR scans only 2 weeks apart; n never had AFP >= 400 before treatment;
    # x has no AFP before treatment at all.
    meas = [
        _afp("q", -3, 850),
        _afp("q", 60, 15),
        _afp("q", 95, 12),
        _afp("w", -3, 900),
        _afp("w", 60, 15),
        _afp("w", 95, 12),
        _afp("n", -3, 350),
        _afp("n", 60, 15),
        _afp("n", 95, 12),
        _afp("x", 60, 15),
        _afp("x", 95, 12),
        {PATIENT_ID: "q", DAY: -3, "marker": "platelet", "value": 120.0, "unit": "10^9/L"},
        {PATIENT_ID: "w", DAY: -3, "marker": "platelet", "value": 60.0, "unit": "10^9/L"},
        {PATIENT_ID: "n", DAY: -3, "marker": "bili", "value": 2.0, "unit": "mg/dL"},
    ]
    imaging = [
        _cr("q", 60),
        _cr("q", 92),
        _cr("w", 60),
        _cr("w", 74),
        _cr("w", 100, "PR"),
        _cr("n", 60),
        _cr("n", 95),
        _cr("x", 60),
        _cr("x", 95),
    ]
    patients = [
        {PATIENT_ID: "q", "age": 50.0, "ps": 0.0, "cp": "A"},
        {PATIENT_ID: "w", "age": 17.0, "ps": 1.0, "cp": "A"},
        {PATIENT_ID: "n", "age": 70.0, "ps": 2.0, "cp": "B"},
        {PATIENT_ID: "x", "age": np.nan, "ps": 0.0, "cp": "A"},
    ]
    outcomes = [{PATIENT_ID: p["patient_id"], "last_followup_day": 300.0} for p in patients]
    manifest = {
        "name": "ww",
        "time_zero": "treatment",
        "endpoint": "rfs",
        "covariates": {"age": "numeric", "ps": "numeric", "cp": "categorical"},
        "markers": {
            AFP: {"unit": "ng/mL", "upper_normal": 20},
            "platelet": {"unit": "10^9/L"},
            "bili": {"unit": "mg/dL", "upper_normal": 1.2},
        },
        "study": {"ecog": "ps", "child_pugh": "cp"},
    }
    return cohort_builder(patients, outcomes, manifest, measurements=meas, imaging=imaging)


def test_ccr_needs_confirmed_cr_and_afp_normalisation_after_afp_400(histories: Cohort) -> None:
    table = ccr_part(histories, CcrOptions()).tables["ccr"].set_index(PATIENT_ID)
    assert table.loc["q", "ccr"] == "yes"
    assert table.loc["q", "ccr_day"] == 95.0  # CR confirmed day 92, AFP confirmed day 95
    assert table.loc["w", "ccr"] == "no"
    assert "CR" in table.loc["w", "reason"] and "AFP" not in table.loc["w", "reason"]
    assert table.loc["n", "ccr"] == "no"
    assert "AFP before treatment < 400" in table.loc["n", "reason"]
    assert table.loc["x", "ccr"] == "not evaluable"


def test_ccr_is_skipped_without_an_afp_upper_normal(cohort_builder: Callable[..., Cohort]) -> None:
    manifest = {"name": "t", "time_zero": "x", "markers": {AFP: {"unit": "ng/mL"}}}
    cohort = cohort_builder(
        [{PATIENT_ID: "1"}], [{PATIENT_ID: "1", "last_followup_day": 9.0}], manifest
    )
    assert "upper_normal" in ccr_part(cohort, CcrOptions()).skipped[0].reason


RULES = {
    "age": ">= 18",
    "platelet": "> 75",
    "bili": "<= 1.5 ULN",
    "child_pugh": "A",
    "ecog": [0, 1],
}


def test_eligibility_listing_names_each_failing_criterion(histories: Cohort) -> None:
    part = eligibility_part(histories, study_options(histories.manifest), RULES)
    listing = part.tables["eligibility"].set_index(PATIENT_ID)
    assert listing.loc["w", "eligible"] == "no"
    assert listing.loc["w", "failed"] == "age >= 18 (was 17.0); platelet > 75 (was 60.0)"
    assert listing.loc["n", "failed"].split("; ")[0] == "bili <= 1.5 × ULN (was 2.0)"
    assert (
        "child_pugh = A" in listing.loc["n", "failed"]
        and "ecog in 0, 1" in listing.loc["n", "failed"]
    )
    # q: bilirubin never measured → not evaluable, not a failure
    assert listing.loc["q", "eligible"] == "not evaluable"
    assert listing.loc["q", "not_evaluable"] == "bili"
    counts = part.tables["eligibility_criteria"].set_index("criterion")
    assert counts.loc["age", ["pass", "fail", "not evaluable"]].tolist() == [2, 1, 1]


@pytest.mark.parametrize(
    ("key", "value", "error", "match"),
    [
        ("age", ">= eighteen", ValueError, "cannot read '>= eighteen'"),
        ("age", {"min": 18}, TypeError, "expected a string, number or list"),
    ],
)
def test_unreadable_eligibility_rules_are_refused(key, value, error, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        parse_rule(key, value)


def test_eligibility_on_an_unknown_name_or_a_marker_without_uln_is_refused(
    histories: Cohort,
) -> None:
    opts = study_options(histories.manifest)
    with pytest.raises(ValueError, match=r"\['weight'\] name no patients column"):
        eligibility_part(histories, opts, {"weight": "> 40"})
    with pytest.raises(ValueError, match="no upper_normal for marker 'platelet'"):
        eligibility_part(histories, opts, {"platelet": "< 2 ULN"})
