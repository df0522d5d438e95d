"""The FastAPI application: ``create_app(settings)``.

The lifespan migrates the store (``alembic upgrade head``), loads the model once, and polls
the registry for a new champion. Errors are JSON: ``{"detail": "..."}``, or for 422 the
list of every problem as ``{"loc": [...], "msg": "..."}``; never a stack trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from cohort.manifest import Manifest
from cohort.rules import BINARY_FALSE, BINARY_TRUE, NUMBER_PATTERN
from cohort.units import KNOWN_CONVERSIONS
from serving.errors import Invalid, ServiceError
from serving.middleware import Guard
from serving.model import ModelHolder, poll
from serving.routes import (
    BODY_PROBLEM,
    CheckedBodyRoute,
    export,
    health,
    is_json_media,
    model,
    patients,
    risk,
)
from serving.settings import Settings
from serving.store import Store
from serving.web import mount as mount_web

log = logging.getLogger(__name__)

UNION_TAGS = {"history", "fhir"}  # branch names pydantic puts in a union's error locations


def create_app(
    settings: Settings | None = None,
    *,
    holder: ModelHolder | None = None,
    store: Store | None = None,
) -> FastAPI:
    """The app; tests may pass a ready ``holder`` (loaded model) or ``store``."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = store or Store(
            settings.database_url,
            synchronous=settings.sqlite_synchronous,
            pool_size=settings.db_pool_size,
        )
        await asyncio.to_thread(app.state.store.migrate)
        # Handlers run in a thread pool; under load, forty threads contending for the GIL
        # cost more than they overlap (waits on the store are short). A few threads, and
        # requests queue on the event loop instead.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        app.state.holder = holder or ModelHolder(settings.model_uri, settings.tracking_uri)
        if app.state.holder.current is None:
            await asyncio.to_thread(app.state.holder.try_refresh)
        if app.state.holder.current is None:
            log.warning("no model loaded from %s: risk routes answer 503", settings.model_uri)
        poller = (
            asyncio.create_task(poll(app.state.holder, settings.model_poll_seconds))
            if settings.model_poll_seconds > 0
            else None
        )
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            if store is None:
                app.state.store.dispose()

    app = FastAPI(
        title="ctcmon",
        version=version("ctcmon"),
        summary="Recurrence risk after each blood draw, and what it means for imaging.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    for router in (health.router, model.router, risk.router, patients.router, export.router):
        app.include_router(router)
    mount_web(app, settings)
    _error_handlers(app)
    _openapi_with_vocabulary(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )
    app.add_middleware(Guard, max_body_bytes=settings.max_body_bytes)
    return app


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Invalid)
    async def invalid(request: Request, exc: Invalid) -> JSONResponse:
        return JSONResponse({"detail": exc.problems}, status_code=422)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # reached only once the key was accepted: body problems wait for it (routes/__init__)
        route = request.scope.get("route")
        # a route that takes a body (a GET's Content-Type is ignored: found by the fuzzer)
        if isinstance(route, CheckedBodyRoute) and route.body_field is not None:
            if not is_json_media(request.headers.get("content-type")):
                media = request.headers.get("content-type")
                msg = f"unsupported media type {media!r}: send application/json"
                return JSONResponse({"detail": msg}, status_code=415)
            reason = getattr(request.state, BODY_PROBLEM, None)
            if reason is not None:
                return JSONResponse({"detail": [{"loc": ["body"], "msg": reason}]}, 422)
        return JSONResponse({"detail": problems(exc.errors())}, status_code=422)

    @app.exception_handler(OperationalError)
    async def store_down(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("store error: %s", type(exc.orig).__name__)
        return JSONResponse({"detail": "the store is unavailable; retry"}, status_code=503)


def _openapi_with_vocabulary(app: FastAPI) -> None:
    """The OpenAPI states the live model's markers and units: what ``/v1/risk`` and
    ``/draws`` accept depends on the cohort the model was trained on (recomputed on each
    request of the document, so a new champion's vocabulary shows at once)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        app.openapi_schema = None
        schema = generate()
        holder = getattr(app.state, "holder", None)
        live = holder.current if holder is not None else None
        if live is not None:
            markers, units = vocabulary(live.pipeline.manifest)
            for name, component in schema.get("components", {}).get("schemas", {}).items():
                if name.startswith("MeasurementRecord"):
                    component["properties"]["marker"]["enum"] = markers
                    component["properties"]["unit"]["enum"] = units
                if name.startswith("PatientRecord"):
                    component["properties"].update(covariate_properties(live.pipeline.manifest))
                    component["additionalProperties"] = False  # unknown covariates: 422
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def vocabulary(manifest: Manifest) -> tuple[list[str], list[str]]:
    """The model's marker codes, and every unit one of them may be sent in."""
    units = set()
    for spec in manifest.markers.values():
        units |= {spec.unit, *spec.conversions}
        units |= {u for (u, to) in KNOWN_CONVERSIONS if to == spec.unit}
    return sorted(manifest.markers), sorted(units)


def covariate_properties(manifest: Manifest) -> dict[str, Any]:
    """Each covariate of the model as a JSON Schema property: the forms the contract reads
    (``cohort.rules``: a number or its decimal text, a binary 0/1 or word, a level), with the
    manifest's plausible range or levels; null when missing."""
    out: dict[str, Any] = {}
    for name, kind in manifest.covariates.items():
        forms: list[dict[str, Any]]
        if kind == "numeric":
            number: dict[str, Any] = {"type": "number"}
            if name in manifest.covariate_ranges:
                number["minimum"], number["maximum"] = manifest.covariate_ranges[name]
            forms = [number, {"type": "string", "pattern": f"^{NUMBER_PATTERN}$"}]
        elif kind == "binary":
            words = [*BINARY_TRUE, *BINARY_FALSE]
            forms = [{"enum": [0, 1, True, False]}, {"type": "string", "enum": words}]
        elif name in manifest.covariate_levels:
            forms = [{"type": "string", "enum": list(manifest.covariate_levels[name])}]
        else:
            forms = [{"type": "string"}, {"type": "number"}]
        out[name] = {"anyOf": [*forms, {"type": "null"}], "description": f"{kind} covariate"}
    return out


def problems(errors: Any) -> list[dict[str, Any]]:
    """Pydantic errors as ``{loc, msg}`` (no echo of the input, no union branch names)."""
    out = []
    for e in errors:
        loc = [p for i, p in enumerate(e["loc"]) if not (i == 1 and p in UNION_TAGS)]
        out.append({"loc": loc, "msg": e["msg"]})
    return out
