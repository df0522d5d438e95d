"""Bad input gets a clear 4xx naming what is wrong and where, and stores nothing; what the
contract accepts (after trimming blanks) is exactly what is stored."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from serving.store import Assessment, Draw, Measurement, Patient, Store
from tests.serving.conftest import PATIENT, Api, draw
from tests.serving.test_risk import HISTORY

DRAWS = "/v1/patients/p-0042/draws"


def count(store: Store, table: type) -> int:
    with store.reading() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def with_measurement(**change: Any) -> dict[str, Any]:
    m = {**HISTORY["measurements"][1], **change}  # type: ignore[index]
    return {**HISTORY, "measurements": [m]}


def one_draw(**change: Any) -> dict[str, Any]:
    body = draw("2024-03-01")
    body["measurements"][1] = {**body["measurements"][1], **change}
    return body


BLANKS = [" ", "\t", "\u00a0", " \u00a0\t"]


@pytest.mark.parametrize("blank", BLANKS)
def test_a_marker_of_blanks_is_a_422_on_risk_and_draws(
    api: Api, patient: dict[str, Any], store: Store, blank: str
) -> None:
    risk = api.clinician.post("/v1/risk", json=with_measurement(marker=blank))
    assert risk.status_code == 422, risk.text
    assert risk.json()["detail"][0]["loc"] == ["body", "measurements", 0, "marker"]
    drawn = api.clinician.post(DRAWS, json=one_draw(marker=blank))
    assert drawn.status_code == 422, drawn.text
    assert drawn.json()["detail"][0]["loc"] == ["body", "measurements", 1, "marker"]
    assert count(store, Assessment) == 0 and count(store, Draw) == 0


def test_blanks_around_a_marker_or_unit_are_trimmed_and_the_trimmed_words_stored(
    api: Api, patient: dict[str, Any], store: Store
) -> None:
    r = api.clinician.post(DRAWS, json=one_draw(marker=" afp\t", unit="ng/mL\u00a0"))
    assert r.status_code == 201, r.text
    with store.reading() as s:
        stored = {(m.marker, m.original_unit) for m in s.scalars(select(Measurement))}
    assert stored == {("ctc_total", "cells/7.5mL"), ("afp", "ng/mL")}
    same = api.clinician.post("/v1/risk", json=with_measurement(marker=" afp ", unit=" ng/mL"))
    assert same.status_code == 200, same.text


@pytest.mark.parametrize(
    ("change", "loc", "msg"),
    [
        ({"value": True}, ["value"], "valid number"),
        ({"value": "18.2"}, ["value"], "valid number"),
        ({"value": None}, ["value"], "valid number"),
        ({"marker": "ctc_total", "unit": "cells/7.5mL", "value": 2.5}, ["value"], "whole number"),
    ],
)
def test_values_are_json_numbers_and_counts_whole(
    api: Api,
    patient: dict[str, Any],
    store: Store,
    change: dict[str, Any],
    loc: list[Any],
    msg: str,
) -> None:
    body = draw("2024-03-01")
    body["measurements"] = [body["measurements"][1] | change]
    r = api.clinician.post(DRAWS, json=body)
    assert r.status_code == 422, r.text
    [problem] = r.json()["detail"]
    assert problem["loc"] == ["body", "measurements", 0, *loc] and msg in problem["msg"]
    assert count(store, Draw) == 0


@pytest.mark.parametrize(
    ("body", "loc", "msg"),
    [
        ({**HISTORY, "as_of": "2099-01-01"}, ["body", "as_of"], "in the future"),
        ({**HISTORY, "as_of": "2023-12-01"}, ["body", "as_of"], "before the index date"),
        (
            {**HISTORY, "patient": {**HISTORY["patient"], "index_date": "2099-01-01"}},
            ["body", "patient", "index_date"],
            "in the future",
        ),
        (
            with_measurement(date="2021-12-31"),
            ["body", "measurements", 0, "date"],
            "more than 365 days before the index date",
        ),
        (
            with_measurement(date="2099-01-01"),
            ["body", "measurements", 0, "date"],
            "in the future",
        ),
        (
            {**HISTORY, "imaging": [{**HISTORY["imaging"][0], "date": "2099-01-01"}]},  # type: ignore[index]
            ["body", "imaging", 0, "date"],
            "in the future",
        ),
        (  # an index date in year 1: the pre-index window starts at the calendar's start
            {
                **with_measurement(date="2099-01-01"),
                "patient": {**HISTORY["patient"], "index_date": "0001-01-01"},
            },
            ["body", "measurements", 0, "date"],
            "in the future",
        ),
    ],
)
def test_risk_applies_the_date_rules_of_draws(
    api: Api, store: Store, body: dict[str, Any], loc: list[Any], msg: str
) -> None:
    r = api.clinician.post("/v1/risk", json=body)
    assert r.status_code == 422, r.text
    problems = {tuple(p["loc"]): p["msg"] for p in r.json()["detail"]}
    assert msg in problems[tuple(loc)], problems
    assert count(store, Assessment) == 0


@pytest.mark.parametrize("patient_id", ["a/b", "a\\b", "tab\there"])
def test_a_patient_id_that_cannot_be_routed_is_refused(
    api: Api, store: Store, patient_id: str
) -> None:
    r = api.clinician.post("/v1/patients", json={**PATIENT, "patient_id": patient_id})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "patient_id"]
    assert count(store, Patient) == 0


def test_a_patient_id_is_trimmed_the_same_way_when_registered_and_when_addressed(
    api: Api, store: Store
) -> None:
    r = api.clinician.post("/v1/patients", json={**PATIENT, "patient_id": " p-0042\u00a0"})
    assert r.status_code == 201, r.text
    assert r.json()["patient_id"] == "p-0042"
    with store.reading() as s:
        assert s.scalars(select(Patient.patient_id)).all() == ["p-0042"]
    assert api.clinician.get("/v1/patients/%20p-0042%20").status_code == 200
    assert (
        api.clinician.post("/v1/patients/p-0042%20/draws", json=draw("2024-03-01")).status_code
        == 201
    )
    assessed = api.clinician.post(
        "/v1/risk", json={**HISTORY, "patient": {**HISTORY["patient"], "patient_id": " p-0042 "}}
    )
    assert assessed.json()["patient_id"] == "p-0042"


# the simulator's manifest (the model's): age within [18, 110], sex one of F, M
IMPLAUSIBLE = [
    ("age", -5, "age must be between 18 and 110"),
    ("age", 150, "age must be between 18 and 110"),
    ("age", "17", "age must be between 18 and 110"),
    ("sex", "X", "sex must be one of ['F', 'M']"),
    ("bclc_stage", "E", "bclc_stage must be one of ['0', 'A', 'B', 'C', 'D']"),
]


@pytest.mark.parametrize(("field", "value", "msg"), IMPLAUSIBLE)
def test_an_implausible_covariate_is_a_422_naming_it_on_risk_and_registration(
    api: Api, store: Store, field: str, value: Any, msg: str
) -> None:
    risk = api.clinician.post(
        "/v1/risk", json={**HISTORY, "patient": {**HISTORY["patient"], field: value}}
    )
    assert risk.status_code == 422, risk.text
    [problem] = risk.json()["detail"]
    assert problem["loc"] == ["body", "patient", field] and msg in problem["msg"], problem
    registered = api.clinician.post("/v1/patients", json={**PATIENT, field: value})
    assert registered.status_code == 422, registered.text
    [problem] = registered.json()["detail"]
    assert problem["loc"] == ["body", field] and msg in problem["msg"], problem
    assert count(store, Assessment) == 0 and count(store, Patient) == 0


def test_a_draw_for_a_patient_stored_with_an_implausible_covariate_is_a_422_naming_it(
    api: Api, store: Store
) -> None:
    """A record stored before the model stated a range (or under another model's) is
    refused at its next draw, saying which covariate to correct; nothing is stored."""
    with store.writing() as s:
        s.add(
            Patient(
                site_id="site-a",
                patient_id="p-0042",
                index_date=date(2024, 1, 10),
                covariates={"age": -5, "sex": "M"},
                revision=0,
                created_at=datetime.now(UTC),
            )
        )
    r = api.clinician.post(DRAWS, json=draw("2024-03-01"))
    assert r.status_code == 422, r.text
    assert any("age must be between 18 and 110" in p["msg"] for p in r.json()["detail"])
    assert count(store, Draw) == 0 and count(store, Assessment) == 0


def test_the_model_and_the_openapi_state_the_covariates_ranges_and_levels(api: Api) -> None:
    model = api.clinician.get("/v1/model").json()
    assert model["covariate_ranges"]["age"] == [18, 110]
    assert model["covariate_levels"]["sex"] == ["F", "M"]
    record = api.anonymous.get("/openapi.json").json()["components"]["schemas"]["PatientRecord"]
    age, sex = record["properties"]["age"]["anyOf"], record["properties"]["sex"]["anyOf"]
    assert {"type": "number", "minimum": 18, "maximum": 110} in age
    assert {"type": "string", "enum": ["F", "M"]} in sex
    assert record["additionalProperties"] is False
