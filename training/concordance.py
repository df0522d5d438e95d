"""Harrell's and Uno's concordance counts: scikit-survival's arithmetic, vectorised.

``weighted_concordance`` equals sksurv's ``_estimate_concordance_index`` bit for bit (tested in
tests/training/test_metrics.py); sksurv's loop over events costs seconds on the tens of
thousands of rows of a landmark table, this milliseconds (``benchmarks/bench_metrics.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sksurv.exceptions import NoComparablePairException

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

_C_BLOCK = 1024  # rows per block of the counting below: ~n²/(2·block) floats of sorted suffixes


def weighted_concordance(
    event: BoolArray,
    time: FloatArray,
    risk: FloatArray,
    weights: FloatArray,
    tied_tol: float = 1e-8,
) -> float:
    """scikit-survival's ``_estimate_concordance_index`` without its loop over events.

    sksurv compares each event with its comparable set (later times, plus censored rows at
    the same time) in a Python loop, O(n²) with n numpy calls. Here each event's counts of
    concordant and tied (``|Δrisk| <= tied_tol``) pairs come from sorted suffixes of the rows
    in time order, block by block, plus a direct comparison within one block; the sums then
    run over the events in sksurv's order, so the result is the same to the bit.
    """
    order = np.argsort(time)  # sksurv's own call: the same order of tied times
    t, e, r = time[order], event[order], risk[order]
    n = len(t)
    start = np.searchsorted(t, t, side="left")  # first position of each row's time
    end = np.searchsorted(t, t, side="right")  # first position after it: later times
    # sksurv never visits a lone row at the last position; none visited, no pair at all
    visited = e & (start < n - 1)
    if not visited.any():
        raise NoComparablePairException(
            "Data has no comparable pairs, cannot estimate concordance index."
        )
    pos = np.flatnonzero(visited)
    n_con, n_ties = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    block = np.ceil(end[pos] / _C_BLOCK).astype(np.int64)
    for k in np.unique(block):
        ev = pos[block == k]
        cut = min(int(k) * _C_BLOCK, n)
        con, ties = _count_sorted(np.sort(r[cut:]), r[ev], tied_tol)
        # the rest of the comparable set, [end, cut) and the censored rows at the same time
        lo = int(start[ev].min())
        window = np.arange(lo, cut)
        comparable = (window >= end[ev, None]) | ((window >= start[ev, None]) & ~e[window][None, :])
        diff = r[window][None, :] - r[ev, None]
        tied = (np.absolute(diff) <= tied_tol) & comparable
        n_ties[ev] = ties + tied.sum(axis=1)
        n_con[ev] = con + ((diff < 0) & ~tied & comparable).sum(axis=1)
    w = weights[order][pos]
    censored_before = np.r_[0, np.cumsum(~e)]
    n_comparable = (n - end[pos]) + (censored_before[end[pos]] - censored_before[start[pos]])
    numerator = np.cumsum(w * n_con[pos] + 0.5 * w * n_ties[pos])[-1]
    denominator = np.cumsum(w * n_comparable)[-1]
    return float(numerator / denominator)


def _count_sorted(
    values: FloatArray, x: FloatArray, tied_tol: float
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Per ``x``: how many sorted ``values`` are below it by more than ``tied_tol``, and how
    many lie within it, judged on ``values - x`` as sksurv computes it (not ``x ± tol``)."""
    below = _prefix_count(values, x, lambda v, xx: (v - xx) < -tied_tol, "left", -tied_tol)
    upto = _prefix_count(values, x, lambda v, xx: (v - xx) <= tied_tol, "right", tied_tol)
    return below, upto - below


def _prefix_count(
    values: FloatArray,
    x: FloatArray,
    inside: Callable[[FloatArray, FloatArray], BoolArray],
    side: Any,
    shift: float,
) -> NDArray[np.int64]:
    """Length of the prefix of sorted ``values`` where ``inside(v, x)`` holds (monotone in v).

    ``searchsorted`` at ``x + shift`` guesses it; rounding can misplace the guess by a run of
    equal values near the edge, so the guess moves a run at a time until the edge is exact.
    """
    n = len(values)
    p = np.searchsorted(values, x + shift, side=side).astype(np.int64)
    if n == 0:
        return p
    while True:
        back = (p > 0) & ~inside(values[np.maximum(p - 1, 0)], x)
        p[back] = np.searchsorted(values, values[p[back] - 1], side="left")
        ahead = (p < n) & inside(values[np.minimum(p, n - 1)], x)
        p[ahead] = np.searchsorted(values, values[p[ahead]], side="right")
        if not (back.any() or ahead.any()):
            return p
