"""Calibration and clinical usefulness of a predicted risk at a horizon, for censored data.

Every function takes a landmark table (or any frame with ``residual_time`` / ``event``, and
optionally ``residual_time_full`` / ``event_full``) and ``risk``: the predicted probability
of an event within ``horizon_days`` of the row's landmark, as an array aligned with the rows
or the name of a column. The outcome is the residual follow-up truncated at the horizon:
``time = min(T, h)``, ``event = 1`` if the event happened by ``h``.

Rows are treated as independent observations. Pass one landmark's rows for a per-landmark
assessment; pooled (stacked) rows give the calibration of a landmark supermodel, and the
slope's confidence interval then uses a patient-clustered (sandwich) variance.

* :func:`calibration_slope` — Cox regression of the outcome on ``cloglog(risk)``; 1 is perfect,
  < 1 means predictions too extreme (overfitting), > 1 too modest.
* :func:`calibration_in_the_large` — Kaplan–Meier observed risk vs mean predicted risk.
* :func:`smooth_calibration` / :func:`smooth_calibration_errors` — observed risk as a smooth function
  of predicted risk from a Cox model on a restricted cubic spline of ``cloglog(risk)``, and
  ICI / E50 / E90 (Austin, Harrell & van Klaveren, Stat Med 2020;39:2714-42).
* :func:`calibration_table` — groups of predicted risk, mean predicted vs KM observed (95% CI).
* :func:`net_benefit` — decision curve for censored data (Vickers et al., BMC Med Inform
  Decis Mak 2008;8:53).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from lifelines.exceptions import ConvergenceWarning
from lifelines.fitters.coxph_fitter import SemiParametricPHFitter
from numpy.typing import ArrayLike
from sksurv.nonparametric import kaplan_meier_estimator

from cohort.vocabulary import PATIENT_ID
from training.metrics import (
    BoolArray,
    FloatArray,
    _check_survival,
    _column_or_array,
    residual_outcome,
)

log = logging.getLogger(__name__)

# cloglog(0) and cloglog(1) are infinite; predictions are clipped this far inside (0, 1).
RISK_EPS = 1e-6
_KNOT_QUANTILES = {
    3: (0.10, 0.50, 0.90),
    4: (0.05, 0.35, 0.65, 0.95),
    5: (0.05, 0.275, 0.50, 0.725, 0.95),
}  # Harrell, Regression Modeling Strategies, 2nd ed., table 2.3


# --------------------------------------------------------------------------- inputs
def horizon_outcome(table: pd.DataFrame, horizon_days: float) -> tuple[FloatArray, BoolArray]:
    """Residual follow-up truncated at the horizon: ``(min(T, h), event and T <= h)``."""
    if not horizon_days > 0:
        raise ValueError(f"horizon_days must be > 0, got {horizon_days!r}")
    time, event = residual_outcome(table)
    return np.minimum(time, horizon_days), event & (time <= horizon_days)


def _check_risk(table: pd.DataFrame, risk: ArrayLike | str) -> FloatArray:
    p = _column_or_array(table, risk, "risk")
    if ((p < 0) | (p > 1)).any():
        raise ValueError(f"risk must be probabilities in [0, 1], got range [{p.min()}, {p.max()}]")
    clipped = np.clip(p, RISK_EPS, 1 - RISK_EPS)
    if (clipped != p).any():
        log.debug("clipped %d risk(s) of exactly 0 or 1 into (0, 1)", int((clipped != p).sum()))
    return clipped


def _inputs(
    table: pd.DataFrame, risk: ArrayLike | str, horizon_days: float
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Checked (risk, time, event) at the horizon."""
    time, event = horizon_outcome(table, horizon_days)
    p = _check_risk(table, risk)
    if not event.any():
        raise ValueError(f"no event within {horizon_days} days: calibration is undefined")
    return p, time, event


def cloglog(p: ArrayLike) -> FloatArray:
    """Complementary log-log, ``log(-log(1 - p))``."""
    return np.log(-np.log1p(-np.asarray(p, dtype=float)))


