"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serving.deps import HolderDep, StoreDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "store unreachable or no model loaded"}})
def ready(store: StoreDep, holder: HolderDep) -> JSONResponse:
    """Readiness: the store answers and a model is loaded."""
    model = holder.current
    store_ok = store.ping()
    body = {
        "store": "ok" if store_ok else "unreachable",
        "model": None if model is None else {"name": model.name, "version": model.version},
    }
    return JSONResponse(body, status_code=200 if store_ok and model else 503)
