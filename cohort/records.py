"""One patient's history as JSON-able records (contract fields), validated like a cohort.

The packaged model's input and the HTTP API's bodies are these records; they go through
the same contract checks as files (``cohort_from_frames``), so a bad value gets the same
message wherever it comes from.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

from cohort.cohort import Cohort
from cohort.errors import CohortError, Problem
from cohort.load import cohort_from_frames
from cohort.manifest import Manifest
from cohort.rules import (
    DATE_JSON_SCHEMA,
    PATIENT_ID_PATTERN,
    PATIENT_ID_RULE,
    clean_field,
    clean_text,
    routable_id,
)
from cohort.vocabulary import (
    CRITERIA_VALUES,
    DATE,
    FINDINGS,
    IMAGING_FILE,
    INDEX_DATE,
    MEASUREMENTS_FILE,
    MODALITIES,
    PATIENT_ID,
    PATIENTS_FILE,
    QUALIFIERS,
    RESPONSES,
)

ROW_OFFSET = 2  # Problem rows are spreadsheet rows; records are 0-based list positions


class CleanRecord(BaseModel):
    """A contract row: every text field normalised (``rules.clean_text``) before validation."""

    @model_validator(mode="before")
    @classmethod
    def _clean(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: clean_field(v) for k, v in data.items()}
        return data


# a marker value: a JSON number (not a boolean, not text), finite
Value = Annotated[float, Strict(), Field(allow_inf_nan=False)]


class PatientRecord(CleanRecord):
    """A row of patients.csv: identifiers, index date, and the manifest's covariates."""

    model_config = ConfigDict(extra="allow")

    # the pattern states ``rules.routable_id`` (checked below) in the OpenAPI document
    patient_id: str = Field(
        min_length=1, max_length=128, json_schema_extra={"pattern": PATIENT_ID_PATTERN}
    )
    # the key's site, set by the service (readOnly): sent, it must be the key's (else 403)
    site_id: str | None = Field(
        default=None, min_length=1, max_length=128, json_schema_extra={"readOnly": True}
    )
    index_date: str = Field(max_length=32, json_schema_extra=DATE_JSON_SCHEMA)

    @field_validator(PATIENT_ID)
    @classmethod
    def _routable(cls, value: str) -> str:
        if not routable_id(value):
            raise ValueError(f"{PATIENT_ID_RULE} (got {value!r})")
        return value