# --------------------------------------------------------------------------- Kaplan–Meier
def km_risk(
    time: ArrayLike, event: ArrayLike, horizon_days: float, *, alpha: float = 0.05
) -> tuple[float, float, float]:
    """Kaplan–Meier risk ``1 - S(h)`` with its (1 - alpha) pointwise log-log CI (Greenwood)."""
    t, e = _check_survival(time, event)
    if not horizon_days >= 0:
        raise ValueError(f"horizon_days must be >= 0, got {horizon_days!r}")
    times, surv, (lower, upper) = kaplan_meier_estimator(
        e, t, conf_level=1.0 - alpha, conf_type="log-log"
    )
    at = np.searchsorted(times, horizon_days, side="right")
    if at == 0:  # before the first time: S = 1 for certain
        return 0.0, 0.0, 0.0
    return 1.0 - float(surv[at - 1]), 1.0 - float(upper[at - 1]), 1.0 - float(lower[at - 1])


def _km_risk_point(time: FloatArray, event: BoolArray, horizon_days: float) -> float:
    """KM risk at the horizon without a CI."""
    times, surv = kaplan_meier_estimator(event, time)
    at = np.searchsorted(times, horizon_days, side="right")
    return 0.0 if at == 0 else 1.0 - float(surv[at - 1])


# --------------------------------------------------------------------------- slope, CITL
def _cox_frame(covariates: FloatArray, time: FloatArray, event: BoolArray) -> pd.DataFrame:
    x = covariates.reshape(len(time), -1)
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(x.shape[1])])
    frame["T"], frame["E"] = time, event.astype(int)
    return frame


class _ScoreResiduals(SemiParametricPHFitter):
    """The model behind lifelines' CoxPHFitter, the score residuals of its robust (sandwich)
    variance vectorised.

    lifelines sums them in an O(n²) Python loop: seconds for a stacked landmark table of
    30,000 rows, for every clustered calibration slope. The same sums as cumulative sums
    take milliseconds and agree to float round-off (tested against lifelines' own).
    """

    def _compute_score_within_strata(
        self, X: pd.DataFrame, _T: pd.Series, E: pd.Series, weights: pd.Series, entries: None
    ) -> FloatArray:
        # as in lifelines: rows sorted by time, X normalised, so the betas are normalised too
        x, e, w = X.to_numpy(), E.to_numpy().astype(int), weights.to_numpy()
        phi = np.exp(x @ np.asarray(self.params_.to_numpy() * self._norm_std, dtype=float))
        risk = (w * phi)[::-1].cumsum()[::-1]
        mean_x = (x * (w * phi)[:, None])[::-1].cumsum(0)[::-1] / risk[:, None]
        hazard = e * w / risk  # increments of the Breslow cumulative hazard
        score = -phi[:, None] * (
            x * np.cumsum(hazard)[:, None] - np.cumsum(hazard[:, None] * mean_x, axis=0)
        )
        score += e[:, None] * (x - mean_x)
        return np.asarray(score * w[:, None], dtype=float)


class _CoxPHFitter(CoxPHFitter):
    """lifelines' CoxPHFitter (Breslow baseline) fitting :class:`_ScoreResiduals`."""

    def _fit_model_breslow(self, *args: Any, **kwargs: Any) -> SemiParametricPHFitter:
        model = _ScoreResiduals(
            penalizer=self.penalizer,
            l1_ratio=self.l1_ratio,
            strata=self.strata,
            alpha=self.alpha,
            label=self._label,
        )
        return model.fit(*args, **kwargs)


def _fit_cox(
    frame: pd.DataFrame, *, alpha: float = 0.05, cluster: str | None = None
) -> CoxPHFitter:
    # Half Newton steps: lifelines' default step overshoots to overflow on the collinear
    # spline basis with few events (pbcseq, 2-year landmark) although the MLE exists;
    # sksurv's optimiser and step 0.5 agree on it.
    # Newton-Raphson stopping short of its tolerance (a band of days with few events) is
    # logged, not printed: the figure stands, with lifelines' own caveat in --verbose runs
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        fitted = _CoxPHFitter(alpha=alpha).fit(
            frame, "T", "E", cluster_col=cluster, fit_options={"step_size": 0.5}
        )
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            log.info("calibration Cox fit on %d rows: %s", len(frame), str(w.message)[:200])
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return fitted


