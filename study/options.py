"""Study settings read from the manifest's ``[study]`` section, with documented defaults.

``StudySpec`` declares the design columns (arm, histology, metastatic, ECOG, Child-Pugh) and
``endpoint_years``. Eligibility rules, the cCR definition and the CTC windows are read from
``[study.eligibility]``, ``[study.ccr]`` and ``[study.ctc]`` once ``StudySpec`` carries them
(proposed); until then they can be passed to ``describe_cohort`` directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from cohort.manifest import Manifest
from cohort.vocabulary import AFP, CTC_TOTAL
from study.names import DAYS_PER_YEAR

DEFAULT_YEARS = (1.0, 2.0, 5.0)


@dataclass(frozen=True)
class CtcOptions:
    """How CTC dynamics are read: pre-operative draw and the draw about one month after."""

    marker: str = CTC_TOTAL
    pre_window_days: float = 30.0  # latest draw in [-pre_window_days, 0]
    post_target_day: float = 30.0  # Sun 2013: counts one month after resection
    post_window: tuple[float, float] = (14.0, 60.0)


@dataclass(frozen=True)
class CcrOptions:
    """Clinical complete response: confirmed mRECIST CR and confirmed AFP normalisation."""

    marker: str = AFP
    baseline_min: float = 400.0  # AFP before treatment at or above this
    confirm_days: float = 28.0  # "one month apart", RECIST confirmation ≥ 4 weeks
    criteria: str = "mRECIST"


@dataclass(frozen=True)
class StudyOptions:
    """Everything ``describe`` needs beyond the cohort's frames."""

    arm: str | None = None
    histology: str | None = None
    metastatic: str | None = None
    ecog: str | None = None
    child_pugh: str | None = None
    horizon_days: float | None = None
    years: tuple[float, ...] = DEFAULT_YEARS
    eligibility: Mapping[str, Any] = field(default_factory=dict)
    ctc: CtcOptions = CtcOptions()
    ccr: CcrOptions = CcrOptions()
    schedule_window_days: float = 30.0  # a scan counts for a planned visit within ± this

    def roles(self) -> dict[str, str]:
        """Declared study roles → patients column, e.g. ``{"ecog": "ps"}``."""
        named = {
            "arm": self.arm,
            "histology": self.histology,
            "metastatic": self.metastatic,
            "ecog": self.ecog,
            "child_pugh": self.child_pugh,
        }
        return {role: col for role, col in named.items() if col}


def _section(study: object, name: str) -> dict[str, Any]:
    """A ``[study.<name>]`` table, if the manifest's StudySpec carries one."""
    value = getattr(study, name, None)
    if value is None:
        return {}
    if hasattr(value, "model_dump"):
        return dict(value.model_dump(exclude_none=True))
    return dict(value)


def _with_overrides(base: Any, raw: Mapping[str, Any]) -> Any:
    known = {f.name for f in fields(base)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(
            f"unknown keys {unknown} for {type(base).__name__}; expected {sorted(known)}"
        )
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return replace(base, **clean)


def study_options(
    manifest: Manifest,
    *,
    eligibility: Mapping[str, Any] | None = None,
    years: tuple[float, ...] = DEFAULT_YEARS,
) -> StudyOptions:
    """Options from the manifest; ``eligibility`` given here wins over the manifest's."""
    spec = manifest.study
    horizon = manifest.horizon_days
    if spec is not None and spec.endpoint_years is not None:
        horizon = spec.endpoint_years * DAYS_PER_YEAR
    rules = eligibility if eligibility is not None else _section(spec, "eligibility")
    return StudyOptions(
        arm=getattr(spec, "arm", None),
        histology=getattr(spec, "histology", None),
        metastatic=getattr(spec, "metastatic", None),
        ecog=getattr(spec, "ecog", None),
        child_pugh=getattr(spec, "child_pugh", None),
        horizon_days=horizon,
        years=tuple(float(y) for y in years),
        eligibility=dict(rules),
        ctc=_with_overrides(CtcOptions(), _section(spec, "ctc")),
        ccr=_with_overrides(CcrOptions(), _section(spec, "ccr")),
    )
