"""Load a cohort folder, check it against the data contract, convert units, derive days.

A cohort with any problem is refused whole: ``load_cohort`` raises ``CohortError`` with
every offending file, row, column and reason, and returns nothing half-loaded.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from cohort.checks import cross_file_problems
from cohort.cohort import Cohort
from cohort.errors import CohortError, Problem, row_patient
from cohort.manifest import Manifest, load_manifest
from cohort.rules import clean_column
from cohort.schemas import file_schemas, parse_binary, parse_dates, parse_numbers
from cohort.units import conversion_factor
from cohort.vocabulary import (
    ADVERSE_EVENTS_FILE,
    DATE,
    DRAW_ID,
    END_DATE,
    GRADE,
    IMAGING_FILE,
    INDEX_DATE,
    MARKER,
    MEASUREMENTS_FILE,
    OUTCOME_DATES,
    OUTCOMES_FILE,
    PATIENT_ID,
    PATIENTS_FILE,
    QUALIFIER,
    START_DATE,
    TREATMENTS_FILE,
    UNIT,
    VALUE,
    day_column,
)

log = logging.getLogger(__name__)

REQUIRED_FILES = (PATIENTS_FILE, MEASUREMENTS_FILE, OUTCOMES_FILE)
OPTIONAL_FILES = (IMAGING_FILE, TREATMENTS_FILE, ADVERSE_EVENTS_FILE)
ROW_OFFSET = 2  # reported rows are spreadsheet rows: the header is row 1


def load_cohort(folder: str | Path) -> Cohort:
    """Read and validate the cohort in ``folder`` (CSV or Parquet files plus cohort.toml)."""
    folder = _check_folder(folder)
    manifest = load_manifest(folder)
    raw, problems = _read_all(folder)
    return cohort_from_frames(raw, manifest, source=folder, problems=problems)


def cohort_from_frames(
    raw: dict[str, pd.DataFrame],
    manifest: Manifest,
    *,
    source: Path | None = None,
    problems: list[Problem] | None = None,
) -> Cohort:
    """Validate contract tables given as text (every cell a str, blanks as "") and build a Cohort.

    The one validation path: files read by ``load_cohort`` and records posted to the service
    both come through here. Keys are file stems (``patients``, ``measurements``, ...); a
    frame's ``attrs["file"]`` names it in problems (default ``<stem>.csv``).
    """
    found = list(problems or [])
    raw = {stem: _clean(stem, frame) for stem, frame in raw.items()}
    found += _schema_problems(raw, manifest)
    parsed = _parse(raw, manifest)
    found += cross_file_problems(parsed, manifest)
    if found:
        raise CohortError(found)
    return _build(parsed, manifest, source, has_imaging=IMAGING_FILE in raw)


def _clean(stem: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every cell normalised (``rules.clean_column``), before any rule runs."""
    out = frame.apply(clean_column) if len(frame.columns) else frame.copy()
    out.attrs["file"] = frame.attrs.get("file", f"{stem}.csv")
    return out


def _check_folder(folder: str | Path) -> Path:
    path = Path(folder)
    if not path.exists():
        raise CohortError([Problem(str(path), None, None, "no such folder")])
    if not path.is_dir():
        raise CohortError(
            [Problem(str(path), None, None, "not a folder (expected a cohort folder)")]
        )
    return path


def _read_all(folder: Path) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    raw: dict[str, pd.DataFrame] = {}
    problems: list[Problem] = []
    for stem in REQUIRED_FILES + OPTIONAL_FILES:
        frame, found = _read_one(folder, stem, required=stem in REQUIRED_FILES)
        problems += found
        if frame is not None:
            raw[stem] = frame
    return raw, problems


def _read_one(folder: Path, stem: str, required: bool) -> tuple[pd.DataFrame | None, list[Problem]]:
    candidates = [p for p in (folder / f"{stem}.csv", folder / f"{stem}.parquet") if p.is_file()]
    if len(candidates) > 1:
        return None, [
            Problem(
                f"{stem}.csv", None, None, f"both {stem}.csv and {stem}.parquet exist; keep one"
            )
        ]
    if not candidates:
        missing = [Problem(f"{stem}.csv", None, None, "required file is missing")]
        return None, missing if required else []
    path = candidates[0]
    try:
        frame = _read_text_table(path)
    except Exception as exc:  # any parser failure is a problem with the file, reported as such
        return None, [Problem(path.name, None, None, f"cannot be read: {exc}")]
    frame.attrs["file"] = path.name
    return frame, []


def _read_text_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    else:
        frame = pd.read_parquet(path)
        for col in frame.columns:
            frame[col] = _as_text(frame[col])
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.reset_index(drop=True)


def _as_text(s: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.dt.strftime("%Y-%m-%d").fillna("")
    if pd.api.types.is_integer_dtype(s) or pd.api.types.is_bool_dtype(s):
        return s.astype("Int64").astype(str).replace("<NA>", "")
    return s.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))


def _schema_problems(raw: dict[str, pd.DataFrame], manifest: Manifest) -> list[Problem]:
    problems: list[Problem] = []
    for stem, schema in file_schemas(manifest).items():
        if stem in raw:
            problems += _validate_frame(raw[stem], schema)
    return problems