class MeasurementRecord(BaseModel):
    """A row of measurements.csv (``date`` may be omitted inside a draw that carries it).

    Its text fields are normalised as ``CleanRecord``'s, by pydantic itself
    (``str_strip_whitespace`` trims exactly ``rules.BLANKS``): a history holds a hundred of
    these rows, and the per-row Python validator was a third of its validation time."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    date: str | None = Field(default=None, max_length=32, json_schema_extra=DATE_JSON_SCHEMA)
    marker: str = Field(min_length=1, max_length=64)
    value: Value
    unit: str = Field(min_length=1, max_length=32)
    qualifier: str | None = Field(default=None, json_schema_extra={"enum": [*QUALIFIERS, "", None]})
    draw_id: str | None = Field(default=None, max_length=128)


class ImagingRecord(BaseModel):
    """A row of imaging.csv (text normalised as ``MeasurementRecord``'s)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    date: str = Field(max_length=32, json_schema_extra=DATE_JSON_SCHEMA)
    # the vocabularies are the contract's rules (cohort.schemas); stated here for the OpenAPI
    modality: str = Field(json_schema_extra={"enum": list(MODALITIES)})
    finding: str = Field(json_schema_extra={"enum": list(FINDINGS)})
    response: str | None = Field(default=None, json_schema_extra={"enum": [*RESPONSES, "", None]})
    criteria: str | None = Field(
        default=None, json_schema_extra={"enum": [*CRITERIA_VALUES, "", None]}
    )


class PatientHistory(BaseModel):
    """Everything known about one patient up to ``as_of`` (later data is ignored).

    Its own text fields are normalised as ``MeasurementRecord``'s, by pydantic itself: a
    Python before-validator here would make pydantic build the whole body as Python objects
    before validating it, instead of validating the JSON bytes in one pass."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    patient: PatientRecord
    measurements: list[MeasurementRecord] = Field(default_factory=list, max_length=10_000)
    imaging: list[ImagingRecord] = Field(default_factory=list, max_length=1_000)
    as_of: str | None = Field(default=None, max_length=32, json_schema_extra=DATE_JSON_SCHEMA)
    next_imaging_date: str | None = Field(
        default=None, max_length=32, json_schema_extra=DATE_JSON_SCHEMA
    )


def cell_text(value: Any) -> str:
    """A record's field as the text cell a file would hold (the contract reads text).

    Booleans become ``true``/``false``: a binary covariate reads them, a number does not.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return clean_text(str(value))


def _frame(rows: list[dict[str, Any]], columns: list[str], file: str) -> pd.DataFrame:
    frame = pd.DataFrame(
        [{c: cell_text(r.get(c)) for c in columns} for r in rows], columns=columns, dtype=str
    )
    frame.attrs["file"] = file
    return frame


def history_frames(history: PatientHistory, manifest: Manifest) -> dict[str, pd.DataFrame]:
    """The contract tables (as text) of one history, ready for ``cohort_from_frames``."""
    patient = history.patient.model_dump()
    patient["site_id"] = patient.get("site_id") or "unspecified"
    pid = history.patient.patient_id
    covs = list(manifest.covariates)
    m_rows = [{PATIENT_ID: pid, **m.model_dump()} for m in history.measurements]
    i_rows = [{PATIENT_ID: pid, **i.model_dump()} for i in history.imaging]
    m_cols = [PATIENT_ID, DATE, "marker", "value", "unit", "qualifier", "draw_id"]
    i_cols = [PATIENT_ID, DATE, "modality", "finding", "response", "criteria"]
    return {
        PATIENTS_FILE: _frame([patient], [PATIENT_ID, "site_id", INDEX_DATE, *covs], "patient"),
        MEASUREMENTS_FILE: _frame(m_rows, m_cols, "measurements"),
        IMAGING_FILE: _frame(i_rows, i_cols, "imaging"),
    }


def history_to_cohort(history: PatientHistory, manifest: Manifest) -> Cohort:
    """Validate one history against the contract; CohortError lists every problem."""
    problems = _covariate_presence(history, manifest)
    return cohort_from_frames(history_frames(history, manifest), manifest, problems=problems)


def _covariate_presence(history: PatientHistory, manifest: Manifest) -> list[Problem]:
    extra = set((history.patient.model_extra or {}).keys())
    unknown = sorted(extra - set(manifest.covariates))
    return [
        Problem(
            "patient",
            None,
            name,
            f"unknown covariate {name!r}; the model knows {sorted(manifest.covariates)}",
        )
        for name in unknown
    ]


def problem_loc(problem: Problem) -> list[str | int]:
    """Where a problem sits in a history body, e.g. ``["measurements", 3, "value"]``."""
    loc: list[str | int] = [problem.file]
    if problem.row is not None and problem.file != "patient":
        loc.append(problem.row - ROW_OFFSET)
    if problem.column:
        loc.append(problem.column)
    return loc


def parse_day(text: str | None, index_date: pd.Timestamp, what: str) -> float | None:
    """Days since index of an ISO date string (None stays None); ValueError names ``what``."""
    if text is None:
        return None
    try:
        when = date.fromisoformat(text)
    except ValueError:
        raise CohortError(
            [Problem(what, None, None, f"not a date in ISO format YYYY-MM-DD (got {text!r})")]
        ) from None
    return float((pd.Timestamp(when) - index_date).days)


def _json_value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and v != v) or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d")
    return v.item() if hasattr(v, "item") else v


def history_from_cohort(
    cohort: Cohort, patient_id: str, as_of: str | None = None
) -> PatientHistory:
    """One patient of a loaded cohort as a history (canonical units), e.g. an input example."""
    pat = cohort.patients[cohort.patients[PATIENT_ID] == patient_id]
    if pat.empty:
        raise ValueError(f"patient {patient_id!r} is not in cohort {cohort.manifest.name!r}")
    record = {k: _json_value(v) for k, v in pat.iloc[0].items()}
    m = cohort.measurements[cohort.measurements[PATIENT_ID] == patient_id]
    i = cohort.imaging[cohort.imaging[PATIENT_ID] == patient_id]
    m_cols = [DATE, "marker", "value", "unit", "qualifier", "draw_id"]
    i_cols = [DATE, "modality", "finding", "response", "criteria"]
    return PatientHistory.model_validate(
        {
            "patient": record,
            "measurements": [{c: _json_value(r[c]) for c in m_cols} for _, r in m.iterrows()],
            "imaging": [{c: _json_value(r[c]) for c in i_cols} for _, r in i.iterrows()],
            "as_of": as_of,
        }
    )
