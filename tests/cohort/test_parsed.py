"""The quick parse of one history never disagrees with the data contract."""

from __future__ import annotations

import json
import math
from datetime import date
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cohort.errors import CohortError
from cohort.manifest import Manifest
from cohort.parsed import ParsedHistory, parsed_from_cohort, quick_parse
from cohort.records import PatientHistory, history_to_cohort

MANIFEST = Manifest.model_validate(
    {
        "name": "quick",
        "time_zero": "resection",
        "covariates": {"age": "numeric", "sex": "categorical", "mvi": "binary"},
        "covariate_ranges": {"age": [18, 100]},
        "covariate_levels": {"sex": ["F", "M"]},
        "markers": {
            "ctc_total": {"unit": "cells/7.5mL", "positive_at": 2},
            "afp": {"unit": "ng/mL", "upper_normal": 20, "conversions": {"IU/mL": 1.28}},
        },
    }
)


def mostly(valid: st.SearchStrategy[Any], *near_misses: Any) -> st.SearchStrategy[Any]:
    """Usually ``valid``; one time in twenty a near miss the contract refuses (or accepts
    only after its normalisation, like blanks around a word)."""
    return st.integers(0, 19).flatmap(lambda k: st.sampled_from(near_misses) if k == 0 else valid)


DATES = mostly(
    st.dates(min_value=date(2019, 1, 1), max_value=date(2030, 12, 31)).map(lambda d: d.isoformat()),
    "2024-02-30",
    "2024-1-05",
    " 2024-01-05",
    "2024-01-05\t",
    "2024-01-05T00:00",
    "20240105",
    "1650-01-01",
    "1899-12-31",
    "",
)
UNITS = {"ctc_total": ["cells/7.5mL", "cells/5mL"], "afp": ["ng/mL", "IU/mL", "kIU/L"]}
MARKER_UNITS = mostly(
    st.sampled_from(sorted(UNITS)).flatmap(
        lambda m: st.tuples(st.just(m), st.sampled_from(UNITS[m]))
    ),
    (" afp", "ng/mL"),
    ("afp\u00a0", "ng/mL"),
    ("cea", "ng/mL"),
    ("AFP", "ng/mL"),
    ("afp", "ng/mL "),
    ("afp", "mg"),
    ("ctc_total", "ng/mL"),
)
VALUES = mostly(
    st.one_of(st.floats(min_value=0, max_value=1e5), st.integers(0, 50)),
    -1.0,
    -0.5,
    2.5,  # not a whole count when the marker is ctc_total
    1e308,
)
QUALIFIERS = mostly(st.sampled_from([None, None, None, "", "<", ">"]), " <", "<=")
DRAW_IDS = mostly(st.sampled_from([None, "d1", "d2", "d3", ""]), " d1")
NEAR_MISS_COVARIATES = (
    *(" M", "", "61", "61.5", "yes", "true", True, "1_000", "nan", -3, 0.5),
    *(17.99, 100.01, "150", "m", "X", "F\u00a0"),  # outside the manifest's range or levels
)
COVARIATES = {
    "age": mostly(
        st.one_of(st.none(), st.floats(0, 120), st.integers(18, 90), st.sampled_from([18, 100])),
        *NEAR_MISS_COVARIATES,
    ),
    "sex": mostly(st.sampled_from([None, "M", "F"]), *NEAR_MISS_COVARIATES),
    "mvi": mostly(st.sampled_from([None, 0, 1, True, False, 0.0, 1.0]), *NEAR_MISS_COVARIATES),
    "stage": st.just("II"),  # not a covariate of the manifest
}


@st.composite
def histories(draw: st.DrawFn) -> PatientHistory:
    patient: dict[str, Any] = {
        "patient_id": draw(mostly(st.sampled_from(["p-1", "P 2"]), " p-1")),
        "site_id": draw(mostly(st.sampled_from([None, "site-a"]), " site-a")),
        "index_date": draw(DATES),
    }
    for name in draw(st.sets(mostly(st.sampled_from(["age", "sex", "mvi"]), "stage"))):
        patient[name] = draw(COVARIATES[name])
    measurements = [
        {
            "date": draw(DATES),
            **dict(zip(("marker", "unit"), draw(MARKER_UNITS), strict=True)),
            "value": draw(VALUES),
            "qualifier": draw(QUALIFIERS),
            "draw_id": draw(DRAW_IDS),
        }
        for _ in range(draw(st.integers(0, 8)))
    ]
    imaging = [
        {
            "date": draw(DATES),
            "modality": draw(mostly(st.sampled_from(["MRI", "CT"]), " CT", "mri", "X-ray")),
            "finding": draw(mostly(st.sampled_from(["no_evidence", "recurrence"]), "unclear")),
            "response": draw(mostly(st.sampled_from([None, "", "CR"]), "cr")),
        }
        for _ in range(draw(st.integers(0, 3)))
    ]
    return PatientHistory.model_validate(
        {"patient": patient, "measurements": measurements, "imaging": imaging}
    )


