"""A team's deployment as the README's team section runs it, with real processes: an MLflow
tracking server (PostgreSQL backend store, an artifact root), `ctcmon db upgrade`, two
`ctcmon serve` replicas on one PostgreSQL database; a champion promoted through the
registry is served by every replica within the poll interval, and names its version."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.serving.conftest import (
    Registry,
    draw,
    free_port,
    postgres_schema,
    start_serve,
    stop,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

POLL_SECONDS = 2


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "ctcmon", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def mlflow_server(backend: str, artifacts: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlflow"),
                "server",
                "--backend-store-uri",
                backend,
                "--artifacts-destination",
                str(artifacts),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.5)
    proc.kill()
    raise AssertionError(f"mlflow server did not start: {log.read_text()[-3000:]}")


def test_a_champion_promoted_through_the_registry_is_served_by_every_replica(
    registry: Registry, tmp_path: Path
) -> None:
    with postgres_schema() as mlflow_db, postgres_schema() as ctcmon_db:
        mlflow_port = free_port()
        tracking = f"http://127.0.0.1:{mlflow_port}"
        server = mlflow_server(
            mlflow_db, tmp_path / "artifacts", mlflow_port, tmp_path / "mlflow.log"
        )
        replicas: list[subprocess.Popen[bytes]] = []
        try:
            env = {
                **os.environ,
                "MLFLOW_TRACKING_URI": tracking,
                # the hosting form of the URL, as a platform hands it out
                "CTCMON_DATABASE_URL": ctcmon_db.replace("postgresql+psycopg://", "postgres://"),
                "CTCMON_MODEL_POLL_SECONDS": str(POLL_SECONDS),
            }
            run("db", "upgrade", env=env)
            cohort = str(registry.cohort_dir)
            run("train", cohort, "--models", "cox", "--folds", "3", "--bootstrap", "0",
                "--register", env=env)  # fmt: skip
            token = run("keys", "create", "--role", "clinician", "--site", "site-a", "--json",
                        env=env)  # fmt: skip
            key = __import__("json").loads(token.stdout)["key"]
            ports = [free_port(), free_port()]
            replicas = [start_serve(p, env, tmp_path / f"replica-{p}.log") for p in ports]
            clients = [
                httpx.Client(
                    base_url=f"http://127.0.0.1:{p}",
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=60,
                )
                for p in ports
            ]
            assert [c.get("/v1/model").json()["version"] for c in clients] == ["1", "1"]

            # promote: the team trains again and registers; the champion alias moves to v2
            run("train", cohort, "--models", "cox", "--folds", "3", "--bootstrap", "0",
                "--seed", "1", "--register", env=env)  # fmt: skip
            deadline = time.monotonic() + 10 * POLL_SECONDS + 30
            versions = [None, None]
            while time.monotonic() < deadline and versions != ["2", "2"]:
                versions = [c.get("/v1/model").json()["version"] for c in clients]
                time.sleep(0.5)
            assert versions == ["2", "2"]

            r = clients[0].post(
                "/v1/patients", json={"patient_id": "t-1", "index_date": "2024-01-10"}
            )
            assert r.status_code == 201, r.text
            for i, c in enumerate(clients):
                a = c.post("/v1/patients/t-1/draws", json=draw(f"2024-0{i + 2}-01"))
                assert a.status_code == 201, a.text
                assert a.json()["model"]["version"] == "2"
            for c in clients:
                c.close()
        finally:
            for proc in replicas:
                stop(proc)
            stop(server)
