"""The service's settings: one ``Settings`` read once from ``CTCMON_*`` variables or ``.env``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./ctcmon.db"
DEFAULT_MODEL_URI = "models:/ctcmon-recurrence@champion"
# a draw or scan may precede the index date (pre-operative baseline), but not by more than this
DEFAULT_PRE_INDEX_DAYS = 365


class Settings(BaseSettings):
    """Everything the service reads from its environment; unsafe values fail at start-up."""

    model_config = SettingsConfigDict(env_prefix="CTCMON_", env_file=".env", extra="ignore")

    env: Literal["development", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    model_uri: str = DEFAULT_MODEL_URI
    # MLflow's location: this, else MLFLOW_TRACKING_URI, else ./mlflow.db (tracking.locations)
    tracking_uri: str | None = None
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=2_000_000, gt=0)
    # how often the registry is asked whether the champion alias moved (0: never)
    model_poll_seconds: float = Field(default=30.0, ge=0)
    # SQLite in WAL mode. NORMAL: a committed write survives the service being killed (tested:
    # SIGKILL mid-load loses nothing acknowledged) but a power cut or OS crash may roll back
    # the last commits; FULL also fsyncs every commit, which survives that too and costs
    # several ms per write on this project's disks. A hospital deployment uses PostgreSQL.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "NORMAL"
    db_pool_size: int = Field(default=10, ge=1)
    # threads that run request handlers in each worker process (see serving/app.py): two
    # keep draws flowing while a long export runs; more lose throughput to the GIL
    # (benchmarks/bench_serving.py: 264 draws/s with 1, 220 with 2, 141 with 4 per worker)
    worker_threads: int = Field(default=2, ge=1)
    max_days_before_index: int = Field(default=DEFAULT_PRE_INDEX_DAYS, ge=0)
    # the clinician web app's session cookies are signed with this; unset in development, a
    # random one per process (``ctcmon serve --workers N`` shares one with its workers)
    session_secret: str | None = Field(default=None, min_length=32)
    session_hours: float = Field(default=12.0, gt=0, le=24 * 7)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @model_validator(mode="after")
    def _safe_outside_development(self) -> Settings:
        if self.env == "development":
            return self
        if "*" in self.cors_origins:
            raise ValueError(
                "CTCMON_CORS_ORIGINS='*' is refused when CTCMON_ENV=production: "
                "list the allowed origins, e.g. https://ehr.hospital.example"
            )
        insecure = [o for o in self.cors_origins if o.startswith("http://")]
        if insecure:
            raise ValueError(
                f"CTCMON_CORS_ORIGINS has plain-http origins {insecure} in production; use https"
            )
        if self.session_secret is None:
            raise ValueError(
                "CTCMON_SESSION_SECRET is required when CTCMON_ENV=production (32+ random "
                "characters, the same for every worker): it signs the web app's sessions"
            )
        return self
