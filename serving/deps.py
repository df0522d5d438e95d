"""FastAPI dependencies shared by the routers, as ``Annotated`` aliases, and ``on_store``.

The ones that only read app state are ``async``: FastAPI runs a plain ``def`` dependency in
a worker thread, and a thread hop per dependency was a large share of a request's time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from serving.errors import Unavailable
from serving.model import LoadedModel, ModelHolder
from serving.settings import Settings
from serving.store import Store

T = TypeVar("T")


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_holder(request: Request) -> ModelHolder:
    return request.app.state.holder


async def get_model(holder: Annotated[ModelHolder, Depends(get_holder)]) -> LoadedModel:
    """The live model for this request (a snapshot: a swap mid-request does not affect it)."""
    current = holder.current
    if current is None:
        raise Unavailable(
            f"no model is loaded (tried {holder.uri}); register one with "
            "`ctcmon train --register` or `ctcmon demo`, then POST /v1/admin/reload"
        )
    return current


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
ModelDep = Annotated[LoadedModel, Depends(get_model)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Retrying a POST with the same key returns the first result.",
    ),
]


async def on_store(store: Store, work: Callable[[], T]) -> T:
    """``work()``, which waits on the store: in the event loop's thread for SQLite, in a
    worker thread for PostgreSQL.

    A local SQLite file answers a lookup or a short write in well under a millisecond, less
    than the hop to a worker thread and back costs: on two cores the same ``POST /v1/risk``
    took about 1 ms longer through a worker thread (benchmarks/bench_serving.py; the pipeline
    itself ran ~0.4 ms slower there). A PostgreSQL round trip must not hold up the event loop.
    """
    if store.is_sqlite:
        return work()
    return await run_in_threadpool(work)
