"""POST /v1/risk: JSON records or a FHIR Bundle in; an assessment or a RiskAssessment out."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from serving.fhir import COVARIATE_URL, INDEX_DATE_URL, MARKER_SYSTEM
from serving.store import Assessment, Store
from tests.serving.conftest import PATIENT, Api

HISTORY = {
    "patient": {**PATIENT, "site_id": "site-a"},
    "measurements": [
        {"date": "2024-01-08", "marker": "ctc_total", "value": 3, "unit": "cells/7.5mL"},
        {"date": "2024-01-08", "marker": "afp", "value": 2, "unit": "ng/mL", "qualifier": "<"},
        {"date": "2024-04-08", "marker": "ctc_total", "value": 7, "unit": "cells/7.5mL"},
    ],
    "imaging": [{"date": "2024-04-10", "modality": "MRI", "finding": "no_evidence"}],
    "as_of": "2024-07-01",
    "next_imaging_date": "2024-07-10",
}


def bundle() -> dict[str, Any]:
    def obs(
        i: int, system: str, code: str, day: str, value: float, unit: str, **q: Any
    ) -> dict[str, Any]:
        return {
            "fullUrl": f"urn:uuid:obs-{i}",
            "resource": {
                "resourceType": "Observation",
                "id": f"obs-{i}",
                "status": "final",
                "code": {"coding": [{"system": system, "code": code}]},
                "subject": {"reference": "Patient/p-0042"},
                "effectiveDateTime": f"{day}T08:30:00+01:00",
                "valueQuantity": {"value": value, "unit": unit, **q},
            },
        }

    patient = {
        "resourceType": "Patient",
        "id": "p-0042",
        "gender": "male",
        "birthDate": "1962-05-01",
        "extension": [
            {"url": INDEX_DATE_URL, "valueDate": "2024-01-10"},
            {"url": COVARIATE_URL + "microvascular_invasion", "valueInteger": 1},
        ],
    }
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": patient},
            obs(1, MARKER_SYSTEM, "ctc_total", "2024-01-08", 3, "cells/7.5mL"),
            obs(2, "http://loinc.org", "1834-1", "2024-01-08", 2, "ng/mL", comparator="<"),
            obs(3, MARKER_SYSTEM, "ctc_total", "2024-04-08", 7, "cells/7.5mL"),
        ],
    }


def test_a_posted_history_gets_an_assessment_that_is_stored(api: Api, store: Store) -> None:
    r = api.clinician.post("/v1/risk", json=HISTORY)
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["as_of"] == "2024-07-01"
    assert a["imaging"]["next_imaging_date"] == "2024-07-10"
    assert a["imaging"]["last_imaging_date"] == "2024-04-10"
    assert a["model"]["version"] == "1"
    with store.reading() as s:
        stored = s.scalars(select(Assessment)).one()
    assert stored.assessment_id == a["assessment_id"] and stored.source == "risk"


def test_a_posted_history_of_a_registered_patient_is_listed_with_that_patient(
    api: Api, patient: dict[str, Any], store: Store
) -> None:
    other = {**HISTORY, "patient": {**HISTORY["patient"], "patient_id": "not-registered"}}
    linked = api.clinician.post("/v1/risk", json=HISTORY)
    loose = api.clinician.post("/v1/risk", json=other)
    assert linked.status_code == loose.status_code == 200
    listed = api.clinician.get(f"/v1/patients/{patient['patient_id']}/assessments")
    assert listed.status_code == 200
    assert [a["assessment_id"] for a in listed.json()] == [linked.json()["assessment_id"]]
    with store.reading() as s:
        row = s.scalars(
            select(Assessment).where(Assessment.assessment_id == loose.json()["assessment_id"])
        ).one()
    assert row.patient_pk is None and row.patient_id == "not-registered"


def test_data_after_as_of_is_ignored(api: Api) -> None:
    later = {
        **HISTORY,
        "measurements": [
            *HISTORY["measurements"],
            {"date": "2024-09-01", "marker": "ctc_total", "value": 90, "unit": "cells/7.5mL"},
        ],
    }
    a, b = api.clinician.post("/v1/risk", json=HISTORY), api.clinician.post("/v1/risk", json=later)
    assert (a.status_code, b.status_code) == (200, 200)
    assert a.json()["risk"] == b.json()["risk"]


def test_a_bad_history_lists_every_problem(api: Api, store: Store) -> None:
    bad = {
        **HISTORY,
        "measurements": [
            {"date": "2024-02-30", "marker": "ctc_total", "value": 3, "unit": "cells/7.5mL"},
            {"date": "2024-03-01", "marker": "afp", "value": -2, "unit": "ng/mL"},
        ],
    }
    r = api.clinician.post("/v1/risk", json=bad)
    assert r.status_code == 422
    assert {tuple(p["loc"]) for p in r.json()["detail"]} == {
        ("body", "measurements", 0, "date"),
        ("body", "measurements", 1, "value"),
    }
    with store.reading() as s:
        assert s.scalars(select(Assessment)).first() is None


def test_a_history_of_another_site_answers_403(api: Api) -> None:
    r = api.clinician.post(
        "/v1/risk", json={**HISTORY, "patient": {**PATIENT, "site_id": "site-b"}}
    )
    assert r.status_code == 403


def test_a_fhir_bundle_gives_the_same_assessment_as_the_json_records(api: Api) -> None:
    as_json = api.clinician.post(
        "/v1/risk", json={**HISTORY, "imaging": [], "next_imaging_date": None}
    )
    as_fhir = api.clinician.post(
        "/v1/risk?as_of=2024-07-01",
        json=bundle(),
        headers={"Content-Type": "application/fhir+json"},
    )
    assert (as_json.status_code, as_fhir.status_code) == (200, 200), as_fhir.text
    assert as_fhir.json()["risk"] == as_json.json()["risk"]


def test_an_unknown_fhir_code_is_a_422_naming_the_entry(api: Api) -> None:
    b = bundle()
    b["entry"][1]["resource"]["code"]["coding"][0] = {
        "system": "http://loinc.org",
        "code": "0000-0",
    }
    r = api.clinician.post("/v1/risk?as_of=2024-07-01", json=b)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "entry", 1, "resource", "code"]


def test_the_assessment_comes_back_as_a_fhir_risk_assessment(api: Api) -> None:
    r = api.clinician.post("/v1/risk?format=fhir", json=HISTORY)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/fhir+json")
    ra = r.json()
    assert ra["resourceType"] == "RiskAssessment" and ra["status"] == "final"
    assert ra["subject"] == {"reference": "Patient/p-0042"}
    assert ra["occurrenceDateTime"] == "2024-07-01"
    assert [p["whenRange"]["high"]["value"] for p in ra["prediction"]] == [180.0, 365.0, 730.0]
    assert all(0 <= p["probabilityDecimal"] <= 1 for p in ra["prediction"])
    assert ra["method"]["coding"][0]["version"] == "1"
