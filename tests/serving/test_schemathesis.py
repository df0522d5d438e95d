"""Property-based requests generated from the OpenAPI spec never get a 5xx."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import schemathesis

from serving.app import create_app
from serving.auth import create_key
from serving.model import ModelHolder
from serving.settings import Settings
from serving.store import Store
from tests.serving.conftest import PATIENT, serve

pytestmark = pytest.mark.slow


SCHEMA = schemathesis.openapi.from_dict(create_app(Settings(model_poll_seconds=0)).openapi())
OPERATIONS = {op.label: op for op in (r.ok() for r in SCHEMA.get_all_operations())}


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, holder: ModelHolder
) -> Iterator[tuple[str, str]]:
    """One server for the module, with a registered patient so reads can hit a real record."""
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/fuzz.db", synchronous="NORMAL")
    store.migrate()
    _, token = create_key(store, "clinician", "site-a")
    with serve(store, holder) as server:
        headers = {"Authorization": f"Bearer {token}"}
        assert (
            httpx.post(f"{server.url}/v1/patients", json=PATIENT, headers=headers).status_code
            == 201
        )
        yield server.url, token
    store.dispose()


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_no_generated_request_gets_a_server_error(label: str, live: tuple[str, str]) -> None:
    url, token = live
    operation = OPERATIONS[label]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
    )
    def check(case: Any) -> None:
        if (
            case.path_parameters
            and "patient_id" in case.path_parameters
            and operation.method == "get"
        ):
            case.path_parameters["patient_id"] = PATIENT["patient_id"]
        response = case.call(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert response.status_code < 500, (label, response.status_code, response.text[:300])

    check()
