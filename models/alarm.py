"""The alarm's operating point as stated to clinicians: a plain record the packaged model, the
service (``/v1/model``, every assessment) and the reports carry. ``alarms.operating_point``
computes it; serving only passes it on, so it lives here, where both may import it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class OperatingPoint(BaseModel):
    """An alarm rule and the figures a clinician meets with it (each with a 95% CI)."""

    model_config = ConfigDict(frozen=True)

    threshold: float
    confirm: int
    lookback_days: float
    target: str  # e.g. "patient_specificity>=0.9" or "false_alarms_per_patient_year<=0.2"
    target_reached: bool
    patient_specificity: float | None = None
    patient_specificity_low: float | None = None
    patient_specificity_high: float | None = None
    sensitivity: float | None = None
    sensitivity_low: float | None = None
    sensitivity_high: float | None = None
    false_alarms_per_patient_year: float | None = None
    false_alarms_per_patient_year_low: float | None = None
    false_alarms_per_patient_year_high: float | None = None
    median_lead_days: float | None = None
    median_lead_days_low: float | None = None
    median_lead_days_high: float | None = None
    per_draw_specificity: float | None = None
    n_patients: int
    n_recurrences: int
    n_controls: int
    definition: str

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OperatingPoint:
        return cls.model_validate({k: data.get(k) for k in cls.model_fields})
