"""The service's store: SQLAlchemy tables, the engine (SQLite or PostgreSQL) and its sessions.

SQLite is the default (one file, WAL, foreign keys on); PostgreSQL by URL for a team.
The schema is owned by the Alembic migrations in ``serving/migrations``; the tables below
are what the migrations must create (a test compares them). Assessments and the audit log
are append-only: no code path updates or deletes them, and a database trigger refuses it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: writers of one process still queue
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Connection,
    Date,
    DateTime,
    Dialect,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DisconnectionError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
APPEND_ONLY_TABLES = ("assessments", "audit_log")

Json = JSON().with_variant(JSONB(), "postgresql")
# SQLite has no 64-bit autoincrement type; INTEGER PRIMARY KEY is its rowid (64-bit anyway)
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store UTC-aware datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ApiKey(Base):
    """An API key: only the SHA-256 of the token is kept; the token is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    site_id: Mapped[str] = mapped_column(String(128))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Patient(Base):
    """A row of patients.csv owned by one site; ``revision`` moves on every write to it."""

    __tablename__ = "patients"
    __table_args__ = (UniqueConstraint("site_id", "patient_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[str] = mapped_column(String(128))
    patient_id: Mapped[str] = mapped_column(String(128))
    index_date: Mapped[date] = mapped_column(Date())
    covariates: Mapped[dict[str, Any]] = mapped_column(Json)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Draw(Base):
    """One blood draw (its marker values are rows of ``measurements``)."""

    __tablename__ = "draws"
    __table_args__ = (UniqueConstraint("patient_pk", "draw_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    patient_pk: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    draw_id: Mapped[str] = mapped_column(String(128))
    date: Mapped[date] = mapped_column(Date())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    key_id: Mapped[str] = mapped_column(String(32))


class Measurement(Base):
    """A marker value as sent (value + unit) and in the manifest's canonical unit."""

    __tablename__ = "measurements"
    # one value of a marker per patient and day: a second one is a duplicate draw (409)
    __table_args__ = (UniqueConstraint("patient_pk", "date", "marker"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    draw_pk: Mapped[int] = mapped_column(ForeignKey("draws.id"), index=True)
    patient_pk: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    date: Mapped[date] = mapped_column(Date())
    marker: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float())
    unit: Mapped[str] = mapped_column(String(32))
    original_value: Mapped[float] = mapped_column(Float())
    original_unit: Mapped[str] = mapped_column(String(32))
    qualifier: Mapped[str | None] = mapped_column(String(1))


class Imaging(Base):
    """A row of imaging.csv."""

    __tablename__ = "imaging"
    __table_args__ = (UniqueConstraint("patient_pk", "date", "modality"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    patient_pk: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    date: Mapped[date] = mapped_column(Date())
    modality: Mapped[str] = mapped_column(String(16))
    finding: Mapped[str] = mapped_column(String(32))
    response: Mapped[str | None] = mapped_column(String(8))
    criteria: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Outcome(Base):
    """A row of outcomes.csv; recording an outcome again replaces it (the audit log keeps who)."""

    __tablename__ = "outcomes"

    patient_pk: Mapped[int] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    last_followup_date: Mapped[date] = mapped_column(Date())
    recurrence_date: Mapped[date | None] = mapped_column(Date())
    progression_date: Mapped[date | None] = mapped_column(Date())
    death_date: Mapped[date | None] = mapped_column(Date())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Assessment(Base):
    """Every assessment the service issued, as returned, with the model version (append-only)."""

    __tablename__ = "assessments"
    __table_args__ = (Index(None, "site_id", "patient_id", "seq"),)

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    assessment_id: Mapped[str] = mapped_column(String(36), unique=True)
    site_id: Mapped[str] = mapped_column(String(128))
    patient_id: Mapped[str] = mapped_column(String(128))
    # null for POST /v1/risk on a patient the site has not registered
    patient_pk: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    draw_pk: Mapped[int | None] = mapped_column(ForeignKey("draws.id"), unique=True)
    source: Mapped[str] = mapped_column(String(16))
    as_of: Mapped[date] = mapped_column(Date())
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str | None] = mapped_column(String(32))
    risk_band: Mapped[str] = mapped_column(String(16))
    alarm: Mapped[bool] = mapped_column(Boolean())
    alarm_threshold: Mapped[float] = mapped_column(Float())
    alarm_horizon_days: Mapped[float] = mapped_column(Float())
    body: Mapped[dict[str, Any]] = mapped_column(Json)
    key_id: Mapped[str] = mapped_column(String(32))


class IdempotencyRecord(Base):
    """The first response to a POST carrying an ``Idempotency-Key`` (per API key)."""

    __tablename__ = "idempotency_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer())
    response: Mapped[Any] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditEvent(Base):
    """Who (key id) read or wrote what, when (append-only)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    site_id: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(8))  # read | write | denied
    resource: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(128))
    ref: Mapped[str | None] = mapped_column(String(64))  # e.g. the assessment id written


EX_CONFIG = 78  # sysexits.h: a configuration error (the store's URL, server or driver)
# the schema migrations of several replicas starting at once queue on this lock (PostgreSQL)
MIGRATION_LOCK = 0x637463_6D6F6E  # "ctcmon"


class StoreConfigError(RuntimeError):
    """The store cannot be used as configured; the message says what to fix (one line)."""


def normalise_database_url(url: str) -> str:
    """``postgres://`` (the usual hosting form) and ``postgresql://`` use the psycopg driver
    ctcmon ships with; other URLs are left as they are."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def config_error(url: str, exc: BaseException) -> StoreConfigError:
    """What is wrong with the store at ``url``, and the fix, in one line."""
    safe = safe_url(url)
    setting = f"CTCMON_DATABASE_URL={safe}"
    if isinstance(exc, ArgumentError | NoSuchModuleError):
        return StoreConfigError(
            f"{setting} is not a database URL ctcmon can use: give "
            "sqlite:///path/to/ctcmon.db or postgresql+psycopg://user@host:5432/dbname"
        )
    if isinstance(exc, ImportError):
        return StoreConfigError(
            f"{setting} needs the driver {exc.name!r}, which is not installed: "
            f"pip install {exc.name}, or use postgresql+psycopg:// (installed with ctcmon)"
        )
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return StoreConfigError(
        f"cannot open the store {setting}: {reason}. Check that the server is running and "
        "reachable, that the database exists (createdb NAME), and the user and password"
    )


def safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return repr(url)


class Store:
    """Engine and sessions. ``reading()`` for queries, ``writing()`` for one transaction,
    ``connect()`` for a Core query."""

    def __init__(self, url: str, *, synchronous: str = "NORMAL", pool_size: int = 10) -> None:
        self.url = url = normalise_database_url(url)
        try:
            self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
            self.engine = self._engine(write=False, synchronous=synchronous, pool_size=pool_size)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise config_error(url, exc) from None
        # SQLite: writers start with BEGIN IMMEDIATE, so a transaction that read first never
        # fails to upgrade its lock under contention (it waits on busy_timeout instead)
        self.writer = (
            self._engine(write=True, synchronous=synchronous, pool_size=pool_size)
            if self.is_sqlite
            else self.engine
        )
        # PostgreSQL lookups run without a transaction: under READ COMMITTED each statement
        # sees what was committed when it started, in or out of one, so a BEGIN and a
        # ROLLBACK (two round trips to the server) per lookup bought nothing. Consistency
        # across a read and a write is the patient's revision claim (serving/service).
        self._lookups = (
            self.engine
            if self.is_sqlite
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.writer, expire_on_commit=False)
        # SQLite has one writer at a time, and a writer that finds the file locked sleeps in
        # SQLite's busy handler (backing off up to 100 ms, holding up its worker's event
        # loop): writers of every process and thread queue on a lock instead, handed over
        # at once. PostgreSQL writers need no such queue.
        self._write_turn: AbstractContextManager[Any] = (
            WriteTurn(_sqlite_file(url)) if self.is_sqlite else nullcontext()
        )

    def _engine(self, *, write: bool, synchronous: str, pool_size: int) -> Engine:
        if not self.is_sqlite:
            engine = create_engine(self.url, pool_size=pool_size, max_overflow=pool_size)
            _ping_when_idle(engine, PING_AFTER_IDLE_SECONDS)
            return engine
        _make_sqlite_parent(self.url)
        engine = create_engine(
            self.url, pool_size=pool_size, max_overflow=pool_size, connect_args={"timeout": 30}
        )
        _sqlite_events(engine, begin="BEGIN IMMEDIATE" if write else "BEGIN", sync=synchronous)
        return engine

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for queries; nothing it does is committed (closing it rolls back)."""
        with self._read() as session:
            yield session

    def connect(self) -> Connection:
        """A connection for Core queries, lighter than a session (no identity map, no unit of
        work) for the lookups every request makes: reads only (on PostgreSQL it is in
        autocommit mode, one round trip per statement; write through ``writing``)."""
        return self._lookups.connect()

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._write_turn, self._write() as session, session.begin():
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction on a Core connection, for the rows a request writes as Core
        statements: as ``writing`` (same lock, same commit) without an ORM session, whose
        unit of work and per-statement ORM execution cost as much as the writes themselves
        (a risk assessment and its audit row: 0.22 ms through a session, 0.17 ms here)."""
        with self._write_turn, self.writer.begin() as conn:
            yield conn

    def migrate(self) -> tuple[str | None, str | None]:
        """Bring the schema to the newest Alembic revision (idempotent; replicas migrating at
        once queue on a PostgreSQL advisory lock). Returns the revisions before and after."""
        from serving.migrations import upgrade_head

        try:
            return upgrade_head(self.writer, MIGRATION_LOCK)
        except (OperationalError, InterfaceError) as exc:
            raise config_error(self.url, exc) from None

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:  # any failure means "not ready"; the reason goes to the log
            log.warning("store unreachable", exc_info=True)
            return False
        return True

    def dispose(self) -> None:
        if isinstance(self._write_turn, WriteTurn):
            self._write_turn.close()
        self.engine.dispose()
        if self.writer is not self.engine:
            self.writer.dispose()


class WriteTurn:
    """One SQLite writer at a time across the processes and threads of this machine.

    A thread lock orders this process's threads; an exclusive ``flock`` on a file beside the
    database (``<database>.write-lock``) orders the processes (``ctcmon serve --workers N``).
    The kernel hands a released lock to a waiter at once and releases it if its process
    dies (``kill -9``), so no writer sleeps in SQLite's busy handler and none is stranded.
    Without ``fcntl`` (not POSIX) or a file (``:memory:``) only the thread lock applies.
    """

    def __init__(self, database: Path | None) -> None:
        self._thread = threading.Lock()
        self._path = None if fcntl is None or database is None else Path(f"{database}.write-lock")
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a forked worker opens its own
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)  # type: ignore[arg-type]
            self._pid = os.getpid()
        return self._fd

    def __enter__(self) -> WriteTurn:
        self._thread.acquire()
        if self._path is not None:
            try:
                fcntl.flock(self._file(), fcntl.LOCK_EX)
            except BaseException:
                self._thread.release()
                raise
        return self

    def close(self) -> None:
        """Close this process's lock file (the lock itself is never held between writes)."""
        with self._thread:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None

    def __exit__(self, *exc: object) -> None:
        try:
            if self._path is not None and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread.release()


# A pooled PostgreSQL connection idle this long is pinged before use (a server restart or
# an idle timeout may have closed it); one in steady use is not: a ping per checkout was 4 of
# a draw's ~24 round trips. A connection that breaks anyway fails its request with a 503
# ("retry"), and SQLAlchemy then replaces every connection of the pool.
PING_AFTER_IDLE_SECONDS = 10.0


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """``pool_pre_ping`` for connections idle more than ``idle_seconds`` only."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return  # new, or in steady use
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception:  # any failure: this connection is gone
            alive = False
        if not alive:
            raise DisconnectionError("a pooled connection was closed while idle")  # the pool
            # discards it and checks out (or opens) another


def _sqlite_file(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser().resolve()


def _make_sqlite_parent(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_events(engine: Engine, *, begin: str, sync: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # the driver's own implicit transactions are off: SQLAlchemy's "begin" below emits them
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=30000",
            f"PRAGMA synchronous={sync}",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)
