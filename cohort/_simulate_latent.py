"""The simulator's patients and latent disease process (private to cohort.simulate).

Burden is in units of the imaging detection threshold: burden 1 is a ≈1 cm lesion. A
recurring patient's burden grows as ``2 ** ((day - visible_day) / doubling_time)`` from
its onset, so markers proportional to burden cross their cut-offs before day ``visible_day``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cohort._simulate_params import SimulationParams

NONE, RESIDUAL, DE_NOVO = 0, 1, 2
RECURRENCE_KINDS = ("none", "residual", "de_novo")
_DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class Population:
    """One entry per patient in every array; days are since resection (the index date)."""

    site: np.ndarray  # index into SITES
    index_date: np.ndarray  # datetime64[D]
    age: np.ndarray
    male: np.ndarray
    etiology: np.ndarray  # index into ETIOLOGIES
    cirrhosis: np.ndarray
    child_pugh_b: np.ndarray
    tumor_size_cm: np.ndarray
    tumor_count: np.ndarray
    mvi: np.ndarray  # the truth; the observed covariate may be missing
    mvi_missing: np.ndarray  # hospitals leave some covariates blank
    child_pugh_missing: np.ndarray
    bclc: np.ndarray  # 0 = "0", 1 = "A", 2 = "B"
    shedding: np.ndarray  # CTC shedding propensity, multiplies every expected count
    afp_secretor: np.ndarray
    afp_rate: np.ndarray  # AFP ng/mL per unit burden (0 for non-secretors)
    afp_background: np.ndarray
    pivka_secretor: np.ndarray
    pivka_rate: np.ndarray
    pivka_background: np.ndarray
    primary_burden: np.ndarray  # the resected tumour in burden units, for AFP/PIVKA decay
    kind: np.ndarray  # NONE / RESIDUAL / DE_NOVO
    doubling_time: np.ndarray
    onset_day: np.ndarray  # NaN without disease
    visible_day: np.ndarray  # NaN without disease
    death_day: np.ndarray  # latent, may fall after censoring
    censor_day: np.ndarray  # loss to follow-up or data cut

    @property
    def n(self) -> int:
        return len(self.site)

    @property
    def end_day(self) -> np.ndarray:
        """Last day of follow-up: death or censoring, whichever comes first."""
        return np.minimum(self.death_day, self.censor_day)


def draw_population(rng: np.random.Generator, n: int, p: SimulationParams) -> Population:
    """Patients, their tumours and the latent course after resection."""
    base = _baseline(rng, n, p)
    markers = _marker_traits(rng, base, p)
    disease = _disease(rng, base, markers, p)
    exits = _exits(rng, base, disease, p)
    return Population(**base, **markers, **disease, **exits)


def _baseline(rng: np.random.Generator, n: int, p: SimulationParams) -> dict[str, np.ndarray]:
    start, end = np.datetime64(p.accrual_start, "D"), np.datetime64(p.accrual_end, "D")
    span = int((end - start) / np.timedelta64(1, "D"))
    size = np.exp(rng.normal(np.log(p.tumor_size_median_cm), p.tumor_size_sigma, n))
    size = np.round(np.clip(size, 0.8, 20.0), 1)
    count = 1 + (rng.random(n) < p.multiple_tumours_prob) * (1 + (rng.random(n) < 0.4))
    mvi_logit = p.mvi_intercept_logit + p.mvi_per_log_size * np.log(size / p.tumor_size_median_cm)
    cirrhosis = rng.random(n) < p.cirrhosis_prob
    # Child-Pugh grades cirrhosis: a non-cirrhotic liver is class A
    child_b = cirrhosis & (rng.random(n) < p.child_pugh_b_prob / max(p.cirrhosis_prob, 1e-9))
    return {
        "site": rng.choice(len(p.site_weights), size=n, p=p.site_weights),
        "index_date": start + rng.integers(0, span + 1, n).astype("timedelta64[D]"),
        "age": np.clip(np.round(rng.normal(p.age_mean, p.age_sd, n)), 18, 90),
        "male": rng.random(n) < p.male_prob,
        "etiology": rng.choice(len(p.etiology_probs), size=n, p=p.etiology_probs),
        "cirrhosis": cirrhosis,
        "child_pugh_b": child_b,
        "tumor_size_cm": size,
        "tumor_count": count,
        "mvi": rng.random(n) < 1 / (1 + np.exp(-mvi_logit)),
        "mvi_missing": rng.random(n) < p.mvi_missing_prob,
        "child_pugh_missing": rng.random(n) < p.child_pugh_missing_prob,
        "bclc": _bclc(size, count),
    }


def _bclc(size: np.ndarray, count: np.ndarray) -> np.ndarray:
    """BCLC 0: single ≤2 cm; A: single, or up to 3 nodules ≤3 cm; B: multinodular beyond."""
    stage_a = (count == 1) | ((count <= 3) & (size <= 3))
    return np.where((count == 1) & (size <= 2), 0, np.where(stage_a, 1, 2))


def _marker_traits(
    rng: np.random.Generator, base: dict[str, np.ndarray], p: SimulationParams
) -> dict[str, np.ndarray]:
    n = len(base["site"])
    afp_secretor = rng.random(n) < p.afp_secretor_prob
    pivka_secretor = rng.random(n) < p.pivka_secretor_prob
    afp_rate = np.exp(rng.normal(np.log(p.afp_at_visible_median), p.afp_at_visible_sigma, n))
    pivka_rate = np.exp(rng.normal(np.log(p.pivka_at_visible_median), p.pivka_at_visible_sigma, n))
    afp_bg = np.exp(rng.normal(np.log(p.afp_background_median), p.afp_background_sigma, n))
    pivka_bg = np.exp(rng.normal(np.log(p.pivka_background_median), p.pivka_background_sigma, n))
    return {
        "shedding": np.exp(rng.normal(0.0, p.ctc_shedding_sigma, n)),
        "afp_secretor": afp_secretor,
        "afp_rate": np.where(afp_secretor, afp_rate, 0.0),
        "afp_background": afp_bg,
        "pivka_secretor": pivka_secretor,
        "pivka_rate": np.where(pivka_secretor, pivka_rate, 0.0),
        "pivka_background": pivka_bg,
        # sub-volumetric: a large primary's secretion grows slower than its volume
        "primary_burden": base["tumor_size_cm"] ** p.afp_primary_size_power,
    }


def _disease(
    rng: np.random.Generator,
    base: dict[str, np.ndarray],
    markers: dict[str, np.ndarray],
    p: SimulationParams,
) -> dict[str, np.ndarray]:
    n = len(base["site"])
    residual = rng.random(n) < _residual_probability(base, markers, p)
    dt = np.exp(rng.normal(np.log(p.doubling_time_median_days), p.doubling_time_sigma, n))
    dt = np.clip(dt, p.doubling_time_min_days, p.doubling_time_max_days)
    doublings = np.exp(
        rng.normal(np.log(p.residual_doublings_median), p.residual_doublings_sigma, n)
    )
    de_novo_visible = _de_novo_visible_day(rng, n, p)
    has_de_novo = ~residual & np.isfinite(de_novo_visible)
    visible = np.where(residual, doublings * dt, np.where(has_de_novo, de_novo_visible, np.nan))
    onset = np.where(residual, 0.0, np.maximum(0.0, visible - p.de_novo_doublings * dt))
    return {
        "kind": np.where(residual, RESIDUAL, np.where(has_de_novo, DE_NOVO, NONE)),
        "doubling_time": dt,
        "onset_day": onset,
        "visible_day": visible,
    }


def _de_novo_visible_day(rng: np.random.Generator, n: int, p: SimulationParams) -> np.ndarray:
    """Piecewise-exponential waiting time after the lag, by inverting the cumulative hazard."""
    h1 = p.de_novo_hazard_per_year / _DAYS_PER_YEAR
    h2 = p.de_novo_late_hazard_per_year / _DAYS_PER_YEAR
    early_span = max(p.de_novo_hazard_change_day - p.de_novo_lag_days, 0.0)
    cumulative = rng.standard_exponential(n)
    with np.errstate(divide="ignore"):
        early = cumulative / h1 if h1 > 0 else np.full(n, np.inf)
        late = early_span + (cumulative - h1 * early_span) / h2 if h2 > 0 else np.full(n, np.inf)
    return p.de_novo_lag_days + np.where(cumulative < h1 * early_span, early, late)


def _residual_probability(
    base: dict[str, np.ndarray], markers: dict[str, np.ndarray], p: SimulationParams
) -> np.ndarray:
    """Logistic in the published predictors of early recurrence (Yan 2023) and CTC shedding."""
    afp_preop = markers["afp_background"] + markers["afp_rate"] * markers["primary_burden"]
    logit = (
        p.residual_intercept_logit
        + np.log(p.residual_or_afp_over_400) * (afp_preop > p.afp_positive_at)
        + np.log(p.residual_or_size_over_5cm) * (base["tumor_size_cm"] > 5)
        + np.log(p.residual_or_multiple) * (base["tumor_count"] > 1)
        + np.log(p.residual_or_mvi) * base["mvi"]
        + np.log(p.residual_or_per_sd_shedding)
        * np.log(markers["shedding"])
        / max(p.ctc_shedding_sigma, 1e-9)
    )
    return 1 / (1 + np.exp(-logit))


def _exits(
    rng: np.random.Generator,
    base: dict[str, np.ndarray],
    disease: dict[str, np.ndarray],
    p: SimulationParams,
) -> dict[str, np.ndarray]:
    """Death (background, or after the recurrence became visible) and censoring, whole days."""
    n = len(base["site"])
    hr = p.death_hr_child_pugh_b ** base["child_pugh_b"] * p.death_hr_per_decade ** (
        (base["age"] - 60) / 10
    )
    background = _exponential_days(rng, p.death_hazard_per_year * hr, n)
    after = disease["visible_day"] + _exponential_days(
        rng, np.full(n, p.death_after_visible_hazard_per_year), n
    )
    death = np.fmin(background, after)  # fmin: no visible day, no death from recurrence
    lost = _exponential_days(rng, np.full(n, p.loss_to_followup_per_year), n)
    admin = (np.datetime64(p.data_cut, "D") - base["index_date"]).astype(np.int64).astype(float)
    # at least a day of follow-up; whole days since dates are whole days
    return {
        "death_day": np.maximum(np.ceil(death), 1.0),
        "censor_day": np.maximum(np.floor(np.minimum(lost, admin)), 1.0),
    }


def _exponential_days(rng: np.random.Generator, per_year: np.ndarray | float, n: int) -> np.ndarray:
    rate = np.broadcast_to(np.asarray(per_year, dtype=float), (n,)) / _DAYS_PER_YEAR
    scale = np.divide(1.0, rate, out=np.full(n, np.inf), where=rate > 0)
    return rng.standard_exponential(n) * scale


def burden(pop: Population, patient: np.ndarray, day: np.ndarray, cap: float) -> np.ndarray:
    """Latent recurrent tumour burden at ``day`` (0 before onset and before resection)."""
    vis = pop.visible_day[patient]
    log2_burden = np.minimum((day - vis) / pop.doubling_time[patient], cap)
    active = (pop.kind[patient] != NONE) & (day >= pop.onset_day[patient]) & (day >= 0)
    return np.where(active, np.exp2(np.where(active, log2_burden, 0.0)), 0.0)


def crossing_day(pop: Population, level: np.ndarray, cap: float) -> np.ndarray:
    """Day the burden-driven signal ``level * burden`` first reaches 1 (NaN if never).

    ``level`` is signal per unit burden divided by the cut-off; the day is never before onset.
    """
    with np.errstate(divide="ignore"):
        doublings_short = -np.log2(level)  # burden needed, in doublings past visible
    day = pop.visible_day + pop.doubling_time * doublings_short
    reachable = (pop.kind != NONE) & (doublings_short <= cap)
    return np.where(reachable, np.maximum(day, pop.onset_day), np.nan)
