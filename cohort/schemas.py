"""Per-file column rules of the data contract, as pandera schemas over raw string columns.

Files are read as text so that every bad cell can be reported with its row and the text
the user wrote; parsing happens only once the whole cohort has passed.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pandera.pandas as pa

from cohort.manifest import Manifest
from cohort.rules import (
    BINARY_RULE,
    DATE_RULE,
    NUMBER_RULE,
    VALUE_RULE,
    binary,
    by_value,
    is_level,
    is_value,
    iso_date,
    levels_rule,
    number,
    range_rule,
    within,
)
from cohort.vocabulary import (
    ADVERSE_EVENTS_FILE,
    CRITERIA,
    CRITERIA_VALUES,
    DATE,
    DEATH_DATE,
    DRAW_ID,
    END_DATE,
    FINDING,
    FINDINGS,
    GRADE,
    IMAGING_FILE,
    INDEX_DATE,
    LAST_FOLLOWUP_DATE,
    MARKER,
    MEASUREMENTS_FILE,
    MODALITIES,
    MODALITY,
    OUTCOMES_FILE,
    PATIENT_ID,
    PATIENTS_FILE,
    PROGRESSION_DATE,
    QUALIFIER,
    QUALIFIERS,
    RECURRENCE_DATE,
    RESPONSE,
    RESPONSES,
    SITE_ID,
    START_DATE,
    TERM,
    TREATMENT,
    TREATMENTS_FILE,
    UNIT,
    VALUE,
)


def parse_dates(s: pd.Series) -> pd.Series:
    """Strict ISO ``YYYY-MM-DD`` (``rules.iso_date``); anything else (and blanks) becomes NaT."""
    return pd.to_datetime(by_value(s, iso_date)).astype("datetime64[ns]")


def parse_numbers(s: pd.Series) -> pd.Series:
    """Finite decimal numbers (``rules.number``); anything else (and blanks) becomes NaN."""
    return by_value(s, number).astype(float)


def parse_binary(s: pd.Series) -> pd.Series:
    """1.0 / 0.0 (``rules.binary``); anything else becomes NaN."""
    return by_value(s, binary).astype(float)


def _value_cell(text: str) -> bool:
    value = number(text)
    return value is not None and is_value(value)


def _blank(s: pd.Series) -> pd.Series:
    return s == ""  # cells are normalised (rules.clean_column) before any check


def _present(s: pd.Series) -> pd.Series:
    return ~_blank(s)


def _iso_date(optional: bool = False) -> pa.Check:
    def check(s: pd.Series) -> pd.Series:
        ok = parse_dates(s).notna()
        return ok | _blank(s) if optional else ok

    return pa.Check(check, error=DATE_RULE)


def _required_text(what: str) -> pa.Check:
    return pa.Check(_present, error=f"{what} is empty")


def _one_of(allowed: tuple[str, ...], optional: bool = False) -> pa.Check:
    def check(s: pd.Series) -> pd.Series:
        ok = s.isin(allowed)
        return ok | _blank(s) if optional else ok

    return pa.Check(check, error=f"must be one of {list(allowed)}")


def _column(*checks: pa.Check, required: bool = True) -> pa.Column:
    # No dtype check: every frame reaching these schemas is text by construction (files are
    # read with dtype=str, records are stringified), and pandera's dtype check was the
    # largest cost of validating one patient's history.
    return pa.Column(None, list(checks), required=required, nullable=False)


def _covariate_checks(name: str, manifest: Manifest) -> list[pa.Check]:
    """The type rule of a covariate, and the manifest's range or levels when it states them
    (a cell of the wrong type fails the type rule only)."""
    kind = manifest.covariates[name]
    if kind == "binary":
        return [pa.Check(lambda s: parse_binary(s).notna() | _blank(s), error=BINARY_RULE)]
    if kind == "numeric":
        checks = [pa.Check(lambda s: parse_numbers(s).notna() | _blank(s), error=NUMBER_RULE)]
        bounds = manifest.covariate_ranges.get(name)
        if bounds is not None:
            in_range = _in_range(bounds)
            checks.append(
                pa.Check(
                    lambda s: by_value(s, in_range).astype(bool), error=range_rule(name, bounds)
                )
            )
        return checks
    levels = manifest.covariate_levels.get(name)
    if levels is None:
        return []
    return [
        pa.Check(
            lambda s: by_value(s, lambda t: is_level(t, levels)).astype(bool),
            error=levels_rule(name, levels),
        )
    ]


def _in_range(bounds: tuple[float, float]) -> Callable[[str], bool]:
    def cell(text: str) -> bool:
        value = number(text)
        return value is None or within(value, bounds)  # not a number: the type rule's

    return cell


_SCHEMA_CACHE: dict[str, dict[str, pa.DataFrameSchema]] = {}


def file_schemas(manifest: Manifest) -> dict[str, pa.DataFrameSchema]:
    """The column rules of each contract file, given the manifest's covariates (cached: the
    service validates every request against the same manifest)."""
    key = manifest.model_dump_json()
    if key not in _SCHEMA_CACHE:
        _SCHEMA_CACHE[key] = _build_schemas(manifest)
    return _SCHEMA_CACHE[key]


def _build_schemas(manifest: Manifest) -> dict[str, pa.DataFrameSchema]:
    patient_cols = {
        PATIENT_ID: _column(_required_text("patient_id")),
        SITE_ID: _column(_required_text("site_id")),
        INDEX_DATE: _column(_iso_date()),
    }
    for name in manifest.covariates:
        patient_cols[name] = _column(*_covariate_checks(name, manifest))
    value_check = pa.Check(lambda s: by_value(s, _value_cell).astype(bool), error=VALUE_RULE)
    return {
        PATIENTS_FILE: pa.DataFrameSchema(patient_cols),
        MEASUREMENTS_FILE: pa.DataFrameSchema(
            {
                PATIENT_ID: _column(_required_text("patient_id")),
                DATE: _column(_iso_date()),
                MARKER: _column(_required_text("marker")),
                VALUE: _column(value_check),
                UNIT: _column(_required_text("unit")),
                QUALIFIER: _column(_one_of(QUALIFIERS, optional=True), required=False),
                DRAW_ID: _column(required=False),
            }
        ),
        IMAGING_FILE: pa.DataFrameSchema(
            {
                PATIENT_ID: _column(_required_text("patient_id")),
                DATE: _column(_iso_date()),
                MODALITY: _column(_one_of(MODALITIES)),
                FINDING: _column(_one_of(FINDINGS)),
                RESPONSE: _column(_one_of(RESPONSES, optional=True), required=False),
                CRITERIA: _column(_one_of(CRITERIA_VALUES, optional=True), required=False),
            }
        ),
        OUTCOMES_FILE: pa.DataFrameSchema(
            {
                PATIENT_ID: _column(_required_text("patient_id")),
                LAST_FOLLOWUP_DATE: _column(_iso_date()),
                RECURRENCE_DATE: _column(_iso_date(optional=True), required=False),
                PROGRESSION_DATE: _column(_iso_date(optional=True), required=False),
                DEATH_DATE: _column(_iso_date(optional=True), required=False),
            }
        ),
        TREATMENTS_FILE: pa.DataFrameSchema(
            {
                PATIENT_ID: _column(_required_text("patient_id")),
                START_DATE: _column(_iso_date()),
                END_DATE: _column(_iso_date(optional=True), required=False),
                TREATMENT: _column(_required_text("treatment")),
            }
        ),
        ADVERSE_EVENTS_FILE: pa.DataFrameSchema(
            {
                PATIENT_ID: _column(_required_text("patient_id")),
                DATE: _column(_iso_date()),
                TERM: _column(_required_text("term")),
                GRADE: _column(
                    pa.Check(
                        lambda s: s.isin(["1", "2", "3", "4", "5"]),
                        error="CTCAE grade must be an integer 1-5",
                    )
                ),
            }
        ),
    }
