"""One patient's history as plain arrays, and a quick way to get there without pandas.

Every assessment the service issues starts from a :class:`ParsedHistory`: days since
index, canonical values and qualifiers per measurement, imaging days, typed covariates.
There are two ways to it, and one set of rules:

- :func:`parsed_from_cohort` takes a history that passed the data contract
  (``cohort.records.history_to_cohort``, the path files take too);
- :func:`quick_parse` reads the records field by field with the contract's own cell rules
  (``cohort.rules``: ISO dates, decimal numbers, values >= 0, whole counts, binary words),
  the records' vocabularies and the manifest's markers, units and covariates, and returns
  None when the contract would refuse the history. The caller then takes the contract
  path, which alone writes error messages.

``tests/cohort/test_parsed.py`` checks that the two agree on generated histories, both ways:
each accepts what the other accepts, with equal arrays, and refuses what the other refuses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from cohort.cohort import Cohort
from cohort.manifest import Manifest
from cohort.records import ImagingRecord, PatientHistory, cell_text
from cohort.rules import (
    binary,
    is_count_unit,
    is_level,
    is_plausible_count,
    is_value,
    is_whole,
    iso_date,
    number,
    within,
)
from cohort.units import conversion_factor
from cohort.vocabulary import (
    CRITERIA_VALUES,
    DAY,
    FINDING,
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
    imaging_finding: np.ndarray  # object array: each scan's finding, in imaging_day's order

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
        **_scans(cohort.imaging[DAY].to_numpy(dtype=float), cohort.imaging[FINDING].to_numpy()),
    )


def _scans(day: np.ndarray, finding: np.ndarray) -> dict[str, np.ndarray]:
    order = np.argsort(day, kind="stable")
    return {
        "imaging_day": np.asarray(day, dtype=float)[order],
        "imaging_finding": np.asarray(finding, dtype=object)[order],
    }


def _cell(value: Any, kind: str) -> float | str | None:
    if kind == "categorical":
        return value if isinstance(value, str) else None
    return float(value) if value is not None and not pd.isna(value) else math.nan


def quick_parse(history: PatientHistory, manifest: Manifest) -> ParsedHistory | None:
    """The history as arrays when the contract accepts it, else None (the contract path
    then says why). The rules are the contract's own (``cohort.rules``), cell by cell."""
    p = history.patient
    index = _date(p.index_date)
    if index is None or p.site_id == "":
        return None
    covariates = _quick_covariates(p.model_extra or {}, manifest)
    rows = _quick_measurements(history, manifest, index)
    imaging = [_date(scan.date) for scan in history.imaging if _plain_scan(scan)]
    if covariates is None or rows is None or len(imaging) < len(history.imaging):
        return None
    if None in imaging:  # a scan's date the contract refuses
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
        **_scans(
            np.array([_days(d, index) for d in imaging], dtype=float),
            np.array([scan.finding for scan in history.imaging], dtype=object),
        ),
    )


def _plain_scan(scan: ImagingRecord) -> bool:
    return (
        scan.modality in MODALITIES
        and scan.finding in FINDINGS
        and (scan.response or None) in (None, *RESPONSES)
        and (scan.criteria or None) in (None, *CRITERIA_VALUES)
    )


def _date(text: str | None) -> date | None:
    return None if text is None else iso_date(text)


def _days(when: date | None, index: date) -> float:
    return float((when - index).days) if when is not None else math.nan


def _quick_covariates(
    extra: dict[str, Any], manifest: Manifest
) -> dict[str, float | str | None] | None:
    """Each covariate read as the contract reads it: the record's cell as text, then its rule."""
    if not set(extra) <= set(manifest.covariates):
        return None
    out: dict[str, float | str | None] = {}
    for name, kind in manifest.covariates.items():
        text = cell_text(extra.get(name))
        if kind == "categorical":
            if not is_level(text, manifest.covariate_levels.get(name)):
                return None
            out[name] = text or None
            continue
        value = math.nan if text == "" else (number if kind == "numeric" else binary)(text)
        if value is None or not within(value, manifest.covariate_ranges.get(name)):
            return None
        out[name] = value
    return out


def _quick_measurements(
    history: PatientHistory, manifest: Manifest, index: date
) -> list[tuple[float, str, float, str | None]] | None:
    rows: list[tuple[float, str, float, str | None]] = []
    seen: set[tuple[str, str, str]] = set()
    dates: dict[str | None, date | None] = {}  # a draw's markers share its date
    # a marker in a unit: its spec, the factor to its canonical unit, whether it is counted
    units: dict[tuple[str, str], tuple[Any, float | None, bool]] = {}
    for m in history.measurements:
        when = dates[m.date] if m.date in dates else dates.setdefault(m.date, _date(m.date))
        known = units.get((m.marker, m.unit))
        if known is None:
            spec = manifest.markers.get(m.marker)
            known = units[(m.marker, m.unit)] = (
                spec,
                None if spec is None else conversion_factor(m.unit, spec.unit, spec.conversions),
                spec is not None and is_count_unit(spec.unit),
            )
        spec, factor, counted = known
        if when is None or spec is None or not is_value(m.value):
            return None
        # a count whole in its canonical unit passes ``is_plausible_count`` at once
        whole = factor is not None and is_whole(m.value * factor)
        if (
            counted
            and not whole
            and not is_plausible_count(m.value, m.unit, spec.unit, spec.conversions)
        ):
            return None
        key = (m.date or "", m.marker, m.draw_id or "")
        if factor is None or key in seen or (m.qualifier or None) not in (None, *QUALIFIERS):
            return None
        seen.add(key)
        rows.append((_days(when, index), m.marker, m.value * factor, m.qualifier or None))
    return rows


__all__ = ["ParsedHistory", "parsed_from_cohort", "quick_parse"]
