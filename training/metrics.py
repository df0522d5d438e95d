"""Discrimination and accuracy metrics for censored outcomes, and landmark scoring.

Thin wrappers over :mod:`sksurv.metrics`; nothing here re-derives an estimator. What the
wrappers add is validation with fix-it messages and one convention for the inverse
probability of censoring weights (IPCW). Two pieces are sksurv's arithmetic rearranged for
speed, tested against it: the concordance counts (:func:`weighted_concordance`, bit for bit) and
the landmark AUC of a bootstrap sample (:func:`bootstrap_landmark_auc`, up to float
summation order; its reverse Kaplan–Meier takes row counts as weights, which sksurv's
``kaplan_meier_estimator`` does not). ``benchmarks/bench_metrics.py`` measures both
against the library at the sizes a training run meets (16x and ~100x on 32,000 rows).

* **Censoring distribution.** Kaplan–Meier of the censoring times of ``train`` (a
  ``(time, event)`` pair) when given, else of the test data themselves.
* **Follow-up range.** scikit-survival refuses test times beyond the largest training time
  (the censoring KM is undefined there, or 0 when the last training time is censored).
  Test times are therefore *clipped* to a point between the horizon ``h`` and the largest
  training time. For a metric at ``h < max(train time)`` this changes nothing: a subject
  followed beyond ``h`` is a control before and after clipping, its weight is ``1/G(h)``
  either way, and cases (events by ``h``) are untouched. Horizons at or beyond either
  follow-up maximum raise; Uno's C clips to the training maximum and needs ``tau`` for
  test events beyond it.
* **Untruncated follow-up.** Scores at a horizon need the follow-up *past* the horizon: a
  row censored administratively at ``h`` makes ``G(h)`` collapse and sksurv refuses a horizon
  equal to the last follow-up time. The landmark helpers therefore read
  ``residual_time_full`` / ``event_full`` when present and truncate only the event indicator.

Landmark tables (see :func:`landmark_metrics`) have one row per patient and landmark with
``patient_id``, ``landmark_day``, ``residual_time``, ``event`` and optionally
``residual_time_full`` / ``event_full``; predictions are arrays aligned with the rows, or the
names of columns holding them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sksurv.metrics import (
    brier_score,
    cumulative_dynamic_auc,
    integrated_brier_score,
)
from sksurv.nonparametric import CensoringDistributionEstimator

from alarms.metrics import interval, resample_index
from cohort.vocabulary import (
    EVENT,
    EVENT_FULL,
    LANDMARK_DAY,
    PATIENT_ID,
    RESIDUAL_TIME,
    RESIDUAL_TIME_FULL,
)
from training.concordance import weighted_concordance

# The landmark table's untruncated follow-up columns, defined by the table's builder
# (candidates for cohort.vocabulary).

log = logging.getLogger(__name__)

Survival = tuple[ArrayLike, ArrayLike]
"""A ``(time, event)`` pair: follow-up times and 0/1 event indicators."""

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


# --------------------------------------------------------------------------- validation
def _check_survival(
    time: ArrayLike, event: ArrayLike, what: str = ""
) -> tuple[FloatArray, BoolArray]:
    t = np.asarray(time, dtype=float).ravel()
    e = np.asarray(event).ravel()
    where = f" ({what})" if what else ""
    if len(t) != len(e):
        raise ValueError(f"time has {len(t)} values but event has {len(e)}{where}")
    if len(t) == 0:
        raise ValueError(f"no observations{where}")
    if not np.isfinite(t).all() or (t < 0).any():
        raise ValueError(f"time must be finite and >= 0{where}, got min {np.nanmin(t)!r}")
    if not np.isin(e, [0, 1]).all():
        raise ValueError(f"event must be 0/1{where}, got {sorted(set(e.tolist()))[:10]}")
    return t, e.astype(bool)


def _check_scores(scores: ArrayLike, n: int, name: str, *, ndim: int = 1) -> FloatArray:
    s = np.asarray(scores, dtype=float)
    s = s.ravel() if ndim == 1 else s
    if s.ndim != ndim or s.shape[0] != n:
        raise ValueError(f"{name} must have {n} rows ({ndim}-d), got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError(f"{name} has {int((~np.isfinite(s)).sum())} non-finite value(s)")
    return s


def _check_probabilities(p: FloatArray, name: str) -> FloatArray:
    if ((p < 0) | (p > 1)).any():
        raise ValueError(
            f"{name} must be probabilities in [0, 1], got range [{p.min()}, {p.max()}]"
        )
    return p


def _check_horizons(times: FloatArray, test_time: FloatArray, train_time: FloatArray) -> None:
    lo, hi = test_time.min(), min(test_time.max(), train_time.max())
    if times.min() < lo or times.max() >= hi:
        raise ValueError(
            f"horizon(s) {times.tolist()} must lie in [{lo}, {hi}): from the earliest test time "
            "to below the largest follow-up time of both test and training data"
        )


def _ipcw_pair(
    time: FloatArray, event: BoolArray, train: Survival | None, horizons: FloatArray | None = None
) -> tuple[NDArray[Any], NDArray[Any], FloatArray]:
    """Structured (train, test) arrays for sksurv, test times clipped into the train range.

    With ``horizons`` (checked here) test times are clipped to the midpoint between the last
    horizon and the largest training time: still beyond every horizon, and short of the
    training maximum, where the censoring KM may already be 0 (weight 1/0). Without horizons
    (Uno's C) they are clipped to the training maximum.
    """
    tr_t, tr_e = _check_survival(*train, what="train") if train is not None else (time, event)
    ceiling = tr_t.max()
    if horizons is not None:
        _check_horizons(horizons, time, tr_t)
        ceiling = (horizons.max() + tr_t.max()) / 2
    clipped = np.minimum(time, ceiling)
    if (clipped < time).any():
        log.debug("clipped %d test time(s) to %s", (clipped < time).sum(), ceiling)
    return _surv(tr_t, tr_e), _surv(clipped, event), tr_t


def _surv(time: FloatArray, event: BoolArray) -> NDArray[Any]:
    y = np.empty(len(time), dtype=[("event", bool), ("time", float)])
    y["event"], y["time"] = event, time
    return y


# --------------------------------------------------------------------------- metrics
def harrell_c(time: ArrayLike, event: ArrayLike, risk: ArrayLike) -> float:
    """Harrell's concordance index; ``risk`` higher = earlier event (sksurv convention).

    lifelines' ``concordance_index`` expects the opposite (a predicted *time*): pass ``-risk``.
    """
    t, e = _check_survival(time, event)
    r = _check_scores(risk, len(t), "risk")
    if not e.any():
        raise ValueError("Harrell's C needs at least one event, got none")
    if len(t) < 2:
        raise ValueError(f"Harrell's C needs at least two observations, got {len(t)}")
    return weighted_concordance(
        e, t, r, np.ones(len(t))
    )  # = concordance_index_censored(e, t, r)[0]


def uno_c(
    time: ArrayLike,
    event: ArrayLike,
    risk: ArrayLike,
    *,
    train: Survival | None = None,
    tau: float | None = None,
) -> float:
    """Uno's IPCW concordance index truncated at ``tau`` (None: all follow-up).

    Without ``tau`` every test event must lie within the training follow-up.
    """
    t, e = _check_survival(time, event)
    r = _check_scores(risk, len(t), "risk")
    y_train, y_test, tr_t = _ipcw_pair(t, e, train)
    if tau is None and (t[e] > tr_t.max()).any():
        raise ValueError(f"test events after the last training time {tr_t.max()}: pass tau <= it")
    if tau is not None and not 0 < tau <= tr_t.max():
        raise ValueError(f"tau={tau} must be in (0, {tr_t.max()}], the training follow-up")
    return _uno_c(y_train, y_test, r, tau)


def _uno_c(
    y_train: NDArray[Any], y_test: NDArray[Any], risk: FloatArray, tau: float | None
) -> float:
    """``concordance_index_ipcw(y_train, y_test, risk, tau)[0]``, its weights computed alike."""
    if not y_test["event"].any():
        raise ValueError("All samples are censored")  # sksurv's check, and its words
    keep = y_test["time"] < tau if tau is not None else np.ones(len(y_test), dtype=bool)
    ipcw = np.zeros(len(y_test))
    ipcw[keep] = CensoringDistributionEstimator().fit(y_train).predict_ipcw(y_test[keep])
    return weighted_concordance(y_test["event"], y_test["time"], risk, np.square(ipcw))


def time_auc(
    time: ArrayLike,
    event: ArrayLike,
    risk: ArrayLike,
    horizon_days: float,
    *,
    train: Survival | None = None,
) -> float:
    """Cumulative/dynamic AUC at ``horizon_days``: cases have an event by it, controls survive it."""
    t, e = _check_survival(time, event)
    r = _check_scores(risk, len(t), "risk")
    h = np.atleast_1d(float(horizon_days))
    y_train, y_test, _ = _ipcw_pair(t, e, train, h)
    if not (e & (t <= h[0])).any():
        raise ValueError(f"no event by the horizon {h[0]}: the AUC is undefined")
    return float(cumulative_dynamic_auc(y_train, y_test, r, h)[0][0])


def brier(
    time: ArrayLike,
    event: ArrayLike,
    surv_at: ArrayLike,
    horizon_days: float,
    *,
    train: Survival | None = None,
) -> float:
    """IPCW Brier score of the predicted survival probability ``surv_at`` at ``horizon_days``."""
    t, e = _check_survival(time, event)
    s = _check_probabilities(_check_scores(surv_at, len(t), "surv_at"), "surv_at")
    h = np.atleast_1d(float(horizon_days))
    y_train, y_test, _ = _ipcw_pair(t, e, train, h)
    return float(brier_score(y_train, y_test, s, h)[1][0])


def integrated_brier(
    time: ArrayLike,
    event: ArrayLike,
    surv: ArrayLike,
    times: ArrayLike,
    *,
    train: Survival | None = None,
) -> float:
    """Integrated Brier score over ``times`` (strictly increasing, >= 2 points).

    ``surv`` is an (n_subjects, n_times) matrix of predicted survival at ``times``.
    """
    t, e = _check_survival(time, event)
    grid = np.asarray(times, dtype=float).ravel()
    if len(grid) < 2 or (np.diff(grid) <= 0).any():
        raise ValueError(f"times must be >= 2 strictly increasing values, got {grid.tolist()}")
    s = _check_probabilities(_check_scores(surv, len(t), "surv", ndim=2), "surv")
    if s.shape[1] != len(grid):
        raise ValueError(f"surv has {s.shape[1]} columns but times has {len(grid)} values")
    y_train, y_test, _ = _ipcw_pair(t, e, train, grid)
    return float(integrated_brier_score(y_train, y_test, s, grid))


# --------------------------------------------------------------------------- landmark tables
def residual_outcome(table: pd.DataFrame) -> tuple[FloatArray, BoolArray]:
    """Untruncated residual follow-up ``(time, event)`` of a landmark table.

    Reads ``residual_time_full`` / ``event_full`` when both are present, else
    ``residual_time`` / ``event`` (correct only if the table was built without a horizon).
    """
    if {RESIDUAL_TIME_FULL, EVENT_FULL} <= set(table.columns):
        return _check_survival(table[RESIDUAL_TIME_FULL], table[EVENT_FULL], RESIDUAL_TIME_FULL)
    missing = {RESIDUAL_TIME, EVENT} - set(table.columns)
    if missing:
        raise ValueError(
            f"landmark table lacks column(s) {sorted(missing)}; has {list(table.columns)}"
        )
    return _check_survival(table[RESIDUAL_TIME], table[EVENT], RESIDUAL_TIME)


def _column_or_array(table: pd.DataFrame, values: ArrayLike | str, name: str) -> FloatArray:
    if isinstance(values, str):
        if values not in table.columns:
            raise ValueError(f"{name}={values!r} is not a column of the table")
        values = table[values]
    return _check_scores(values, len(table), name)


def _check_landmark_table(table: pd.DataFrame, horizon_days: float, what: str) -> None:
    if LANDMARK_DAY not in table.columns:
        raise ValueError(
            f"{what} has no {LANDMARK_DAY!r} column; columns are {list(table.columns)}"
        )
    if not horizon_days > 0:
        raise ValueError(f"horizon_days must be > 0, got {horizon_days!r}")
    time, _ = residual_outcome(table)
    if EVENT_FULL not in table.columns and time.max() <= horizon_days:
        raise ValueError(
            f"{what}: {RESIDUAL_TIME} never exceeds the horizon (max {time.max()} <= "
            f"{horizon_days}), so it looks truncated at it; IPCW scoring needs the untruncated "
            f"follow-up: add {RESIDUAL_TIME_FULL!r} and {EVENT_FULL!r}"
        )


def _landmark_predictions(
    table: pd.DataFrame, risk: ArrayLike | str | None, surv_at: ArrayLike | str | None
) -> tuple[FloatArray, FloatArray | None]:
    s = None
    if surv_at is not None:
        s = _check_probabilities(_column_or_array(table, surv_at, "surv_at"), "surv_at")
    if risk is not None:
        return _column_or_array(table, risk, "risk"), s
    if s is None:
        raise ValueError("give risk, surv_at or both; got neither")
    return 1.0 - s, s


SCORES = ("auc", "brier", "harrell_c", "uno_c")
"""Per-landmark scores of :func:`landmark_metrics`, all at (or truncated at) the horizon."""


def _scores(
    time: FloatArray,
    event: BoolArray,
    risk: FloatArray,
    surv_at: FloatArray | None,
    horizon: float,
    train: Survival,
    scores: Sequence[str] = SCORES,
) -> dict[str, float]:
    case = event & (time <= horizon)
    compute = {
        "auc": lambda: time_auc(time, event, risk, horizon, train=train),
        "brier": lambda: (
            np.nan if surv_at is None else brier(time, event, surv_at, horizon, train=train)
        ),
        "harrell_c": lambda: harrell_c(np.minimum(time, horizon), case, risk),
        "uno_c": lambda: uno_c(time, event, risk, train=train, tau=horizon),
    }
    return {name: compute[name]() for name in scores}


def _score_landmark(
    time: FloatArray,
    event: BoolArray,
    risk: FloatArray,
    surv_at: FloatArray | None,
    horizon: float,
    train: Survival,
    scores: Sequence[str] = SCORES,
) -> dict[str, Any]:
    """Scores at one landmark; NaN with a reason instead of raising."""
    n_events = int((event & (time <= horizon)).sum())
    row: dict[str, Any] = {"n_at_risk": len(time), "n_events": n_events}
    row.update(dict.fromkeys(SCORES, np.nan))
    row["reason"] = ""
    if n_events == 0:
        row["reason"] = f"no event within {horizon} days"
    elif not (time > horizon).any():
        row["reason"] = f"no one followed beyond {horizon} days"
    else:
        try:
            row.update(_scores(time, event, risk, surv_at, horizon, train, scores))
        except ValueError as exc:
            row["reason"] = str(exc)
    return row


def _train_at(train_table: pd.DataFrame | None, landmark: float) -> Survival | None:
    if train_table is None:
        return None
    rows = train_table[train_table[LANDMARK_DAY] == landmark]
    if rows.empty:
        # expected at the late landmarks of a small fold; shown with --verbose
        log.info("no training rows at landmark %s; censoring weights from the test rows", landmark)
        return None
    return residual_outcome(rows)


def _average(frame: pd.DataFrame, column: str) -> tuple[float, float]:
    ok = frame[np.isfinite(frame[column])]
    if ok.empty:
        return np.nan, np.nan
    return float(np.average(ok[column], weights=ok["n_at_risk"])), float(ok[column].mean())


def landmark_metrics(
    table: pd.DataFrame,
    risk: ArrayLike | str | None,
    surv_at: ArrayLike | str | None,
    horizon_days: float,
    train_table: pd.DataFrame | None = None,
    *,
    scores: Sequence[str] = SCORES,
) -> dict[str, Any]:
    """Time-dependent AUC, Brier score and C indices at ``landmark + horizon_days``, per landmark.

    ``risk`` (higher = worse) and ``surv_at`` (predicted P(no event within the horizon of
    the landmark)) are arrays aligned with ``table``'s rows or names of its columns; either
    may be None (risk defaults to ``1 - surv_at``; no surv_at, no Brier). Times are residual
    (days since the landmark), untruncated (see :func:`residual_outcome`). The censoring
    distribution at each landmark is the KM of ``train_table``'s rows at the same landmark
    when given (else the test rows). A landmark that cannot be scored (no event within the
    horizon, no one followed beyond it, horizon past the training follow-up) gets NaN and a
    ``reason``, logged, never an exception.

    Scores (:data:`SCORES`): cumulative/dynamic ``auc`` and IPCW ``brier`` at the horizon,
    ``harrell_c`` on the outcome truncated at the horizon and ``uno_c`` with ``tau`` = horizon.
    Returns ``by_landmark`` (DataFrame: landmark_day, n_at_risk, n_events, the scores,
    reason), each score averaged over the landmarks where it is defined weighted by n at
    risk (each row counts once, as in a stacked landmark evaluation), and
    ``<score>_unweighted``, the plain mean over landmarks. ``scores`` restricts the work to
    a subset (e.g. ``("auc",)`` inside a bootstrap); the others come back NaN.
    """
    unknown = sorted(set(scores) - set(SCORES))
    if unknown:
        raise ValueError(f"unknown score(s) {unknown}; choose from {list(SCORES)}")
    _check_landmark_table(table, horizon_days, "table")
    if train_table is not None:
        _check_landmark_table(train_table, horizon_days, "train_table")
    r, s = _landmark_predictions(table, risk, surv_at)
    time, event = residual_outcome(table)
    landmarks = table[LANDMARK_DAY].to_numpy()
    rows = []
    for lm in np.unique(landmarks):
        at = landmarks == lm
        train = _train_at(train_table, lm)
        if train is None:
            train = (time[at], event[at])
        row = _score_landmark(
            time[at], event[at], r[at], None if s is None else s[at], horizon_days, train, scores
        )
        if row["reason"]:
            log.info("landmark %s not scored: %s", lm, row["reason"])
        rows.append({LANDMARK_DAY: lm, **row})
    by = pd.DataFrame(rows, columns=[LANDMARK_DAY, "n_at_risk", "n_events", *SCORES, "reason"])
    out: dict[str, Any] = {"by_landmark": by}
    for score in SCORES:
        out[score], out[f"{score}_unweighted"] = _average(by, score)
    return out


# --------------------------------------------------------------------------- bootstrap
def _check_bootstrap(table: pd.DataFrame, n_boot: int, groups: str) -> None:
    if groups not in table.columns:
        raise ValueError(f"groups={groups!r} is not a column of the table")
    if n_boot < 2:
        raise ValueError(f"n_boot must be >= 2, got {n_boot}")


def _cluster_row_counts(
    table: pd.DataFrame, groups: str, n_boot: int, seed: int
) -> Iterator[NDArray[np.int64]]:
    """Each patient-cluster bootstrap sample as the number of copies of each row (0: not drawn).

    Patients are drawn with replacement by ``alarms.metrics.resample_index``, the one
    definition of a patient resample (the lead-time intervals draw theirs there too), and
    carry all their rows: the interval reflects the within-patient correlation of a
    landmark table.
    """
    codes, ids = pd.factorize(table[groups].astype(str), sort=True)
    for draw in resample_index(len(ids), n_boot, seed):
        yield np.bincount(draw, minlength=len(ids))[codes]


def _percentile_interval(estimate: float, reps: FloatArray) -> tuple[float, float, float]:
    """``(estimate, low, high)``; the interval by ``alarms.metrics.interval``: undefined
    (NaN) replicates are dropped, and fewer than two defined ones give no interval (NaN)."""
    undefined = int((~np.isfinite(reps)).sum())
    if undefined:
        log.info("bootstrap: %d of %d replicates undefined (NaN), dropped", undefined, len(reps))
    low, high = interval(reps)
    return estimate, np.nan if low is None else low, np.nan if high is None else high


# --------------------------------------------------------------------------- bootstrap, AUC
_TIED_TOL = 1e-8  # scikit-survival's tolerance for tied risk scores in cumulative_dynamic_auc


class _WeightedLandmarkAUC:
    """The cumulative/dynamic AUC at one landmark of a sample given as row multiplicities.

    Reproduces ``time_auc(time, event, risk, h)`` with the censoring KM of the rows
    themselves (what :func:`landmark_metrics` does without ``train_table``) on the sample
    that repeats row ``i`` ``w[i]`` times: counts enter the censoring KM and the ROC sums as
    weights, so the KM is the same to the bit and the AUC the same up to the order of float
    summation. The risk order and the unique times are found once, not once per replicate.
    """

    def __init__(self, time: FloatArray, event: BoolArray, risk: FloatArray, horizon: float):
        self.order = np.argsort(-risk, kind="stable")
        self.risk = risk[self.order]
        self.event = event.astype(float)
        self.case = (event & (time <= horizon))[self.order]
        self.control = (time > horizon)[self.order]
        _, self.inverse = np.unique(time, return_inverse=True)
        self.n_times = int(self.inverse.max()) + 1

    def __call__(self, w: NDArray[np.int64]) -> tuple[float, int]:
        """``(auc, n at risk)`` of the sample; NaN where :func:`_score_landmark` gives NaN."""
        n = int(w.sum())
        ws = w[self.order]
        if n == 0 or not (ws * self.case).any() or not (ws * self.control).any():
            return np.nan, n
        g = self._censoring_survival(w)[self.inverse][self.order]
        present = ws > 0
        if (g[present & self.case] == 0).any():
            return np.nan, n  # sksurv refuses a weight 1/0
        case_weight = np.divide(ws * self.case, g, out=np.zeros(len(ws)), where=present & self.case)
        tp = np.cumsum(case_weight[present])
        fp = np.cumsum((ws * self.control)[present])
        # only the last of a run of tied scores is a point of the ROC curve
        tied = np.abs(np.diff(np.r_[np.inf, self.risk[present]])) <= _TIED_TOL
        last = np.delete(np.arange(len(tp)), np.flatnonzero(tied) - 1)
        tpr, fpr = np.r_[0.0, tp[last] / tp[-1]], np.r_[0.0, fp[last] / fp[-1]]
        return float(np.trapezoid(tpr, fpr)), n

    def _censoring_survival(self, w: NDArray[np.int64]) -> FloatArray:
        """Reverse KM at each unique time, as ``kaplan_meier_estimator(reverse=True)``."""
        total = np.bincount(self.inverse, weights=w, minlength=self.n_times)
        events = np.bincount(self.inverse, weights=w * self.event, minlength=self.n_times)
        at_risk = w.sum() - (np.cumsum(total) - total) - events
        censored = total - events
        ratio = np.divide(censored, at_risk, out=np.zeros(self.n_times), where=censored != 0)
        return np.asarray(np.cumprod(1.0 - ratio), dtype=float)


def bootstrap_landmark_auc(
    table: pd.DataFrame,
    risk: str,
    horizon_days: float,
    n_boot: int = 200,
    seed: int = 0,
    groups: str = PATIENT_ID,
) -> tuple[float, float, float]:
    """Patient-cluster bootstrap 95% interval of the landmark AUC: ``(auc, low, high)``.

    Each sample is scored as row multiplicities (see :class:`_WeightedLandmarkAUC`), not
    built as a table: ~100x faster than resampling the table and calling
    ``landmark_metrics(sample, risk, None, horizon_days, scores=("auc",))`` on each, with the
    same replicates (tested; ``benchmarks/bench_metrics.py`` measures the gain).
    """
    _check_bootstrap(table, n_boot, groups)
    estimate = float(landmark_metrics(table, risk, None, horizon_days, scores=("auc",))["auc"])
    time, event = residual_outcome(table)
    r = _column_or_array(table, risk, "risk")
    landmarks = table[LANDMARK_DAY].to_numpy()
    rows = [np.flatnonzero(landmarks == lm) for lm in np.unique(landmarks)]
    scorers = [_WeightedLandmarkAUC(time[at], event[at], r[at], horizon_days) for at in rows]
    reps = np.empty(n_boot)
    for b, counts in enumerate(_cluster_row_counts(table, groups, n_boot, seed)):
        scored = np.array([score(counts[at]) for score, at in zip(scorers, rows, strict=True)])
        ok = np.isfinite(scored[:, 0])
        reps[b] = np.average(scored[ok, 0], weights=scored[ok, 1]) if ok.any() else np.nan
    return _percentile_interval(estimate, reps)
