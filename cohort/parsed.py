"""One patient's history as plain arrays, and a quick way to get there without pandas.

Every assessment the service issues starts from a :class:`ParsedHistory`: days since
index, canonical values and qualifiers per measurement, imaging days, typed covariates.
There are two ways to it, and one set of rules:

- :func:`parsed_from_cohort` takes a history that passed the data contract
  (``cohort.records.history_to_cohort``, the path files take too);
- :func:`quick_parse` is an accelerator for the common case. It accepts a history only
  when every value is of the plain, well-formed kind the contract plainly accepts (ISO
  dates, declared markers in known units, finite values >= 0, vocabulary words spelled
  exactly, covariates of their declared type) and returns None on anything else — a
  problem or merely something unusual, like blanks around a word or a covariate given as
  text. The caller then takes the contract path, which alone writes error messages.

``tests/cohort/test_parsed.py`` checks that the two agree on generated histories: whenever
the quick path accepts, the contract path accepts and yields the same arrays.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from cohort.cohort import Cohort
from cohort.manifest import Manifest
from cohort.records import PatientHistory
from cohort.units import conversion_factor
from cohort.vocabulary import (
    CRITERIA_VALUES,
    DAY,
    FINDINGS,
    INDEX_DATE,
    MARKER,
    MODALITIES,
    PATIENT_ID,
    QUALIFIER,
    QUALIFIERS,
    RESPONSES,
    VALUE,
)

_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# pandas stores dates as nanoseconds (1677-2262); the quick path stays well inside
_YEARS = range(1900, 2201)
_BINARY = {0: 0.0, 1: 1.0}


@dataclass(frozen=True)
class ParsedHistory:
    """One patient's validated history in canonical units, sorted by (day, marker)."""

    patient_id: str
    index_date: date
    covariates: dict[str, float | str | None]  # numeric/binary as float (NaN), categorical str
    day: np.ndarray  # float days since index of each measurement
    marker: np.ndarray  # object array of marker codes
    value: np.ndarray  # float, in the marker's canonical unit
    qualifier: np.ndarray  # object array: "<", ">" or None
    imaging_day: np.ndarray  # float days since index of each scan, ascending

    @property
    def below_limit(self) -> np.ndarray:
        """Values reported as ``<`` a detection limit."""
        return np.asarray(self.qualifier == "<", dtype=bool)

    def date_of(self, day: float) -> date:
        return date.fromordinal(self.index_date.toordinal() + int(day))


def parsed_from_cohort(cohort: Cohort) -> ParsedHistory:
    """The one patient of a validated one-patient cohort as arrays."""
    if cohort.n_patients != 1:
        raise ValueError(f"expected a one-patient cohort, got {cohort.n_patients} patients")
    patient = cohort.patients.iloc[0]
    m = cohort.measurements
    covariates = {
        name: _cell(patient[name], kind) for name, kind in cohort.manifest.covariates.items()
    }
    return ParsedHistory(
        patient_id=str(patient[PATIENT_ID]),
        index_date=pd.Timestamp(patient[INDEX_DATE]).date(),
        covariates=covariates,
        day=m[DAY].to_numpy(dtype=float),
        marker=m[MARKER].to_numpy(dtype=object),
        value=m[VALUE].to_numpy(dtype=float),
        qualifier=np.array([q if isinstance(q, str) else None for q in m[QUALIFIER]], dtype=object),
        imaging_day=np.sort(cohort.imaging[DAY].to_numpy(dtype=float)),
    )


def _cell(value: Any, kind: str) -> float | str | None:
    if kind == "categorical":
        return value if isinstance(value, str) else None
    return float(value) if value is not None and not pd.isna(value) else math.nan


def quick_parse(history: PatientHistory, manifest: Manifest) -> ParsedHistory | None:
    """The history as arrays when it is plainly valid, else None (take the contract path)."""
    p = history.patient
    index = _quick_date(p.index_date)
    site_ok = p.site_id is None or (p.site_id != "" and p.site_id == p.site_id.strip())
    if index is None or not site_ok or p.patient_id != p.patient_id.strip():
        return None
    covariates = _quick_covariates(p.model_extra or {}, manifest)
    rows = _quick_measurements(history, manifest, index)
    imaging = _quick_imaging(history, index)
    if covariates is None or rows is None or imaging is None:
        return None
    rows.sort(key=lambda r: (r[0], r[1]))  # stable: same-day repeats keep their order
    return ParsedHistory(
        patient_id=p.patient_id,
        index_date=index,
        covariates=covariates,
        day=np.array([r[0] for r in rows], dtype=float),
        marker=np.array([r[1] for r in rows], dtype=object),
        value=np.array([r[2] for r in rows], dtype=float),
        qualifier=np.array([r[3] for r in rows], dtype=object),
        imaging_day=np.sort(np.array(imaging, dtype=float)),
    )


def _quick_date(text: str | None) -> date | None:
    if not isinstance(text, str) or not _ISO.fullmatch(text):
        return None
    try:
        when = date.fromisoformat(text)
    except ValueError:
        return None
    return when if when.year in _YEARS else None


def _quick_covariates(
    extra: dict[str, Any], manifest: Manifest
) -> dict[str, float | str | None] | None:
    if not set(extra) <= set(manifest.covariates):
        return None
    out: dict[str, float | str | None] = {}
    for name, kind in manifest.covariates.items():
        value = extra.get(name)
        if kind == "categorical":
            if value is not None and (not isinstance(value, str) or value != value.strip()):
                return None
            out[name] = value or None
        elif value is None:
            out[name] = math.nan
        else:
            number = _finite(value)
            if number is None or (kind == "binary" and number not in _BINARY):
                return None
            out[name] = number
    return out


def _finite(value: Any) -> float | None:
    """A JSON number as a finite float; None for anything else (text, huge ints, inf)."""
    if not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _quick_measurements(
    history: PatientHistory, manifest: Manifest, index: date
) -> list[tuple[float, str, float, str | None]] | None:
    rows: list[tuple[float, str, float, str | None]] = []
    seen: set[tuple[str, str, str]] = set()
    for m in history.measurements:
        when = _quick_date(m.date)
        spec = manifest.markers.get(m.marker)
        if when is None or spec is None or m.unit != m.unit.strip():
            return None
        factor = conversion_factor(m.unit, spec.unit, spec.conversions)
        qualifier = m.qualifier or None
        value = None if factor is None else m.value * factor
        if value is None or not (math.isfinite(value) and m.value >= 0):
            return None
        if qualifier is not None and qualifier not in QUALIFIERS:
            return None
        key = (m.date or "", m.marker, (m.draw_id or "").strip())
        if key in seen:
            return None
        seen.add(key)
        rows.append((float((when - index).days), m.marker, value, qualifier))
    return rows


def _quick_imaging(history: PatientHistory, index: date) -> list[float] | None:
    days: list[float] = []
    for scan in history.imaging:
        when = _quick_date(scan.date)
        if (
            when is None
            or scan.modality not in MODALITIES
            or scan.finding not in FINDINGS
            or (scan.response or None) not in (None, *RESPONSES)
            or (scan.criteria or None) not in (None, *CRITERIA_VALUES)
        ):
            return None
        days.append(float((when - index).days))
    return days


__all__ = ["ParsedHistory", "parsed_from_cohort", "quick_parse"]
