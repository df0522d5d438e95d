"""A team's deployment: ``ctcmon db upgrade`` as its own command, safe when several run at
once; replicas starting together on an empty PostgreSQL database all come up; a store that
cannot be used as configured is a one-line message with the fix and exit 78 (EX_CONFIG)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from serving.store import Store
from tests.serving.conftest import (
    PG_SERVER,
    Registry,
    free_port,
    postgres_schema,
    start_serve,
    stop,
    wait_ready,
)

EX_CONFIG = 78
ROUNDS = 2  # simultaneous starts of two replicas (each round a fresh, empty database)


def ctcmon(*args: str, url: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CTCMON_DATABASE_URL": url, **extra_env}
    env.pop("CTCMON_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "ctcmon", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def tables(url: str) -> set[str]:
    store = Store(url)
    try:
        with store.connect() as conn:
            if store.is_sqlite:
                rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))
            else:
                rows = conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                )
            return {r[0] for r in rows}
    finally:
        store.dispose()


def test_db_upgrade_creates_the_schema_once_and_then_finds_it_current(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    first = ctcmon("db", "upgrade", url=url)
    assert first.returncode == 0, first.stderr
    assert "migrated from empty" in first.stdout
    assert {"patients", "draws", "assessments", "alembic_version"} <= tables(url)
    again = ctcmon("db", "upgrade", "--json", url=url)
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["ok"] and result["from"] == result["to"] is not None


UNREACHABLE = {
    "no such database": (
        PG_SERVER.rsplit("/", 1)[0] + "/ctcmon_no_such_database",
        "does not exist",
    ),
    "connection refused": ("postgresql+psycopg://postgres@127.0.0.1:9/test", "createdb NAME"),
    "unknown scheme": ("mongodb://127.0.0.1/ctcmon", "not a database URL ctcmon can use"),
    "not a URL": ("ctcmon.db", "not a database URL ctcmon can use"),
    "missing driver": ("postgresql+pg8000://postgres@127.0.0.1/test", "pip install pg8000"),
}


# every case through `db upgrade`; the other commands that open the store with one case each
CASES = [("db", "upgrade", case) for case in sorted(UNREACHABLE)] + [
    ("keys", "list", "unknown scheme"),
    ("serve", "--port", "connection refused"),
]


@pytest.mark.parametrize(("command", "option", "case"), CASES)
def test_a_store_that_cannot_be_used_is_one_line_with_the_fix_and_exit_78(
    command: str, option: str, case: str
) -> None:
    url, fix = UNREACHABLE[case]
    if case == "no such database":
        pytest.importorskip("psycopg")
    args = (command, option, str(free_port())) if option == "--port" else (command, option)
    run = ctcmon(*args, url=url, MLFLOW_TRACKING_URI="sqlite:///unused-mlflow.db")
    assert run.returncode == EX_CONFIG, (run.returncode, run.stderr)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert fix in lines[0] and "CTCMON_DATABASE_URL=" in lines[0]
    assert "bug in ctcmon" not in run.stderr


@pytest.mark.postgres
def test_a_postgres_url_in_the_hosting_form_is_accepted() -> None:
    with postgres_schema() as url:
        hosting = url.replace("postgresql+psycopg://", "postgres://")
        run = ctcmon("db", "upgrade", url=hosting)
        assert run.returncode == 0, run.stderr
        assert "patients" in tables(url)


@pytest.mark.postgres
def test_several_upgrades_at_once_on_an_empty_postgresql_database_all_succeed() -> None:
    with postgres_schema() as url:
        env = {**os.environ, "CTCMON_DATABASE_URL": url}
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "ctcmon", "db", "upgrade"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
        assert [code for code, _, _ in results] == [0] * 4, results
        outcomes = sorted("migrated from empty" in stdout for _, stdout, _ in results)
        assert outcomes == [False, False, False, True]  # one migrated, three found it current


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_replicas_started_at_once_on_an_empty_postgresql_database_both_come_up(
    registry: Registry, tmp_path: Path, round_: int
) -> None:
    with postgres_schema() as url:
        env = {
            **os.environ,
            "CTCMON_DATABASE_URL": url,
            "CTCMON_MODEL_POLL_SECONDS": "0",
            "MLFLOW_TRACKING_URI": registry.tracking_uri,
        }
        ports = [free_port(), free_port()]
        logs = [tmp_path / f"replica-{p}.log" for p in ports]
        procs = [start_serve(p, env, log, wait=False) for p, log in zip(ports, logs, strict=True)]
        try:
            for proc, port, log in zip(procs, ports, logs, strict=True):
                wait_ready(proc, port, log)
        finally:
            for proc in procs:
                stop(proc)
