"""Request and response bodies of the HTTP API. Contract fields reuse ``cohort.records``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cohort.records import (
    CleanRecord,
    ImagingRecord,
    MeasurementRecord,
    PatientHistory,
    PatientRecord,
)
from models.alarm import OperatingPoint

__all__ = [
    "Assessment",
    "DrawIn",
    "ImagingRecord",
    "ModelInfo",
    "OutcomeIn",
    "PatientHistory",
    "PatientOut",
    "PatientRecord",
]

DateText = Field(
    max_length=32, description="ISO date YYYY-MM-DD", json_schema_extra={"format": "date"}
)
OptionalDate = Field(
    default=None,
    max_length=32,
    description="ISO date YYYY-MM-DD",
    json_schema_extra={"format": "date"},
)


class DrawIn(CleanRecord):
    """One blood draw: its date and each marker's value and unit (contract fields)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "date": "2025-03-14",
                "measurements": [
                    {"marker": "ctc_total", "value": 3, "unit": "cells/7.5mL"},
                    {"marker": "afp", "value": 18.2, "unit": "ng/mL"},
                ],
            }
        },
    )

    date: str = DateText
    draw_id: str | None = Field(default=None, min_length=1, max_length=128)
    measurements: list[MeasurementRecord] = Field(min_length=1, max_length=200)
    next_imaging_date: str | None = Field(
        default=None,
        max_length=32,
        description="The next scheduled scan (ISO date), if not the cohort's.",
        json_schema_extra={"format": "date"},
    )


class OutcomeIn(CleanRecord):
    """A row of outcomes.csv: last news, and recurrence / progression / death when they occur."""

    model_config = ConfigDict(extra="forbid")

    last_followup_date: str = DateText
    recurrence_date: str | None = OptionalDate
    progression_date: str | None = OptionalDate
    death_date: str | None = OptionalDate


class Problem(BaseModel):
    loc: list[str | int]
    msg: str


class ErrorOut(BaseModel):
    """Every error: a message, or for 422 the list of every problem found."""

    detail: str | list[Problem]


class ImagingAdvice(BaseModel):
    last_imaging_date: str | None
    next_imaging_date: str | None
    days_to_next_imaging: float | None = None
    risk_before_next_imaging: float | None
    recommendation: Literal["bring_imaging_forward", "keep_schedule"]
    expected_lead_days: float | None


class Driver(BaseModel):
    model_config = ConfigDict(extra="allow")

    feature: str
    value: float | None = None
    effect: str


class ModelRef(BaseModel):
    name: str
    version: str | None
    algorithm: str | None = None


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


class Assessment(BaseModel):
    """The recurrence risk after a draw and what it means for imaging, with its provenance."""

    model_config = ConfigDict(extra="allow")

    patient_id: str
    as_of: str
    risk: dict[str, float] = Field(description="risk of recurrence by horizon in days")
    risk_band: Literal["low", "intermediate", "high"]
    alarm: bool
    alarm_threshold: float
    alarm_horizon_days: float
    alarm_rule: AlarmRule | None = None
    risk_interval: dict[str, RiskInterval] = Field(
        default_factory=dict,
        description="95% interval of each risk by horizon (grouped jackknife over the "
        "cross-validation's fold models); empty for models packaged without fold models",
    )
    imaging: ImagingAdvice
    drivers: list[Driver]
    model: ModelRef
    assessment_id: str
    issued_at: str


class AlarmInfo(BaseModel):
    horizon_days: float
    threshold: float
    low_below: float
    target_specificity: float | None
    expected_lead_days: float | None
    confirm: int = 1
    operating_point: OperatingPoint | None = None


class ModelInfo(BaseModel):
    """Exactly which model is live."""

    name: str
    version: str | None
    alias: str | None
    algorithm: str
    uri: str
    source: str
    run_id: str | None
    trained_at: str
    loaded_at: str
    horizons: list[float]
    alarm: AlarmInfo
    metrics: dict[str, float | None]
    cohort: str
    markers: dict[str, str] = Field(description="marker code → canonical unit")
    covariates: dict[str, str]


class PatientOut(BaseModel):
    """A patient's record as stored: patient row, draws, imaging, outcome."""

    patient: dict[str, Any]
    draws: list[dict[str, Any]]
    imaging: list[dict[str, Any]]
    outcome: dict[str, Any] | None
    assessments: int = Field(description="how many assessments were issued for the patient")


class KeyInfo(BaseModel):
    key_id: str
    role: str
    site_id: str
