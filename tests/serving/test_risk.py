"""POST /v1/risk: JSON records or a FHIR Bundle in; an assessment or a RiskAssessment out."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, select
from starlette.requests import Request

from cohort.records import PatientHistory
from serving.fhir import COVARIATE_URL, INDEX_DATE_URL, MARKER_SYSTEM
from serving.routes import CheckedBodyRequest
from serving.routes.risk import HistoryFirstRequest, RiskBody
from serving.service import risk
from serving.store import Assessment, AuditEvent, Store
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
    for p in ra["prediction"]:  # with the model's interval, the prediction is its Range
        point = p["extension"][0]["valueDecimal"] if "probabilityRange" in p else None
        low, high = (
            (p["probabilityRange"][k]["value"] for k in ("low", "high")) if point else (0, 1)
        )
        assert 0 <= low <= (point or p.get("probabilityDecimal")) <= high <= 1
    assert ra["method"]["coding"][0]["version"] == "1"


def _read(request_class: type[Request], raw: bytes) -> Any:
    """What the route gets from a JSON body read by ``request_class``: the validated body,
    or the validation errors with the reason the body could not be read."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    request = request_class({"type": "http", "method": "POST", "headers": []}, receive)
    try:
        value = asyncio.run(request.json())
    except json.JSONDecodeError as exc:
        return ("json", exc.msg, exc.pos)
    try:
        body = TypeAdapter(RiskBody).validate_python(value)
    except ValidationError as exc:
        errors = [(e["loc"], e["msg"], e["type"]) for e in exc.errors()]
        return ("invalid", errors, getattr(request.state, "body_problem", None))
    return ("ok", type(body).__name__, body.model_dump())


BODIES = {
    "history": json.dumps(HISTORY),
    "fhir": json.dumps(bundle()),
    "models refuse": json.dumps(
        {
            **HISTORY,
            "patient": {"patient_id": ""},
            "measurements": [{"marker": "afp", "value": "high", "unit": "ng/mL", "x": 1}],
            "extra": 1,
        }
    ),
    "bad bundle": json.dumps({"resourceType": "Bundle", "entry": "x"}),
    "not an object": "[1, 2]",
    "bad json": '{"patient": ',
    "duplicate key": json.dumps(HISTORY)[:-1] + ', "as_of": "2024-08-01"}',
    # json.loads takes a lone surrogate, pydantic's parser does not
    "lone surrogate": json.dumps(HISTORY).replace("p-0042", "p-\\ud800"),
}


JSON_CONTENT = {"Content-Type": "application/json"}


@pytest.mark.parametrize("name", sorted(BODIES))
def test_a_body_read_history_first_validates_exactly_as_any_checked_json_body(
    name: str,
) -> None:
    raw = BODIES[name].encode()
    assert _read(HistoryFirstRequest, raw) == _read(CheckedBodyRequest, raw)


def test_a_history_is_validated_once_straight_from_its_bytes() -> None:
    ok, kind, _ = _read(HistoryFirstRequest, BODIES["history"].encode())
    assert (ok, kind) == ("ok", "PatientHistory")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODIES["history"].encode(), "more_body": False}

    request = HistoryFirstRequest({"type": "http", "method": "POST", "headers": []}, receive)
    assert isinstance(asyncio.run(request.json()), PatientHistory)


