"""The outside contract: the key is checked before the body (401 first), body problems are
422 with {loc, msg}, too much is 413 however it is sent, a wrong media type 415, and the
OpenAPI documents every status and states the real rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from serving.model import ModelHolder
from serving.store import Store
from tests.serving.conftest import Api, Keys, serve
from tests.serving.test_risk import HISTORY

DEEP = ("[" * 200 + "]" * 200).encode()
BODIES = {
    "invalid UTF-8": (b'{"patient": "\xff\xfe"}', "not UTF-8"),
    "not JSON": (b'{"patient": ', "not valid JSON"),
    "too deep": (DEEP, "nests deeper than"),
}
ROUTES = ["/v1/risk", "/v1/patients", "/v1/patients/p-0042/draws"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", sorted(BODIES))
def test_a_bad_body_without_a_key_is_401_and_with_one_a_422_naming_the_body(
    api: Api, route: str, case: str
) -> None:
    raw, msg = BODIES[case]
    json_type = {"Content-Type": "application/json"}
    assert api.anonymous.post(route, content=raw, headers=json_type).status_code == 401
    r = api.clinician.post(route, content=raw, headers=json_type)
    assert r.status_code == 422, r.text
    [problem] = r.json()["detail"]
    assert problem["loc"] == ["body"] and msg in problem["msg"]


@pytest.mark.parametrize(
    "media", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_a_body_of_another_media_type_is_415_after_the_key(api: Api, media: str) -> None:
    import json

    raw = json.dumps(HISTORY).encode()
    assert (
        api.anonymous.post("/v1/risk", content=raw, headers={"Content-Type": media}).status_code
        == 401
    )
    r = api.clinician.post("/v1/risk", content=raw, headers={"Content-Type": media})
    assert r.status_code == 415, r.text
    assert media in r.json()["detail"]


@pytest.mark.parametrize("media", ["application/json; charset=utf-8", "application/fhir+json"])
def test_json_media_types_are_read(api: Api, media: str) -> None:
    import json

    r = api.clinician.post("/v1/risk", content=json.dumps(HISTORY), headers={"Content-Type": media})
    assert r.status_code == 200, r.text


@pytest.fixture
def small(store: Store, holder: ModelHolder, keys: Keys) -> Iterator[httpx.Client]:
    with serve(store, holder, max_body_bytes=1000) as server:
        headers = {"Authorization": f"Bearer {keys.clinician}", "Content-Type": "application/json"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            yield client


def test_a_chunked_body_over_the_limit_answers_413(small: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"{"
        for _ in range(50):
            yield b" " * 100
        yield b"}"

    r = small.post("/v1/risk", content=chunks())
    assert r.status_code == 413
    assert r.json() == {"detail": "request body too large"}


def test_a_chunked_body_under_the_limit_is_read_whole(small: httpx.Client) -> None:
    body = b'{"patient": '

    def chunks() -> Iterator[bytes]:
        yield body
        yield b'{"patient_id": "p-1", "index_date": "2024-01-10"}}'

    r = small.post("/v1/risk", content=chunks())
    assert r.status_code == 200, r.text


@pytest.fixture
def openapi(api: Api) -> dict[str, Any]:
    r = api.anonymous.get("/openapi.json")
    assert r.status_code == 200
    return dict(r.json())


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("get", "/v1/model", {"200", "401", "503"}),
        ("post", "/v1/admin/reload", {"200", "401", "403", "503"}),
        ("post", "/v1/risk", {"200", "401", "403", "409", "413", "415", "422", "503"}),
        (
            "post",
            "/v1/patients/{patient_id}/draws",
            {"201", "401", "403", "404", "409", "413", "415", "422", "503"},
        ),
        ("get", "/v1/patients/{patient_id}", {"200", "401", "403", "404", "422", "503"}),
    ],
)
def test_the_openapi_documents_every_status_a_route_answers(
    openapi: dict[str, Any], method: str, path: str, statuses: set[str]
) -> None:
    assert set(openapi["paths"][path][method]["responses"]) >= statuses


def test_the_openapi_states_the_live_model_s_markers_units_and_iso_dates(
    openapi: dict[str, Any], holder: ModelHolder
) -> None:
    schemas = openapi["components"]["schemas"]
    measurement = next(v for k, v in schemas.items() if k.startswith("MeasurementRecord"))
    manifest = holder.current.pipeline.manifest  # type: ignore[union-attr]
    assert measurement["properties"]["marker"]["enum"] == sorted(manifest.markers)
    assert {"cells/7.5mL", "cells/5mL", "ng/mL", "IU/mL"} <= set(
        measurement["properties"]["unit"]["enum"]
    )
    draw = schemas["DrawIn"]["properties"]
    assert draw["date"]["format"] == "date"
    imaging = next(v for k, v in schemas.items() if k.startswith("ImagingRecord"))
    assert imaging["properties"]["modality"]["enum"] == ["CT", "MRI", "US", "CEUS", "PET-CT"]


def test_a_read_with_a_content_type_and_a_bad_id_is_a_422_not_a_415(api: Api) -> None:
    """A GET has no body, so its Content-Type is not the problem (the fuzzer found a 415,
    which the document does not list for reads)."""
    r = api.clinician.get("/v1/patients/" + "x" * 200, headers={"Content-Type": "text/xml"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["path", "patient_id"]
