"""Response and safety tables on hand-made cohorts with hand-computed answers."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cohort.cohort import Cohort
from cohort.vocabulary import DAY, PATIENT_ID
from study.response import best_response, response_part
from study.safety import safety_part


def _scan(pid: str, day: float, response: str, criteria: str = "mRECIST") -> dict:
    return {
        PATIENT_ID: pid,
        DAY: day,
        "modality": "CT",
        "finding": "indeterminate",
        "response": response,
        "criteria": criteria,
    }


@pytest.fixture
def treated(cohort_builder: Callable[..., Cohort]) -> Cohort:
    pats = [
        {PATIENT_ID: p, "arm": arm}
        for p, arm in [("1", "A"), ("2", "A"), ("3", "A"), ("4", "B"), ("5", "B")]
    ]
    outcomes = [{PATIENT_ID: p["patient_id"], "last_followup_day": 400.0} for p in pats]
    imaging = [
        _scan("1", 60, "SD"),
        _scan("1", 120, "CR"),
        _scan("1", 120, "PR", "RECIST1.1"),
        _scan("2", 60, "PR"),
        _scan("2", 120, "PD"),
        _scan("3", -5, "CR"),  # before treatment: not a response
        _scan("4", 60, "SD"),
        _scan("5", 60, "PD"),
    ]
    aes = [
        {PATIENT_ID: "1", DAY: 10, "term": "neutropenia", "grade": 3},
        {PATIENT_ID: "1", DAY: 20, "term": "neutropenia", "grade": 4},
        {PATIENT_ID: "2", DAY: 10, "term": "fatigue", "grade": 2},
        {PATIENT_ID: "4", DAY: 30, "term": "hepatic failure", "grade": 5},
    ]
    manifest = {
        "name": "t",
        "time_zero": "enrollment",
        "endpoint": "pfs",
        "covariates": {"arm": "categorical"},
        "markers": {"afp": {"unit": "ng/mL"}},
        "study": {"arm": "arm"},
    }
    return cohort_builder(pats, outcomes, manifest, imaging=imaging, adverse_events=aes)


def test_best_response_takes_the_best_on_treatment_scan_per_criteria(treated: Cohort) -> None:
    best = best_response(treated.imaging).set_index([PATIENT_ID, "criteria"])["best_response"]
    assert best.to_dict() == {
        ("1", "RECIST1.1"): "PR",
        ("1", "mRECIST"): "CR",
        ("2", "mRECIST"): "PR",
        ("4", "mRECIST"): "SD",
        ("5", "mRECIST"): "PD",
    }


def test_orr_and_dcr_count_unassessed_patients_in_the_denominator(treated: Cohort) -> None:
    rates = response_part(treated, "arm").tables["response_rates"]
    mrecist = rates[rates["criteria"] == "mRECIST"].set_index(["group", "measure"])
    # overall: CR 1, PR 1, SD 1, PD 1, NE 1 (patient 3) → ORR 2/5, DCR 3/5
    assert mrecist.loc[("Overall", "ORR"), ["n", "N"]].tolist() == [2, 5]
    assert mrecist.loc[("Overall", "DCR"), "percent"] == pytest.approx(60.0)
    assert mrecist.loc[("A", "ORR"), "percent"] == pytest.approx(200 / 3)
    assert mrecist.loc[("B", "DCR"), ["n", "N"]].tolist() == [1, 2]
    # Clopper-Pearson 2/5: (5.27%, 85.34%)
    assert mrecist.loc[("Overall", "ORR"), "lower"] == pytest.approx(5.274, abs=1e-3)
    assert mrecist.loc[("Overall", "ORR"), "upper"] == pytest.approx(85.336, abs=1e-3)


def test_grade_3_share_counts_patients_once_by_their_worst_grade(treated: Cohort) -> None:
    table = safety_part(treated, "arm").tables["safety"].set_index(["term", "group"])
    assert table.loc[
        ("any adverse event", "Overall"), ["n_any_grade", "n_grade_3plus", "N"]
    ].tolist() == [3, 2, 5]
    assert table.loc[("neutropenia", "Overall"), "n_grade_3plus"] == 1
    assert table.loc[("neutropenia", "A"), "percent"] == pytest.approx(100 / 3)
    assert table.loc[("fatigue", "Overall"), "n_grade_3plus"] == 0
    assert table.loc[("hepatic failure", "B"), "percent"] == pytest.approx(50.0)


def test_cohorts_without_imaging_or_adverse_events_get_skipped_notes(
    cohort_builder: Callable[..., Cohort],
) -> None:
    cohort = cohort_builder([{PATIENT_ID: "1"}], [{PATIENT_ID: "1", "last_followup_day": 9.0}])
    assert "no imaging" in response_part(cohort, None).skipped[0].reason
    assert "no adverse events" in safety_part(cohort, None).skipped[0].reason


def test_imaging_without_graded_responses_is_skipped_with_its_reason(
    cohort_builder: Callable[..., Cohort],
) -> None:
    scan = {PATIENT_ID: "1", DAY: 90.0, "modality": "MRI", "finding": "no_evidence"}
    cohort = cohort_builder(
        [{PATIENT_ID: "1"}], [{PATIENT_ID: "1", "last_followup_day": 99.0}], imaging=[scan]
    )
    assert "no on-treatment imaging has a response" in response_part(cohort, None).skipped[0].reason
