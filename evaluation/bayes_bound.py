"""What the markers can tell: the Bayes-optimal risk of a simulated cohort's own process.

At a day ``s`` the posterior risk is P(RFS event in (s, s + h] | the patient's reported
covariates, every marker value dated ≤ s, every scan dated ≤ s read as it was, alive and
recurrence-free at s), computed under the simulator's generative model
(:mod:`cohort.simulate_model`) by importance sampling:

1. ``k`` latent courses are drawn from the simulator's own prior given the covariates
   (unreported MVI / Child-Pugh drawn too): marker traits, residual disease, doubling time,
   onset and visible day;
2. each course is weighted by the likelihood of the observed data under the simulator's
   noise model: CTC counts Poisson-lognormal (the lognormal integrated by Gauss-Hermite, per
   the assay volume), the CanPatrol subtype split multinomial in the tumour share, AFP
   lognormal with the viral-hepatitis flare mixture (integrated over the flare factor) and
   censored at the detection limits, PIVKA-II lognormal, each negative or indeterminate scan
   by the simulator's detection and indeterminate-finding model, and survival to ``s`` after
   the lesion became visible;
3. the risk is the weighted mean of each course's probability of an event in (s, s + h]:
   a recurrence confirmed at a future planned scan (the manifest's imaging schedule, scans
   missed at the simulator's rate, modality by site) or a death (background hazard from the
   covariates, raised after the lesion is visible).

Approximations (README, "What the markers can tell"): future scans on their planned days;
draw and scan patterns uninformative (surveillance stopping at the confirming scan is what
"unconfirmed at s" conditions on); reported values exact; loss to follow-up left to the
evaluation's censoring. They and the Monte Carlo error (ESS per point) make the bound, if
anything, conservative.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import gammaln
from scipy.stats import norm

from cohort.cohort import Cohort
from cohort.simulate_model import (
    ETIOLOGIES,
    MODALITY_ORDER,
    NONE,
    SITES,
    Draws,
    Population,
    SimulationParams,
    burden,
    course_draws,
    courses,
    ctc_expected,
    marker_traits,
    patient_base,
    secreted,
)
from cohort.vocabulary import DAY, LANDMARK_DAY, MARKER, PATIENT_ID, QUALIFIER

BOUND_RISK = "bayes_risk"
BOUND_ESS = "bayes_ess"
_DAYS_PER_YEAR = 365.25
_GH = 12  # Gauss-Hermite nodes for the per-draw lognormal noise
_FLARE_NODES = 5
_BG_GRID = 40  # grid points over a background's prior (±4.5 SD)
_SUBTYPES = ("ctc_epithelial", "ctc_mixed", "ctc_mesenchymal")  # the simulator's split order
_FINDINGS = {"no_evidence": 0, "indeterminate": 1}


@dataclass(frozen=True)
class PatientData:
    """One patient's reported data, in the simulator's codes and original units."""

    covariates: dict[str, float]
    # CTC totals: day, count as reported, volume (7.5 mL = 1)
    ctc_day: np.ndarray
    ctc_count: np.ndarray
    ctc_volume: np.ndarray
    # CanPatrol subtype counts (epithelial, mixed, mesenchymal) at these days
    sub_day: np.ndarray
    sub_count: np.ndarray  # (n, 3)
    # AFP in ng/mL; qualifier 0 value, 1 below the limit (value = limit), 2 above
    afp_day: np.ndarray
    afp_ng: np.ndarray
    afp_qual: np.ndarray
    pivka_day: np.ndarray
    pivka_value: np.ndarray
    # scans read as no evidence (0) or indeterminate (1); a confirming scan is not here
    scan_day: np.ndarray
    scan_modality: np.ndarray
    scan_finding: np.ndarray


def _f(values: pd.Series | np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=float)


def patient_data(cohort: Cohort, p: SimulationParams) -> dict[str, PatientData]:
    """Every patient's data from a loaded simulated cohort, keyed by patient_id.

    Raises ValueError naming what does not fit the simulator (a site, etiology, marker unit
    or scan finding it never writes): the bound is only defined for its own cohorts.
    """
    pts = cohort.patients
    unknown_site = sorted(set(pts["site_id"].dropna()) - set(SITES))
    unknown_etio = sorted(set(pts["etiology"].dropna()) - set(ETIOLOGIES))
    if unknown_site or unknown_etio:
        raise ValueError(
            f"not a simulated cohort: patients.csv has site_id {unknown_site} / etiology "
            f"{unknown_etio} the simulator never writes"
        )
    m = cohort.measurements
    m_by = {pid: g for pid, g in m.groupby(PATIENT_ID, sort=False)}
    i = cohort.imaging
    i_by = {pid: g for pid, g in i.groupby(PATIENT_ID, sort=False)}
    out = {}
    for row in pts.to_dict(orient="records"):
        pid = str(row[PATIENT_ID])
        cov = {
            "site": float(SITES.index(row["site_id"])),
            "age": float(row["age"]),
            "male": float(row["sex"] == "M"),
            "etiology": float(ETIOLOGIES.index(row["etiology"])),
            "cirrhosis": float(row["cirrhosis"]),
            "child_pugh_b": np.nan
            if pd.isna(row["child_pugh"])
            else float(row["child_pugh"] == "B"),
            "tumor_size_cm": float(row["tumor_size_cm"]),
            "tumor_count": float(row["tumor_count"]),
            "mvi": float(row["microvascular_invasion"])
            if pd.notna(row["microvascular_invasion"])
            else np.nan,
        }
        out[pid] = _one_patient(pid, cov, m_by.get(pid, m.iloc[:0]), i_by.get(pid, i.iloc[:0]), p)
    return out


def _one_patient(
    pid: str, cov: dict[str, float], m: pd.DataFrame, i: pd.DataFrame, p: SimulationParams
) -> PatientData:
    unit = m["original_unit"].astype(str).to_numpy()
    known = {"cells/7.5mL", "cells/5mL", "ng/mL", "IU/mL", "mAU/mL"}
    bad = sorted(set(unit) - known)
    if bad:
        raise ValueError(f"patient {pid}: marker unit(s) {bad} are not the simulator's {known}")
    marker = m[MARKER].astype(str).to_numpy()
    day = _f(m[DAY])
    value = _f(m["original_value"])
    qual = m[QUALIFIER].astype(object).to_numpy()

    tot = marker == "ctc_total"
    afp = marker == "afp"
    piv = marker == "pivka_ii"
    sub_days = np.unique(day[np.isin(marker, _SUBTYPES)])
    sub = np.zeros((len(sub_days), 3))
    for j, code in enumerate(_SUBTYPES):
        sel = marker == code
        pos = np.searchsorted(sub_days, day[sel])
        sub[pos, j] = value[sel]
    afp_factor = np.where(unit[afp] == "IU/mL", p.afp_ng_per_iu, 1.0)
    afp_q = np.select([qual[afp] == "<", qual[afp] == ">"], [1, 2], 0)
    finding = i["finding"].astype(str).to_numpy()
    read = np.isin(finding, list(_FINDINGS))
    modality = i["modality"].astype(str).to_numpy()[read]
    bad_mod = sorted(set(modality) - set(MODALITY_ORDER))
    if bad_mod:
        raise ValueError(f"patient {pid}: scan modality {bad_mod} not in {MODALITY_ORDER}")
    return PatientData(
        covariates=cov,
        ctc_day=day[tot],
        ctc_count=value[tot],
        ctc_volume=np.where(unit[tot] == "cells/5mL", 5.0 / 7.5, 1.0),
        sub_day=sub_days,
        sub_count=sub,
        afp_day=day[afp],
        afp_ng=value[afp] * afp_factor,
        afp_qual=afp_q,
        pivka_day=day[piv],
        pivka_value=value[piv],
        scan_day=_f(i[DAY])[read],
        scan_modality=np.array([MODALITY_ORDER.index(x) for x in modality], dtype=int),
        scan_finding=np.array([_FINDINGS[f] for f in finding[read]], dtype=int),
    )


# --------------------------------------------------------------------------- likelihoods
def _at(pop: Population, days: np.ndarray, p: SimulationParams) -> tuple[np.ndarray, Draws]:
    """Burden (k × len(days)) of every course at ``days``, and the points as Draws."""
    d = course_draws(pop.n, days)
    b = burden(pop, d.patient, d.day, p.max_doublings_past_visible)
    return b, d


def _gh(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(n)  # weight exp(-x²/2)
    return x, np.log(w / math.sqrt(2 * math.pi))


def ctc_loglik(
    pop: Population, days: np.ndarray, count: np.ndarray, volume: np.ndarray, p: SimulationParams
) -> np.ndarray:
    """log P(CTC total count) per course and draw (k × n), Poisson-lognormal."""
    k, n = pop.n, len(days)
    if n == 0:
        return np.zeros((k, 0))
    b, d = _at(pop, days, p)
    expected, _ = ctc_expected(pop, d, b, p)
    lam = (expected.reshape(k, n) * volume)[:, :, None]
    x, logw = _gh(_GH)
    sigma = p.ctc_draw_sigma
    lam_z = lam * np.exp(-(sigma**2) / 2 + sigma * x)
    c = count[None, :, None]
    logp = c * np.log(np.maximum(lam_z, 1e-300)) - lam_z - gammaln(c + 1)
    return _lse(logp + logw, axis=2)


def subtype_loglik(pop: Population, data: PatientData, p: SimulationParams) -> np.ndarray:
    """log P(epithelial / mixed / mesenchymal split | total) per course and draw (k × n)."""
    k, n = pop.n, len(data.sub_day)
    if n == 0:
        return np.zeros((k, 0))
    b, d = _at(pop, data.sub_day, p)
    expected, tumour = ctc_expected(pop, d, b, p)
    share = np.divide(tumour, expected, out=np.zeros_like(tumour), where=expected > 0)
    share = share.reshape(k, n)[:, :, None]
    probs = share * np.array(p.ctc_subtypes_tumour) + (1 - share) * np.array(
        p.ctc_subtypes_background
    )
    return (data.sub_count[None, :, :] * np.log(np.maximum(probs, 1e-300))).sum(axis=2)


_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _lse(x: np.ndarray, axis: int) -> np.ndarray:
    """log-sum-exp along ``axis`` (scipy's is several times slower on these small arrays)."""
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.squeeze(top, axis=axis) + np.log(np.sum(np.exp(x - top), axis=axis))


def _lognormal_loglik(
    log_mean: np.ndarray, value: np.ndarray, qual: np.ndarray, sigma: float
) -> np.ndarray:
    """Mean-one lognormal noise around exp(log_mean): log density of log(value), or the
    censored probability below (qual 1) / above (qual 2) the value."""
    z = (np.log(np.maximum(value, 1e-9)) - log_mean + sigma**2 / 2) / sigma
    out = -0.5 * z * z - (_LOG_SQRT_2PI + math.log(sigma))
    if np.any(qual == 1):
        out = np.where(qual == 1, norm.logcdf(z), out)
    if np.any(qual == 2):
        out = np.where(qual == 2, norm.logsf(z), out)
    return out


def _secretion_loglik(
    background: np.ndarray,
    sec: np.ndarray,
    value: np.ndarray,
    qual: np.ndarray,
    sigma: float,
    flare_prob: float,
    p: SimulationParams,
) -> np.ndarray:
    """log P(value) for background × flare + secretion, lognormal; broadcasts its arguments.
    The flare (a benign AFP rise) is integrated over its lognormal factor."""
    plain = _lognormal_loglik(np.log(background + sec), value, qual, sigma)
    if flare_prob <= 0:
        return plain
    x, logw = _gh(_FLARE_NODES)
    factor = np.exp(math.log(p.afp_flare_median_factor) + 0.7 * x)
    flared = _lse(
        np.stack(
            [
                _lognormal_loglik(np.log(background * f + sec), value, qual, sigma) + lw
                for f, lw in zip(factor, logw, strict=True)
            ]
        ),
        axis=0,
    )
    return np.logaddexp(math.log1p(-flare_prob) + plain, math.log(flare_prob) + flared)


def _flare_prob(data: PatientData, p: SimulationParams) -> float:
    viral = ETIOLOGIES[int(data.covariates["etiology"])] in ("HBV", "HCV")
    return p.afp_flare_prob if viral else 0.0


@dataclass(frozen=True)
class _Secretor:
    """One secreted marker's data and the simulator's figures for it."""

    day: np.ndarray
    value: np.ndarray
    qual: np.ndarray
    rate: str  # Population field
    background_median: float
    background_sigma: float
    half_life: float
    sigma: float
    flare_prob: float


def _secretors(data: PatientData, p: SimulationParams) -> list[_Secretor]:
    return [
        _Secretor(
            data.afp_day,
            data.afp_ng,
            data.afp_qual,
            "afp_rate",
            p.afp_background_median,
            p.afp_background_sigma,
            p.afp_half_life_days,
            p.afp_draw_sigma,
            _flare_prob(data, p),
        ),
        _Secretor(
            data.pivka_day,
            np.maximum(data.pivka_value, 0.5),
            np.zeros(len(data.pivka_day), dtype=int),
            "pivka_rate",
            p.pivka_background_median,
            p.pivka_background_sigma,
            p.pivka_half_life_days,
            p.pivka_draw_sigma,
            0.0,
        ),
    ]


def marginal_secretor_loglik(
    pop: Population, m: _Secretor, days: np.ndarray, p: SimulationParams
) -> np.ndarray:
    """log P(the marker's post-operative values dated ≤ s | course, pre-operative values), per
    course and day s (k × len(days)), the patient's background integrated out on a grid of
    its prior (its posterior after ~10 draws is ~10× narrower than the prior, which
    sampling from the prior would meet with a tiny effective sample size)."""
    k = pop.n
    if len(m.day) == 0:
        return np.zeros((k, len(days)))
    z = np.linspace(-4.5, 4.5, _BG_GRID)
    log_prior = -0.5 * z * z - _lse(-0.5 * z * z, axis=0)
    bg = np.exp(math.log(m.background_median) + m.background_sigma * z)  # (G,)
    b, d = _at(pop, m.day, p)
    sec = secreted(pop, d, b, getattr(pop, m.rate), m.half_life)
    sec = sec.reshape(k, 1, len(m.day))
    ll = _secretion_loglik(
        bg[None, :, None],
        sec,
        m.value[None, None, :],
        m.qual[None, None, :],
        m.sigma,
        m.flare_prob,
        p,
    )  # (k, G, n)
    pre = m.day < 0
    # the pre-operative values: the background's prior becomes its posterior given them
    start = log_prior[None, :] + ll[:, :, pre].sum(axis=2)
    start -= _lse(start, axis=1)[:, None]
    post = ll[:, :, ~pre]
    cum = np.concatenate([np.zeros((k, _BG_GRID, 1)), np.cumsum(post, axis=2)], axis=2)
    upto = np.searchsorted(m.day[~pre], days, side="right")
    return _lse(start[:, :, None] + cum[:, :, upto], axis=1)


def preop_loglik(pop: Population, data: PatientData, p: SimulationParams) -> np.ndarray:
    """log P(pre-operative CTC, AFP, PIVKA-II | marker traits) per course (k,)."""
    out = np.zeros(pop.n)
    pre = data.ctc_day < 0
    out += ctc_loglik(pop, data.ctc_day[pre], data.ctc_count[pre], data.ctc_volume[pre], p).sum(1)
    for m in _secretors(data, p):
        pre = m.day < 0
        if not pre.any():
            continue
        b, d = _at(pop, m.day[pre], p)
        sec = secreted(pop, d, b, getattr(pop, m.rate), m.half_life)
        sec = sec.reshape(pop.n, int(pre.sum()))
        bg = getattr(pop, m.rate.replace("_rate", "_background"))[:, None]
        out += _secretion_loglik(
            bg, sec, m.value[None, pre], m.qual[None, pre], m.sigma, m.flare_prob, p
        ).sum(axis=1)
    return out


def _sensitivities(p: SimulationParams) -> np.ndarray:
    by = {"CT": p.sensitivity_ct, "MRI": p.sensitivity_mri, "US": p.sensitivity_us}
    by["CEUS"] = p.sensitivity_ceus
    return np.array([by[m] for m in MODALITY_ORDER])


def _detect(b: np.ndarray, sensitivity: np.ndarray | float) -> np.ndarray:
    """The simulator's chance that a scan finds a lesion of burden b (0 below threshold)."""
    det = 1 - (1 - sensitivity) ** np.cbrt(np.maximum(b, 1.0))
    return np.where(b >= 1, det, 0.0)


def scan_loglik(pop: Population, data: PatientData, p: SimulationParams) -> np.ndarray:
    """log P(scan read as it was) per course and scan (k × n): not found, then indeterminate
    or not by the simulator's model of sub-threshold lesions and benign nodules."""
    k, n = pop.n, len(data.scan_day)
    if n == 0:
        return np.zeros((k, 0))
    b, _ = _at(pop, data.scan_day, p)
    b = b.reshape(k, n)
    missed = 1 - _detect(b, _sensitivities(p)[data.scan_modality][None, :])
    small = (b >= p.indeterminate_from_burden) & (b < 1)
    pind = np.where(small, p.indeterminate_small_prob, p.indeterminate_benign_prob)
    read = np.where(data.scan_finding[None, :] == 1, pind, 1 - pind)
    return np.log(np.maximum(missed * read, 1e-300))


# --------------------------------------------------------------------------- the risk
def _background_death_rate(cov: Mapping[str, float], p: SimulationParams) -> float:
    child = cov["child_pugh_b"]
    if not np.isfinite(child):
        child = p.child_pugh_b_prob / max(p.cirrhosis_prob, 1e-9) if cov["cirrhosis"] > 0.5 else 0
    hr = (p.death_hr_child_pugh_b**child) * p.death_hr_per_decade ** ((cov["age"] - 60) / 10)
    return p.death_hazard_per_year * hr / _DAYS_PER_YEAR


def event_probability(
    pop: Population,
    data: PatientData,
    days: np.ndarray,
    horizon: float,
    planned_scans: np.ndarray,
    p: SimulationParams,
) -> np.ndarray:
    """Per course and day s (k × len(days)): P(RFS event in (s, s + horizon] | the course,
    alive and unconfirmed at s): a future planned scan finds the lesion, or death."""
    k = pop.n
    site = int(data.covariates["site"])
    probs = np.array([p.modality_probs_site_a, p.modality_probs_site_b, p.modality_probs_site_c])[
        site
    ]
    b, _ = _at(pop, planned_scans, p)
    b = b.reshape(k, len(planned_scans))
    sens = _sensitivities(p)
    found = sum(pr * _detect(b, s) for pr, s in zip(probs, sens, strict=True) if pr > 0)
    log_miss = np.log(np.maximum(1 - (1 - p.scan_missed_prob) * found, 1e-300))  # (k, P)
    jitter = p.visit_jitter_max_days
    read_days = data.scan_day
    out = np.empty((k, len(days)))
    vis = np.where(pop.kind != NONE, pop.visible_day, np.inf)
    lam_v = p.death_after_visible_hazard_per_year / _DAYS_PER_YEAR
    lam_b = _background_death_rate(data.covariates, p)
    for j, s in enumerate(days):
        # a planned scan in (s, s + h] is to come; one within a visit's jitter of s is to come
        # unless a scan of that visit was read by s
        ahead = (planned_scans > s + jitter) & (planned_scans <= s + horizon)
        current = (planned_scans > s - jitter) & (planned_scans <= s + jitter)
        for t in np.nonzero(current)[0]:
            t_day = planned_scans[t]
            done = np.any((read_days >= t_day - jitter) & (read_days <= s))
            ahead[t] = not done
        undetected = log_miss[:, ahead].sum(axis=1)
        after_visible = np.clip(s + horizon - np.maximum(s, vis), 0, None)
        alive = -lam_b * horizon - lam_v * after_visible
        out[:, j] = -np.expm1(undetected + alive)
    return out


def courses_given_preop(
    data: PatientData, k: int, n_prior: int, rng: np.random.Generator, p: SimulationParams
) -> Population:
    """``k`` latent courses drawn from the simulator's prior given the covariates and the
    pre-operative draw: ``n_prior`` marker-trait draws of the simulator's own sampler weighted
    by the pre-operative values (which depend on the traits only: no recurrence yet), ``k`` of
    them resampled, then the simulator's draw of the disease given each."""
    base = patient_base(data.covariates, n_prior, rng, p)
    traits = marker_traits(rng, base, p)
    logw = preop_loglik(courses(rng, base, traits, p, disease=False), data, p)
    w = np.exp(logw - logw.max())
    cumulative = np.cumsum(w / w.sum())
    idx = np.minimum(np.searchsorted(cumulative, (rng.random() + np.arange(k)) / k), n_prior - 1)
    return courses(
        rng,
        {key: v[idx] for key, v in base.items()},
        {key: v[idx] for key, v in traits.items()},
        p,
    )


def _batch(
    data: PatientData,
    days: np.ndarray,
    horizon: float,
    planned_scans: np.ndarray,
    p: SimulationParams,
    k: int,
    rng: np.random.Generator,
    n_prior: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One batch of ``k`` courses: per day, the largest log weight and the sums of the
    weights, of weight × event probability and of squared weights, relative to it."""
    pop = courses_given_preop(data, k, n_prior, rng, p)
    post = data.ctc_day >= 0
    parts = [
        (
            data.ctc_day[post],
            ctc_loglik(pop, data.ctc_day[post], data.ctc_count[post], data.ctc_volume[post], p),
        ),
        (data.sub_day, subtype_loglik(pop, data, p)),
        (data.scan_day, scan_loglik(pop, data, p)),
    ]
    obs_day = np.concatenate([d for d, _ in parts])
    loglik = np.concatenate([ll for _, ll in parts], axis=1)
    order = np.argsort(obs_day, kind="stable")
    obs_day, loglik = obs_day[order], loglik[:, order]
    cum = np.concatenate([np.zeros((k, 1)), np.cumsum(loglik, axis=1)], axis=1)
    logw = cum[:, np.searchsorted(obs_day, days, side="right")]
    for m in _secretors(data, p):
        logw += marginal_secretor_loglik(pop, m, days, p)
    vis = np.where(pop.kind != NONE, pop.visible_day, np.inf)
    lam_v = p.death_after_visible_hazard_per_year / _DAYS_PER_YEAR
    logw -= lam_v * np.clip(days[None, :] - vis[:, None], 0, None)  # alive at s
    top = logw.max(axis=0)
    w = np.exp(logw - top)
    q = event_probability(pop, data, days, horizon, planned_scans, p)
    return top, w.sum(axis=0), (w * q).sum(axis=0), (w**2).sum(axis=0)


def posterior_risk(
    data: PatientData,
    days: np.ndarray,
    *,
    horizon: float,
    planned_scans: np.ndarray,
    p: SimulationParams,
    k: int,
    rng: np.random.Generator,
    n_prior: int | None = None,
    min_ess: float = 0.0,
    max_batches: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """The Bayes-optimal risk at each day in ``days`` and its importance-sampling ESS.

    Batches of ``k`` courses are pooled (each is a sample of the same proposal, so their
    weights add) until every day's ESS reaches ``min_ess`` or ``max_batches`` ran."""
    days = np.asarray(days, dtype=float)
    top, sw, swq, sw2 = _batch(data, days, horizon, planned_scans, p, k, rng, n_prior or 20 * k)
    for _ in range(max_batches - 1):
        if (sw**2 / sw2).min() >= min_ess:
            break
        t2, *sums = _batch(data, days, horizon, planned_scans, p, k, rng, n_prior or 20 * k)
        new_top = np.maximum(top, t2)
        a, b = np.exp(top - new_top), np.exp(t2 - new_top)
        sw, swq = sw * a + sums[0] * b, swq * a + sums[1] * b
        sw2, top = sw2 * a**2 + sums[2] * b**2, new_top
    return swq / sw, sw**2 / sw2


def bayes_risks(
    cohort: Cohort,
    points: pd.DataFrame,
    *,
    horizon: float = 365.0,
    params: SimulationParams | None = None,
    k: int = 1000,
    seed: int = 0,
    min_ess: float = 50.0,
    max_batches: int = 8,
) -> pd.DataFrame:
    """``points`` (patient_id, landmark_day) with the Bayes-optimal risk within ``horizon``
    (:data:`BOUND_RISK`) and the effective sample size behind it (:data:`BOUND_ESS`).

    ``params`` must be the ones the cohort was simulated with (default: the defaults).
    The result does not depend on the order of ``points``: each patient's courses are drawn
    from a generator seeded by ``seed`` and the patient's position in ``cohort.patients``.
    A patient whose ESS falls below ``min_ess`` at a point gets more batches of ``k``.
    """
    p = params or SimulationParams()
    if not horizon > 0:
        raise ValueError(f"horizon must be > 0 days, got {horizon!r}")
    if k < 10:
        raise ValueError(f"k (courses per patient) must be >= 10, got {k}")
    missing = {PATIENT_ID, LANDMARK_DAY} - set(points.columns)
    if missing:
        raise ValueError(f"points lacks column(s) {sorted(missing)}")
    data = patient_data(cohort, p)
    unknown = sorted(set(points[PATIENT_ID].astype(str)) - set(data))
    if unknown:
        raise ValueError(f"points name patients not in the cohort: {unknown[:5]}")
    last = float(points[LANDMARK_DAY].max()) + horizon + 1
    planned = np.array(cohort.manifest.imaging_schedule().days_until(last), dtype=float)
    position = {pid: n for n, pid in enumerate(data)}
    out = points[[PATIENT_ID, LANDMARK_DAY]].copy()
    out[PATIENT_ID] = out[PATIENT_ID].astype(str)
    risk = np.full(len(out), np.nan)
    ess = np.full(len(out), np.nan)
    for key, idx in out.groupby(PATIENT_ID, sort=False).indices.items():
        pid = str(key)
        rng = np.random.Generator(np.random.PCG64([seed, position[pid]]))
        days = out[LANDMARK_DAY].to_numpy(dtype=float)[idx]
        risk[idx], ess[idx] = posterior_risk(
            data[pid],
            days,
            horizon=horizon,
            planned_scans=planned,
            p=p,
            k=k,
            rng=rng,
            min_ess=min_ess,
            max_batches=max_batches,
        )
    out[BOUND_RISK] = risk
    out[BOUND_ESS] = ess
    return out
