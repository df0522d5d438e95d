"""The alarm's operating point as stated to clinicians: a plain record the packaged model, the
service (``/v1/model``, every assessment) and the reports carry. ``alarms.operating_point``
computes it; serving only passes it on, so it lives here, where both may import it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class OperatingPoint:
    """An alarm rule and the figures a clinician meets with it (each with a 95% CI)."""

    threshold: float
    confirm: int
    lookback_days: float
    target: str  # e.g. "patient_specificity>=0.9" or "false_alarms_per_patient_year<=0.2"
    target_reached: bool
    patient_specificity: float | None
    patient_specificity_low: float | None
    patient_specificity_high: float | None
    sensitivity: float | None
    sensitivity_low: float | None
    sensitivity_high: float | None
    false_alarms_per_patient_year: float | None
    false_alarms_per_patient_year_low: float | None
    false_alarms_per_patient_year_high: float | None
    median_lead_days: float | None
    median_lead_days_low: float | None
    median_lead_days_high: float | None
    per_draw_specificity: float | None
    n_patients: int
    n_recurrences: int
    n_controls: int
    definition: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OperatingPoint:
        fields: dict[str, Any] = {k: data.get(k) for k in cls.__dataclass_fields__}
        return cls(**fields)
