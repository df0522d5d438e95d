"""Per-marker statistics of the draws dated up to each landmark, vectorised over points.

Every function takes a sorted :class:`~features._timeline.Timeline` and the located rows of
the query points and returns one float array per statistic. Names are the ``<stat>`` part
of ``<marker>_<stat>`` (``last``, ``log_slope``, ...); :func:`stat_names` is the one list
both ``fit`` (column order) and ``transform`` (values) read.

Conventions: counts are 0 without a draw; value statistics are NaN where undefined (no draw
yet, no post-index draw, no pre-operative draw) and models impute. Values carry their
detection-limit qualifier: a ``<`` value (e.g. AFP ``<2`` stored as 2) is never positive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from features._timeline import Located, Timeline, gather

PER_DAYS = 30.0  # slopes and velocities are per 30 days (one month between draws)
_FLAT = 1e-12  # OLS denominator below this: all draws on one day, no slope to estimate

BASE_STATS = (
    "last",
    "log_last",
    "days_since_last",
    "n_draws",
    "log_slope",
    "change_post",
    "max",
    "pre",
    "rise_nadir",
    "days_since_nadir",
    "rise_baseline",
)
POSITIVE_STATS = ("n_positive", "consec_positive")
UPPER_NORMAL_STATS = ("normalised", "doubling_days", "log_velocity")


@dataclass(frozen=True)
class Thresholds:
    """A marker's clinical cut-offs (either may be absent)."""

    positive_at: float | None = None
    upper_normal: float | None = None


def stat_names(thresholds: Thresholds) -> list[str]:
    """Statistics computed for a marker, in output order."""
    names = list(BASE_STATS)
    if thresholds.positive_at is not None:
        names += POSITIVE_STATS
    if thresholds.upper_normal is not None:
        names += UPPER_NORMAL_STATS
    return names


def marker_statistics(
    tl: Timeline, loc: Located, days: np.ndarray, thresholds: Thresholds, slope_draws: int
) -> dict[str, np.ndarray]:
    """Every statistic of :func:`stat_names` for each query point (landmark ``days``)."""
    return _statistics(tl, loc, days, slope_draws, thresholds.positive_at, thresholds.upper_normal)


def markers_as_points_statistics(
    tl: Timeline,
    loc: Located,
    days: np.ndarray,
    thresholds: Sequence[Thresholds],
    slope_draws: int,
) -> dict[str, np.ndarray]:
    """Every marker's statistics for ONE patient in one pass (the service's one-row call).

    ``tl`` holds the patient's draws of every marker with the marker's position in
    ``thresholds`` as its code, and query point j is marker j. Every statistic is computed
    row by row (elementwise, or sums over a point's own rows), so each marker's values are
    the numbers its own :func:`marker_statistics` call gives, to the last bit — in one
    pass instead of one per marker. The cut-off statistics are computed for every marker
    (a NaN cut-off where the marker has none); keep each marker's :func:`stat_names`.
    """
    positive_at = np.array([np.nan if t.positive_at is None else t.positive_at for t in thresholds])
    upper = np.array([np.nan if t.upper_normal is None else t.upper_normal for t in thresholds])
    return _statistics(tl, loc, days, slope_draws, positive_at[tl.codes], upper)


def _statistics(
    tl: Timeline,
    loc: Located,
    days: np.ndarray,
    slope_draws: int,
    positive_at: float | np.ndarray | None,
    upper_normal: float | np.ndarray | None,
) -> dict[str, np.ndarray]:
    """The statistics with cut-offs given per timeline row (``positive_at``) and per query
    point (``upper_normal``), or one for all; None skips the statistics that need it."""
    out = level_statistics(tl, loc, days)
    out.update(own_baseline(tl, loc, days))
    out["log_slope"] = log_slope(tl, loc, slope_draws)
    if positive_at is not None:
        out.update(positivity(tl, loc, positive_at))
    if upper_normal is not None:
        out.update(kinetics(tl, loc, upper_normal))
    return out


