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
from cohort.rules import DATE_JSON_SCHEMA
from models import assessment
from models.alarm import OperatingPoint
from models.assessment import PipelineAssessment

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
    max_length=32, description="ISO date YYYY-MM-DD", json_schema_extra=DATE_JSON_SCHEMA
)
OptionalDate = Field(
    default=None,
    max_length=32,
    description="ISO date YYYY-MM-DD",
    json_schema_extra=DATE_JSON_SCHEMA,
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
        json_schema_extra=DATE_JSON_SCHEMA,
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


class ImagingAdvice(assessment.ImagingAdvice):
    recommendation: Literal["bring_imaging_forward", "keep_schedule"]


class ModelRef(BaseModel):
    name: str
    version: str | None
    algorithm: str | None = None


class Assessment(PipelineAssessment):
    """The recurrence risk after a draw and what it means for imaging, with its provenance."""

    risk_band: Literal["low", "intermediate", "high"]
    imaging: ImagingAdvice
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
    covariate_ranges: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="numeric covariate → [min, max]: values outside are refused (422)",
    )
    covariate_levels: dict[str, list[str]] = Field(
        default_factory=dict,
        description="categorical covariate → its allowed levels: others are refused (422)",
    )


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
