"""The simulator's output tables and manifest, in the data contract (private to cohort.simulate)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cohort._simulate_latent import RECURRENCE_KINDS, RESIDUAL, Population, crossing_day
from cohort._simulate_markers import MARKER_CODES, QUALIFIER_CODES, UNIT_CODES, MarkerRows
from cohort._simulate_observe import FINDING_CODES, Draws, Visits
from cohort._simulate_params import ETIOLOGIES, MODALITY_ORDER, SITES, SimulationParams
from cohort.manifest import DEFAULT_SCHEDULE_DAYS, DEFAULT_THEN_EVERY_DAYS
from cohort.vocabulary import (
    DATE,
    DEATH_DATE,
    DRAW_ID,
    END_DATE,
    FINDING,
    IMAGING_FILE,
    INDEX_DATE,
    LAST_FOLLOWUP_DATE,
    MARKER,
    MEASUREMENTS_FILE,
    MODALITY,
    OUTCOMES_FILE,
    PATIENT_ID,
    PATIENTS_FILE,
    QUALIFIER,
    RECURRENCE_DATE,
    SITE_ID,
    START_DATE,
    TREATMENT,
    TREATMENTS_FILE,
    TRUTH_FILE,
    UNIT,
    VALUE,
)

COVARIATES: dict[str, str] = {
    "age": "numeric",
    "sex": "categorical",
    "etiology": "categorical",
    "cirrhosis": "binary",
    "child_pugh": "categorical",
    "tumor_size_cm": "numeric",
    "tumor_count": "numeric",
    "microvascular_invasion": "binary",
    "bclc_stage": "categorical",
}
_BCLC = ("0", "A", "B")
# What a value of each covariate may plausibly be in an adult cohort after resection (wider
# than what the simulator draws: ages 18-90, tumours 0.8-20 cm, 1-3 nodules); the contract
# refuses anything outside, in files and in the service's bodies alike.
COVARIATE_RANGES: dict[str, tuple[float, float]] = {
    "age": (18, 110),
    "tumor_size_cm": (0.1, 30),
    "tumor_count": (1, 50),
}
COVARIATE_LEVELS: dict[str, list[str]] = {
    "sex": ["F", "M"],
    "etiology": list(ETIOLOGIES),
    "child_pugh": ["A", "B", "C"],
    "bclc_stage": ["0", "A", "B", "C", "D"],
}


def manifest_dict(p: SimulationParams) -> dict[str, Any]:
    """``cohort.toml`` as a mapping: every CTC marker canonical per 7.5 mL, AFP in ng/mL."""
    ctc = {"unit": "cells/7.5mL"}
    return {
        "name": "sim-hcc-post-resection",
        "time_zero": "resection",
        "endpoint": "rfs",
        "covariates": dict(COVARIATES),
        "covariate_ranges": {k: list(v) for k, v in COVARIATE_RANGES.items()},
        "covariate_levels": {k: list(v) for k, v in COVARIATE_LEVELS.items()},
        "markers": {
            "afp": {
                "unit": "ng/mL",
                "upper_normal": p.afp_upper_normal,
                "positive_at": p.afp_positive_at,
                "conversions": {"IU/mL": p.afp_ng_per_iu},
                "label": "alpha-fetoprotein",
            },
            "ctc_epithelial": {**ctc, "label": "epithelial CTC (CanPatrol-style)"},
            "ctc_mesenchymal": {**ctc, "label": "mesenchymal CTC (CanPatrol-style)"},
            "ctc_mixed": {**ctc, "label": "mixed epithelial/mesenchymal CTC (CanPatrol-style)"},
            "ctc_total": {**ctc, "positive_at": p.ctc_positive_at, "label": "CTC total"},
            "pivka_ii": {"unit": "mAU/mL", "positive_at": p.pivka_positive_at, "label": "PIVKA-II"},
        },
        "imaging": {
            "schedule_days": list(DEFAULT_SCHEDULE_DAYS),
            "then_every_days": DEFAULT_THEN_EVERY_DAYS,
        },
        "draws": {
            "schedule_days": list(p.draw_schedule_days),
            "then_every_days": DEFAULT_THEN_EVERY_DAYS,
        },
    }


def to_toml(mapping: dict[str, Any]) -> str:
    """TOML for a manifest mapping: scalars, lists and inline tables under [section] headers."""
    return "\n".join(_toml_table(mapping, ())) + "\n"


def _toml_table(mapping: dict[str, Any], path: tuple[str, ...]) -> list[str]:
    inline = {k: v for k, v in mapping.items() if not _is_section(k, v)}
    lines = [f"[{'.'.join(map(_toml_key, path))}]"] if path and inline else []
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in inline.items()]
    for key, value in mapping.items():
        if _is_section(key, value):
            sub = _toml_table(value, (*path, key))
            lines += ([""] if sub and lines else []) + sub
    return lines


def _is_section(key: str, value: Any) -> bool:
    return isinstance(value, dict) and key != "conversions"  # conversions stay inline


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} to TOML")


def cohort_tables(
    pop: Population, visits: Visits, draws: Draws, rows: MarkerRows, p: SimulationParams
) -> dict[str, pa.Table]:
    """Every CSV file the simulator writes, keyed by file name, as Arrow tables.

    Arrow writes millions of rows in seconds where pandas' float formatting takes a minute;
    strings repeated across rows are dictionary-encoded so they are built once.
    """
    pid = _patient_ids(pop.n)
    return {
        f"{PATIENTS_FILE}.csv": _patients(pid, pop),
        f"{MEASUREMENTS_FILE}.csv": _measurements(pid, pop, draws, rows),
        f"{IMAGING_FILE}.csv": _imaging(pid, pop, visits),
        f"{OUTCOMES_FILE}.csv": _outcomes(pid, pop, visits),
        f"{TREATMENTS_FILE}.csv": _treatments(pid, pop),
        TRUTH_FILE: _truth(pid, pop, visits, p),
    }


def _patient_ids(n: int) -> pa.Array:
    width = max(5, len(str(n)))
    return pa.array([f"sim-{i:0{width}d}" for i in range(1, n + 1)], pa.string())


def _coded(codes: np.ndarray, labels: Sequence[str] | pa.Array, missing: Any = None) -> pa.Array:
    """``labels[codes]`` as a dictionary array, null (an empty cell) where ``missing``."""
    indices = pa.array(np.asarray(codes, dtype=np.int32), mask=missing)
    return pa.DictionaryArray.from_arrays(indices, pa.array(labels, pa.string()))


def _dates(index_date: np.ndarray, day: np.ndarray) -> pa.Array:
    """Dates ``day`` days after each index date (written ISO); empty where ``day`` is NaN."""
    ok = np.isfinite(day)
    when = index_date + np.where(ok, day, 0).astype(np.int64).astype("timedelta64[D]")
    return pa.array(when, pa.date32(), mask=~ok)


def _floats(values: np.ndarray, decimals: int) -> pa.Array:
    """Rounded so that Arrow's shortest round-trip repr prints the decimals; NaN is empty."""
    rounded = np.round(np.asarray(values, dtype=float), decimals)
    return pa.array(rounded, pa.float64(), mask=~np.isfinite(rounded))