def level_statistics(tl: Timeline, loc: Located, days: np.ndarray) -> dict[str, np.ndarray]:
    """Last value, time since it, counts, pre-operative baseline and post-index change/max."""
    has, has_post = loc.has, loc.has_post
    last = gather(tl.value, loc.last, has)
    first_post = gather(tl.value, loc.first_post, has_post)
    return {
        "last": last,
        "log_last": np.log1p(last),
        "days_since_last": days - gather(tl.day, loc.last, has),
        "n_draws": loc.n.astype(float),
        # has_post means the last draw is itself post-index, so both ends are post-index
        "change_post": np.where(has_post, np.log1p(last) - np.log1p(first_post), np.nan),
        "max": gather(_post_index_running_max(tl), loc.last, has_post),
        "pre": gather(tl.value, loc.first_post - 1, loc.has_pre),
    }


def _post_index_running_max(tl: Timeline) -> np.ndarray:
    """Per row, the max of the patient's post-index values so far (NaN on pre-op rows).

    A running max that restarts at each patient: values become ranks among the distinct
    post-index values (0 for pre-operative rows) and each patient's ranks are lifted above
    every earlier patient's, so one ``np.maximum.accumulate`` serves the whole timeline —
    exact, and as cheap for one patient (the service) as for a cohort.
    """
    post = tl.day >= 0
    levels = np.unique(tl.value[post])
    rank = np.where(post, np.searchsorted(levels, tl.value) + 1, 0)
    lift = tl.codes.astype(np.int64) * (len(levels) + 1)  # codes ascend: rows are sorted
    running = np.maximum.accumulate(lift + rank) - lift if len(tl) else rank
    out = np.full(len(tl), np.nan)
    seen = running > 0
    out[seen] = levels[running[seen] - 1]
    return out


def own_baseline(tl: Timeline, loc: Located, days: np.ndarray) -> dict[str, np.ndarray]:
    """The newest value against the patient's own post-index history (the PEB idea, model-free).

    On log1p(value), post-index draws only (a resected tumour's pre-operative level is no
    baseline): ``rise_nadir`` is the newest value minus the lowest so far (0 when the newest is
    the lowest), ``days_since_nadir`` the days from that lowest draw (the latest of equal lows)
    to s — how long the marker has been rising — and ``rise_baseline`` the newest value minus
    the mean of the patient's earlier post-index draws (NaN with fewer than two). A value at a
    detection limit counts at the limit. NaN without a post-index draw.
    """
    has_post = loc.has_post
    y = np.log1p(np.maximum(tl.value, 0.0))
    last_y = gather(y, loc.last, has_post)
    low = _post_index_running_low(tl, y)
    nadir_row = gather(low, loc.last, has_post, -1.0).astype(np.int64)
    ok = has_post & (nadir_row >= 0)
    nadir_y = gather(y, nadir_row, ok)
    earlier = loc.last - loc.first_post  # post-index draws before the newest
    two = has_post & (earlier >= 1)
    mean_before = np.full(len(days), np.nan)
    if two.any():  # sums over each point's own rows, so one patient alone sums the same
        lo, hi = np.where(two, loc.first_post, 0), np.where(two, loc.last, 0)
        sums = np.add.reduceat(y, np.stack([lo, hi], axis=1).ravel())[::2]
        np.divide(sums, earlier, out=mean_before, where=two)
    return {
        "rise_nadir": np.where(ok, last_y - nadir_y, np.nan),
        "days_since_nadir": np.where(ok, days - gather(tl.day, nadir_row, ok), np.nan),
        "rise_baseline": np.where(two, last_y - mean_before, np.nan),
    }