def _validate_frame(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> list[Problem]:
    file = frame.attrs["file"]
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return [
            _to_problem(frame, file, case) for case in exc.failure_cases.itertuples(index=False)
        ]
    return []


def _to_problem(frame: pd.DataFrame, file: str, case: object) -> Problem:
    column = getattr(case, "column", None)
    index = getattr(case, "index", None)
    check = str(getattr(case, "check", ""))
    failure = getattr(case, "failure_case", None)
    if index is None or pd.isna(index):
        if check.startswith("column_in_dataframe"):
            return Problem(file, None, str(failure), "required column is missing")
        return Problem(file, None, None if column is None else str(column), f"{check}: {failure}")
    return Problem(
        file,
        int(index) + ROW_OFFSET,
        str(column),
        f"{check} (got {str(failure)!r})",
        row_patient(frame, int(index)),
    )


def _parse(raw: dict[str, pd.DataFrame], manifest: Manifest) -> dict[str, pd.DataFrame]:
    """Typed copies of the raw frames; unparseable cells become NaN/NaT (already reported)."""
    parsed: dict[str, pd.DataFrame] = {}
    for stem, frame in raw.items():
        out = frame.copy()
        for col in out.columns:
            out[col] = _parse_column(stem, col, out[col], manifest)
        out.attrs["file"] = frame.attrs["file"]
        parsed[stem] = out
    return parsed


_DATE_COLUMNS = {INDEX_DATE, DATE, START_DATE, END_DATE, *OUTCOME_DATES}


def _parse_column(stem: str, col: str, s: pd.Series, manifest: Manifest) -> pd.Series:
    if col in _DATE_COLUMNS:
        return parse_dates(s)
    if stem == MEASUREMENTS_FILE and col == VALUE:
        return parse_numbers(s)
    if stem == ADVERSE_EVENTS_FILE and col == GRADE:
        return parse_numbers(s)
    if stem == PATIENTS_FILE and col in manifest.covariates:
        kind = manifest.covariates[col]
        if kind == "numeric":
            return parse_numbers(s)
        if kind == "binary":
            return parse_binary(s)
        return s.where(s != "")
    return s


def _build(
    parsed: dict[str, pd.DataFrame], manifest: Manifest, folder: Path | None, has_imaging: bool
) -> Cohort:
    patients = _build_patients(parsed[PATIENTS_FILE], manifest)
    index = patients.set_index(PATIENT_ID)[INDEX_DATE]
    tables = {
        stem: _with_days(_complete(parsed.get(stem), stem), index)
        for stem in (IMAGING_FILE, OUTCOMES_FILE, TREATMENTS_FILE, ADVERSE_EVENTS_FILE)
    }
    measurements = _build_measurements(parsed[MEASUREMENTS_FILE], manifest, index)
    cohort = Cohort(
        manifest=manifest,
        patients=patients,
        measurements=measurements,
        imaging=tables[IMAGING_FILE],
        outcomes=tables[OUTCOMES_FILE],
        treatments=tables[TREATMENTS_FILE],
        adverse_events=tables[ADVERSE_EVENTS_FILE],
        source=folder,
        has_imaging_file=has_imaging,
    )
    log.info(
        "loaded cohort %s: %d patients, %d measurement rows",
        manifest.name,
        cohort.n_patients,
        len(measurements),
    )
    return cohort


def _build_patients(frame: pd.DataFrame, manifest: Manifest) -> pd.DataFrame:
    cols = [PATIENT_ID, "site_id", INDEX_DATE, *manifest.covariates]
    return frame[cols].sort_values(PATIENT_ID, kind="stable").reset_index(drop=True)


def _build_measurements(frame: pd.DataFrame, manifest: Manifest, index: pd.Series) -> pd.DataFrame:
    out = frame.copy()
    for optional in (QUALIFIER, DRAW_ID):
        out[optional] = out[optional].where(out[optional] != "") if optional in out else pd.NA
    factors = _unit_factors(out, manifest)
    out["original_value"] = out[VALUE]
    out["original_unit"] = out[UNIT]
    out[VALUE] = out[VALUE] * factors
    out[UNIT] = out[MARKER].map({m: spec.unit for m, spec in manifest.markers.items()})
    out = _with_days(out, index)
    cols = [
        PATIENT_ID,
        DATE,
        "day",
        MARKER,
        VALUE,
        UNIT,
        QUALIFIER,
        DRAW_ID,
        "original_value",
        "original_unit",
    ]
    return out[cols].sort_values([PATIENT_ID, "day", MARKER], kind="stable").reset_index(drop=True)


def _unit_factors(frame: pd.DataFrame, manifest: Manifest) -> np.ndarray:
    pairs = frame[[MARKER, UNIT]].drop_duplicates()
    lookup = {
        f"{m}\x1f{u}": conversion_factor(
            u, manifest.markers[m].unit, manifest.markers[m].conversions
        )
        for m, u in pairs.itertuples(index=False)
    }
    return (frame[MARKER] + "\x1f" + frame[UNIT]).map(lookup).to_numpy(dtype=float)


def _with_days(frame: pd.DataFrame, index: pd.Series) -> pd.DataFrame:
    """Add a float ``*_day`` column (days since the patient's index date) per date column."""
    out = frame.copy()
    idx = out[PATIENT_ID].map(index)
    for col in [c for c in out.columns if c in _DATE_COLUMNS and c != INDEX_DATE]:
        out[day_column(col)] = (out[col] - idx).dt.days.astype(float)
    return out.reset_index(drop=True)


_MINIMAL = Manifest.model_validate({"name": "-", "time_zero": "-", "markers": {"-": {"unit": "-"}}})


def _complete(frame: pd.DataFrame | None, stem: str) -> pd.DataFrame:
    """The table with every contract column (optional ones blank), empty when the file is absent."""
    columns = file_schemas(_MINIMAL)[stem].columns
    out = pd.DataFrame(columns=list(columns)) if frame is None else frame.copy()
    for col in columns:
        if col in _DATE_COLUMNS:
            out[col] = pd.to_datetime(out[col]) if col in out else pd.NaT
        elif col not in out:
            out[col] = pd.NA
    extra = [c for c in out.columns if c not in columns]
    return out[[*columns, *extra]]
