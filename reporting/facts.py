"""The facts a model report states, gathered from MLflow; ``model_report.json`` holds them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tracking.vocabulary import Tag

Records = list[dict[str, Any]]


@dataclass
class ReportFacts:
    """Everything the report says, each value read from the run, its artifacts or the registry.

    ``figures`` (PNG bytes by name) are written beside the report, not into the JSON.
    """

    model: dict[str, Any]  # URI, ctcmon model name, run, experiment, registry entry
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    cohort: dict[str, Any]  # name, digest, source, counts, dates, sites (when readable)
    manifest: dict[str, Any]
    predictors: dict[str, Any]  # markers, covariates, other features, used by the model
    hyperparameters: dict[str, str]
    alarm: dict[str, Any]
    tables: dict[str, Records]  # by_landmark, by_fold, calibration, decision_curve
    comparison: Records
    leadtime: dict[str, Any] | None
    notes: list[str]
    limitations: list[str] = field(default_factory=list)
    tripod: Records = field(default_factory=list)
    figures: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def horizon_days(self) -> float:
        return float(self.tags.get(Tag.HORIZON_DAYS) or self.params.get("horizon_days", "nan"))

    @property
    def simulated(self) -> bool:
        return bool(self.cohort.get("simulated"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN and infinities as null); figures by file name only."""
        out = {k: v for k, v in vars(self).items() if k != "figures"}
        out["figures"] = sorted(f"{name}.png" for name in self.figures)
        out["horizon_days"] = self.horizon_days
        return {str(k): json_safe(v) for k, v in out.items()}


def json_safe(obj: Any) -> Any:
    """Plain JSON values: NaN/inf → None, numpy scalars → Python, tuples → lists."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str | bytes):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