def _ints(values: np.ndarray, missing: Any = None) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64), pa.int64(), mask=missing)


def _patients(pid: pa.Array, pop: Population) -> pa.Table:
    return pa.table(
        {
            PATIENT_ID: pid,
            SITE_ID: _coded(pop.site, SITES),
            INDEX_DATE: pa.array(pop.index_date, pa.date32()),
            "age": _ints(pop.age),
            "sex": _coded(pop.male, ("F", "M")),
            "etiology": _coded(pop.etiology, ETIOLOGIES),
            "cirrhosis": _ints(pop.cirrhosis),
            "child_pugh": _coded(pop.child_pugh_b, ("A", "B"), pop.child_pugh_missing),
            "tumor_size_cm": _floats(pop.tumor_size_cm, 1),
            "tumor_count": _ints(pop.tumor_count),
            "microvascular_invasion": _ints(pop.mvi, pop.mvi_missing),
            "bclc_stage": _coded(pop.bclc, _BCLC),
        }
    )


def _measurements(pid: pa.Array, pop: Population, draws: Draws, rows: MarkerRows) -> pa.Table:
    patient = draws.patient[rows.draw]
    visit = draws.visit[rows.draw]
    suffixes = [f"-v{v:02d}" for v in range(int(visit.max(initial=0)) + 1)]
    patient_ids = _coded(patient, pid)
    draw_id = pc.binary_join_element_wise(
        patient_ids.cast(pa.string()), _coded(visit, suffixes).cast(pa.string()), ""
    )
    return pa.table(
        {
            PATIENT_ID: patient_ids,
            DATE: _dates(pop.index_date[patient], draws.day[rows.draw]),
            MARKER: _coded(rows.marker, MARKER_CODES),
            VALUE: _floats(rows.value, 2),
            UNIT: _coded(rows.unit, UNIT_CODES),
            QUALIFIER: _coded(rows.qualifier, QUALIFIER_CODES, rows.qualifier == 0),
            DRAW_ID: draw_id,
        }
    )


