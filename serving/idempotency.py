"""Safe retries: the first response to a POST with an ``Idempotency-Key`` is stored with it,
in the same transaction as the write, and returned again for a retry of the same request.
The same key with a different request is a 409.

A retry may arrive while the first attempt is still running (a client that timed out). It
then finds the write already made (a 409 "already recorded", a unique key violated, or the
patient's record moved): whichever way, it reads the stored first response again before
answering, and gets it, because the write and its response were committed together.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from serving.auth import Principal
from serving.errors import Conflict
from serving.store import Base, IdempotencyRecord, Store, utcnow

MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Result:
    """A response: status, JSON body, and whether it is the replay of an earlier one."""

    status: int
    body: Any
    replayed: bool = False


class Stale(Exception):
    """The record changed between reading it and writing to it: compute again."""


# (status, body, write): ``write`` adds the rows inside the one transaction
Attempt = tuple[int, Any, Callable[[Connection], None]]


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


# ``Connection.info`` key of the record a write stores with its response: a writer may insert
# it in its own statement (``take_record``), else ``run`` inserts it after the writer's rows.
# (That dict outlives the transaction with the pooled connection: ``run`` always clears it.)
RECORD = "idempotency_record"


def take_record(conn: Connection) -> dict[str, Any] | None:
    """The idempotency record this transaction must store (None without a key); the caller
    inserts it, in the same transaction, instead of ``run``."""
    record: dict[str, Any] | None = conn.info.pop(RECORD, None)
    return record


# built once (SQLAlchemy caches their compiled SQL) and run as Core statements, like the
# other rows every request writes (see serving/service.py)
RECORD_INSERT = insert(Base.metadata.tables[IdempotencyRecord.__tablename__])
RECORD_BY_KEY = select(
    IdempotencyRecord.fingerprint, IdempotencyRecord.status_code, IdempotencyRecord.response
).where(
    IdempotencyRecord.key_id == bindparam("key_id"),
    IdempotencyRecord.idempotency_key == bindparam("idempotency_key"),
)


def lookup(store: Store, key: Principal, idem_key: str, fp: str) -> Result | None:
    """The stored first response for this key, or None; 409 if the key was used differently."""
    with store.connect() as conn:
        record = conn.execute(
            RECORD_BY_KEY, {"key_id": key.key_id, "idempotency_key": idem_key}
        ).first()
    if record is None:
        return None
    if record.fingerprint != fp:
        raise Conflict(
            "Idempotency-Key already used for a different request; use a new key for a new request"
        )
    return Result(record.status_code, record.response, replayed=True)


def run(
    store: Store,
    key: Principal,
    idem_key: str | None,
    fp: str,
    attempt: Callable[[], Attempt],
    conflict: str,
) -> Result:
    """Compute outside any write lock, then write in one transaction (retried when stale)."""
    if idem_key:
        earlier = lookup(store, key, idem_key, fp)
        if earlier is not None:
            return earlier
    for _ in range(MAX_ATTEMPTS):
        try:
            status, body, write = attempt()
        except Conflict:
            # "already recorded" may be this very request, written by its first attempt
            # while this retry was on its way: then the retry gets that first result
            earlier = lookup(store, key, idem_key, fp) if idem_key else None
            if earlier is not None:
                return earlier
            raise
        try:
            with store.transaction() as conn:
                if idem_key:
                    conn.info[RECORD] = {
                        "key_id": key.key_id,
                        "idempotency_key": idem_key,
                        "fingerprint": fp,
                        "status_code": status,
                        "response": body,
                        "created_at": utcnow(),
                    }
                try:
                    write(conn)
                finally:
                    record = conn.info.pop(RECORD, None)
                if record is not None:  # not taken into the writer's own statement
                    conn.execute(RECORD_INSERT, record)
        except Stale:
            continue
        except IntegrityError:
            earlier = lookup(store, key, idem_key, fp) if idem_key else None
            if earlier is not None:
                return earlier
            raise Conflict(conflict) from None
        return Result(status, body)
    raise Conflict("the record kept changing while this request was processed; retry it")
