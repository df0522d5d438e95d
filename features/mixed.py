"""Mixed-model marker summaries: per-patient BLUPs of a linear mixed model per marker.

The model, per marker, on each patient's post-index draws (day ≥ 0), y = log1p(value) (the
features' log convention; a count such as CTC stays defined at 0):

    y_ij = β0 + β1·t_ij + β2·exp(−day_ij / τ) + b0_i + b1_i·t_ij + ε_ij,
    (b0_i, b1_i) ~ N(0, D),  ε_ij ~ N(0, σ²),  t = day / 365.25 (years since index).

The ``exp(−day/τ)`` term (τ = 10 days) is the early post-operative excess: a marker the
resected tumour secreted clears with a half-life of days (AFP ≈ 5 d, PIVKA-II ≈ 2.5 d), so
a draw in the first weeks still carries part of the pre-operative level. Modelling it as a
population-average fixed effect keeps those draws in the fit (they inform the patient's
level) without reading their excess as the patient's own baseline; by day 30 it is 5% of
its day-0 size, by day 60 0.25%. Where nothing decays (a cohort indexed at enrolment, e.g.
pbcseq) it is a day-0 offset whose estimate is near zero. Pre-operative draws (day < 0)
are not in the model: they measure the resected tumour, and stay a feature of their own
(``<marker>_pre``).

The fit is maximum likelihood on per-patient sufficient statistics (β and σ² profiled out
in closed form, the covariance found by BFGS over 2 × 2 algebra), a fraction of a
second for thousands of patients where statsmodels' ``MixedLM`` takes about a minute; ``tests/features/test_mixed.py`` checks it against statsmodels ``MixedLM``.

Features at day s, from the patient's draws dated ≤ s only (BLUP with the fit's β, D, σ²:
b̂ = (I + D·ZᵀZ/σ²)⁻¹ D·Zᵀ(y − Xβ)/σ², the Woodbury form of D Zᵀ(Z D Zᵀ + σ²I)⁻¹(y − Xβ)
that needs no inverse of D):

- ``mm_level``: predicted current log1p value at s (the population's when no draw yet);
- ``mm_slope``: the patient's predicted slope β1 + b̂1 (log1p units per year);
- ``mm_peb``: the newest value's deviation from what the patient's earlier draws predicted
  for its day, in predictive standard deviations (the parametric empirical Bayes idea:
  each new value judged against the patient's own baseline, not a population cut-off);
- ``mm_n``: the number of post-index draws the BLUP used;
- ``mm_below``: 1 if the newest draw was below its detection limit (its value is then the
  limit; the likelihood is not censored), 0 if not, NaN without a draw.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeResult, minimize

from features._timeline import Located, Timeline, gather

log = logging.getLogger(__name__)

DAYS_PER_YEAR = 365.25
DECAY_DAYS = 10.0  # τ of the early post-operative excess (see the module docstring)
MIXED_STATS = ("mm_level", "mm_slope", "mm_peb", "mm_n", "mm_below")

_MIN_SIGMA2 = 1e-8
_CHUNK = 8192  # query points summed at once (a points × draws matrix per chunk)
MIXED_MODEL_TEXT = (
    "per marker, on post-index draws: log1p(value) = b0 + b1*t + b2*exp(-day/10) + u0 + u1*t + e, "
    "t = day/365.25, (u0, u1) ~ N(0, cov_re), e ~ N(0, sigma2); maximum likelihood; "
    "beta = (b0, b1, b2)"
)


@dataclass(frozen=True)
class MarkerLME:
    """One marker's fitted linear mixed model (fixed effects, covariances, fit facts)."""

    beta: tuple[float, float, float]  # intercept, slope per year, early post-op excess
    cov_re: tuple[tuple[float, float], tuple[float, float]]  # D of (b0, b1)
    sigma2: float
    n_patients: int
    n_draws: int
    iterations: int
    converged: bool
    loglik: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (lists, not tuples)."""
        return {**asdict(self), "beta": list(self.beta), "cov_re": [list(r) for r in self.cov_re]}


def transformed(value: np.ndarray) -> np.ndarray:
    """The scale the model lives on: log1p of the canonical value (as ``log_last``)."""
    return np.log1p(np.maximum(np.asarray(value, dtype=float), 0.0))


def fixed_design(day: np.ndarray) -> np.ndarray:
    """X rows: 1, years since index, the early post-operative excess."""
    day = np.asarray(day, dtype=float)
    return np.column_stack([np.ones_like(day), day / DAYS_PER_YEAR, np.exp(-day / DECAY_DAYS)])


# ---------------------------------------------------------------- fitting (profiled ML)


@dataclass(frozen=True)
class _Stats:
    """Per-patient sufficient statistics of the post-index draws."""

    zz: np.ndarray  # (P, 2, 2)  Zᵀ Z
    zx: np.ndarray  # (P, 2, 3)  Zᵀ X
    zy: np.ndarray  # (P, 2)     Zᵀ y
    xx: np.ndarray  # (3, 3)     Σ Xᵀ X
    xy: np.ndarray  # (3,)       Σ Xᵀ y
    yy: float  # Σ y²
    n_obs: int


def _sufficient(groups: np.ndarray, day: np.ndarray, y: np.ndarray) -> _Stats:
    g = pd.factorize(groups)[0]
    x = fixed_design(day)
    z = x[:, :2]
    p = int(g.max()) + 1

    def per(a: np.ndarray) -> np.ndarray:
        flat = a.reshape(len(a), -1)
        sums = [np.bincount(g, weights=flat[:, j], minlength=p) for j in range(flat.shape[1])]
        return np.stack(sums, axis=-1).reshape(p, *a.shape[1:])

    return _Stats(
        zz=per(z[:, :, None] * z[:, None, :]),
        zx=per(z[:, :, None] * x[:, None, :]),
        zy=per(z * y[:, None]),
        xx=x.T @ x,
        xy=x.T @ y,
        yy=float(y @ y),
        n_obs=len(y),
    )


def fit_lme(groups: np.ndarray, day: np.ndarray, value: np.ndarray) -> MarkerLME:
    """Fit one marker's model by maximum likelihood on the post-index draws (``day`` ≥ 0).

    ``groups``: each draw's patient; ``value``: canonical values (transformed here). β and
    σ² are profiled out in closed form; the relative covariance D/σ² (by its Cholesky
    factor, 3 numbers) is found with BFGS on per-patient 2 × 2 algebra.
    """
    _check_fit_data(groups, day, value)
    y = transformed(value)
    st = _sufficient(np.asarray(groups), np.asarray(day, dtype=float), y)
    opt = _maximise(lambda th: _profile(st, th)[0] / st.n_obs)
    loglik, beta, sigma2 = _profile(st, opt.x)
    cov = _relative_cov(opt.x) * sigma2
    if not opt.success:
        log.warning("mixed model fit: %s", opt.message)
    return MarkerLME(
        beta=(float(beta[0]), float(beta[1]), float(beta[2])),
        cov_re=((float(cov[0, 0]), float(cov[0, 1])), (float(cov[1, 0]), float(cov[1, 1]))),
        sigma2=float(sigma2),
        n_patients=len(st.zz),
        n_draws=st.n_obs,
        iterations=int(opt.nit),
        converged=bool(opt.success),
        loglik=float(loglik),
    )


def _maximise(objective: Callable[[np.ndarray], float]) -> OptimizeResult:
    """BFGS from a moderate start (three parameters: scipy's L-BFGS-B costs more in its own
    overhead than the likelihood); where its line search fails on a flat optimum (the
    gradient is numerical), Nelder–Mead finishes from where it stopped."""
    opt = minimize(lambda th: -objective(th), np.array([0.0, 0.0, np.log(0.3)]), method="BFGS")
    if not opt.success:
        opt = minimize(
            lambda th: -objective(th),
            opt.x,
            method="Nelder-Mead",
            options={"xatol": 1e-7, "fatol": 1e-12, "maxiter": 4000},
        )
    return opt


def _relative_cov(theta: np.ndarray) -> np.ndarray:
    """D/σ² = L Lᵀ with L = [[e^θ0, 0], [θ1, e^θ2]] (positive definite for any θ)."""
    low = np.array([[np.exp(theta[0]), 0.0], [theta[1], np.exp(theta[2])]])
    return low @ low.T


def _profile(st: _Stats, theta: np.ndarray) -> tuple[float, np.ndarray, float]:
    """Profile log-likelihood at relative covariance Δ(θ), with the β̂ and σ̂² that attain it.

    With Wᵢ = (I + ZᵢΔZᵢᵀ)⁻¹ = I − Zᵢ Mᵢ Zᵢᵀ, Mᵢ = (I + ΔZᵢᵀZᵢ)⁻¹Δ (Woodbury), every
    quadratic form needs only the per-patient sums; log|I + ZᵢΔZᵢᵀ| = log|I + ΔZᵢᵀZᵢ|.
    """
    delta = _relative_cov(theta)
    zz = st.zz
    (m00, m01, m11), det = _posterior_cov(zz[:, 0, 0], zz[:, 0, 1], zz[:, 1, 1], delta, 1.0)
    zx0, zx1, zy0, zy1 = st.zx[:, 0], st.zx[:, 1], st.zy[:, 0], st.zy[:, 1]
    mzx0 = m00[:, None] * zx0 + m01[:, None] * zx1  # rows of Mᵢ ZᵢᵀXᵢ, (P, 3) each
    mzx1 = m01[:, None] * zx0 + m11[:, None] * zx1
    xwx = st.xx - zx0.T @ mzx0 - zx1.T @ mzx1
    xwy = st.xy - mzx0.T @ zy0 - mzx1.T @ zy1
    ywy = st.yy - float(np.sum(m00 * zy0 * zy0 + 2 * m01 * zy0 * zy1 + m11 * zy1 * zy1))
    beta = np.linalg.solve(xwx, xwy)
    sigma2 = max(float(ywy - 2 * beta @ xwy + beta @ xwx @ beta) / st.n_obs, _MIN_SIGMA2)
    n = st.n_obs
    return -0.5 * (n * np.log(2 * np.pi * sigma2) + float(np.log(det).sum()) + n), beta, sigma2


def _check_fit_data(groups: object, day: object, value: object) -> None:
    lengths = {len(np.asarray(a)) for a in (groups, day, value)}
    if len(lengths) != 1:
        raise ValueError(f"groups, day and value must have equal lengths, got {sorted(lengths)}")
    if not lengths.pop():
        raise ValueError("no post-index draw to fit the mixed model on")
    d = np.asarray(day, dtype=float)
    if (d < 0).any() or not np.isfinite(d).all():
        raise ValueError(f"the mixed model takes post-index days >= 0, got {d[~(d >= 0)][:3]}")


# ---------------------------------------------------------------- features (BLUPs)


def mixed_statistics(
    tl: Timeline, loc: Located, days: np.ndarray, lme: MarkerLME | None
) -> dict[str, np.ndarray]:
    """Every statistic of ``MIXED_STATS`` for each query point (landmark ``days``).

    The sums over a point's draws run over its own rows in day order (``_sums``) and the
    2 × 2 algebra is written out elementwise (no BLAS, whose kernels round differently for
    different sizes), so a one-patient call (the service) computes exactly the numbers of a
    cohort call, to the last bit.
    """
    if lme is None:
        return {s: np.full(len(days), np.nan) for s in MIXED_STATS}
    resid = transformed(tl.value) - _fixed_mean(tl.day, lme.beta)
    if len(days) == 1:
        return _one_point(tl, loc, days, resid, lme)
    has_post = loc.has_post
    n = len(days)
    # the BLUP from the draws up to s, and (for the deviation) without the newest one
    b0, b1, cov = _blup(tuple(_sums(tl, loc, resid)), lme)
    b0, b1, p0, p1 = b0[:n], b1[:n], b0[n:], b1[n:]
    c = tuple(x[n:] for x in cov)
    t_s = days / DAYS_PER_YEAR
    t = gather(tl.day, loc.last, has_post, 0.0) / DAYS_PER_YEAR
    expected = p0 + p1 * t
    variance = c[0] + 2 * c[1] * t + c[2] * t * t + lme.sigma2
    deviation = (gather(resid, loc.last, has_post) - expected) / np.sqrt(variance)
    return {
        "mm_level": _fixed_mean(days, lme.beta) + b0 + b1 * t_s,
        "mm_slope": lme.beta[1] + b1,
        "mm_peb": np.where(has_post, deviation, np.nan),
        "mm_n": np.maximum(loc.last - loc.first_post + 1, 0).astype(float),
        "mm_below": gather(tl.below_limit.astype(float), loc.last, has_post),
    }


def _one_point(
    tl: Timeline, loc: Located, days: np.ndarray, resid: np.ndarray, lme: MarkerLME
) -> dict[str, np.ndarray]:
    """``mixed_statistics`` at one query point (the service's call), the sums and the 2 × 2
    algebra on Python floats: the same IEEE operations in the same order as the arrays'
    (the running sums start from the first row, as ``cumsum`` does; the exponentials stay
    numpy's), so the same numbers to the last bit, at a tenth of the numpy calls' cost."""
    first, last = int(loc.first_post[0]), int(loc.last[0])
    t_rows = [float(d) / DAYS_PER_YEAR for d in tl.day[first : last + 1]]
    r_rows = [float(r) for r in resid[first : last + 1]]
    n_full = len(t_rows)
    full: tuple[float, ...] = (0.0,) * 5
    prior = full
    for k, (t, r) in enumerate(zip(t_rows, r_rows, strict=True)):
        terms = (1.0, t, t * t, r, t * r)
        prior = full
        full = terms if k == 0 else tuple(a + b for a, b in zip(full, terms, strict=True))
    s2 = lme.sigma2
    # ``_blup`` on scalars: the same elementwise operations as on the cohort's arrays
    b0, b1, _ = _blup(full, lme)
    p0, p1, (c0, c1, c2) = _blup(prior, lme)
    t_s = float(days[0]) / DAYS_PER_YEAR
    has_post = n_full > 0
    out = {
        "mm_level": _fixed_mean(days, lme.beta) + b0 + b1 * t_s,
        "mm_slope": np.array([lme.beta[1] + b1]),
        "mm_n": np.array([float(n_full)]),
    }
    if not has_post:
        return out | {"mm_peb": np.array([np.nan]), "mm_below": np.array([np.nan])}
    t = t_rows[-1]
    expected = p0 + p1 * t
    variance = c0 + 2 * c1 * t + c2 * t * t + s2
    deviation = (r_rows[-1] - expected) / np.sqrt(np.array([variance]))
    return out | {"mm_peb": deviation, "mm_below": np.array([float(tl.below_limit[last])])}


@dataclass(frozen=True)
class _Stacked:
    """Several fits of one marker side by side (one value per fit): what ``_blup`` reads."""

    cov_re: np.ndarray  # (2, 2, F)
    sigma2: np.ndarray  # (F,)


def statistics_each(
    tl: Timeline, loc: Located, day: float, lmes: list[MarkerLME]
) -> dict[str, np.ndarray]:
    """``mixed_statistics`` at one query point for several fits of the marker at once (each
    CV fold's): every statistic as an array with one value per fit.

    The patient's draws are summed once (n, Σt, Σt², Σy, Σty, Σe, Σte with y the transformed
    value and e the early post-operative term); each fit's residual sums follow from them
    (Σr = Σy − β₀n − β₁Σt − β₂Σe, and Σtr likewise) and the 2 × 2 algebra runs on arrays over
    the fits. Algebraically the numbers of ``mixed_statistics``; in floating point they differ
    in the last bits (a test holds them within 1e-9): for the risk interval's fold models,
    never for a risk the service states.
    """
    first, last = int(loc.first_post[0]), int(loc.last[0])
    d = np.asarray(tl.day[first : last + 1], dtype=float)
    y = transformed(tl.value[first : last + 1])
    t, e = d / DAYS_PER_YEAR, np.exp(-d / DECAY_DAYS)
    terms = np.stack([np.ones_like(t), t, t * t, y, t * y, e, t * e])  # (7, n)
    full = terms.sum(axis=1)
    prior = full - terms[:, -1] if len(t) else full
    beta = np.array([lme.beta for lme in lmes]).T  # (3, F)
    stacked = _Stacked(
        cov_re=np.array([lme.cov_re for lme in lmes], dtype=float).transpose(1, 2, 0),
        sigma2=np.array([lme.sigma2 for lme in lmes], dtype=float),
    )

    def blup(sums: np.ndarray) -> tuple[Any, Any, tuple[Any, Any, Any]]:
        n, st, stt, sy, sty, se, ste = sums
        sr = sy - beta[0] * n - beta[1] * st - beta[2] * se
        str_ = sty - beta[0] * st - beta[1] * stt - beta[2] * ste
        ones = np.ones_like(stacked.sigma2)
        return _blup((n * ones, st * ones, stt * ones, sr, str_), stacked)  # type: ignore[arg-type]

    b0, b1, _ = blup(full)
    t_s = day / DAYS_PER_YEAR
    fixed_s = beta[0] + beta[1] * t_s + beta[2] * np.exp(-day / DECAY_DAYS)
    nan = np.full(len(lmes), np.nan)
    count = np.full(len(lmes), float(len(t)))
    out = {"mm_level": fixed_s + b0 + b1 * t_s, "mm_slope": beta[1] + b1, "mm_n": count}
    if not len(t):
        return out | {"mm_peb": nan, "mm_below": nan}
    p0, p1, (c0, c1, c2) = blup(prior)
    t_last = t[-1]
    resid = y[-1] - (beta[0] + beta[1] * t_last + beta[2] * e[-1])
    variance = c0 + 2 * c1 * t_last + c2 * t_last * t_last + stacked.sigma2
    below = np.full(len(lmes), float(tl.below_limit[last]))
    return out | {"mm_peb": (resid - (p0 + p1 * t_last)) / np.sqrt(variance), "mm_below": below}


def _fixed_mean(day: np.ndarray, beta: tuple[float, float, float]) -> np.ndarray:
    """Xβ, elementwise (see ``mixed_statistics`` for why not a matrix product)."""
    day = np.asarray(day, dtype=float)
    return beta[0] + beta[1] * (day / DAYS_PER_YEAR) + beta[2] * np.exp(-day / DECAY_DAYS)


def _sums(tl: Timeline, loc: Located, resid: np.ndarray) -> np.ndarray:
    """n, Σt, Σt², Σr, Σt·r (5 rows) over each point's post-index rows up to its last draw
    (the first P columns) and the same without that last draw (the next P).

    Each point's rows are gathered into a row of a matrix (zero-padded) and summed with a
    running sum, which adds strictly left to right: a point's sums do not depend on how
    many other points (or how much padding) share the matrix. Points go in chunks so the
    matrix stays small on a cohort.
    """
    first = loc.first_post
    count = np.maximum(loc.last - first + 1, 0)
    sums = np.zeros((5, 2 * len(first)))
    # points with similar numbers of draws share a chunk: little zero padding
    by_count = np.argsort(count, kind="stable")
    for start in range(0, len(first), _CHUNK):
        part = by_count[start : start + _CHUNK]
        c = count[part]
        k = np.arange(max(int(c.max()), 1))
        ok = k[None, :] < c[:, None]
        rows = first[part, None] + k[None, :]
        t = gather(tl.day, rows, ok, 0.0) / DAYS_PER_YEAR
        r = gather(resid, rows, ok, 0.0)
        running = np.cumsum(np.stack([ok.astype(float), t, t * t, r, t * r]), axis=2)
        sums[:, part] = _at(running, c - 1)
        sums[:, len(first) + part] = _at(running, c - 2)
    return sums


def _at(running: np.ndarray, column: np.ndarray) -> np.ndarray:
    """``running[:, i, column[i]]``, 0 where the column is negative (no rows)."""
    ok = column >= 0
    picked = running[:, np.arange(len(column)), np.maximum(column, 0)]
    return np.where(ok[None, :], picked, 0.0)


def _blup(sums: tuple[Any, ...], lme: MarkerLME) -> tuple[Any, Any, tuple[Any, Any, Any]]:
    """Posterior mean (b0, b1) and covariance (c00, c01, c11) per point from its sums
    (arrays, one value a point, or a single point's floats: the same operations)."""
    n, st, stt, sr, str_ = sums
    (c00, c01, c11), _ = _posterior_cov(n, st, stt, np.asarray(lme.cov_re), lme.sigma2)
    b0 = (c00 * sr + c01 * str_) / lme.sigma2
    b1 = (c01 * sr + c11 * str_) / lme.sigma2
    return b0, b1, (c00, c01, c11)


def _posterior_cov(
    n: np.ndarray, st: np.ndarray, stt: np.ndarray, cov: np.ndarray, s2: float
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """C = (I + D·S/σ²)⁻¹ D for S = [[n, Σt], [Σt, Σt²]] per point, and det(I + D·S/σ²).

    Written out elementwise; the determinant is ≥ 1 (D·S has non-negative eigenvalues), so
    the inverse always exists, whatever D (even singular) and however few the draws.
    """
    d00, d01, d11 = cov[0, 0], cov[0, 1], cov[1, 1]
    a00 = 1 + (d00 * n + d01 * st) / s2
    a01 = (d00 * st + d01 * stt) / s2
    a10 = (d01 * n + d11 * st) / s2
    a11 = 1 + (d01 * st + d11 * stt) / s2
    det = a00 * a11 - a01 * a10
    c00 = (a11 * d00 - a01 * d01) / det
    c01 = (a11 * d01 - a01 * d11) / det
    c11 = (a00 * d11 - a10 * d01) / det
    return (c00, c01, c11), det