def _cluster(table: pd.DataFrame, frame: pd.DataFrame) -> str | None:
    """Cluster on patient when a patient contributes more than one row."""
    if PATIENT_ID not in table.columns or not table[PATIENT_ID].duplicated().any():
        return None
    frame[PATIENT_ID] = table[PATIENT_ID].astype(str).to_numpy()
    return PATIENT_ID


def calibration_slope(
    table: pd.DataFrame, risk: ArrayLike | str, horizon_days: float, *, alpha: float = 0.05
) -> tuple[float, float, float]:
    """Calibration slope ``(slope, low, high)``: Cox coefficient of ``cloglog(risk)``.

    Under a correct proportional-hazards model ``cloglog(risk) = log H0(h) + lp``, so the
    coefficient is 1. The interval is Wald, with a patient-clustered variance for stacked rows.
    """
    p, time, event = _inputs(table, risk, horizon_days)
    frame = _cox_frame(cloglog(p), time, event)
    cluster = _cluster(table, frame)
    cph = _fit_cox(frame, alpha=alpha, cluster=cluster)
    ci = cph.confidence_intervals_.iloc[0]
    return float(cph.params_.iloc[0]), float(ci.iloc[0]), float(ci.iloc[1])


def calibration_in_the_large(
    table: pd.DataFrame, risk: ArrayLike | str, horizon_days: float
) -> dict[str, float]:
    """Observed KM risk at the horizon (with 95% CI) vs the mean predicted risk.

    Keys: observed, observed_low, observed_high, predicted, difference (observed - predicted),
    ratio (observed / predicted, the O/E ratio).
    """
    p, time, event = _inputs(table, risk, horizon_days)
    observed, low, high = km_risk(time, event, horizon_days)
    predicted = float(p.mean())
    return {
        "observed": observed,
        "observed_low": low,
        "observed_high": high,
        "predicted": predicted,
        "difference": observed - predicted,
        "ratio": observed / predicted,
    }


# --------------------------------------------------------------------------- smooth, ICI
def rcs_basis(x: ArrayLike, knots: ArrayLike) -> FloatArray:
    """Restricted (natural) cubic spline basis, Harrell's parametrisation: ``[x, s_1..s_{k-2}]``.

    Linear beyond the outer knots; the nonlinear terms are scaled by ``(t_k - t_1)^2`` as in
    R's ``Hmisc::rcspline.eval(norm=2)`` so their size is comparable to ``x``.
    """
    x = np.asarray(x, dtype=float).ravel()
    t = np.asarray(knots, dtype=float).ravel()
    if len(t) < 3 or (np.diff(t) <= 0).any():
        raise ValueError(f"knots must be >= 3 strictly increasing values, got {t.tolist()}")
    k = len(t)

    def cube(u: FloatArray) -> FloatArray:
        return np.maximum(u, 0.0) ** 3

    scale = (t[-1] - t[0]) ** 2
    cols = [x]
    for j in range(k - 2):
        term = (
            cube(x - t[j])
            - cube(x - t[k - 2]) * (t[k - 1] - t[j]) / (t[k - 1] - t[k - 2])
            + cube(x - t[k - 1]) * (t[k - 2] - t[j]) / (t[k - 1] - t[k - 2])
        )
        cols.append(term / scale)
    return np.column_stack(cols)


def _knots(x: FloatArray, n_knots: int) -> FloatArray:
    if n_knots not in _KNOT_QUANTILES:
        raise ValueError(f"n_knots must be one of {sorted(_KNOT_QUANTILES)}, got {n_knots!r}")
    knots = np.quantile(x, _KNOT_QUANTILES[n_knots])
    if (np.diff(knots) <= 0).any():
        raise ValueError(
            f"predicted risks too few distinct values for {n_knots} knots: {knots.tolist()}"
        )
    return knots


