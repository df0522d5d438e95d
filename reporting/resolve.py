"""From a model URI to the MLflow run that logged it, with the registry's view of it.

Accepted: ``models:/<name>@<alias>``, ``models:/<name>/<version>``, ``models:/<model id>``
(an MLflow 3 logged model, ``m-…``) and ``runs:/<run id>/<path>``. Anything MLflow cannot
find becomes a ``ValueError`` that quotes the URI.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

_ALIAS: Final = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)$")
_VERSION: Final = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
_LOGGED: Final = re.compile(r"^models:/(?P<model_id>m-[0-9a-f]+)$")
_RUN: Final = re.compile(r"^runs:/(?P<run_id>[0-9a-f]+)/(?P<path>[^/].*)$")
EXPECTED: Final = (
    "models:/<name>@<alias>, models:/<name>/<version>, models:/<model id> or runs:/<run id>/<path>"
)


@dataclass(frozen=True)
class ModelRef:
    """The run behind a model URI and, when registered, its registry entry."""

    model_uri: str
    run_id: str
    registered_name: str | None = None
    version: str | None = None
    aliases: tuple[str, ...] = ()
    registered_at: str | None = None
    version_tags: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_uri": self.model_uri,
            "run_id": self.run_id,
            "registered_name": self.registered_name,
            "version": self.version,
            "aliases": list(self.aliases),
            "registered_at": self.registered_at,
            "version_tags": dict(self.version_tags),
        }


@contextmanager
def tracking_at(uri: str) -> Iterator[None]:
    """Point MLflow's tracking and registry at ``uri`` for the block, then restore them."""
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])


def check_model_uri(model_uri: object) -> str:
    """The URI, stripped, if it has one of the accepted forms (checked before any MLflow call)."""
    if not isinstance(model_uri, str) or not model_uri.strip():
        raise ValueError(f"model URI must be a non-empty string, got {model_uri!r}; use {EXPECTED}")
    uri = model_uri.strip()
    if not any(p.match(uri) for p in (_ALIAS, _VERSION, _LOGGED, _RUN)):
        raise ValueError(f"unsupported model URI {uri!r}; expected {EXPECTED}")
    return uri


def resolve_model(model_uri: str, client: MlflowClient) -> ModelRef:
    """The :class:`ModelRef` of ``model_uri``; ValueError naming the URI when it is unknown."""
    uri = check_model_uri(model_uri)
    try:
        return _resolve(uri, client)
    except MlflowException as exc:
        reason = str(exc.message).splitlines()[0]
        raise ValueError(
            f"cannot resolve model URI {model_uri!r} at {mlflow.get_tracking_uri()}: {reason}"
        ) from None


def _resolve(uri: str, client: MlflowClient) -> ModelRef:
    if m := _ALIAS.match(uri):
        return _from_version(uri, client.get_model_version_by_alias(m["name"], m["alias"]))
    if m := _VERSION.match(uri):
        return _from_version(uri, client.get_model_version(m["name"], m["version"]))
    if m := _LOGGED.match(uri):
        run_id = client.get_logged_model(m["model_id"]).source_run_id
        if not run_id:
            raise ValueError(f"model URI {uri!r} names a logged model without a source run")
        return _with_registry(uri, run_id, client)
    if m := _RUN.match(uri):
        client.get_run(m["run_id"])  # raises for an unknown run; the model is loaded later
        return _with_registry(uri, m["run_id"], client)
    raise ValueError(f"unsupported model URI {uri!r}; expected {EXPECTED}")


def _from_version(uri: str, mv: ModelVersion) -> ModelRef:
    if not mv.run_id:
        raise ValueError(f"model URI {uri!r} resolves to version {mv.version} without a run")
    return ModelRef(
        model_uri=uri,
        run_id=str(mv.run_id),
        registered_name=str(mv.name),
        version=str(mv.version),
        aliases=tuple(mv.aliases or ()),
        registered_at=_timestamp(mv.creation_timestamp),
        version_tags=dict(mv.tags or {}),
    )


def _with_registry(uri: str, run_id: str, client: MlflowClient) -> ModelRef:
    """A run URI still gets its registry entry when one version came from that run."""
    versions: list[ModelVersion] = []
    try:
        versions = list(client.search_model_versions(f"run_id = '{run_id}'"))
    except MlflowException as exc:
        log.info("no registry lookup for run %s: %s", run_id, exc)
    if not versions:
        return ModelRef(model_uri=uri, run_id=run_id)
    latest = max(versions, key=lambda v: int(v.version))
    return _from_version(uri, latest)


def _timestamp(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")
