"""Settings and the app's edges: unsafe settings refused, CORS closed, size limit, no traces."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from ctcmon.cli import app as cli
from serving.auth import token_hash
from serving.deps import get_model, on_store
from serving.model import ModelHolder
from serving.settings import Settings
from serving.store import ApiKey, Store
from tests.serving.conftest import Api, Keys, serve
from tests.serving.test_risk import HISTORY


def test_a_cors_wildcard_is_refused_outside_development() -> None:
    with pytest.raises(ValidationError, match="CTCMON_CORS_ORIGINS='\\*' is refused"):
        Settings(env="production", cors_origins=["*"])


def test_cors_is_closed_by_default(api: Api) -> None:
    r = api.anonymous.options(
        "/v1/model",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in r.headers


def test_a_body_over_the_limit_answers_413(store: Store, holder: ModelHolder, keys: Keys) -> None:
    with serve(store, holder, max_body_bytes=1000) as server:
        r = httpx.post(
            f"{server.url}/v1/risk",
            content=b"{" + b" " * 5000 + b"}",
            headers={
                "Authorization": f"Bearer {keys.clinician}",
                "Content-Type": "application/json",
            },
        )
    assert r.status_code == 413


def test_an_internal_error_answers_500_without_a_stack_trace(
    store: Store, holder: ModelHolder, keys: Keys
) -> None:
    def broken() -> Any:
        raise RuntimeError("secret detail p-0042")

    with serve(store, holder) as server:
        server.app.dependency_overrides[get_model] = broken
        r = httpx.post(
            f"{server.url}/v1/risk",
            json=HISTORY,
            headers={"Authorization": f"Bearer {keys.clinician}"},
        )
    assert r.status_code == 500
    assert r.json()["detail"].startswith("internal error (reference ")
    assert "Traceback" not in r.text and "p-0042" not in r.text


def test_ctcmon_keys_create_prints_the_key_once_and_stores_its_hash(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/keys.db"
    monkeypatch.setenv("CTCMON_DATABASE_URL", url)
    r = CliRunner().invoke(
        cli, ["keys", "create", "--role", "researcher", "--site", "site-x", "--json"]
    )
    assert r.exit_code == 0, r.output
    import json

    made = json.loads(r.output)
    assert made["key"].startswith("ctc_")
    store = Store(url)
    with store.reading() as s:
        row = s.get(ApiKey, made["key_id"])
    store.dispose()
    assert row is not None and row.token_hash == token_hash(made["key"]) and row.site_id == "site-x"
    bad = CliRunner().invoke(cli, ["keys", "create", "--role", "nurse", "--site", "s"])
    assert bad.exit_code == 1
    assert "unknown role 'nurse'" in bad.output


def test_store_work_holds_up_the_event_loop_only_on_sqlite(store: Store) -> None:
    """A local SQLite file answers sooner than a worker thread hands back; a PostgreSQL
    round trip must not stop the event loop serving other requests."""

    async def thread_of_work() -> int:
        return await on_store(store, threading.get_ident)

    in_loop = asyncio.run(thread_of_work()) == threading.get_ident()
    assert in_loop == store.is_sqlite