def smooth_calibration(
    table: pd.DataFrame, risk: ArrayLike | str, horizon_days: float, *, n_knots: int = 3
) -> pd.DataFrame:
    """Observed risk at the horizon as a smooth function of predicted risk (Austin 2020).

    Fits a Cox model of the horizon-truncated outcome on a restricted cubic spline of
    ``cloglog(risk)`` (knots at Harrell's default quantiles) and reads ``1 - S(h | x)``.
    Returns one row per table row, sorted by predicted: columns ``predicted``, ``observed``.
    """
    p, time, event = _inputs(table, risk, horizon_days)
    x = cloglog(p)
    frame = _cox_frame(rcs_basis(x, _knots(x, n_knots)), time, event)
    cph = _fit_cox(frame)
    surv = cph.predict_survival_function(frame.drop(columns=["T", "E"]), times=[horizon_days])
    observed = 1.0 - surv.to_numpy().ravel()
    out = pd.DataFrame({"predicted": p, "observed": observed})
    return out.sort_values("predicted", kind="stable").reset_index(drop=True)


def smooth_calibration_errors(smooth: pd.DataFrame) -> dict[str, float]:
    """ICI (mean), E50 (median) and E90 (90th percentile) of ``|observed - predicted|`` along
    a curve from :func:`smooth_calibration`."""
    err = (smooth["observed"] - smooth["predicted"]).abs().to_numpy()
    return {
        "ici": float(err.mean()),
        "e50": float(np.median(err)),
        "e90": float(np.quantile(err, 0.9)),
    }


# --------------------------------------------------------------------------- grouped table
def calibration_table(
    table: pd.DataFrame, risk: ArrayLike | str, horizon_days: float, *, n_groups: int = 10
) -> pd.DataFrame:
    """Mean predicted vs KM observed risk (95% CI) in quantile groups of predicted risk.

    Groups are ``pd.qcut`` quantiles (deciles by default); tied quantile edges are merged,
    so fewer groups may come back. Columns: group, n, n_events, predicted, observed,
    observed_low, observed_high.
    """
    if n_groups < 2:
        raise ValueError(f"n_groups must be >= 2, got {n_groups!r}")
    p, time, event = _inputs(table, risk, horizon_days)
    group = pd.qcut(p, n_groups, labels=False, duplicates="drop")
    rows = []
    for g in np.unique(group):
        at = group == g
        observed, low, high = km_risk(time[at], event[at], horizon_days)
        rows.append(
            {
                "group": int(g) + 1,
                "n": int(at.sum()),
                "n_events": int(event[at].sum()),
                "predicted": float(p[at].mean()),
                "observed": observed,
                "observed_low": low,
                "observed_high": high,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- decision curve
def _check_thresholds(thresholds: ArrayLike | None) -> FloatArray:
    if thresholds is None:
        return np.round(np.arange(1, 100) / 100, 2)
    pt = np.asarray(thresholds, dtype=float).ravel()
    if len(pt) == 0 or ((pt <= 0) | (pt >= 1)).any():
        raise ValueError(f"thresholds must be non-empty and in (0, 1), got {pt.tolist()[:10]}")
    return pt


def net_benefit(
    table: pd.DataFrame,
    risk: ArrayLike | str,
    horizon_days: float,
    thresholds: ArrayLike | None = None,
) -> pd.DataFrame:
    """Decision curve for censored data (Vickers et al. 2008), one row per threshold ``pt``.

    ``NB(pt) = r·P - (1 - r)·P·pt/(1 - pt)`` with ``P`` the share with ``risk >= pt`` ("treated")
    and ``r`` the KM risk at the horizon among them; 0 when no one is treated. ``treat_all`` is
    the same with everyone treated, ``treat_none`` is 0. Default thresholds 0.01..0.99.
    Columns: threshold, net_benefit, treat_all, treat_none, n_treated.
    """
    pt = _check_thresholds(thresholds)
    p, time, event = _inputs(table, risk, horizon_days)
    odds = pt / (1 - pt)
    r_all = _km_risk_point(time, event, horizon_days)
    nb = np.zeros(len(pt))
    n_treated = np.zeros(len(pt), dtype=int)
    for i, cut in enumerate(pt):
        treated = p >= cut
        n_treated[i] = int(treated.sum())
        if n_treated[i]:
            r = _km_risk_point(time[treated], event[treated], horizon_days)
            share = treated.mean()
            nb[i] = r * share - (1 - r) * share * odds[i]
    return pd.DataFrame(
        {
            "threshold": pt,
            "net_benefit": nb,
            "treat_all": r_all - (1 - r_all) * odds,
            "treat_none": np.zeros(len(pt)),
            "n_treated": n_treated,
        }
    )
