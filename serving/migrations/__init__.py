"""Alembic migrations of the service's store; ``upgrade_head`` runs them programmatically."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

HERE = Path(__file__).resolve().parent


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic config for this package (no alembic.ini needed); bound to ``engine`` if given."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade_head(engine: Engine) -> None:
    """``alembic upgrade head`` on ``engine``; a no-op when the schema is current."""
    command.upgrade(alembic_config(engine), "head")