def _post_index_running_low(tl: Timeline, y: np.ndarray) -> np.ndarray:
    """Per row, the row of the patient's lowest post-index ``y`` so far (the latest of equal
    lows; -1 on pre-operative rows): one ``np.maximum.accumulate`` over keys that rank the
    value (lower is larger), then the row, lifted per patient as in the running max."""
    n = len(tl)
    if not n:
        return np.zeros(0, dtype=np.int64)
    post = tl.day >= 0
    levels = np.unique(y[post])
    rank = len(levels) - np.searchsorted(levels, y)  # lowest value: highest rank, >= 1
    rows = np.arange(n, dtype=np.int64)
    key = np.where(post, rank.astype(np.int64) * n + rows, 0)
    lift = tl.codes.astype(np.int64) * (len(levels) + 1) * n
    running = np.maximum.accumulate(lift + key) - lift
    return np.where(running > 0, running % n, -1)


def log_slope(tl: Timeline, loc: Located, slope_draws: int) -> np.ndarray:
    """OLS slope of log1p(value) per 30 days over the last ``slope_draws`` draws.

    0.0 with a single draw (or all draws on one day), NaN with none. Days are centred on
    the last draw so the sums stay well conditioned whatever the follow-up length. The
    ``slope_draws`` most recent rows of every point are gathered at once, as a matrix.
    """
    rows = loc.last[:, None] - np.arange(slope_draws)[None, :]
    ok = rows >= loc.start[:, None]
    anchor = gather(tl.day, loc.last, loc.has)
    day = gather(tl.day, rows, ok, 0.0)
    x = np.where(ok, (day - anchor[:, None]) / PER_DAYS, 0.0)
    y = np.log1p(gather(tl.value, rows, ok, 0.0))
    n, sx, sy = ok.sum(axis=1), x.sum(axis=1), y.sum(axis=1)
    sxx, sxy = (x * x).sum(axis=1), (x * y).sum(axis=1)
    denom = n * sxx - sx * sx
    slope = np.zeros(len(n))
    np.divide(n * sxy - sx * sy, denom, out=slope, where=denom > _FLAT)
    slope[n == 0] = np.nan
    return slope


def positivity(
    tl: Timeline, loc: Located, positive_at: float | np.ndarray
) -> dict[str, np.ndarray]:
    """Count of positive draws so far and the current run of consecutive positives."""
    positive = (tl.value >= positive_at) & ~tl.below_limit
    cum = np.concatenate([[0], np.cumsum(positive)])
    rows = np.arange(len(tl))
    # the run at a row starts after the patient's last negative row (or its first row)
    breaks = np.where(positive, tl.row_starts() - 1, rows)
    run = rows - np.maximum.accumulate(breaks) if len(tl) else rows
    return {
        "n_positive": (cum[loc.last + 1] - cum[loc.start]).astype(float),
        "consec_positive": gather(run, loc.last, loc.has, 0.0),
    }


def kinetics(tl: Timeline, loc: Located, upper_normal: float | np.ndarray) -> dict[str, np.ndarray]:
    """Normalisation and the last-two-draw kinetics (doubling time, log velocity).

    Doubling time DT = Δt·ln2/ln(v2/v1) (Shirabe 1997) exists only while rising, so it is
    NaN otherwise; ``log_velocity`` is its bounded, always-defined companion for models:
    Δlog1p(value) per 30 days, with Δt floored at one day.
    """
    has, two = loc.has, loc.n >= 2
    v2 = gather(tl.value, loc.last, has)
    v1 = gather(tl.value, loc.last - 1, two)
    dt = gather(tl.day, loc.last, two) - gather(tl.day, loc.last - 1, two)
    # log(v2) - log(v1), not log(v2 / v1): the ratio overflows for tiny v1
    growth = np.full(len(v2), np.nan)
    positive = two & (v1 > 0) & (v2 > 0)
    growth[positive] = np.log(v2[positive]) - np.log(v1[positive])
    rising = positive & (growth > 0) & (dt > 0)
    doubling = np.full(len(v2), np.nan)
    doubling[rising] = dt[rising] * np.log(2.0) / growth[rising]
    velocity = (np.log1p(v2) - np.log1p(v1)) * PER_DAYS / np.maximum(dt, 1.0)
    return {
        "normalised": np.where(has, (v2 <= upper_normal).astype(float), np.nan),
        "doubling_days": doubling,
        "log_velocity": np.where(two, velocity, np.where(has, 0.0, np.nan)),
    }
