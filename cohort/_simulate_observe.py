"""How hospitals observe the latent process: visits, scans, blood draws, marker values.

Private to cohort.simulate. Everything is vectorised over a patients × planned-visits grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cohort._simulate_latent import Population, burden
from cohort._simulate_params import MODALITY_ORDER, SimulationParams
from cohort.manifest import ScheduleSpec

FINDING_CODES = ("no_evidence", "indeterminate", "recurrence")
_NO_EVIDENCE, _INDETERMINATE, _RECURRENCE = 0, 1, 2
_LATE_FROM_DAY = 90  # visits 30 days apart could swap order if delayed by weeks


@dataclass(frozen=True)
class Visits:
    """The planned-visit grid and what happened at each visit."""

    planned: np.ndarray  # (V,) planned day of each visit
    day: np.ndarray  # (n, V) actual day of each planned visit
    scan: np.ndarray  # (n, V) bool, a surveillance scan was done (and kept)
    draw: np.ndarray  # (n, V) bool, blood was drawn (and kept)
    modality: np.ndarray  # (n, V) index into MODALITY_ORDER
    finding: np.ndarray  # (n, V) index into FINDING_CODES
    recurrence_day: np.ndarray  # (n,) first scan finding a recurrence, NaN if none


@dataclass(frozen=True)
class Draws:
    """One entry per blood draw, the pre-operative draw included (visit 0)."""

    patient: np.ndarray
    day: np.ndarray
    visit: np.ndarray


def observe_visits(
    rng: np.random.Generator,
    pop: Population,
    imaging: ScheduleSpec,
    draws: ScheduleSpec,
    p: SimulationParams,
) -> Visits:
    """Scans until the first one that finds the recurrence; draws up to that same visit."""
    last = float(np.max(pop.end_day))
    planned_scans = set(imaging.days_until(last))
    planned_draws = set(draws.days_until(last))
    planned = np.array(sorted(planned_scans | planned_draws), dtype=float)
    day = _visit_days(rng, pop.n, planned, p)
    within = day <= pop.end_day[:, None]
    scan = (
        within
        & np.isin(planned, list(planned_scans))
        & (rng.random(day.shape) >= p.scan_missed_prob)
    )
    draw = (
        within
        & np.isin(planned, list(planned_draws))
        & (rng.random(day.shape) >= p.draw_missed_prob)
    )
    modality = _modalities(rng, pop.site, day.shape, p)
    finding = np.where(scan, _findings(rng, pop, day, modality, p), _NO_EVIDENCE)
    found = scan & (finding == _RECURRENCE)
    has = found.any(axis=1)
    first = np.argmax(found, axis=1)
    # surveillance ends with the scan that confirms recurrence; the same visit's draw counts
    upto = np.arange(len(planned))[None, :] <= np.where(has, first, len(planned))[:, None]
    rec_day = np.where(has, day[np.arange(pop.n), first], np.nan)
    return Visits(planned, day, scan & upto, draw & upto, modality, finding, rec_day)


def _visit_days(
    rng: np.random.Generator, n: int, planned: np.ndarray, p: SimulationParams
) -> np.ndarray:
    """Planned days with ± jitter, and now and then a visit weeks late."""
    shape = (n, len(planned))
    jitter = np.clip(
        np.round(rng.normal(0.0, p.visit_jitter_sd_days, shape)),
        -p.visit_jitter_max_days,
        p.visit_jitter_max_days,
    )
    late = (rng.random(shape) < p.visit_late_prob) & (planned[None, :] >= _LATE_FROM_DAY)
    delay = (
        rng.integers(15, int(p.visit_late_max_days) + 1, shape)
        if p.visit_late_max_days >= 15
        else 0
    )
    return np.maximum(planned[None, :] + jitter + np.where(late, delay, 0), 1.0)


def _modalities(
    rng: np.random.Generator, site: np.ndarray, shape: tuple[int, int], p: SimulationParams
) -> np.ndarray:
    probs = np.array([p.modality_probs_site_a, p.modality_probs_site_b, p.modality_probs_site_c])
    cumulative = np.cumsum(probs, axis=1)[site]  # (n, M)
    u = rng.random(shape)
    return (u[:, :, None] >= cumulative[:, None, :-1]).sum(axis=2)


def _findings(
    rng: np.random.Generator,
    pop: Population,
    day: np.ndarray,
    modality: np.ndarray,
    p: SimulationParams,
) -> np.ndarray:
    """Detection rises with lesion diameter; sub-threshold lesions are sometimes indeterminate."""
    patients = np.broadcast_to(np.arange(pop.n)[:, None], day.shape)
    b = burden(pop, patients, day, p.max_doublings_past_visible)
    by_modality = {
        "CT": p.sensitivity_ct,
        "MRI": p.sensitivity_mri,
        "US": p.sensitivity_us,
        "CEUS": p.sensitivity_ceus,
    }
    sensitivity = np.array([by_modality[m] for m in MODALITY_ORDER])[modality]
    # missing a lesion twice its threshold diameter is as likely as missing two threshold ones
    detect = 1 - (1 - sensitivity) ** np.cbrt(np.maximum(b, 1.0))
    u = rng.random(day.shape)
    visible = (b >= 1) & (u < detect)
    small = (b >= p.indeterminate_from_burden) & (b < 1)
    indeterminate = rng.random(day.shape) < np.where(
        small, p.indeterminate_small_prob, p.indeterminate_benign_prob
    )
    return np.where(visible, _RECURRENCE, np.where(indeterminate, _INDETERMINATE, _NO_EVIDENCE))


def collect_draws(
    rng: np.random.Generator, pop: Population, visits: Visits, p: SimulationParams
) -> Draws:
    """Pre-operative draw (visit 0) then the kept post-operative draws, by patient and day."""
    patient, col = np.nonzero(visits.draw)
    pre = np.nonzero(rng.random(pop.n) >= p.preop_draw_missed_prob)[0]
    pre_day = p.preop_draw_day + rng.integers(-7, 6, len(pre))
    pre_day = np.minimum(pre_day, -1.0)
    all_patient = np.concatenate([pre, patient])
    all_day = np.concatenate([pre_day, visits.day[patient, col]])
    all_visit = np.concatenate([np.zeros(len(pre), dtype=np.int64), col + 1])
    order = np.lexsort((all_day, all_patient))
    return Draws(all_patient[order], all_day[order], all_visit[order])
