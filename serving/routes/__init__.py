"""One router per resource; the JSON body routes share ``CheckedBodyRoute``."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from serving.idempotency import Result
from serving.schemas import ErrorOut

FHIR_JSON = "application/fhir+json"
MAX_DEPTH = 32  # no contract body nests deeper than 6; a FHIR Bundle than about 10
BODY_PROBLEM = "body_problem"  # request.state attribute: why the body could not be read


class CheckedBodyRequest(Request):
    """A request whose JSON body problems (not JSON, not UTF-8, nested too deep) are kept
    for later instead of raised: the body then reads as missing, FastAPI checks the key
    first (401 without one), and only then reports the body (422 with the reason)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = self.decode(await self.body())
        return self._json

    def decode(self, raw: bytes) -> Any:
        try:
            value = json.loads(raw)
        except RecursionError:
            return self.refuse(f"the body nests deeper than {MAX_DEPTH} levels")
        except UnicodeDecodeError as exc:
            return self.refuse(f"the body is not UTF-8 text (byte {exc.start}): send JSON")
        except ValueError as exc:
            return self.refuse(f"the body is not valid JSON: {exc}")
        if _deeper_than(value, MAX_DEPTH):
            return self.refuse(f"the body nests deeper than {MAX_DEPTH} levels")
        return value

    def refuse(self, reason: str) -> None:
        setattr(self.state, BODY_PROBLEM, reason)
        return None


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether a decoded JSON value nests deeper than ``limit`` (iteratively: no recursion)."""
    level = [value]
    for _ in range(limit + 1):
        level = [
            child
            for v in level
            if isinstance(v, dict | list)
            for child in (v.values() if isinstance(v, dict) else v)
        ]
        if not level:
            return False
    return True


class CheckedBodyRoute(APIRoute):
    """A JSON route read with ``request_class`` (see ``CheckedBodyRequest``)."""

    request_class: type[CheckedBodyRequest] = CheckedBodyRequest

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        make = self.request_class

        async def checked(request: Request) -> Response:
            return await handler(make(request.scope, request.receive))

        return checked


def is_json_media(content_type: str | None) -> bool:
    """``application/json`` or any ``+json`` type (FHIR's); no header reads as JSON."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def link(method: str, path: str, **parameters: Any) -> dict[str, Any]:
    """An OpenAPI link to the operation ``method path``: which values of this response (or
    request) fill its parameters (``$response.body#/patient_id``); ``requestBody`` may set
    part of its body. Clients and fuzzers (schemathesis' stateful tests) follow them."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    body = parameters.pop("requestBody", None)
    out: dict[str, Any] = {"operationRef": f"#/paths/{pointer}/{method.lower()}"}
    if parameters:
        out["parameters"] = parameters
    if body is not None:
        out["requestBody"] = body
    return out


def linked(status: int, links: dict[str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entry adding ``links`` to the success status ``status``."""
    return {status: {"links": links}}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error statuses (``STATUSES`` says when each is answered)."""
    return {s: {"model": ErrorOut, "description": STATUSES[s]} for s in statuses}


STATUSES = {
    401: "missing, unknown or revoked API key",
    403: "the key's role or site does not allow this",
    404: "no such patient at the key's site",
    409: "a conflicting duplicate, or an Idempotency-Key reused for another request",
    413: "request body too large",
    415: "the body is not application/json (or application/fhir+json)",
    422: "invalid input: every problem as {loc, msg}",
    503: "no model is loaded, or the store is unavailable; retry",
}


def respond(result: Result, media_type: str = "application/json") -> JSONResponse:
    """A service result as a response; a replayed idempotent result says so in a header."""
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return JSONResponse(
        result.body, status_code=result.status, headers=headers, media_type=media_type
    )
