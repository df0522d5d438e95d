"""The cohort manifest (``cohort.toml``): what time zero is, the endpoint, covariates, markers."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from cohort.errors import CohortError, Problem
from cohort.rules import clean_text
from cohort.vocabulary import MANIFEST_FILE, CovariateType, Endpoint

# Default surveillance after resection: every 90 days for two years, then every 180
# (AASLD/EASL practice, shared/clinical-facts.md).
DEFAULT_SCHEDULE_DAYS: list[float] = [90, 180, 270, 360, 450, 540, 630, 720]
DEFAULT_THEN_EVERY_DAYS = 180


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MarkerSpec(_Strict):
    """A marker's canonical unit and optional clinical thresholds."""

    unit: str
    positive_at: float | None = Field(default=None, ge=0, description="clinical cut-off (≥)")
    upper_normal: float | None = Field(default=None, ge=0, description="upper limit of normal")
    conversions: dict[str, float] = Field(
        default_factory=dict, description="unit -> factor into the canonical unit"
    )
    label: str | None = None
    loinc: str | None = None

    @field_validator("conversions")
    @classmethod
    def _positive_factors(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: f for k, f in v.items() if not f > 0}
        if bad:
            raise ValueError(f"conversion factors must be > 0, got {bad}")
        return v


class ScheduleSpec(_Strict):
    """Planned days since index (imaging scans or blood draws), then a regular interval."""

    schedule_days: list[float] = Field(default_factory=lambda: list(DEFAULT_SCHEDULE_DAYS))
    then_every_days: float | None = Field(default=DEFAULT_THEN_EVERY_DAYS, gt=0)

    @field_validator("schedule_days")
    @classmethod
    def _strictly_increasing(cls, v: list[float]) -> list[float]:
        # negative days are allowed: a pre-operative baseline draw is part of the schedule
        if list(v) != sorted(set(v)):
            raise ValueError(f"schedule days must be strictly increasing, got {v}")
        return v

    def days_until(self, until_day: float) -> list[float]:
        """Planned days up to ``until_day`` (inclusive), extending with ``then_every_days``."""
        days = [d for d in self.schedule_days if d <= until_day]
        if self.then_every_days and self.schedule_days:
            nxt = self.schedule_days[-1] + self.then_every_days
            while nxt <= until_day:
                days.append(nxt)
                nxt += self.then_every_days
        return days

    def next_after(self, day: float) -> float | None:
        """First planned day strictly after ``day`` (None when the schedule has ended)."""
        for d in self.schedule_days:
            if d > day:
                return d
        if not (self.then_every_days and self.schedule_days):
            return None
        last = self.schedule_days[-1]
        k = int((day - last) // self.then_every_days) + 1
        return last + k * self.then_every_days


class StudySpec(_Strict):
    """Optional study-design columns (declared, never hard-coded) used by ``ctcmon describe``."""

    arm: str | None = None
    histology: str | None = None
    metastatic: str | None = None
    ecog: str | None = None
    child_pugh: str | None = None
    endpoint_years: float | None = Field(default=None, gt=0)
    # [study.eligibility] name = rule, e.g. age = ">= 18", bili = "<= 1.5 ULN", ecog = [0, 1]
    eligibility: dict[str, Any] | None = None
    # [study.ccr] / [study.ctc]: overrides of the clinical-complete-response and CTC-dynamics
    # definitions (keys checked by study.options, which owns their defaults)
    ccr: dict[str, Any] | None = None
    ctc: dict[str, Any] | None = None


class Manifest(_Strict):
    """``cohort.toml``. Unknown keys are refused so a typo never silently changes an analysis."""

    name: str
    time_zero: str
    endpoint: Endpoint = "rfs"
    horizon_days: float | None = Field(default=None, gt=0)
    covariates: dict[str, CovariateType] = Field(default_factory=dict)
    # optional plausibility rules of covariates (``cohort.rules``): values outside are refused
    # wherever a patient row is read (cohort files, the service's bodies)
    covariate_ranges: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="numeric covariate -> [min, max], both inclusive",
    )
    covariate_levels: dict[str, list[str]] = Field(
        default_factory=dict, description="categorical covariate -> its allowed levels"
    )
    markers: dict[str, MarkerSpec]
    imaging: ScheduleSpec | None = None
    draws: ScheduleSpec | None = None
    study: StudySpec | None = None

    @field_validator("markers")
    @classmethod
    def _at_least_one_marker(cls, v: dict[str, MarkerSpec]) -> dict[str, MarkerSpec]:
        if not v:
            raise ValueError("declare at least one marker under [markers.<code>]")
        return v

    @field_validator("covariate_levels", mode="before")
    @classmethod
    def _levels_as_text(cls, v: Any) -> Any:
        # TOML levels such as stage = [1, 2, 3, 4] are the cells' text "1" ... "4"
        if not isinstance(v, dict):
            return v
        return {
            name: [str(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in levels]
            if isinstance(levels, list)
            else levels
            for name, levels in v.items()
        }

    @model_validator(mode="after")
    def _plausibility_of_declared_covariates(self) -> Manifest:
        problems = []
        for name, (low, high) in self.covariate_ranges.items():
            kind = self.covariates.get(name)
            if kind != "numeric":
                problems.append(f"covariate_ranges.{name}: {_not_of_kind(name, kind, 'numeric')}")
            elif not (math.isfinite(low) and math.isfinite(high) and low <= high):
                problems.append(
                    f"covariate_ranges.{name}: needs finite [min, max] with min <= max, "
                    f"got [{low}, {high}]"
                )
        for name, levels in self.covariate_levels.items():
            kind = self.covariates.get(name)
            cleaned = [clean_text(x) for x in levels]
            if kind != "categorical":
                problems.append(
                    f"covariate_levels.{name}: {_not_of_kind(name, kind, 'categorical')}"
                )
            elif not levels or "" in cleaned or len(set(cleaned)) < len(cleaned):
                problems.append(
                    f"covariate_levels.{name}: needs distinct, non-blank levels, got {levels}"
                )
            elif cleaned != levels:
                problems.append(
                    f"covariate_levels.{name}: levels have blanks around them, got {levels}"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle a manifest packaged (inside a model) before a field existed: its default."""
        super().__setstate__(state)
        for name, info in type(self).model_fields.items():
            if name not in self.__dict__:
                self.__dict__[name] = info.get_default(call_default_factory=True)

    def imaging_schedule(self) -> ScheduleSpec:
        """The surveillance schedule: declared, else the default 3-monthly then 6-monthly."""
        return self.imaging or ScheduleSpec()

    def to_toml_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def _not_of_kind(name: str, kind: str | None, wanted: str) -> str:
    if kind is None:
        return f"{name!r} is not declared under [covariates]"
    return f"{name!r} is declared {kind}, only a {wanted} covariate has these"


def load_manifest(folder: Path) -> Manifest:
    """Read and check ``cohort.toml`` in ``folder``; raise CohortError naming each bad key."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise CohortError([Problem(MANIFEST_FILE, None, None, f"missing: no {path}")])
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CohortError([Problem(MANIFEST_FILE, None, None, f"not valid TOML: {exc}")]) from exc
    return parse_manifest(raw)


def parse_manifest(raw: dict[str, Any]) -> Manifest:
    """Validate a manifest mapping, turning pydantic errors into contract problems."""
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        problems = [
            Problem(MANIFEST_FILE, None, ".".join(str(p) for p in err["loc"]) or None, err["msg"])
            for err in exc.errors()
        ]
        raise CohortError(problems) from exc
