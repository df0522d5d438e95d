"""Alembic migrations of the service's store; ``upgrade_head`` runs them programmatically."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, text

HERE = Path(__file__).resolve().parent


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic config for this package (no alembic.ini needed); bound to ``engine`` if given."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade_head(engine: Engine, lock: int) -> tuple[str | None, str | None]:
    """``alembic upgrade head`` on ``engine`` (a no-op when the schema is current); returns
    the revisions before and after.

    On PostgreSQL the upgrade holds the advisory lock ``lock`` from before it reads the
    schema's revision until it has committed, so replicas starting together migrate one
    after the other and the later ones find the schema current. SQLite needs no lock: the
    migration's transaction begins IMMEDIATE (see ``serving.store``), which serialises it.
    """
    with engine.connect() as conn:
        locking = conn.dialect.name == "postgresql"
        if locking:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": lock})
            conn.commit()
        try:
            before = _revision(conn)
            command.upgrade(alembic_config(engine), "head")
            after = _revision(conn)
        finally:
            if locking:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": lock})
                conn.commit()
    return before, after


def _revision(conn: Connection) -> str | None:
    revision = MigrationContext.configure(conn).get_current_revision()
    conn.commit()  # end the read's transaction: the lock stays (it belongs to the session)
    return revision
