from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cohort.errors import CohortError
from cohort.load import load_cohort
from cohort.records import PatientHistory, history_from_cohort, history_to_cohort, problem_loc


def history(**over: object) -> PatientHistory:
    body: dict[str, object] = {
        "patient": {
            "patient_id": "p-1",
            "site_id": "site-a",
            "index_date": "2024-01-10",
            "age": 61,
            "sex": "M",
            "microvascular_invasion": 1,
        },
        "measurements": [
            {"date": "2024-01-08", "marker": "ctc_total", "value": 3, "unit": "cells/7.5mL"},
            {"date": "2024-02-08", "marker": "ctc_total", "value": 2, "unit": "cells/5mL"},
            {"date": "2024-01-08", "marker": "afp", "value": 2, "unit": "ng/mL", "qualifier": "<"},
        ],
        "imaging": [{"date": "2024-04-10", "modality": "MRI", "finding": "no_evidence"}],
    }
    body.update(over)
    return PatientHistory.model_validate(body)


def test_a_history_is_validated_and_converted_like_a_cohort(
    make_cohort: Callable[..., Path],
) -> None:
    manifest = load_cohort(make_cohort()).manifest
    cohort = history_to_cohort(history(), manifest)
    m = cohort.measurements
    assert m.loc[m.day == 29, "value"].item() == pytest.approx(3.0)  # cells/5mL x 1.5
    assert cohort.patients.loc[0, "age"] == 61


def test_every_bad_value_in_a_history_is_located(make_cohort: Callable[..., Path]) -> None:
    manifest = load_cohort(make_cohort()).manifest
    bad = history(
        measurements=[
            {"date": "2024-01-08", "marker": "ctc_total", "value": -1, "unit": "cells/7.5mL"},
            {"date": "2024-13-08", "marker": "cea", "value": 1, "unit": "ng/mL"},
        ]
    )
    with pytest.raises(CohortError) as info:
        history_to_cohort(bad, manifest)
    locs = {tuple(problem_loc(p)) for p in info.value.problems}
    assert ("measurements", 0, "value") in locs
    assert ("measurements", 1, "date") in locs
    assert ("measurements", 1, "marker") in locs


def test_a_covariate_the_model_does_not_know_is_refused(make_cohort: Callable[..., Path]) -> None:
    manifest = load_cohort(make_cohort()).manifest
    bad = history(patient={"patient_id": "p", "index_date": "2024-01-01", "tumour_size": 3})
    with pytest.raises(CohortError, match="unknown covariate 'tumour_size'"):
        history_to_cohort(bad, manifest)


def test_a_cohort_patient_round_trips_through_a_history(make_cohort: Callable[..., Path]) -> None:
    cohort = load_cohort(make_cohort())
    h = history_from_cohort(cohort, "p1")
    again = history_to_cohort(h, cohort.manifest)
    original = cohort.measurements[cohort.measurements.patient_id == "p1"]
    assert again.measurements["value"].tolist() == pytest.approx(original["value"].tolist())
    with pytest.raises(ValueError, match="patient 'nobody' is not in cohort"):
        history_from_cohort(cohort, "nobody")