def assert_same(quick: ParsedHistory, slow: ParsedHistory) -> None:
    assert (quick.patient_id, quick.index_date) == (slow.patient_id, slow.index_date)
    np.testing.assert_array_equal(quick.day, slow.day)
    np.testing.assert_array_equal(quick.marker, slow.marker)
    # both paths parse a value with the same rule (the contract from its text, repr(float))
    np.testing.assert_array_equal(quick.value, slow.value)
    np.testing.assert_array_equal(quick.qualifier, slow.qualifier)
    np.testing.assert_array_equal(quick.imaging_day, slow.imaging_day)
    assert quick.covariates.keys() == slow.covariates.keys()
    for name, value in quick.covariates.items():
        other = slow.covariates[name]
        if isinstance(value, float) and math.isnan(value):
            assert isinstance(other, float) and math.isnan(other), name
        else:
            assert value == other, name


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_the_quick_path_and_the_contract_accept_and_refuse_the_same_histories(
    history: PatientHistory,
) -> None:
    quick = quick_parse(history, MANIFEST)
    try:
        slow = parsed_from_cohort(history_to_cohort(history, MANIFEST))
    except CohortError:
        assert quick is None, "the quick path accepted a history the contract refuses"
        return
    assert quick is not None, "the contract accepted a history the quick path refuses"
    assert_same(quick, slow)


PLAIN = {
    "patient": {
        "patient_id": "p-1",
        "site_id": "site-a",
        "index_date": "2024-01-10",
        "age": 61,
        "sex": "M",
        "mvi": True,
    },
    "measurements": [
        {"date": "2024-02-08", "marker": "ctc_total", "value": 2, "unit": "cells/5mL"},
        {"date": "2024-01-08", "marker": "ctc_total", "value": 3, "unit": "cells/7.5mL"},
        {"date": "2024-01-08", "marker": "afp", "value": 2, "unit": "IU/mL", "qualifier": "<"},
    ],
    "imaging": [{"date": "2024-04-10", "modality": "MRI", "finding": "no_evidence"}],
}


def test_a_plain_history_takes_the_quick_path_with_units_converted_and_rows_sorted() -> None:
    quick = quick_parse(PatientHistory.model_validate(PLAIN), MANIFEST)
    assert quick is not None
    assert quick.day.tolist() == [-2.0, -2.0, 29.0]
    assert quick.marker.tolist() == ["afp", "ctc_total", "ctc_total"]
    assert quick.value.tolist() == pytest.approx([2 * 1.28, 3.0, 3.0])  # manifest's IU factor
    assert quick.below_limit.tolist() == [True, False, False]
    assert quick.covariates == {"age": 61.0, "sex": "M", "mvi": 1.0}
    assert quick.imaging_day.tolist() == [91.0]
    assert_same(
        quick, parsed_from_cohort(history_to_cohort(PatientHistory.model_validate(PLAIN), MANIFEST))
    )


@pytest.mark.parametrize(
    ("where", "value", "problem"),
    [
        ("marker", "cea", "unknown marker"),
        ("unit", "mg", "unknown unit"),
        ("date", "2024-02-30", "not a date in ISO format"),
        ("date", "1850-01-01", "not a date in ISO format"),
        ("value", -1.0, "value must be a number >= 0"),
        ("qualifier", "<=", "must be one of"),
    ],
)
def test_a_near_miss_is_refused_by_both_paths(where: str, value: object, problem: str) -> None:
    body = {**PLAIN, "measurements": [{**PLAIN["measurements"][2], where: value}]}  # type: ignore[dict-item]
    history = PatientHistory.model_validate(body)
    assert quick_parse(history, MANIFEST) is None
    with pytest.raises(CohortError, match=problem):
        history_to_cohort(history, MANIFEST)


@pytest.mark.parametrize("unit", ["cells/7.5mL", "cells/5mL"])
def test_a_count_converted_from_another_volume_is_a_count(unit: str) -> None:
    value = 1.5 if unit == "cells/7.5mL" else 2 / 1.5  # 1 cell/5mL; 2 cells/7.5mL
    body = {**PLAIN, "measurements": [{**PLAIN["measurements"][1], "value": value, "unit": unit}]}  # type: ignore[dict-item]
    history = PatientHistory.model_validate(body)
    quick = quick_parse(history, MANIFEST)
    assert quick is not None
    assert_same(quick, parsed_from_cohort(history_to_cohort(history, MANIFEST)))


