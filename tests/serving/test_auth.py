"""API keys: 401 without a valid key, 403 outside the role, 404 for another site's patient."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from serving import auth
from serving.auth import revoke_key, token_hash
from serving.store import ApiKey, AuditEvent, Store, utcnow
from tests.serving.conftest import Api, draw

PATIENT_ROUTES = [
    ("get", "/v1/patients/p-0042", None),
    ("get", "/v1/patients/p-0042/assessments", None),
    ("post", "/v1/patients/p-0042/draws", draw("2024-03-01")),
    (
        "post",
        "/v1/patients/p-0042/imaging",
        {"date": "2024-03-01", "modality": "CT", "finding": "no_evidence"},
    ),
    ("post", "/v1/patients/p-0042/outcome", {"last_followup_date": "2024-06-01"}),
]


def test_a_request_without_a_key_answers_401(api: Api) -> None:
    r = api.anonymous.get("/v1/model")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert "missing API key" in r.json()["detail"]


@pytest.mark.parametrize("token", ["ctc_not-a-real-key", "sk-something-else", "ctc_"])
def test_an_unknown_key_answers_401(api: Api, token: str) -> None:
    r = api.client(token).get("/v1/model")
    assert r.status_code == 401


def test_a_revoked_key_answers_401(api: Api, store: Store) -> None:
    assert api.researcher.get("/v1/model").status_code == 200
    revoke_key(store, api.keys.ids["researcher"])
    r = api.researcher.get("/v1/model")
    assert r.status_code == 401
    assert "revoked" in r.json()["detail"]


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_key_revoked_by_another_process_is_refused_within_the_cache_time(
    api: Api, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Valid keys are remembered for ``KEY_CACHE_SECONDS`` (the lookup was a sixteenth of a
    worker's CPU): a revocation this process did not make — another worker, a replica, the
    CLI — is seen once that time is up; unknown keys are never remembered."""
    clock = Clock()
    monkeypatch.setattr(auth, "time", clock)
    auth.forget_keys()
    assert api.researcher.get("/v1/model").status_code == 200  # looked up, then remembered
    with store.writing() as s:  # revoked behind this process's back
        s.execute(
            update(ApiKey)
            .where(ApiKey.id == api.keys.ids["researcher"])
            .values(revoked_at=utcnow())
        )
    clock.now += auth.KEY_CACHE_SECONDS - 0.01
    assert api.researcher.get("/v1/model").status_code == 200  # still within the cache time
    clock.now += 0.02
    r = api.researcher.get("/v1/model")
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert api.client("ctc_not-a-real-key").get("/v1/model").status_code == 401
    assert [k for k in auth._valid_keys if k[1] == token_hash("ctc_not-a-real-key")] == []


def test_a_key_outside_its_role_answers_403_and_is_audited(api: Api, store: Store) -> None:
    r = api.researcher.post("/v1/patients", json={"patient_id": "x", "index_date": "2024-01-01"})
    assert r.status_code == 403
    assert "clinician" in r.json()["detail"]
    assert api.clinician.get("/v1/export").status_code == 403
    assert api.clinician.post("/v1/admin/reload").status_code == 403
    with store.reading() as s:
        denied = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "denied")))
    assert [e.resource for e in denied] == [
        "POST /v1/patients",
        "GET /v1/export",
        "POST /v1/admin/reload",
    ]


@pytest.mark.parametrize(("method", "path", "body"), PATIENT_ROUTES)
def test_another_sites_key_gets_404_as_if_the_patient_did_not_exist(
    api: Api, patient: dict[str, Any], method: str, path: str, body: Any
) -> None:
    kwargs = {"json": body} if body is not None else {}
    theirs = getattr(api.other_site, method)(path, **kwargs)
    missing = getattr(api.other_site, method)(path.replace("p-0042", "p-nobody"), **kwargs)
    assert theirs.status_code == 404
    assert missing.status_code == 404
    assert theirs.json()["detail"] == missing.json()["detail"].replace("p-nobody", "p-0042")


def test_a_key_cannot_register_a_patient_at_another_site(api: Api) -> None:
    r = api.clinician.post(
        "/v1/patients", json={"patient_id": "x", "site_id": "site-b", "index_date": "2024-01-01"}
    )
    assert r.status_code == 403


def test_two_sites_may_use_the_same_patient_id_without_seeing_each_other(
    api: Api, patient: dict[str, Any]
) -> None:
    r = api.other_site.post(
        "/v1/patients", json={"patient_id": "p-0042", "index_date": "2023-05-05"}
    )
    assert r.status_code == 201
    assert api.other_site.get("/v1/patients/p-0042").json()["patient"]["index_date"] == "2023-05-05"
    assert api.clinician.get("/v1/patients/p-0042").json()["patient"]["index_date"] == "2024-01-10"


def test_the_store_keeps_only_the_hash_of_a_key(api: Api, store: Store) -> None:
    with store.reading() as s:
        rows = list(s.scalars(select(ApiKey)))
    stored = {r.token_hash for r in rows}
    assert token_hash(api.keys.clinician) in stored
    assert all(api.keys.clinician not in (r.token_hash, r.id, r.label) for r in rows)
    assert api.keys.clinician.startswith("ctc_") and len(api.keys.clinician) >= 40
