"""The record a RiskPipeline issues for one patient history, typed once.

The packaged model's ``predict`` returns it (MLflow derives the pyfunc's output schema from
these types, so every field is a concrete type MLflow can state: no ``Any``, no ``Literal``),
and the service's ``Assessment`` extends it with the model version, the assessment id and
the time it was issued.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from models.alarm import OperatingPoint

RISK_BANDS = ("low", "intermediate", "high")
RECOMMENDATIONS = ("bring_imaging_forward", "keep_schedule")


class ImagingAdvice(BaseModel):
    last_imaging_date: str | None = None
    next_imaging_date: str | None = None
    days_to_next_imaging: float | None = None
    risk_before_next_imaging: float | None = None
    recommendation: str = Field(description="bring_imaging_forward or keep_schedule")
    expected_lead_days: float | None = None


class Driver(BaseModel):
    feature: str
    value: float | None = None
    effect: str = Field(description="raises or lowers the risk")


class AlarmRule(BaseModel):
    """The rule that set ``alarm``: risk at ``horizon_days`` ≥ ``threshold`` at ``confirm``
    consecutive post-index draws (the latest included)."""

    threshold: float
    confirm: int = 1
    horizon_days: float
    operating_point: OperatingPoint | None = None


class RiskInterval(BaseModel):
    low: float
    high: float


class PipelineAssessment(BaseModel):
    """The recurrence risk after a draw and what it means for imaging."""

    model_config = ConfigDict(extra="allow")

    patient_id: str
    as_of: str
    risk: dict[str, float] = Field(description="risk of recurrence by horizon in days")
    risk_band: str = Field(description="low, intermediate or high")
    alarm: bool
    alarm_threshold: float
    alarm_horizon_days: float
    alarm_rule: AlarmRule | None = None
    risk_interval: dict[str, RiskInterval] = Field(
        default_factory=dict,
        description="95% interval of each risk by horizon (grouped jackknife over the "
        "cross-validation's fold models); empty for models packaged without fold models",
    )
    cross_fitted: bool = Field(
        default=False,
        description="true for a patient the model was trained on: the risks (and the alarm) "
        "are those of the cross-validation's fold model fitted without this patient, the "
        "model the alarm's stated figures describe, not the packaged model's in-sample ones",
    )
    imaging: ImagingAdvice
    drivers: list[Driver]
