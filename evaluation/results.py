"""What a lead-time analysis returns: frozen values, built once, never changed afterwards.

``run_leadtime`` builds them; ``reporting.leadtime`` renders them and ``evaluation.mlflow_log``
logs them. Files written or a run logged give a *new* result (``dataclasses.replace``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd

from alarms.series import AlarmSeries
from alarms.sweep import Sweep


@dataclass(frozen=True)
class RuleResult:
    """One rule's figures: metrics with CIs, hazard ratio, paired comparison, truth check."""

    name: str
    kind: str
    description: str
    threshold: float | None
    confirm: int
    metrics: Mapping[str, Any]
    hazard_ratio: Mapping[str, Any]
    variant_of: str | None = None
    vs_reference: Mapping[str, Any] | None = None
    truth: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class LeadtimeResult:
    """Everything the report shows; ``to_dict`` is ``leadtime.json``."""

    cohort: Mapping[str, Any]
    settings: Mapping[str, Any]
    rules: tuple[RuleResult, ...]
    sweeps: tuple[Sweep, ...]
    truth: Mapping[str, Any] | None
    notes: tuple[str, ...]
    model: Mapping[str, Any] | None = None
    series: Mapping[str, AlarmSeries] = field(default_factory=dict, repr=False)
    summaries: Mapping[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    surveillance: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    imaging: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    draw_days: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    files: Mapping[str, str] = field(default_factory=dict)
    mlflow_run_id: str | None = None

    def rule(self, name: str) -> RuleResult:
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(f"no rule {name!r}; rules: {[r.name for r in self.rules]}")

    @property
    def headline(self) -> tuple[RuleResult, ...]:
        """The rules as given (no sweep variants)."""
        return tuple(r for r in self.rules if r.variant_of is None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cohort": dict(self.cohort),
            "settings": dict(self.settings),
            "model": None if self.model is None else dict(self.model),
            "rules": [r.to_dict() for r in self.rules],
            "sweeps": [s.to_dict() for s in self.sweeps],
            "truth_check": self.truth,
            "notes": list(self.notes),
            "files": dict(self.files),
            "mlflow_run_id": self.mlflow_run_id,
        }