def test_the_route_reads_a_history_body_history_first(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI reads JSON bodies with ``request.json()``: if it stopped, the history-first
    read would silently stop being used (still correct, slower)."""
    seen: list[type] = []
    read = HistoryFirstRequest.json

    async def spy(self: HistoryFirstRequest) -> Any:
        value = await read(self)
        seen.append(type(value))
        return value

    monkeypatch.setattr(HistoryFirstRequest, "json", spy)
    assert api.clinician.post("/v1/risk", json=HISTORY).status_code == 200
    assert seen == [PatientHistory]


def test_a_body_the_models_refuse_lists_every_problem_with_the_query_s_and_stores_nothing(
    api: Api, store: Store
) -> None:
    r = api.clinician.post(
        "/v1/risk?format=xml", content=BODIES["models refuse"], headers=JSON_CONTENT
    )
    assert r.status_code == 422
    assert [(p["loc"], p["msg"]) for p in r.json()["detail"]] == [
        (["query", "format"], "Input should be 'json' or 'fhir'"),
        (["body", "patient", "patient_id"], "String should have at least 1 character"),
        (["body", "patient", "index_date"], "Field required"),
        # a value is a JSON number: text is refused, not parsed
        (["body", "measurements", 0, "value"], "Input should be a valid number"),
        (["body", "measurements", 0, "x"], "Extra inputs are not permitted"),
        (["body", "extra"], "Extra inputs are not permitted"),
    ]
    with store.reading() as s:
        assert s.scalar(select(func.count()).select_from(Assessment)) == 0


def test_an_unauthenticated_request_is_refused_before_its_body_is_validated(api: Api) -> None:
    r = api.anonymous.post("/v1/risk", content=BODIES["models refuse"], headers=JSON_CONTENT)
    assert r.status_code == 401


def test_a_posted_assessment_is_audited_with_its_id(api: Api, store: Store) -> None:
    a = api.clinician.post("/v1/risk", json=HISTORY).json()
    with store.reading() as s:
        events = [
            (e.key_id, e.site_id, e.action, e.resource, e.patient_id, e.ref)
            for e in s.scalars(select(AuditEvent))
        ]
    assert events == [
        (api.keys.ids["clinician"], "site-a", "write", "risk", "p-0042", a["assessment_id"])
    ]


def test_a_retried_risk_request_with_the_same_idempotency_key_returns_the_first_assessment(
    api: Api, store: Store
) -> None:
    headers = {"Idempotency-Key": "ehr-req-1"}
    first = api.clinician.post("/v1/risk", json=HISTORY, headers=headers)
    retry = api.clinician.post("/v1/risk", json=HISTORY, headers=headers)
    other = api.clinician.post("/v1/risk", json={**HISTORY, "as_of": "2024-08-01"}, headers=headers)
    assert (first.status_code, retry.status_code, other.status_code) == (200, 200, 409)
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    with store.reading() as s:
        assert s.scalar(select(func.count()).select_from(Assessment)) == 1
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 1


def test_an_assessment_is_stored_with_its_audit_event_or_not_at_all(
    api: Api, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def audit_fails(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr(risk, "audit", audit_fails)
    r = api.clinician.post("/v1/risk", json=HISTORY)
    assert r.status_code == 500
    assert "audit" not in r.text
    with store.reading() as s:
        assert s.scalar(select(func.count()).select_from(Assessment)) == 0


def test_a_training_patient_posted_without_a_site_is_assessed_at_the_key_s_site(
    trained_store: dict[str, Any], tmp_path: Path
) -> None:
    """Cross-fitting knows a training patient by site and id: a body without ``site_id`` is
    the key's site's patient, so the model that left them out serves them."""
    import httpx

    from cohort.records import history_from_cohort
    from serving.app import create_app
    from serving.auth import create_key
    from serving.model import ModelHolder
    from serving.settings import Settings

    cohort = trained_store["cohort"]
    pid = str(cohort.patients["patient_id"].iloc[4])
    history = history_from_cohort(cohort, pid)
    site = history.patient.site_id
    assert site
    body = history.model_dump(mode="json", exclude_none=True)
    del body["patient"]["site_id"]
    db = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    store = Store(db)
    store.migrate()
    _, token = create_key(store, "clinician", site)
    _, other = create_key(store, "clinician", "another-site")
    holder = ModelHolder("models:/ctcmon-recurrence@champion", trained_store["uri"])
    app = create_app(Settings(database_url=db, model_poll_seconds=0), holder=holder)

    async def post_as(*tokens: str) -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as c:
                return [
                    await c.post("/v1/risk", json=body, headers={"Authorization": f"Bearer {t}"})
                    for t in tokens
                ]

    mine, theirs = asyncio.run(post_as(token, other))
    assert mine.status_code == theirs.status_code == 200, (mine.text, theirs.text)
    assert mine.json()["cross_fitted"] is True
    assert theirs.json()["cross_fitted"] is False  # the same id at another site: a new patient
    assert mine.json()["risk"] != theirs.json()["risk"]
