"""Where MLflow lives: the tracking URI, the experiment, the registered model's name.

The store defaults to an SQLite file in the working directory (no server needed); any
``MLFLOW_TRACKING_URI`` works the same, e.g. a team tracking server backed by PostgreSQL.
Light on purpose: the service imports this module and nothing heavier from training.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import mlflow

log = logging.getLogger(__name__)

REGISTERED_MODEL = "ctcmon-recurrence"
CHAMPION = "champion"
DEFAULT_EXPERIMENT = "ctcmon"
DEFAULT_DB = "mlflow.db"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else an SQLite store in the working dir."""
    if uri:
        return uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(Path.cwd() / DEFAULT_DB).as_posix()}"


def use_tracking(uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT) -> str:
    """Point MLflow at the store and experiment (created with local artifacts beside an SQLite db)."""
    resolved = resolve_tracking_uri(uri)
    mlflow.set_tracking_uri(resolved)
    mlflow.set_registry_uri(resolved)
    if mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(
            experiment, artifact_location=_artifact_location(resolved, experiment)
        )
    mlflow.set_experiment(experiment)
    return resolved


def _artifact_location(uri: str, experiment: str) -> str | None:
    """Artifacts of an SQLite store go in ``mlartifacts/`` beside the db file, as absolute URIs,
    so runs stay readable whatever directory a later command starts from."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///"))
    return (db.parent / "mlartifacts" / experiment).resolve().as_uri()


def git_commit() -> str | None:
    """Commit of the ctcmon source tree, when it is a git checkout."""
    src = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
