"""XGBoost survival models: ``xgb_cox`` (boosted Cox + Breslow) and ``xgb_aft`` (boosted AFT).

XGBoost takes NaN natively (each split learns a default direction), so no imputation here.
``tree_method="hist"``, seeded, ``nthread`` threads: results are deterministic for a seed.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import xgboost as xgb
from scipy.special import expit
from scipy.stats import norm

from models.base import MIN_TIME_DAYS, FloatArray, ProportionalHazardsModel, SurvivalModel

AFT_DISTRIBUTIONS = ("normal", "logistic", "extreme")

# Up to this many rows a prediction reads the array in place (no DMatrix): the service's calls
INPLACE_MAX_ROWS = 64
PREDICT_THREADS = 1


class _XGBoostMixin:
    """The boosting hyperparameters both XGBoost models share, and the booster they fit."""

    _objective: ClassVar[dict[str, Any]]
    n_estimators: int
    learning_rate: float
    max_depth: int
    min_child_weight: float
    subsample: float
    colsample_bytree: float
    reg_lambda: float
    nthread: int
    random_state: int

    def _booster_params(self) -> dict[str, Any]:
        for name in ("n_estimators", "max_depth", "nthread"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("learning_rate", "subsample", "colsample_bytree"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value <= 1):
                raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")
        return {
            "tree_method": "hist",
            "eta": self.learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "lambda": self.reg_lambda,
            "nthread": self.nthread,
            "seed": self.random_state,
            **self._objective,
        }

    def _train(self, dmatrix: xgb.DMatrix, extra: dict[str, Any] | None = None) -> None:
        params = {**self._booster_params(), **(extra or {})}
        self.booster_ = xgb.train(params, dmatrix, num_boost_round=self.n_estimators)
        # Predictions are one row per request in the service: a second OpenMP thread only
        # waits for a core (10x the CPU on a busy machine, measured); batch scoring is fast anyway.
        self.booster_.set_param({"nthread": PREDICT_THREADS})

    def _raw_margin(self, X: FloatArray) -> FloatArray:
        if len(X) <= INPLACE_MAX_ROWS:
            # the service's one-row calls: building a DMatrix (and its thread pool) costs ~10x
            # the prediction itself; inplace_predict reads the array as it is (same margins)
            margin = self.booster_.inplace_predict(
                np.ascontiguousarray(X, dtype=np.float32), predict_type="margin", missing=np.nan
            )
            return np.asarray(margin, dtype=float)
        dmatrix = xgb.DMatrix(X, missing=np.nan, nthread=self.nthread)
        return np.asarray(self.booster_.predict(dmatrix, output_margin=True), dtype=float)

    def _shap(self, x: FloatArray) -> FloatArray:
        """Tree SHAP values of the margin per feature (the bias column dropped)."""
        # one row per request: a DMatrix built on every core waits for a busy machine's cores
        # (11 ms of a stack's 30 ms assessment under a load average of 4, measured)
        threads = PREDICT_THREADS if len(x) <= INPLACE_MAX_ROWS else self.nthread
        dmatrix = xgb.DMatrix(x, missing=np.nan, nthread=threads)
        return np.asarray(self.booster_.predict(dmatrix, pred_contribs=True)[0, :-1], dtype=float)


class XGBCoxModel(_XGBoostMixin, ProportionalHazardsModel):
    """XGBoost ``survival:cox``: margin = log hazard ratio, made absolute by Breslow.

    The label is the time, negated for censored rows; times of 0 become ``MIN_TIME_DAYS``
    so the sign still carries the censoring flag.
    """

    model_name = "xgb_cox"
    _objective: ClassVar[dict[str, Any]] = {"objective": "survival:cox"}

    def __init__(
        self,
        *,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        max_depth: int = 3,
        min_child_weight: float = 1.0,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        nthread: int = 2,
        random_state: int = 0,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.nthread = nthread
        self.random_state = random_state

    def _fit_margin(self, X: FloatArray, event: np.ndarray, time: FloatArray) -> None:
        t = np.maximum(time, MIN_TIME_DAYS)
        self._train(xgb.DMatrix(X, label=np.where(event, t, -t), missing=np.nan))

    def _margin(self, X: FloatArray) -> FloatArray:
        return self._raw_margin(X)

    def contributions_matrix(self, x: FloatArray, ref: FloatArray) -> FloatArray:
        """Tree SHAP on the log hazard ratio; ``ref`` is unused (the training population)."""
        return self._shap(self._check_matrix(x))


class XGBAFTModel(_XGBoostMixin, SurvivalModel):
    """XGBoost ``survival:aft``: log T = μ(x) + σ·Z, Z normal, logistic or extreme-value.

    Labels are intervals [time, time] for events and [time, +inf) for censored rows.
    S(t | x) = 1 − F((ln t − μ(x)) / σ) with σ = ``scale``, the fixed scale XGBoost trains
    with (it is not estimated). Risk = −μ(x): a shorter predicted log time is worse.
    """

    model_name = "xgb_aft"

    def __init__(
        self,
        *,
        distribution: str = "normal",
        scale: float = 1.0,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        max_depth: int = 3,
        min_child_weight: float = 1.0,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        nthread: int = 2,
        random_state: int = 0,
    ):
        self.distribution = distribution
        self.scale = scale
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.nthread = nthread
        self.random_state = random_state

    @property
    def _objective(self) -> dict[str, Any]:  # type: ignore[override]
        return {
            "objective": "survival:aft",
            "eval_metric": "aft-nloglik",
            "aft_loss_distribution": self.distribution,
            "aft_loss_distribution_scale": self.scale,
        }

    def _fit(self, X: FloatArray, event: np.ndarray, time: FloatArray) -> None:
        if self.distribution not in AFT_DISTRIBUTIONS:
            raise ValueError(
                f"distribution must be one of {AFT_DISTRIBUTIONS}, got {self.distribution!r}"
            )
        if not (isinstance(self.scale, int | float) and self.scale > 0):
            raise ValueError(f"scale must be a number > 0, got {self.scale!r}")
        t = np.maximum(time, MIN_TIME_DAYS)
        dmatrix = xgb.DMatrix(X, missing=np.nan)
        dmatrix.set_float_info("label_lower_bound", t)
        dmatrix.set_float_info("label_upper_bound", np.where(event, t, np.inf))
        self._train(dmatrix)

    def _risk(self, X: FloatArray) -> FloatArray:
        return -self._raw_margin(X)

    def _survival(self, X: FloatArray, times: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore"):  # ln 0 = −inf gives S(0) = 1 exactly
            log_t = np.log(times)
        z = (log_t[None, :] - self._raw_margin(X)[:, None]) / self.scale
        return aft_survival(z, self.distribution)

    def contributions_matrix(self, x: FloatArray, ref: FloatArray) -> FloatArray:
        """Tree SHAP on μ, sign flipped to the risk scale; ``ref`` unused (training population)."""
        return -self._shap(self._check_matrix(x))


def aft_survival(z: FloatArray, distribution: str) -> FloatArray:
    """1 − F(z) for XGBoost's AFT error distributions (``extreme``: F = 1 − exp(−eᶻ))."""
    if distribution == "normal":
        return np.asarray(norm.sf(z), dtype=float)
    if distribution == "logistic":
        return np.asarray(expit(-z), dtype=float)
    with np.errstate(over="ignore"):  # exp(large z) = inf gives S = 0, as it should
        return np.asarray(np.exp(-np.exp(z)), dtype=float)
