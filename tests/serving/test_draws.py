"""A clinician's draw: assessment, storage, listing, bad input, duplicates, idempotency."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, text

from serving.service import draws
from serving.store import Assessment, AuditEvent, Draw, Measurement, Store
from tests.serving.conftest import PATIENT, Api, draw

HORIZONS = {"180", "365", "730"}


def count(store: Store, table: Any) -> int:
    with store.reading() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def test_a_draw_returns_an_assessment_with_the_model_version_and_imaging_advice(
    api: Api, patient: dict[str, Any]
) -> None:
    r = api.clinician.post("/v1/patients/p-0042/draws", json=draw("2024-04-10"))
    assert r.status_code == 201, r.text
    a = r.json()
    assert a["patient_id"] == "p-0042" and a["as_of"] == "2024-04-10"
    assert set(a["risk"]) == HORIZONS
    assert all(0.0 <= v <= 1.0 for v in a["risk"].values())
    assert a["risk"]["180"] <= a["risk"]["365"] <= a["risk"]["730"]
    assert a["risk_band"] in {"low", "intermediate", "high"}
    assert isinstance(a["alarm"], bool) and 0 < a["alarm_threshold"] < 1
    assert a["imaging"]["recommendation"] in {"bring_imaging_forward", "keep_schedule"}
    assert a["imaging"]["next_imaging_date"] > "2024-04-10"
    assert a["model"]["name"] == "ctcmon-recurrence" and a["model"]["version"] == "1"
    assert a["assessment_id"] and a["issued_at"].endswith("Z")


def test_a_draw_is_stored_with_its_assessment_and_listed_oldest_first(
    api: Api, patient: dict[str, Any], store: Store
) -> None:
    first = api.clinician.post("/v1/patients/p-0042/draws", json=draw("2024-02-10"))
    second = api.clinician.post("/v1/patients/p-0042/draws", json=draw("2024-04-10", ctc=9))
    assert (first.status_code, second.status_code) == (201, 201)
    r = api.clinician.get("/v1/patients/p-0042/assessments")
    assert r.status_code == 200
    listed = r.json()
    assert [a["assessment_id"] for a in listed] == [
        first.json()["assessment_id"],
        second.json()["assessment_id"],
    ]
    assert listed[0] == first.json()
    assert all(a["model"]["version"] == "1" for a in listed)
    record = api.clinician.get("/v1/patients/p-0042").json()
    assert [d["date"] for d in record["draws"]] == ["2024-02-10", "2024-04-10"]
    assert record["assessments"] == 2
    assert count(store, Draw) == 2 and count(store, Measurement) == 4


def test_a_draw_keeps_the_value_as_sent_and_the_canonical_value(
    api: Api, patient: dict[str, Any]
) -> None:
    body = {
        "date": "2024-03-01",
        "measurements": [
            {"marker": "ctc_total", "value": 2, "unit": "cells/5mL"},
            {"marker": "afp", "value": 10, "unit": "IU/mL"},
        ],
    }
    r = api.clinician.post("/v1/patients/p-0042/draws", json=body)
    assert r.status_code == 201, r.text
    stored = api.clinician.get("/v1/patients/p-0042").json()["draws"][0]["measurements"]
    by_marker = {m["marker"]: m for m in stored}
    assert by_marker["ctc_total"]["value"] == 2 and by_marker["ctc_total"]["unit"] == "cells/5mL"
    assert by_marker["ctc_total"]["canonical_value"] == 3.0
    assert by_marker["ctc_total"]["canonical_unit"] == "cells/7.5mL"
    assert abs(by_marker["afp"]["canonical_value"] - 12.1) < 1e-9


def test_bad_input_answers_422_with_every_problem_and_stores_nothing(
    api: Api, patient: dict[str, Any], store: Store
) -> None:
    body = {
        "date": "2024-13-01",
        "measurements": [
            {"marker": "ctc_total", "value": -1, "unit": "cells/7.5mL"},
            {"marker": "bilirubin", "value": 1, "unit": "mg/dL"},
            {"marker": "afp", "value": 3, "unit": "furlongs"},
        ],
    }
    r = api.clinician.post("/v1/patients/p-0042/draws", json=body)
    assert r.status_code == 422
    problems = {tuple(p["loc"]): p["msg"] for p in r.json()["detail"]}
    assert "not a date" in problems[("body", "date")]
    assert ">= 0" in problems[("body", "measurements", 0, "value")]
    assert "unknown marker 'bilirubin'" in problems[("body", "measurements", 1, "marker")]
    assert "unknown unit 'furlongs'" in problems[("body", "measurements", 2, "unit")]
    assert count(store, Draw) == 0 and count(store, Assessment) == 0


def test_a_draw_long_before_index_or_after_death_is_refused(
    api: Api, patient: dict[str, Any], store: Store
) -> None:
    early = api.clinician.post("/v1/patients/p-0042/draws", json=draw("2022-06-01"))
    assert early.status_code == 422
    assert "more than 365 days before the index date" in early.json()["detail"][0]["msg"]
    died = api.clinician.post(
        "/v1/patients/p-0042/outcome",
        json={"last_followup_date": "2024-05-01", "death_date": "2024-05-01"},
    )
    assert died.status_code == 200, died.text
    late = api.clinician.post("/v1/patients/p-0042/draws", json=draw("2024-06-01"))
    assert late.status_code == 422
    assert late.json()["detail"] == [
        {"loc": ["body", "date"], "msg": "draw on 2024-06-01 after death"}
    ]
    assert count(store, Draw) == 0


def test_a_malformed_body_answers_422_with_locations(api: Api, patient: dict[str, Any]) -> None:
    r = api.clinician.post(
        "/v1/patients/p-0042/draws",
        json={"date": "2024-03-01", "measurements": [{"marker": "afp", "value": "high"}]},
    )
    assert r.status_code == 422
    locs = [p["loc"] for p in r.json()["detail"]]
    assert ["body", "measurements", 0, "value"] in locs
    assert ["body", "measurements", 0, "unit"] in locs
    assert all(set(p) == {"loc", "msg"} for p in r.json()["detail"])


def test_a_duplicate_draw_answers_409(api: Api, patient: dict[str, Any], store: Store) -> None:
    assert (
        api.clinician.post("/v1/patients/p-0042/draws", json=draw("2024-03-01")).status_code == 201
    )
    again = api.clinician.post("/v1/patients/p-0042/draws", json=draw("2024-03-01", ctc=5))
    assert again.status_code == 409
    assert "already has" in again.json()["detail"]
    assert count(store, Draw) == 1 and count(store, Assessment) == 1


def test_a_retried_draw_with_the_same_idempotency_key_returns_the_first_assessment(
    api: Api, patient: dict[str, Any], store: Store
) -> None:
    headers = {"Idempotency-Key": "lab-msg-1"}
    first = api.clinician.post(
        "/v1/patients/p-0042/draws", json=draw("2024-03-01"), headers=headers
    )
    retry = api.clinician.post(
        "/v1/patients/p-0042/draws", json=draw("2024-03-01"), headers=headers
    )
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert count(store, Draw) == 1 and count(store, Assessment) == 1


def test_the_same_idempotency_key_with_another_body_answers_409(
    api: Api, patient: dict[str, Any], store: Store
) -> None:
    headers = {"Idempotency-Key": "lab-msg-2"}
    first = api.clinician.post(
        "/v1/patients/p-0042/draws", json=draw("2024-03-01"), headers=headers
    )
    other = api.clinician.post(
        "/v1/patients/p-0042/draws", json=draw("2024-04-01"), headers=headers
    )
    assert (first.status_code, other.status_code) == (201, 409)
    assert "Idempotency-Key" in other.json()["detail"]
    assert count(store, Draw) == 1


def test_imaging_and_outcome_are_recorded_and_checked_against_the_contract(
    api: Api, patient: dict[str, Any]
) -> None:
    scan = {"date": "2024-04-12", "modality": "MRI", "finding": "no_evidence"}
    assert api.clinician.post("/v1/patients/p-0042/imaging", json=scan).status_code == 201
    assert api.clinician.post("/v1/patients/p-0042/imaging", json=scan).status_code == 409
    bad = api.clinician.post(
        "/v1/patients/p-0042/imaging",
        json={"date": "2024-04-20", "modality": "X-ray", "finding": "maybe"},
    )
    assert bad.status_code == 422
    assert {tuple(p["loc"]) for p in bad.json()["detail"]} == {
        ("body", "modality"),
        ("body", "finding"),
    }
    early_end = api.clinician.post(
        "/v1/patients/p-0042/outcome", json={"last_followup_date": "2024-03-01"}
    )
    assert early_end.status_code == 422
    assert "scan on 2024-04-12 after last follow-up" in early_end.json()["detail"][0]["msg"]
    ok = api.clinician.post(
        "/v1/patients/p-0042/outcome",
        json={"last_followup_date": "2024-09-01", "recurrence_date": "2024-07-10"},
    )
    assert ok.status_code == 200, ok.text
    record = api.clinician.get("/v1/patients/p-0042").json()
    assert record["outcome"]["recurrence_date"] == "2024-07-10"
    assert record["imaging"][0]["modality"] == "MRI"


def test_registering_a_patient_twice_or_with_bad_covariates_is_refused(
    api: Api, patient: dict[str, Any]
) -> None:
    again = api.clinician.post("/v1/patients", json=PATIENT)
    assert again.status_code == 409
    bad = api.clinician.post(
        "/v1/patients",
        json={"patient_id": "p-2", "index_date": "2024-02-30", "age": "old", "shoe_size": 44},
    )
    assert bad.status_code == 422
    locs = {tuple(p["loc"]) for p in bad.json()["detail"]}
    assert {("body", "index_date"), ("body", "age"), ("body", "shoe_size")} <= locs


def test_every_read_and_write_is_in_the_audit_log_with_the_key_id(
    api: Api, patient: dict[str, Any], store: Store
) -> None:
    api.clinician.post("/v1/patients/p-0042/draws", json=draw("2024-03-01"))
    api.clinician.get("/v1/patients/p-0042/assessments")
    with store.reading() as s:
        events = [
            (e.key_id, e.action, e.resource)
            for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))
        ]
    kid = api.keys.ids["clinician"]
    assert events == [
        (kid, "write", "patient"),
        (kid, "write", "draw"),
        (kid, "read", "assessments"),
    ]


REFUSE_AUDIT = """CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'the audit log is unavailable'; END $$"""


def test_a_draw_whose_audit_event_cannot_be_written_stores_nothing(
    api: Api, patient: dict[str, Any], store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The draw, its values and its assessment are inserted before the audit event fails."""

    def audit_fails(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the audit log is unavailable")

    if store.is_sqlite:
        monkeypatch.setattr(draws, "audit", audit_fails)
    else:  # one statement writes a draw's rows there: the database refuses its audit row
        with store.writing() as s:
            s.execute(text(REFUSE_AUDIT))
            s.execute(
                text("CREATE TRIGGER refuse BEFORE INSERT ON audit_log EXECUTE FUNCTION refuse()")
            )
    r = api.clinician.post("/v1/patients/p-0042/draws", json=draw("2024-04-10"))
    assert r.status_code == 500 and "audit" not in r.text
    assert (count(store, Draw), count(store, Measurement), count(store, Assessment)) == (0, 0, 0)
    monkeypatch.undo()
    if not store.is_sqlite:
        with store.writing() as s:
            s.execute(text("DROP TRIGGER refuse ON audit_log"))
    again = api.clinician.post("/v1/patients/p-0042/draws", json=draw("2024-04-10"))
    assert again.status_code == 201, again.text  # nothing half-written blocks the retry
    assert (count(store, Draw), count(store, Assessment)) == (1, 1)
    assert count(store, Measurement) == len(draw("2024-04-10")["measurements"])
