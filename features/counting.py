"""Counting-process (start, stop] table for time-varying Cox models (lifelines' CoxTimeVaryingFitter).

Each patient's follow-up (0, T] is split at every post-index draw day 0 < d < T of the
chosen markers. In (start, stop] each marker carries its last value dated <= start (last
observation carried forward, pre-operative values included): what was known when the
interval began. ``event`` is set on the patient's last interval only. Vectorised like the
landmark table: no loop over patients.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cohort.cohort import Cohort
from cohort.manifest import Manifest
from cohort.vocabulary import (
    DAY,
    EVENT,
    MARKER,
    PATIENT_ID,
    START,
    STOP,
    TIME,
    feature_name,
)
from features._checks import check_measurements
from features._timeline import build_timelines, gather, positions
from features.covariates import encode_covariates, learn_levels

log = logging.getLogger(__name__)


def counting_process_table(
    cohort: Cohort, endpoint: str | None = None, markers: Sequence[str] | None = None
) -> pd.DataFrame:
    """Rows ``patient_id, start, stop, event, <marker>_last..., covariates``.

    ``endpoint`` defaults to the manifest's (administratively censored at its horizon,
    as ``cohort.endpoint`` does); ``markers`` to every manifest marker. Patients whose
    follow-up ends at or before day 0 contribute no interval. Categorical covariates are
    one-hot over all levels: drop a reference level (or penalise) before an unpenalised Cox fit.
    """
    names = _check_markers(markers, cohort.manifest)
    measurements = check_measurements(cohort.measurements)
    ep = cohort.endpoint(endpoint)
    patients, time, event = _followed_patients(cohort.patients, ep)
    code, start = _interval_starts(measurements, patients[PATIENT_ID], names, time)
    stop, last_row = _interval_stops(code, start, time)
    columns = {
        PATIENT_ID: patients[PATIENT_ID].to_numpy()[code],
        START: start,
        STOP: stop,
        EVENT: np.where(last_row, event[code], 0),
    }
    columns.update(_carried_forward(measurements, patients[PATIENT_ID], names, code, start))
    covariates = dict(cohort.manifest.covariates)
    levels = learn_levels(patients, covariates)
    columns.update(encode_covariates(patients, covariates, levels, code))
    log.info("counting-process table: %d intervals for %d patients", len(start), len(patients))
    return pd.DataFrame(columns)


def _check_markers(markers: Sequence[str] | None, manifest: Manifest) -> list[str]:
    if markers is None:
        return list(manifest.markers)
    if isinstance(markers, str) or not isinstance(markers, Sequence):
        raise TypeError(f"markers must be a list of marker codes, got {markers!r}")
    unknown = [m for m in markers if m not in manifest.markers]
    if unknown:
        raise ValueError(
            f"markers {unknown} are not declared in the manifest; declared: {list(manifest.markers)}"
        )
    return list(dict.fromkeys(markers))


def _followed_patients(
    patients: pd.DataFrame, ep: pd.DataFrame
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Patients followed past day 0, with their endpoint time and event (0/1)."""
    at = positions(pd.Index(ep[PATIENT_ID]), patients[PATIENT_ID])
    time = np.where(at >= 0, ep[TIME].to_numpy(dtype=float)[at], np.nan)
    event = np.where(at >= 0, ep[EVENT].to_numpy(dtype=float)[at], 0.0).astype(int)
    keep = time > 0
    if not keep.all():
        log.info("counting-process table: %d patients without follow-up after day 0", (~keep).sum())
    return patients[keep].reset_index(drop=True), time[keep], event[keep]


def _interval_starts(
    measurements: pd.DataFrame, ids: pd.Series, names: list[str], time: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct (patient code, start day): day 0, then every draw day in (0, T)."""
    code = positions(pd.Index(ids), measurements[PATIENT_ID])
    day = measurements[DAY].to_numpy(dtype=float)
    split = (code >= 0) & measurements[MARKER].isin(names).to_numpy()
    split[split] = (day[split] > 0) & (day[split] < time[code[split]])
    code = np.concatenate([np.arange(len(ids)), code[split]])
    day = np.concatenate([np.zeros(len(ids)), day[split]])
    order = np.lexsort((day, code))
    code, day = code[order], day[order]
    fresh = np.ones(len(code), dtype=bool)
    fresh[1:] = (code[1:] != code[:-1]) | (day[1:] != day[:-1])
    return code[fresh], day[fresh]


def _interval_stops(
    code: np.ndarray, start: np.ndarray, time: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each interval stops at the next start, the patient's last at its endpoint time."""
    last_row = np.ones(len(code), dtype=bool)
    last_row[:-1] = code[1:] != code[:-1]
    stop = np.empty(len(code))
    stop[:-1] = start[1:]
    stop[last_row] = time[code[last_row]]
    return stop, last_row


def _carried_forward(
    measurements: pd.DataFrame,
    ids: pd.Series,
    names: list[str],
    code: np.ndarray,
    start: np.ndarray,
) -> dict[str, np.ndarray]:
    """Each marker's last value dated <= the interval's start (NaN before its first draw)."""
    coder, timelines = build_timelines(measurements, pd.Index(ids), names, start)
    out = {}
    for marker, tl in timelines.items():
        loc = tl.locate(coder, code, start)
        out[feature_name(marker, "last")] = gather(tl.value, loc.last, loc.has)
    return out