def test_a_fractional_count_is_refused_by_both_paths() -> None:
    body = {**PLAIN, "measurements": [{**PLAIN["measurements"][1], "value": 2.5}]}  # type: ignore[dict-item]
    history = PatientHistory.model_validate(body)
    assert quick_parse(history, MANIFEST) is None
    with pytest.raises(CohortError, match="a count must be a whole number"):
        history_to_cohort(history, MANIFEST)


@pytest.mark.parametrize(
    ("field", "value"),
    [("marker", " afp "), ("marker", "afp\u00a0"), ("unit", "\tIU/mL"), ("qualifier", " <")],
)
def test_blanks_around_a_word_are_removed_once_and_the_clean_word_is_kept(
    field: str, value: str
) -> None:
    body = {**PLAIN, "measurements": [{**PLAIN["measurements"][2], field: value}]}  # type: ignore[dict-item]
    history = PatientHistory.model_validate(body)
    assert getattr(history.measurements[0], field) == value.strip()
    quick = quick_parse(history, MANIFEST)
    assert quick is not None
    assert_same(quick, parsed_from_cohort(history_to_cohort(history, MANIFEST)))


@pytest.mark.parametrize("field", ["as_of", "next_imaging_date"])
def test_a_history_s_own_dates_are_trimmed_as_every_other_text(field: str) -> None:
    """From JSON bytes too (the service's path), where pydantic itself trims."""
    body = {**PLAIN, field: "\u00a0 2024-06-01\t"}
    for history in (
        PatientHistory.model_validate(body),
        PatientHistory.model_validate_json(json.dumps(body)),
    ):
        assert getattr(history, field) == "2024-06-01"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("marker", " ", "at least 1 character"),
        ("marker", "\u00a0", "at least 1 character"),
        ("unit", "\t", "at least 1 character"),
        ("value", True, "valid number"),
        ("value", "2.5", "valid number"),
        ("value", math.nan, "finite number"),
        ("value", math.inf, "finite number"),
    ],
)
def test_records_refuse_blank_words_and_values_that_are_not_numbers(
    field: str, value: object, message: str
) -> None:
    body = {**PLAIN, "measurements": [{**PLAIN["measurements"][2], field: value}]}  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match=message):
        PatientHistory.model_validate(body)


@pytest.mark.parametrize("patient_id", ["a/b", "a\\b", "p\x00", " "])
def test_a_patient_id_that_cannot_sit_in_a_url_is_refused(patient_id: str) -> None:
    with pytest.raises(ValidationError, match="patient_id"):
        PatientHistory.model_validate(
            {**PLAIN, "patient": {**PLAIN["patient"], "patient_id": patient_id}}
        )


def test_a_duplicate_measurement_is_refused_by_both_paths() -> None:
    twice = [PLAIN["measurements"][1], PLAIN["measurements"][1]]  # type: ignore[index]
    body = {**PLAIN, "measurements": twice}
    history = PatientHistory.model_validate(body)
    assert quick_parse(history, MANIFEST) is None
    with pytest.raises(CohortError, match="duplicate measurement"):
        history_to_cohort(history, MANIFEST)


def test_parsed_from_cohort_refuses_a_cohort_of_several_patients(
    make_cohort: Any,
) -> None:
    from cohort.load import load_cohort

    with pytest.raises(ValueError, match="one-patient cohort, got 4"):
        parsed_from_cohort(load_cohort(make_cohort()))


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("age", -5, "age must be between 18 and 100"),
        ("age", 100.5, "age must be between 18 and 100"),
        ("age", "17", "age must be between 18 and 100"),
        ("sex", "X", "sex must be one of \\['F', 'M'\\]"),
        ("sex", "f", "sex must be one of"),
    ],
)
def test_a_covariate_outside_the_manifest_s_range_or_levels_is_refused_by_both_paths(
    field: str, value: object, problem: str
) -> None:
    body = {**PLAIN, "patient": {**PLAIN["patient"], field: value}}
    history = PatientHistory.model_validate(body)
    assert quick_parse(history, MANIFEST) is None
    with pytest.raises(CohortError, match=problem) as raised:
        history_to_cohort(history, MANIFEST)
    [found] = raised.value.problems
    assert (found.file, found.column) == ("patient", field)


@pytest.mark.parametrize(
    ("field", "value"), [("age", 18), ("age", "100"), ("sex", " F"), ("sex", None)]
)
def test_a_covariate_at_the_edge_of_its_range_or_among_its_levels_is_accepted_by_both(
    field: str, value: object
) -> None:
    history = PatientHistory.model_validate(
        {**PLAIN, "patient": {**PLAIN["patient"], field: value}}
    )
    quick = quick_parse(history, MANIFEST)
    assert quick is not None
    assert_same(quick, parsed_from_cohort(history_to_cohort(history, MANIFEST)))
