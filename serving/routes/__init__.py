"""One router per resource."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from serving.idempotency import Result

FHIR_JSON = "application/fhir+json"


def respond(result: Result, media_type: str = "application/json") -> JSONResponse:
    """A service result as a response; a replayed idempotent result says so in a header."""
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return JSONResponse(
        result.body, status_code=result.status, headers=headers, media_type=media_type
    )
