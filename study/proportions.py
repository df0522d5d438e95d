"""Binomial proportions with exact (Clopper–Pearson) confidence intervals, via scipy."""

from __future__ import annotations

from scipy.stats import binomtest

from study.names import LOWER, N_TOTAL, PERCENT, UPPER, N


def proportion(k: int, n: int, confidence: float = 0.95) -> dict[str, float]:
    """``n`` (successes), ``N``, percent and its exact CI in percent (NaN CI when N = 0)."""
    if n == 0:
        nan = float("nan")
        return {N: k, N_TOTAL: n, PERCENT: nan, LOWER: nan, UPPER: nan}
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="exact")
    return {
        N: k,
        N_TOTAL: n,
        PERCENT: 100.0 * k / n,
        LOWER: 100.0 * ci.low,
        UPPER: 100.0 * ci.high,
    }
