"""Fixtures of the serving tests: a trained and registered model (once per session), a real
store (SQLite file, and PostgreSQL in a fresh schema), and the app under uvicorn in a thread."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import text

with warnings.catch_warnings():
    # importing mlflow.pyfunc warns about its own type hints (filterwarnings = error)
    warnings.simplefilter("ignore")
    import mlflow.pyfunc  # noqa: F401

from serving.app import create_app
from serving.auth import create_key
from serving.model import ModelHolder
from serving.settings import Settings
from serving.store import Store

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# the model the fixtures train (CTCMON_TEST_MODEL overrides, e.g. while one is being fixed)
TEST_MODEL = os.environ.get("CTCMON_TEST_MODEL", "cox")
CHAMPION = "models:/ctcmon-recurrence@champion"


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """MLflow's own warnings while logging and loading models are not what these tests test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@dataclass
class Registry:
    tracking_uri: str
    cohort_dir: Path
    run_id: str
    folder: Path

    def copy(self, to: Path) -> str:
        """A private copy of the registry (artifacts are shared read-only): a tracking URI."""
        db = to / "mlflow.db"
        shutil.copy(self.folder / "mlflow.db", db)
        return f"sqlite:///{db.as_posix()}"


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """A small simulated cohort, trained (one model, 3 folds) and registered as champion."""
    from cohort.load import load_cohort
    from cohort.simulate import simulate_cohort
    from training.train import TrainConfig, train

    folder = tmp_path_factory.mktemp("registry")
    cohort_dir = folder / "cohort"
    # seed 1 makes the penalised Cox fit diverge (ArithmeticError in Coxnet; reported)
    simulate_cohort(cohort_dir, n_patients=300, seed=2)
    uri = f"sqlite:///{(folder / 'mlflow.db').as_posix()}"
    with quiet_mlflow():
        result = train(
            load_cohort(cohort_dir),
            TrainConfig(models=[TEST_MODEL], folds=3, n_boot=0),
            tracking_uri=uri,
            experiment="serving-tests",
            register=True,
        )
    assert result.champion is not None
    return Registry(uri, cohort_dir, result.champion["run_id"], folder)


@pytest.fixture(scope="session")
def holder(registry: Registry) -> ModelHolder:
    """The champion, loaded once and shared by every app of the session."""
    loaded = ModelHolder(CHAMPION, registry.tracking_uri)
    with quiet_mlflow():
        loaded.refresh()
    return loaded


def _postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def _require_postgres() -> None:
    if not _postgres_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but PostgreSQL on 127.0.0.1:5432 is unreachable")
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is unreachable (set CI=true to fail instead)")


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL of a new, empty PostgreSQL schema, dropped afterwards (skips without a server)."""
    _require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = Store(PG_SERVER)
    with admin.writing() as s:
        s.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        with admin.writing() as s:
            s.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: an SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'ctcmon.db').as_posix()}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A migrated store on the fresh database."""
    s = Store(database_url, synchronous="NORMAL")
    s.migrate()
    yield s
    s.dispose()


@dataclass
class Keys:
    clinician: str
    other_site: str
    researcher: str
    admin: str
    ids: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def keys(store: Store) -> Keys:
    made = {
        "clinician": create_key(store, "clinician", "site-a"),
        "other_site": create_key(store, "clinician", "site-b"),
        "researcher": create_key(store, "researcher", "site-a"),
        "admin": create_key(store, "admin", "site-a"),
    }
    return Keys(
        **{k: token for k, (_, token) in made.items()}, ids={k: i for k, (i, _) in made.items()}
    )


class Server:
    """The app served by uvicorn in a background thread of this process."""

    def __init__(self, app: Any) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        config = uvicorn.Config(app, port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def serve(store: Store, holder: ModelHolder, **settings: Any) -> Server:
    conf = Settings(**{"database_url": store.url, "model_poll_seconds": 0, **settings})
    return Server(create_app(conf, holder=holder, store=store))


@pytest.fixture
def server(store: Store, holder: ModelHolder) -> Iterator[Server]:
    with serve(store, holder) as running:
        yield running


class Api:
    """An HTTP client per key: ``api.clinician.post(...)``, ``api.anonymous.get(...)``."""

    def __init__(self, url: str, keys: Keys) -> None:
        self.url = url
        self.keys = keys
        self._clients: list[httpx.Client] = []
        self.anonymous = self.client(None)
        self.clinician = self.client(keys.clinician)
        self.other_site = self.client(keys.other_site)
        self.researcher = self.client(keys.researcher)
        self.admin = self.client(keys.admin)

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=60)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for c in self._clients:
            c.close()


@pytest.fixture
def api(server: Server, keys: Keys) -> Iterator[Api]:
    made = Api(server.url, keys)
    yield made
    made.close()


PATIENT = {
    "patient_id": "p-0042",
    "index_date": "2024-01-10",
    "age": 61,
    "sex": "M",
    "microvascular_invasion": 1,
}


def draw(day: str, ctc: float = 3, afp: float = 18.2, **extra: Any) -> dict[str, Any]:
    return {
        "date": day,
        "measurements": [
            {"marker": "ctc_total", "value": ctc, "unit": "cells/7.5mL"},
            {"marker": "afp", "value": afp, "unit": "ng/mL"},
        ],
        **extra,
    }


@pytest.fixture
def patient(api: Api) -> dict[str, Any]:
    """p-0042 registered at site-a."""
    r = api.clinician.post("/v1/patients", json=PATIENT)
    assert r.status_code == 201, r.text
    return r.json()


def server_env(registry: Registry, db: Path | str) -> tuple[dict[str, str], str]:
    """Environment for a ``ctcmon serve`` subprocess on a new store (an SQLite file, or a
    database URL) with the registry's champion, and a clinician token of site-a for it."""
    db = db if isinstance(db, str) else f"sqlite:///{db}"
    store = Store(db)
    store.migrate()
    _, token = create_key(store, "clinician", "site-a")
    store.dispose()
    env = {
        **os.environ,
        "CTCMON_DATABASE_URL": db,
        "CTCMON_MODEL_POLL_SECONDS": "0",
        "MLFLOW_TRACKING_URI": registry.tracking_uri,
    }
    return env, token


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(
    port: int, env: dict[str, str], log: Path, *extra: str, wait: bool = True
) -> subprocess.Popen[bytes]:
    """``ctcmon serve`` as a real process on ``port``; returns once ``/ready`` answers 200."""
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ctcmon", "serve", "--port", str(port), *extra],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    if wait:
        wait_ready(proc, port, log)
    return proc


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, log.read_text()[-2000:]
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"server did not become ready: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
