"""XGBoost survival models: ``xgb_cox`` (boosted Cox + Breslow) and ``xgb_aft`` (boosted AFT).

XGBoost takes NaN natively (each split learns a default direction), so no imputation here.
``tree_method="hist"``, seeded, ``nthread`` threads: results are deterministic for a seed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np
import xgboost as xgb
from scipy.special import expit, ndtr

from models.base import MIN_TIME_DAYS, FloatArray, ProportionalHazardsModel, SurvivalModel
from models.flat_trees import Cached, FlatTrees, leaf_sums_together, leaves_together

AFT_DISTRIBUTIONS = ("normal", "logistic", "extreme")

# Up to this many rows a prediction reads the array in place (no DMatrix): the service's calls
INPLACE_MAX_ROWS = 64
PREDICT_THREADS = 1


class _XGBoostMixin(Cached):
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
        if len(X) <= INPLACE_MAX_ROWS and (trees := self._booster_trees()) is not None:
            # the service's one-row calls: the booster's trees walked as flat arrays give
            # XGBoost's own margins to the last bit (``BoosterTrees``), ~0.03 ms against
            # ~0.25 ms for inplace_predict's per-call overhead (measured)
            flat, values = _XGBoostMixin._flat, _XGBoostMixin._node_values
            return leaf_sums_together([self], flat, values, [trees.base], [X])[0]
        if len(X) <= INPLACE_MAX_ROWS:
            # the service's one-row calls: building a DMatrix (and its thread pool) costs ~10x
            # the prediction itself; inplace_predict reads the array as it is (same margins)
            margin = self.booster_.inplace_predict(
                np.ascontiguousarray(X, dtype=np.float32), predict_type="margin", missing=np.nan
            )
            return np.asarray(margin, dtype=float)
        dmatrix = xgb.DMatrix(X, missing=np.nan, nthread=self.nthread)
        return np.asarray(self.booster_.predict(dmatrix, output_margin=True), dtype=float)

    @classmethod
    def _survival_of_each(
        cls, models: Sequence[SurvivalModel], X: FloatArray, times: list[FloatArray]
    ) -> list[FloatArray]:
        """Both XGBoost models' survival, their boosters' trees walked together on a few rows
        (``models.flat_trees``; a stack's interval asks ten boosters, and XGBoost's own
        prediction costs ~0.1-0.25 ms a booster on one row, measured); from one DMatrix read
        by every booster otherwise."""
        boosted = cast(list[_XGBoostMixin], list(models))
        small = len(X) <= INPLACE_MAX_ROWS
        trees = [t for m in boosted if small and (t := m._booster_trees()) is not None]
        if len(trees) == len(boosted):
            margins = leaf_sums_together(
                boosted,
                _XGBoostMixin._flat,
                _XGBoostMixin._node_values,
                [t.base for t in trees],
                [X] * len(boosted),
            )
        else:
            threads = PREDICT_THREADS if len(X) <= INPLACE_MAX_ROWS else boosted[0].nthread
            dmatrix = xgb.DMatrix(X, missing=np.nan, nthread=threads)
            margins = [m._dmatrix_margin(dmatrix) for m in boosted]
        return [m._survival_at(mg, t) for m, mg, t in zip(boosted, margins, times, strict=True)]

    def _dmatrix_margin(self, dmatrix: xgb.DMatrix) -> FloatArray:
        margin = self.booster_.predict(dmatrix, output_margin=True, validate_features=False)
        return np.asarray(margin, dtype=float)

    def _booster_trees(self) -> BoosterTrees | None:
        trees: BoosterTrees | None = self._cached(
            "booster_trees", lambda: BoosterTrees.of(self.booster_)
        )
        return trees

    def _flat(self) -> FlatTrees:
        trees = self._booster_trees()
        assert trees is not None  # only boosters that have them are walked
        return trees.trees

    def _node_values(self) -> np.ndarray:
        trees = self._booster_trees()
        assert trees is not None  # only boosters that have them are walked
        return trees.value

    def _survival_at(self, margin: FloatArray, times: FloatArray) -> FloatArray:
        """S(times | x) from the booster's margins for the rows of x."""
        raise NotImplementedError

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

    def _survival_at(self, margin: FloatArray, times: FloatArray) -> FloatArray:
        return self.baseline_.survival(margin, times)

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
        return self._survival_at(self._raw_margin(X), times)

    def _survival_at(self, margin: FloatArray, times: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore"):  # ln 0 = −inf gives S(0) = 1 exactly
            log_t = np.log(times)
        z = (log_t[None, :] - margin[:, None]) / self.scale
        return aft_survival(z, self.distribution)

    def contributions_matrix(self, x: FloatArray, ref: FloatArray) -> FloatArray:
        """Tree SHAP on μ, sign flipped to the risk scale; ``ref`` unused (training population)."""
        return -self._shap(self._check_matrix(x))


# objectives whose margin starts from log(base_score) (XGBoost's ProbToMargin for both)
LOG_LINK_OBJECTIVES = ("survival:cox", "survival:aft")


@dataclass(frozen=True, eq=False)
class BoosterTrees:
    """A booster's trees as flat arrays, each node's value (a leaf's is its weight) and the
    base margin: XGBoost's margin is the base plus the trees' leaf weights, added in float32
    in tree order, and a row goes left where ``x < split`` (float32), a missing x the
    node's default way. The same ``x <= threshold`` walk as the forests' takes the float32
    just below each split (no float32 lies between it and the split)."""

    trees: FlatTrees
    value: np.ndarray  # float32 per node
    base: np.float32

    @classmethod
    def of(cls, booster: xgb.Booster) -> BoosterTrees | None:
        """None for a booster this does not reproduce exactly: any but a plain one-output
        tree booster on a log-link objective, or one whose margins on probe rows (all
        missing, all zero) differ from XGBoost's own."""
        learner = json.loads(booster.save_raw("json"))["learner"]
        model, param = learner["gradient_booster"], learner["learner_model_param"]
        plain = (
            model["name"] == "gbtree"
            and learner["objective"]["name"] in LOG_LINK_OBJECTIVES
            and param["num_target"] == "1"
            and param["num_class"] == "0"
            and model["model"]["gbtree_model_param"]["num_parallel_tree"] == "1"
        )
        trees = model["model"]["trees"]
        if not plain or any(any(t["split_type"]) for t in trees):
            return None
        split = [np.asarray(t["split_conditions"], dtype=np.float32) for t in trees]
        flat, _ = FlatTrees.concat(
            [
                FlatTrees(
                    np.zeros(1, dtype=np.intp),
                    np.asarray(t["left_children"], dtype=np.intp),
                    np.asarray(t["right_children"], dtype=np.intp),
                    np.asarray(t["split_indices"], dtype=np.intp),
                    np.nextafter(c, np.float32(-np.inf)).astype(float),
                    np.asarray(t["default_left"], dtype=bool),
                )
                for t, c in zip(trees, split, strict=True)
            ]
        )
        # log of the float32 base score XGBoost holds, rounded to float32 as its logf rounds
        base = np.float32(math.log(np.float32(param["base_score"].strip("[]"))))
        out = cls(flat, np.concatenate(split), base)
        probe = np.vstack(
            [np.full(booster.num_features(), np.nan), np.zeros(booster.num_features())]
        )
        own = out.margin(leaves_together([out], lambda t: t.trees, [probe])[0], len(probe))
        xgb_own = booster.inplace_predict(
            probe.astype(np.float32), predict_type="margin", missing=np.nan
        )
        return out if np.array_equal(own, xgb_own) else None

    def margin(self, leaves: np.ndarray, n_rows: int) -> FloatArray:
        """Margins of ``n_rows`` rows from their leaves (rows first, as walked)."""
        weights = self.value[leaves].reshape(n_rows, -1)
        column = np.column_stack([np.full(n_rows, self.base, dtype=np.float32), weights])
        return np.asarray(np.cumsum(column, axis=1, dtype=np.float32)[:, -1], dtype=float)


def aft_survival(z: FloatArray, distribution: str) -> FloatArray:
    """1 − F(z) for XGBoost's AFT error distributions (``extreme``: F = 1 − exp(−eᶻ))."""
    if distribution == "normal":
        # ndtr(−z) is norm.sf(z) without scipy.stats' per-call overhead (28 µs against 0.5)
        return np.asarray(ndtr(-z), dtype=float)
    if distribution == "logistic":
        return np.asarray(expit(-z), dtype=float)
    with np.errstate(over="ignore"):  # exp(large z) = inf gives S = 0, as it should
        return np.asarray(np.exp(-np.exp(z)), dtype=float)
