"""The store: migrations create the models' schema; assessments and audit are append-only."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DatabaseError

from serving.auth import Principal
from serving.service import ASSESSMENT_INSERT, assessment_values, audit
from serving.store import Assessment, AuditEvent, Base, Patient, Store, utcnow

KEY = Principal("key_test", "clinician", "site-a")


def test_the_migrations_create_exactly_the_schema_of_the_models(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []


def test_migrating_twice_changes_nothing(store: Store) -> None:
    store.migrate()
    with store.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0001"


def _one_assessment(store: Store) -> None:
    doc = {
        "patient_id": "p1",
        "as_of": "2024-03-01",
        "risk": {"365": 0.2},
        "risk_band": "intermediate",
        "alarm": False,
        "alarm_threshold": 0.3,
        "alarm_horizon_days": 365.0,
        "model": {"name": "ctcmon-recurrence", "version": "1"},
        "assessment_id": "a-1",
        "issued_at": "2024-03-01T10:00:00Z",
    }
    with store.writing() as s:
        s.add(
            Patient(
                site_id="site-a",
                patient_id="p1",
                index_date=date(2024, 1, 1),
                covariates={},
                revision=0,
                created_at=utcnow(),
            )
        )
        s.execute(
            ASSESSMENT_INSERT,
            {**assessment_values(doc, KEY, "risk"), "patient_pk": None, "draw_pk": None},
        )
        audit(s, KEY, "write", "risk", "p1")


@pytest.mark.parametrize(
    "statement",
    [
        update(Assessment).values(risk_band="low"),
        delete(Assessment),
        update(AuditEvent).values(action="read"),
        delete(AuditEvent),
    ],
    ids=["update-assessment", "delete-assessment", "update-audit", "delete-audit"],
)
def test_the_database_refuses_to_change_or_remove_an_issued_assessment_or_audit_event(
    store: Store, statement: object
) -> None:
    _one_assessment(store)
    with pytest.raises(DatabaseError, match="append-only"), store.writing() as s:
        s.execute(statement)  # type: ignore[call-overload]


def test_sqlite_runs_in_wal_mode_with_foreign_keys_on(tmp_path: object) -> None:
    store = Store(f"sqlite:///{tmp_path}/x.db")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    store.dispose()


# another process trying to take the SQLite write lock without waiting: 0 if it got it
_PROBE = (
    "import fcntl, os, sys\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
    "try:\n"
    "    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
    "except BlockingIOError:\n"
    "    sys.exit(3)\n"
)
_HOLDER = (
    "import sys, time\n"
    "from serving.store import Store\n"
    "store = Store(sys.argv[1])\n"
    "with store.writing():\n"
    "    print('writing', flush=True)\n"
    "    time.sleep(60)\n"
)


def _probe(lock: Path) -> int:
    return subprocess.run([sys.executable, "-c", _PROBE, str(lock)], check=False).returncode


def test_sqlite_writers_of_every_process_queue_on_one_lock(tmp_path: Path) -> None:
    """Worker processes' writers wait on one lock, handed over at once, instead of sleeping
    in SQLite's busy handler; the lock is held exactly while a transaction writes."""
    store = Store(f"sqlite:///{tmp_path}/x.db")
    store.migrate()
    lock = tmp_path / "x.db.write-lock"
    try:
        with store.writing():
            assert lock.exists()
            assert _probe(lock) == 3  # held: another process's writer waits
        assert _probe(lock) == 0  # released when the transaction ends
    finally:
        store.dispose()


@pytest.mark.parametrize("how", ["writing", "transaction"])
def test_both_kinds_of_write_transaction_take_the_lock(tmp_path: Path, how: str) -> None:
    """The ORM session (``writing``) and the Core connection (``transaction``, which the
    request path writes through) queue on the same lock, released when they end, and a
    transaction that raises is rolled back."""
    store = Store(f"sqlite:///{tmp_path}/x.db")
    store.migrate()
    lock = tmp_path / "x.db.write-lock"
    key = Principal("k1", "clinician", "site-a")
    try:
        with pytest.raises(RuntimeError, match="stop"), getattr(store, how)() as conn:
            assert _probe(lock) == 3
            audit(conn, key, "write", "risk", "p1")
            raise RuntimeError("stop")
        assert _probe(lock) == 0
        with getattr(store, how)() as conn:
            audit(conn, key, "write", "risk", "p2")
        with store.connect() as conn:
            logged = conn.execute(text("SELECT patient_id FROM audit_log")).scalars().all()
        assert logged == ["p2"]
    finally:
        store.dispose()


def test_a_writer_killed_mid_transaction_leaves_the_lock_free(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/x.db"
    first = Store(url)
    first.migrate()
    first.dispose()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "writing"
        assert _probe(tmp_path / "x.db.write-lock") == 3
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()
    store = Store(url)
    try:
        with store.writing() as session:  # the kernel released the dead writer's lock
            session.execute(text("SELECT 1"))
    finally:
        store.dispose()


def _backend_pid(store: Store) -> int:
    with store.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(store: Store, pid: int) -> None:
    with store.writing() as s:
        s.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


@pytest.mark.postgres
def test_a_pooled_connection_closed_while_idle_is_replaced_not_failed(monkeypatch) -> None:
    """Idle connections are pinged before use (a server restart closes them); busy ones are
    not (a ping per checkout was a sixth of a draw's round trips)."""
    import serving.store as store_module

    from .conftest import postgres_schema

    with postgres_schema() as url:
        monkeypatch.setattr(store_module, "PING_AFTER_IDLE_SECONDS", 0.0)
        store = Store(url, pool_size=1)
        other = Store(url)
        try:
            pid = _backend_pid(store)
            _terminate(other, pid)
            assert _backend_pid(store) != pid  # pinged, found closed, replaced
        finally:
            store.dispose()
            other.dispose()


@pytest.mark.postgres
def test_postgresql_lookups_run_outside_a_transaction() -> None:
    """``Store.connect`` is for reads; on PostgreSQL it sends no BEGIN/ROLLBACK around them."""
    from .conftest import postgres_schema

    with postgres_schema() as url:
        store = Store(url)
        try:
            with store.connect() as conn:
                conn.execute(text("SELECT 1"))
                assert conn.connection.dbapi_connection.info.transaction_status.name == "IDLE"
        finally:
            store.dispose()
