"""Property-based requests generated from the live OpenAPI document (the model's markers and
units, ISO dates, every status) never get a 5xx, and every response conforms to the document:
a documented status, the declared content type, the declared schema. Patient routes are
called with the id of a registered patient, so reads and writes reach a real record."""

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

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

pytestmark = pytest.mark.slow


# the labels of the operations, from the document without a model (the same operations)
LABELS = sorted(
    op.label
    for op in (
        r.ok()
        for r in schemathesis.openapi.from_dict(
            create_app(Settings(model_poll_seconds=0)).openapi()
        ).get_all_operations()
    )
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


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


@pytest.fixture(scope="module")
def operations(live: tuple[str, str]) -> dict[str, Any]:
    url, _ = live
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    return {op.label: op for op in (r.ok() for r in schema.get_all_operations())}


@pytest.mark.parametrize("label", LABELS)
def test_generated_requests_get_no_server_error_and_conform_to_the_document(
    label: str, live: tuple[str, str], operations: dict[str, Any]
) -> None:
    url, token = live
    operation = operations[label]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
    )
    def check(case: Any) -> None:
        if case.path_parameters and "patient_id" in case.path_parameters:
            case.path_parameters["patient_id"] = PATIENT["patient_id"]
        case.call_and_validate(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60, checks=CHECKS
        )

    check()
