"""FHIR Bundles in: parsed by fhir.resources, only this patient's final results, every shape
error a 422 naming the entry; the RiskAssessment out names its basis and validates."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fhir.resources.R4B.riskassessment import RiskAssessment
from sqlalchemy import func, select

from serving.fhir import POINT_ESTIMATE_URL, risk_assessment
from serving.store import Assessment, Store
from tests.serving.conftest import Api
from tests.serving.test_risk import bundle

RISK = "/v1/risk?as_of=2024-07-01"
FHIR_OUT = {"Accept": "application/fhir+json"}


def entry(b: dict[str, Any], i: int) -> dict[str, Any]:
    resource: dict[str, Any] = b["entry"][i]["resource"]
    return resource


def _set(path: str, value: Any) -> Any:
    """A change to Observation entry 2 (AFP): ``path`` is dotted, ``value`` ``DELETE`` drops."""

    def change(b: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = entry(b, 2)
        for p in parents:
            node = node[p]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value

    return change


DELETE = object()
SHAPE_ERRORS = {
    "no unit": (_set("valueQuantity.unit", DELETE), ["valueQuantity", "unit"]),
    "null value": (_set("valueQuantity.value", None), ["valueQuantity", "value"]),
    "text value": (_set("valueQuantity.value", "2"), ["valueQuantity", "value"]),
    "boolean value": (_set("valueQuantity.value", True), ["valueQuantity", "value"]),
    "code as a string": (_set("code", "1834-1"), ["code"]),
    "string effectivePeriod": (_set("effectivePeriod", "2024-01-08"), ["effectivePeriod"]),
    "numeric extension": (_set("extension", 5), ["extension"]),
    "no valueQuantity": (_set("valueQuantity", DELETE), ["valueQuantity"]),
    "no date": (_set("effectiveDateTime", DELETE), ["effectiveDateTime"]),
    "bad comparator": (_set("valueQuantity.comparator", "<="), ["valueQuantity", "comparator"]),
}


@pytest.mark.parametrize("case", sorted(SHAPE_ERRORS))
def test_a_bundle_of_the_wrong_shape_is_a_422_naming_the_entry_and_element(
    api: Api, store: Store, case: str
) -> None:
    change, element = SHAPE_ERRORS[case]
    b = bundle()
    change(b)
    r = api.clinician.post(RISK, json=b)
    assert r.status_code == 422, r.text
    locs = [p["loc"] for p in r.json()["detail"]]
    assert ["body", "entry", 2, "resource", *element] in locs, locs
    with store.reading() as s:
        assert s.scalar(select(func.count()).select_from(Assessment)) == 0


@pytest.mark.parametrize(
    ("patient_id", "msg"),
    [("p" * 129, "at most 64 characters"), ("p/1", "pattern"), ("p 1", "pattern")],
)
def test_a_patient_id_fhir_or_this_service_cannot_take_is_a_422_at_the_patient_entry(
    api: Api, patient_id: str, msg: str
) -> None:
    b = bundle()
    entry(b, 0)["id"] = patient_id
    for i in (1, 2, 3):
        entry(b, i)["subject"] = {"reference": f"Patient/{patient_id}"}
    r = api.clinician.post(RISK, json=b)
    assert r.status_code == 422, r.text
    [problem] = r.json()["detail"]
    assert problem["loc"] == ["body", "entry", 0, "resource", "id"]
    assert msg in problem["msg"]


@pytest.mark.parametrize(
    "subject",
    [
        {"reference": "Patient/p-0099"},
        {"reference": "https://ehr.example/fhir/Patient/p-0099"},
        {"identifier": {"value": "p-0099"}},
        None,
    ],
)
def test_an_observation_about_another_patient_is_a_422_naming_its_entry(
    api: Api, store: Store, subject: dict[str, Any] | None
) -> None:
    b = bundle()
    if subject is None:
        del entry(b, 3)["subject"]
    else:
        entry(b, 3)["subject"] = subject
    r = api.clinician.post(RISK, json=b)
    assert r.status_code == 422, r.text
    assert [p["loc"] for p in r.json()["detail"]] == [["body", "entry", 3, "resource", "subject"]]
    assert "is not the Bundle's Patient" in r.json()["detail"][0]["msg"]
    with store.reading() as s:
        assert s.scalar(select(func.count()).select_from(Assessment)) == 0


@pytest.mark.parametrize(
    "subject",
    [
        {"reference": "https://ehr.example/fhir/Patient/p-0042"},
        {"reference": "urn:uuid:patient-1"},
        {"identifier": {"value": "p-0042"}},
    ],
)
def test_an_observation_may_refer_to_the_patient_by_url_full_url_or_identifier(
    api: Api, subject: dict[str, Any]
) -> None:
    b = bundle()
    b["entry"][0]["fullUrl"] = "urn:uuid:patient-1"
    entry(b, 3)["subject"] = subject
    r = api.clinician.post(RISK, json=b)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("status", ["preliminary", "registered", "entered-in-error", "cancelled"])
def test_only_final_results_enter_the_risk_and_the_others_are_reported(
    api: Api, status: str
) -> None:
    without = bundle()
    del without["entry"][3]
    b = bundle()
    entry(b, 3)["status"] = status
    entry(b, 3)["valueQuantity"]["value"] = 40  # would raise the risk if it were used
    r, ref = api.clinician.post(RISK, json=b), api.clinician.post(RISK, json=without)
    assert (r.status_code, ref.status_code) == (200, 200), r.text
    assert r.json()["risk"] == ref.json()["risk"]
    [ignored] = r.json()["ignored"]
    assert ignored["loc"] == ["body", "entry", 3, "resource", "status"]
    assert status in ignored["msg"]


@pytest.mark.parametrize("status", ["final", "amended", "corrected"])
def test_amended_and_corrected_results_are_used(api: Api, status: str) -> None:
    b = bundle()
    entry(b, 3)["status"] = status
    r = api.clinician.post(RISK, json=b)
    assert r.status_code == 200, r.text
    assert r.json()["ignored"] == []
    assert "Observation/obs-3" in r.json()["basis"]


def test_accept_fhir_json_answers_a_risk_assessment_whose_basis_is_the_observations_used(
    api: Api,
) -> None:
    b = bundle()
    later = copy.deepcopy(b["entry"][3])
    later["resource"]["id"] = "obs-4"
    later["resource"]["effectiveDateTime"] = "2024-09-01T08:00:00Z"  # after as_of: not used
    b["entry"].append(later)
    r = api.clinician.post(RISK, json=b, headers=FHIR_OUT)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    ra = r.json()
    assert ra["resourceType"] == "RiskAssessment"
    assert [x["reference"] for x in ra["basis"]] == [
        "Observation/obs-1",
        "Observation/obs-2",
        "Observation/obs-3",
    ]
    RiskAssessment.model_validate(ra)  # a valid R4(B) resource


def test_a_json_body_with_accept_fhir_json_answers_a_risk_assessment(api: Api) -> None:
    from tests.serving.test_risk import HISTORY

    r = api.clinician.post("/v1/risk", json=HISTORY, headers=FHIR_OUT)
    assert r.status_code == 200, r.text
    assert r.json()["resourceType"] == "RiskAssessment"
    assert "basis" not in r.json()  # no Observations were posted


def test_a_risk_interval_becomes_the_prediction_s_probability_range() -> None:
    doc = {
        "assessment_id": "4f1c0f4e-1f0e-4c55-9d8c-1c1a7a0c2b11",
        "patient_id": "p-1",
        "as_of": "2024-07-01",
        "risk": {"180": 0.08, "365": 0.21},
        "risk_interval": {"180": {"low": 0.04, "high": 0.13}},
        "risk_band": "high",
        "alarm_horizon_days": 365.0,
        "alarm_threshold": 0.18,
        "imaging": {
            "recommendation": "keep_schedule",
            "next_imaging_date": "2024-07-10",
            "expected_lead_days": None,
        },
        "model": {"name": "ctcmon-recurrence", "version": "3"},
        "issued_at": "2024-07-01T10:00:00Z",
    }
    ra = risk_assessment(doc)
    RiskAssessment.model_validate(ra)
    first, second = ra["prediction"]
    assert first["probabilityRange"] == {"low": {"value": 0.04}, "high": {"value": 0.13}}
    assert first["extension"] == [{"url": POINT_ESTIMATE_URL, "valueDecimal": 0.08}]
    assert "probabilityDecimal" not in first
    assert second["probabilityDecimal"] == 0.21 and "probabilityRange" not in second
    assert not any("cross-fitted" in n["text"] for n in ra["note"])
    crossed = risk_assessment({**doc, "cross_fitted": True})
    RiskAssessment.model_validate(crossed)
    assert any("cross-fitted" in n["text"] for n in crossed["note"])


@pytest.mark.parametrize(
    ("birth", "msg"), [("2030-01-01", "between 18 and 110"), ("2015-01-01", "between 18 and 110")]
)
def test_an_age_from_an_implausible_birth_date_is_a_422_at_the_patient_entry(
    api: Api, store: Store, birth: str, msg: str
) -> None:
    b = bundle()
    entry(b, 0)["birthDate"] = birth
    r = api.clinician.post(RISK, json=b)
    assert r.status_code == 422, r.text
    [problem] = r.json()["detail"]
    assert problem["loc"][:4] == ["body", "entry", 0, "resource"] and msg in problem["msg"]
    with store.reading() as s:
        assert s.scalar(select(func.count()).select_from(Assessment)) == 0


@pytest.mark.parametrize("kind", ["Infinity", 1.5, None, "observation"])
def test_an_entry_of_no_fhir_resource_type_is_a_422_naming_it(
    api: Api, store: Store, kind: Any
) -> None:
    """fhir.resources raised KeyError / TypeError for these (500s found by the fuzzer)."""
    b = bundle()
    entry(b, 3)["resourceType"] = kind
    r = api.clinician.post(RISK, json=b)
    assert r.status_code == 422, r.text
    [problem] = r.json()["detail"]
    assert problem["loc"] == ["body", "entry", 3, "resource", "resourceType"]
    assert "not a FHIR resource type" in problem["msg"]
    with store.reading() as s:
        assert s.scalar(select(func.count()).select_from(Assessment)) == 0
