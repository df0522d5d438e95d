"""The live model: loaded once at start-up, swapped atomically when the champion alias moves.

Requests take a snapshot (``holder.current``) and use it throughout, so a swap never mixes two
models in one response and never fails a request in flight. The registry is polled in a
background task (``poll``) and an admin can force a check (``POST /v1/admin/reload``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from models.packaging import load_pipeline
from models.pipeline import RiskPipeline
from serving.store import utcnow
from tracking.locations import resolve_tracking_uri

log = logging.getLogger(__name__)

_ALIAS = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)$")
_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


@dataclass(frozen=True)
class LoadedModel:
    """A loaded pipeline and exactly which registered version it is."""

    pipeline: RiskPipeline
    name: str
    version: str | None
    alias: str | None
    uri: str
    source: str
    run_id: str | None
    loaded_at: datetime

    def ref(self) -> dict[str, Any]:
        """What every assessment carries: the registered name and version that issued it."""
        return {"name": self.name, "version": self.version, "algorithm": self.pipeline.model_name}


class ModelHolder:
    """Holds the current ``LoadedModel``; ``refresh`` swaps in a new champion when it moves."""

    def __init__(self, uri: str, tracking_uri: str | None = None) -> None:
        self.uri = uri
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self._current: LoadedModel | None = None
        self._lock = threading.Lock()  # one load at a time; readers never wait on it
        self.last_error: str | None = None

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def _client(self) -> MlflowClient:
        db = self.tracking_uri.removeprefix("sqlite:///")
        if db != self.tracking_uri and not Path(db).is_file():
            # asking MLflow would create an empty store there; say what is missing instead
            raise FileNotFoundError(f"no MLflow store at {db}")
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def resolve(self) -> tuple[str, str | None, str | None, str | None]:
        """(uri to load, registered name, version, run id) for ``self.uri`` right now."""
        alias = _ALIAS.match(self.uri)
        if alias:
            mv = self._client().get_model_version_by_alias(alias["name"], alias["alias"])
            return (
                f"models:/{alias['name']}/{mv.version}",
                alias["name"],
                str(mv.version),
                mv.run_id,
            )
        version = _VERSION.match(self.uri)
        if version:
            mv = self._client().get_model_version(version["name"], version["version"])
            return self.uri, version["name"], str(mv.version), mv.run_id
        return self.uri, None, None, None

    def refresh(self, force: bool = False) -> bool:
        """Load the model if it is not loaded or its version moved; True when a swap happened."""
        with self._lock:
            source, name, version, run_id = self.resolve()
            now = self._current
            if not force and now is not None and (now.source, now.version) == (source, version):
                return False
            mlflow.set_tracking_uri(self.tracking_uri)
            mlflow.set_registry_uri(self.tracking_uri)
            pipeline = load_pipeline(source)
            alias = _ALIAS.match(self.uri)
            self._current = LoadedModel(
                pipeline=pipeline,
                name=name or pipeline.model_name,
                version=version,
                alias=alias["alias"] if alias else None,
                uri=self.uri,
                source=source,
                run_id=run_id,
                loaded_at=utcnow(),
            )
            self.last_error = None
        log.info("model %s version %s is live", self._current.name, version)
        return True

    def try_refresh(self, force: bool = False) -> bool:
        """``refresh`` that logs instead of raising: the current model stays live on failure."""
        try:
            return self.refresh(force=force)
        except Exception as exc:  # a registry hiccup must never take the service down
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("model refresh from %s failed: %s", self.uri, type(exc).__name__)
            return False


async def poll(holder: ModelHolder, every_seconds: float) -> None:
    """Check the registry every ``every_seconds`` and swap in a moved champion."""
    while True:
        await asyncio.sleep(every_seconds)
        await asyncio.to_thread(holder.try_refresh)
