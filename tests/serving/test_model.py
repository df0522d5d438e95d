"""The live model: which version it is, and a new champion swapped in without a failed request."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
from mlflow.tracking import MlflowClient

from serving.model import ModelHolder
from serving.store import Store
from tests.serving.conftest import CHAMPION, Api, Keys, Registry, quiet_mlflow, serve
from tests.serving.test_risk import HISTORY


def test_the_model_route_says_exactly_which_version_is_live(api: Api) -> None:
    r = api.researcher.get("/v1/model")
    assert r.status_code == 200
    m = r.json()
    assert (m["name"], m["version"], m["alias"]) == ("ctcmon-recurrence", "1", "champion")
    assert m["source"] == "models:/ctcmon-recurrence/1"
    assert m["horizons"] == [180.0, 365.0, 730.0]
    assert 0 < m["alarm"]["threshold"] < 1 and m["trained_at"]


def _promote_a_new_version(tracking_uri: str) -> str:
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    first = client.get_model_version("ctcmon-recurrence", "1")
    new = client.create_model_version("ctcmon-recurrence", first.source, run_id=first.run_id)
    client.set_registered_model_alias("ctcmon-recurrence", "champion", new.version)
    return str(new.version)


def test_a_new_champion_is_picked_up_without_restart_or_failed_request(
    registry: Registry, store: Store, keys: Keys, tmp_path: Path
) -> None:
    uri = registry.copy(tmp_path)
    holder = ModelHolder(CHAMPION, uri)
    with quiet_mlflow():
        holder.refresh()
    seen: list[tuple[int, Any]] = []
    stop = threading.Event()
    with serve(store, holder, model_poll_seconds=0.2) as server:
        client = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {keys.clinician}"}, timeout=60
        )

        def hammer() -> None:
            while not stop.is_set():
                r = client.post("/v1/risk", json=HISTORY)
                seen.append((r.status_code, r.json().get("model", {}).get("version")))

        thread = threading.Thread(target=hammer)
        thread.start()
        time.sleep(0.5)
        with quiet_mlflow():
            version = _promote_a_new_version(uri)
            deadline = time.monotonic() + 30
            while holder.current is not None and holder.current.version != version:
                assert time.monotonic() < deadline, "the new champion was not picked up"
                time.sleep(0.1)
        time.sleep(1.0)
        stop.set()
        thread.join()
        live = client.get("/v1/model").json()["version"]
        client.close()
    assert version == "2" and live == "2"
    assert {status for status, _ in seen} == {200}
    versions = [v for _, v in seen]
    assert versions[0] == "1" and versions[-1] == "2"
    assert versions == sorted(versions)


def test_an_admin_reload_keeps_the_live_version_when_the_champion_did_not_move(api: Api) -> None:
    r = api.admin.post("/v1/admin/reload")
    assert r.status_code == 200
    assert r.json()["version"] == "1"


def test_without_a_model_the_risk_routes_answer_503_and_ready_says_why(
    store: Store, keys: Keys, tmp_path: Path
) -> None:
    empty = ModelHolder(CHAMPION, f"sqlite:///{tmp_path}/none.db")
    with serve(store, empty) as server:
        client = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {keys.clinician}"}
        )
        risk = client.post("/v1/risk", json=HISTORY)
        ready = client.get("/ready")
        health = client.get("/health")
        client.close()
    assert risk.status_code == 503 and "no model is loaded" in risk.json()["detail"]
    assert ready.status_code == 503 and ready.json()["model"] is None
    assert health.status_code == 200
