"""``idempotency.run`` on its own: the first response is stored with the write, in its
transaction, and nothing of a failed write outlives it on the pooled connection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, func, select

from serving import idempotency
from serving.auth import Principal
from serving.service import audit
from serving.store import AuditEvent, IdempotencyRecord, Store

KEY = Principal("key-1", "clinician", "site-a")


@pytest.fixture
def one_connection(tmp_path: Path) -> Any:
    """A store whose writer has a single pooled connection: every write reuses it."""
    store = Store(f"sqlite:///{tmp_path}/x.db", pool_size=1)
    store.migrate()
    yield store
    store.dispose()


def counts(store: Store) -> tuple[int, int]:
    with store.connect() as conn:
        records = conn.execute(select(func.count()).select_from(IdempotencyRecord)).scalar_one()
        events = conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    return records, events


def attempt(patient: str, fail: bool = False) -> idempotency.Attempt:
    def write(conn: Connection) -> None:
        audit(conn, KEY, "write", "risk", patient)
        if fail:
            raise RuntimeError("the write failed")

    return 200, {"patient_id": patient}, write


def test_a_failed_idempotent_write_leaves_nothing_for_the_next_write(
    one_connection: Store,
) -> None:
    store = one_connection
    with pytest.raises(RuntimeError, match="the write failed"):
        idempotency.run(store, KEY, "retry-1", "fp", lambda: attempt("p1", fail=True), "x")
    assert counts(store) == (0, 0)  # rolled back: no record, no audit row
    # the next write on the same connection has no key: it must not store the failed one's
    assert idempotency.run(store, KEY, None, "", lambda: attempt("p2"), "x").status == 200
    assert counts(store) == (0, 1)
    # and the failed request, retried, is processed anew and stored once with its response
    first = idempotency.run(store, KEY, "retry-1", "fp", lambda: attempt("p1"), "x")
    again = idempotency.run(store, KEY, "retry-1", "fp", lambda: attempt("p3"), "x")
    assert (first.replayed, again.replayed) == (False, True)
    assert again.body == first.body == {"patient_id": "p1"}
    assert counts(store) == (1, 2)


def test_a_writer_may_store_the_record_in_its_own_statement(one_connection: Store) -> None:
    """``take_record`` hands the record to the writer; ``run`` then does not insert it."""
    store = one_connection
    taken: list[dict[str, Any] | None] = []

    def write(conn: Connection) -> None:
        taken.append(idempotency.take_record(conn))

    idempotency.run(store, KEY, "k", "fp", lambda: (201, {"a": 1}, write), "x")
    assert taken[0] is not None and taken[0]["idempotency_key"] == "k"
    assert counts(store) == (0, 0)
