"""Property-based requests generated from the live OpenAPI document (the model's markers and
units, ISO dates, every status) never get a 5xx, and every response conforms to the document:
a documented status, the declared content type, the declared schema. Patient routes are
called with the id of a registered patient, so reads and writes reach a real record."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
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


# ---- stateful: schemathesis' own runner follows the document's links ----
# positive_data_acceptance is the one default check left out: it expects every request the
# schema allows to be accepted, and the contract has rules JSON Schema cannot state (a unit
# per marker, dates relative to the index date and to today, whole counts, a covariate's
# range when sent as text), which answer 422 with the reason.
STATEFUL_SECONDS = 45
STATEFUL_SEED = 20261206


def _operation(schema: dict[str, Any], method: str, url: str) -> tuple[str, str]:
    """The document's path template a requested URL matches."""
    path = "/" + url.split("//", 1)[1].split("/", 1)[1].split("?", 1)[0]
    for template in schema["paths"]:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in schema["paths"][template]:
            return method.upper(), template
    raise AssertionError(f"{method} {path} matches no operation of the document")


def test_a_stateful_run_follows_links_with_real_patients_and_finds_nothing(
    tmp_path: Path, holder: ModelHolder
) -> None:
    """``schemathesis run --phases=stateful`` against the app under uvicorn: it registers
    patients, follows the links (a draw on the index date, the risk as of it, the patient's
    assessments, imaging, outcome) with the ids the service returned, for a bounded time.
    Its default checks pass; no response is a 5xx; every status is a documented one."""
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli is not None, "schemathesis is a test dependency (pip install -e '.[test]')"
    store = Store(f"sqlite:///{tmp_path / 'stateful.db'}", synchronous="NORMAL")
    store.migrate()
    _, token = create_key(store, "clinician", "site-a")
    with serve(store, holder) as server:
        document = httpx.get(f"{server.url}/openapi.json").json()
        run = subprocess.run(
            [
                cli,
                "run",
                f"{server.url}/openapi.json",
                "--phases=stateful",
                f"--max-time={STATEFUL_SECONDS}",
                "--exclude-checks=positive_data_acceptance",
                f"--seed={STATEFUL_SEED}",
                "--workers=1",
                "--report=har",
                f"--report-dir={tmp_path}",
                "-H",
                f"Authorization: Bearer {token}",
            ],
            capture_output=True,
            text=True,
            timeout=STATEFUL_SECONDS + 120,
            check=False,
            env={**os.environ, "NO_COLOR": "1"},
            cwd=tmp_path,  # its cache (.schemathesis/) stays out of the checkout
        )
    store.dispose()
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    [har] = tmp_path.glob("har-*.json")
    entries = json.loads(har.read_text())["log"]["entries"]
    seen = Counter(
        (
            *_operation(document, e["request"]["method"], e["request"]["url"]),
            e["response"]["status"],
        )
        for e in entries
    )
    assert len(entries) >= 50, seen  # about 650 in 45 s on a busy 2-core machine
    assert not [k for k in seen if k[2] >= 500], seen
    for method, path, status in seen:
        documented = document["paths"][path][method.lower()]["responses"]
        assert str(status) in documented, (method, path, status)
    # the links were followed with real ids: patients registered, then written to or read
    assert seen["POST", "/v1/patients", 201] > 0, seen
    assert any(path.endswith("}") or "}/" in path for _, path, s in seen if s < 300), seen