def _imaging(pid: pa.Array, pop: Population, visits: Visits) -> pa.Table:
    patient, col = np.nonzero(visits.scan)  # row-major: by patient, then by visit
    return pa.table(
        {
            PATIENT_ID: _coded(patient, pid),
            DATE: _dates(pop.index_date[patient], visits.day[patient, col]),
            MODALITY: _coded(visits.modality[patient, col], MODALITY_ORDER),
            FINDING: _coded(visits.finding[patient, col], FINDING_CODES),
        }
    )


def _outcomes(pid: pa.Array, pop: Population, visits: Visits) -> pa.Table:
    died = pop.death_day <= pop.censor_day
    return pa.table(
        {
            PATIENT_ID: pid,
            LAST_FOLLOWUP_DATE: _dates(pop.index_date, pop.end_day),
            RECURRENCE_DATE: _dates(pop.index_date, visits.recurrence_day),
            DEATH_DATE: _dates(pop.index_date, np.where(died, pop.death_day, np.nan)),
        }
    )


def _treatments(pid: pa.Array, pop: Population) -> pa.Table:
    when = pa.array(pop.index_date, pa.date32())
    resection = _coded(np.zeros(pop.n), ("resection",))
    return pa.table({PATIENT_ID: pid, START_DATE: when, END_DATE: when, TREATMENT: resection})


def marker_detectable_days(pop: Population, p: SimulationParams) -> dict[str, np.ndarray]:
    """Latent days the tumour-derived expected CTC count and AFP reach their cut-offs."""
    cap = p.max_doublings_past_visible
    # the raw (unsaturated) expected count that saturates to exactly the cut-off
    raw_cut = -p.ctc_saturation * np.log1p(-p.ctc_positive_at / p.ctc_saturation)
    ctc = crossing_day(pop, pop.shedding * p.ctc_at_visible / raw_cut, cap)
    afp = crossing_day(pop, pop.afp_rate / p.afp_upper_normal, cap)
    return {
        "ctc_detectable_day": ctc,
        "afp_detectable_day": afp,
        "marker_detectable_day": np.fmin(ctc, afp),
    }


def _truth(pid: pa.Array, pop: Population, visits: Visits, p: SimulationParams) -> pa.Table:
    days = marker_detectable_days(pop, p)
    return pa.table(
        {
            PATIENT_ID: pid,
            SITE_ID: _coded(pop.site, SITES),
            "recurrence_kind": _coded(pop.kind, RECURRENCE_KINDS),
            "residual_disease": _ints(pop.kind == RESIDUAL),
            "afp_secretor": _ints(pop.afp_secretor),
            "pivka_secretor": _ints(pop.pivka_secretor),
            "ctc_shedding": _floats(pop.shedding, 4),
            "doubling_time_days": _floats(pop.doubling_time, 1),
            "onset_day": _floats(pop.onset_day, 1),
            "visible_day": _floats(pop.visible_day, 1),
            **{k: _floats(v, 1) for k, v in days.items()},
            "lead_time_days": _floats(pop.visible_day - days["marker_detectable_day"], 1),
            "recurrence_day_observed": _floats(visits.recurrence_day, 0),
            "death_day": _floats(pop.death_day, 0),  # infinite (no death drawn) is empty
            "censor_day": _floats(pop.censor_day, 0),
        }
    )


def recurrence_risk(time: np.ndarray, event: np.ndarray, at: float) -> float:
    """Kaplan-Meier cumulative recurrence by day ``at`` (death and censoring censor)."""
    times, deaths = np.unique(time[event], return_counts=True)
    keep = times <= at
    at_risk = len(time) - np.searchsorted(np.sort(time), times[keep], side="left")
    return float(1 - np.prod(1 - deaths[keep] / at_risk)) if keep.any() else 0.0
