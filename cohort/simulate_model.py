"""The simulator's generative model, for analyses that condition on it (the Bayes bound).

``simulate_cohort`` draws every patient's latent course at once; an analysis that asks what
the markers can tell needs the same process for one patient whose covariates are known: many
latent courses drawn from the simulator's own prior given those covariates, and the expected
marker values and burden under each. This module exposes exactly the simulator's code for
that (no re-derivation), so a bound computed with it is the bound of *the* process.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cohort._simulate_latent import (
    NONE,
    Population,
    _disease,
    _marker_traits,
    burden,
)
from cohort._simulate_markers import _ctc_expected, _secreted
from cohort._simulate_observe import Draws
from cohort._simulate_params import ETIOLOGIES, MODALITY_ORDER, SITES, SimulationParams

__all__ = [
    "ETIOLOGIES",
    "MODALITY_ORDER",
    "NONE",
    "SITES",
    "Draws",
    "Population",
    "SimulationParams",
    "burden",
    "courses",
    "ctc_expected",
    "marker_traits",
    "patient_base",
    "prior_courses",
    "secreted",
]

# the covariates a hospital reports, as the simulator codes them
COVARIATE_KEYS = (
    "site",
    "age",
    "male",
    "etiology",
    "cirrhosis",
    "child_pugh_b",  # NaN: not reported
    "tumor_size_cm",
    "tumor_count",
    "mvi",  # NaN: not reported
)


def patient_base(
    covariates: Mapping[str, float], k: int, rng: np.random.Generator, p: SimulationParams
) -> dict[str, np.ndarray]:
    """One patient's reported covariates repeated ``k`` times, in the simulator's layout;
    unreported MVI and Child-Pugh class drawn from the simulator's models of them."""
    missing = [key for key in COVARIATE_KEYS if key not in covariates]
    if missing:
        raise ValueError(f"patient_base: covariates {missing} missing (need {COVARIATE_KEYS})")
    if k < 1:
        raise ValueError(f"patient_base: k must be >= 1, got {k}")
    size = float(covariates["tumor_size_cm"])
    mvi = float(covariates["mvi"])
    if not np.isfinite(mvi):  # the simulator's MVI model given tumour size
        logit = p.mvi_intercept_logit + p.mvi_per_log_size * np.log(size / p.tumor_size_median_cm)
        mvi_k = rng.random(k) < 1 / (1 + np.exp(-logit))
    else:
        mvi_k = np.full(k, mvi > 0.5)
    cirrhosis = float(covariates["cirrhosis"]) > 0.5
    child = float(covariates["child_pugh_b"])
    if not np.isfinite(child):
        share = p.child_pugh_b_prob / max(p.cirrhosis_prob, 1e-9) if cirrhosis else 0.0
        child_k = rng.random(k) < share
    else:
        child_k = np.full(k, child > 0.5)
    return {
        "site": np.full(k, int(covariates["site"])),
        "index_date": np.full(k, np.datetime64(p.accrual_start, "D")),
        "age": np.full(k, float(covariates["age"])),
        "male": np.full(k, float(covariates["male"]) > 0.5),
        "etiology": np.full(k, int(covariates["etiology"])),
        "cirrhosis": np.full(k, cirrhosis),
        "child_pugh_b": child_k,
        "tumor_size_cm": np.full(k, size),
        "tumor_count": np.full(k, float(covariates["tumor_count"])),
        "mvi": mvi_k,
        "mvi_missing": np.full(k, not np.isfinite(mvi)),
        "child_pugh_missing": np.full(k, not np.isfinite(child)),
        "bclc": np.zeros(k, dtype=int),  # not used by the latent process
    }


def marker_traits(
    rng: np.random.Generator, base: Mapping[str, np.ndarray], p: SimulationParams
) -> dict[str, np.ndarray]:
    """The simulator's draw of CTC shedding and AFP/PIVKA-II secretion and backgrounds."""
    return _marker_traits(rng, dict(base), p)


def courses(
    rng: np.random.Generator,
    base: Mapping[str, np.ndarray],
    markers: Mapping[str, np.ndarray],
    p: SimulationParams,
    *,
    disease: bool = True,
) -> Population:
    """Latent courses given covariates and marker traits: the simulator's draw of residual
    disease, doubling time, onset and visible day (``disease=False``: no recurrence, for the
    pre-operative draw where only the traits matter). No deaths or censoring (infinite)."""
    k = len(base["site"])
    if disease:
        dis = _disease(rng, dict(base), dict(markers), p)
    else:
        dis = {
            "kind": np.full(k, NONE),
            "doubling_time": np.ones(k),
            "onset_day": np.full(k, np.nan),
            "visible_day": np.full(k, np.nan),
        }
    inf = np.full(k, np.inf)
    return Population(**base, **markers, **dis, death_day=inf, censor_day=inf)


def prior_courses(
    covariates: Mapping[str, float], k: int, rng: np.random.Generator, p: SimulationParams
) -> Population:
    """``k`` latent courses of one patient from the simulator's prior given its covariates."""
    base = patient_base(covariates, k, rng, p)
    return courses(rng, base, marker_traits(rng, base, p), p)


def course_draws(k: int, days: np.ndarray) -> Draws:
    """Every course at every day: ``k × len(days)`` points, course-major."""
    days = np.asarray(days, dtype=float)
    return Draws(
        patient=np.repeat(np.arange(k), len(days)),
        day=np.tile(days, k),
        visit=np.zeros(k * len(days), dtype=np.int64),
    )


def ctc_expected(
    pop: Population, draws: Draws, b: np.ndarray, p: SimulationParams
) -> tuple[np.ndarray, np.ndarray]:
    """Expected CTC count per 7.5 mL at each point, and its tumour-derived part."""
    return _ctc_expected(pop, draws, b, p)


def secreted(
    pop: Population, draws: Draws, b: np.ndarray, rate: np.ndarray, half_life: float
) -> np.ndarray:
    """Tumour-secreted AFP or PIVKA-II at each point (recurrence plus the decaying primary)."""
    return _secreted(pop, draws, b, rate, half_life)
