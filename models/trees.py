"""Tree ensembles from scikit-survival: ``rsf`` (random survival forest), ``gbsa`` (boosted Cox).

Both sit behind median imputation with missing indicators. scikit-survival's tree code
scales badly with the size of a landmark table (~60k rows), measured on 20k × 50:

- the log-rank split search costs roughly quadratically in node size and linearly in the
  number of distinct times, so the forest grows each tree on a bootstrap of at most
  ``max_samples`` rows and on times binned to ``n_time_points`` grid values (the device of
  randomForestSRC's ``ntime``). With ~20 near-duplicate landmark rows per patient a
  1,500-row bootstrap still sees most patients;
- the boosted model's Cox gradient is an O(n²) loop, replaced here by the O(n log n)
  martingale residuals of :mod:`models.breslow` (same values, tested); its trees then
  use ``max_features="sqrt"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from sklearn.ensemble._gradient_boosting import predict_stages
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sksurv.ensemble import GradientBoostingSurvivalAnalysis, RandomSurvivalForest
from sksurv.ensemble.survival_loss import CoxPH

from models.base import (
    FloatArray,
    ProportionalHazardsModel,
    SurvivalModel,
    check_times,
    make_preprocessor,
    step_lookup,
    to_surv,
)
from models.breslow import cox_negative_log_likelihood, martingale_residuals
from models.flat_trees import Cached, FlatTrees, leaves_together


def _check_positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_fraction(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")


def bin_times(time: FloatArray, event: np.ndarray, n_points: int | None) -> FloatArray:
    """Move each time to the nearest of ``n_points`` quantiles of the event times.

    None keeps the times as they are. The grid spans the first to the last event time, so
    censoring after the last event moves back to it (survival is flat there anyway).
    """
    if n_points is None:
        return time
    grid = np.unique(np.quantile(time[event], np.linspace(0.0, 1.0, n_points)))
    upper = np.clip(np.searchsorted(grid, time), 0, len(grid) - 1)
    lower = np.maximum(upper - 1, 0)
    nearer_lower = np.abs(time - grid[lower]) < np.abs(grid[upper] - time)
    return np.asarray(grid[np.where(nearer_lower, lower, upper)], dtype=float)


class RandomSurvivalForestModel(Cached, SurvivalModel):
    """Random survival forest (log-rank splits); risk = ensemble cumulative hazard sum.

    Absolute survival is the ensemble survival function, the mean of the trees' leaf
    Kaplan–Meier curves. ``min_samples_leaf=3`` is the terminal-node size of Ishwaran et
    al.'s original RSF and of ranger and scikit-survival. Larger leaves average every
    prediction towards the cohort mean: at 15, out-of-fold calibration slopes were 1.28 on
    a 3,000-patient simulated cohort and 1.24 on pbcseq (under-confident); at 3 they were
    1.18 and ~1.03, with AUC and integrated Brier no worse (simulated: AUC 0.843 -> 0.846).
    Deeper trees cost ~35% more CPU per fit.
    """

    model_name = "rsf"

    def __init__(
        self,
        *,
        n_estimators: int = 200,
        min_samples_leaf: int = 3,
        max_features: str | int | float | None = "sqrt",
        max_samples: int | None = 1500,
        n_time_points: int | None = 100,
        n_jobs: int | None = -1,
        random_state: int | None = 0,
    ):
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_samples = max_samples
        self.n_time_points = n_time_points
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _fit(self, X: FloatArray, event: np.ndarray, time: FloatArray) -> None:
        self._check_params()
        forest = RandomSurvivalForest(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            # scikit-learn refuses an int max_samples above the sample count
            max_samples=None if self.max_samples is None else min(self.max_samples, len(X)),
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )
        self.pipeline_ = Pipeline([*make_preprocessor(scale=False), ("forest", forest)])
        self.pipeline_.fit(X, to_surv(event, bin_times(time, event, self.n_time_points)))
        # ``n_jobs`` builds the trees in parallel; predicting one row per request, joblib's
        # thread pool costs more than the 200 trees themselves (3x the time, measured)
        forest.set_params(n_jobs=1)

    def _check_params(self) -> None:
        _check_positive_int("n_estimators", self.n_estimators)
        _check_positive_int("min_samples_leaf", self.min_samples_leaf)
        if self.max_samples is not None:
            _check_positive_int("max_samples", self.max_samples)
        if self.n_time_points is not None:
            _check_positive_int("n_time_points", self.n_time_points, minimum=2)

    def _risk(self, X: FloatArray) -> FloatArray:
        if len(X) > FAST_MAX_ROWS:
            return np.asarray(self.pipeline_.predict(X), dtype=float)
        forest = self.pipeline_[-1]
        X = impute(self.pipeline_[0], X)
        return forest_risk_and_survival(forest, X, tables=self._tables())[0]

    def _survival(self, X: FloatArray, times: FloatArray) -> FloatArray:
        forest = self.pipeline_[-1]
        x = impute(self.pipeline_[0], X)
        curves = self._walked_survival(x) if len(x) <= WALK_MAX_ROWS else forest_survival(forest, x)
        return np.asarray(step_lookup(forest.unique_times_, curves, times, 1.0), dtype=float)

    def _walked_survival(self, x: FloatArray) -> FloatArray:
        """``forest_survival`` for a few imputed rows: the trees walked together as flat
        arrays (``models.flat_trees``), then every tree's leaf curve read from one table and
        summed in tree order (a running sum, as ``forest_survival`` adds tree by tree: the
        same numbers to the last bit, tested). On the service's one row: 0.35 ms against
        1.6 ms for 200 calls of ``tree_.predict`` (measured on the 3,000-patient stack)."""
        leaf_row, table = self._cached("leaf_curves", self._leaf_curves)
        n_trees = len(self.pipeline_[-1].estimators_)
        leaves = leaves_together([self], RandomSurvivalForestModel._flat, [x])[0]
        curves = table[leaf_row[leaves]].reshape(len(x), n_trees, -1)
        return np.asarray(np.cumsum(curves, axis=1)[:, -1] / n_trees, dtype=float)

    def _flat(self) -> FlatTrees:
        flat: FlatTrees = self._cached(
            "flat_trees",
            lambda: _flat_of([t.tree_.__getstate__()["nodes"] for t in self._estimators()]),
        )
        return flat

    def _leaf_curves(self) -> tuple[np.ndarray, FloatArray]:
        """Each node's row in a table of the leaves' survival curves (leaves only: half the
        nodes, ~35 MB for 200 trees of 3,000 patients' rows at 100 grid times)."""
        values = [t.tree_.value for t in self._estimators()]
        is_leaf = np.concatenate([t.tree_.children_left < 0 for t in self._estimators()])
        leaf_row = np.cumsum(is_leaf) - 1
        table = np.concatenate(
            [
                v[t.tree_.children_left < 0, :, 1]
                for v, t in zip(values, self._estimators(), strict=True)
            ]
        )
        return leaf_row.astype(np.intp), table

    def _estimators(self) -> list[Any]:
        return list(self.pipeline_[-1].estimators_)

    def survival_and_contributions(
        self, x: FloatArray, ref: FloatArray, times: Any
    ) -> tuple[FloatArray, FloatArray]:
        """One pass over the trees for the perturbation batch: its first row's curve is the
        survival, the risks of every row the contributions (what the service asks per draw)."""
        forest = self.pipeline_[-1]
        batch = impute(self.pipeline_[0], self._perturbed(x, ref))
        risk, curves = forest_risk_and_survival(forest, batch, 1, self._tables())

        def survival(unique: FloatArray) -> FloatArray:
            return np.asarray(step_lookup(forest.unique_times_, curves, unique, 1.0), dtype=float)

        return self._held_survival(survival, times), np.asarray(risk[0] - risk[1:], dtype=float)

    def _tables(self) -> list[tuple[Any, FloatArray, FloatArray]]:
        tables: list[tuple[Any, FloatArray, FloatArray]] = self._cached(
            "node_tables", lambda: node_tables(self.pipeline_[-1])
        )
        return tables

    def for_times(self, times: Any) -> SurvivalModel:
        """The forest's survival at ``times`` only (:class:`ForestAtTimes`): each node keeps
        one value per time instead of its whole curve (two values per grid time), so the
        CV's fold forests can travel with the packaged model for the risk intervals."""
        return ForestAtTimes.of(self, times)


# Up to this many rows (the service's one-row calls and their perturbation batches) the tree
# models skip scikit-learn's input checks and per-tree dispatch: the input is the model's own
# float matrix, and the checks cost more than 150-200 one-row tree walks (tests pin equality)
FAST_MAX_ROWS = 512
# Up to this many rows a packaged forest's survival walks its trees as flat arrays (each row
# × tree a walker); ``tree_.predict`` copies every row's whole node curve per tree instead
WALK_MAX_ROWS = 64


def impute(imputer: SimpleImputer, X: FloatArray) -> FloatArray:
    """``imputer.transform(X)`` for a small float matrix, without scikit-learn's checks: the
    median of each column where missing, then the missing indicators (``add_indicator``).

    Anything else (an imputer without ``keep_empty_features``, ±inf, many rows) goes through
    ``transform`` itself, which refuses ±inf with its own message.
    """
    X = np.asarray(X, dtype=float)
    if len(X) > FAST_MAX_ROWS or not imputer.keep_empty_features or np.isinf(X).any():
        return np.asarray(imputer.transform(X), dtype=float)
    missing = np.isnan(X)
    filled = np.where(missing, imputer.statistics_, X)
    indicator = getattr(imputer, "indicator_", None)
    if indicator is None:
        return filled
    return np.hstack([filled, missing[:, indicator.features_]]).astype(float)


class ForestAtTimes(Cached, SurvivalModel):
    """A fitted :class:`RandomSurvivalForestModel` that answers survival at fixed times only.

    Same trees (split nodes and leaves), each node's Kaplan–Meier value at each kept time
    only; ``predict_survival_matrix`` at those times equals the forest's exactly (a test
    pins it), any other time is refused. It cannot be fitted and has no risk score: it
    exists for the grouped-jackknife intervals, which ask the serving horizons.

    The trees are packed end to end into flat arrays (children as global node numbers) and
    walked together (``models.flat_trees``), one level per step, only the trees not yet at a
    leaf moving on: the same ``x <= threshold`` test as scikit-learn's (the float32 input
    against the float64 threshold). On the service's one row this is about 5× faster than
    calling 200 trees one by one (0.4 against 2.1 ms, measured on a loaded machine), and a
    stack's interval asks five fold forests per request: they are walked in one go.
    """

    model_name = "rsf_at_times"

    @classmethod
    def of(cls, model: RandomSurvivalForestModel, times: Any) -> ForestAtTimes:
        held = np.unique(np.minimum(check_times(times), model.max_time_))
        forest = model.pipeline_[-1]
        # the step function's column for each time (−1: before the first grid time, S = 1)
        column = np.searchsorted(forest.unique_times_, held, side="right") - 1
        states = [t.tree_.__getstate__() for t in forest.estimators_]
        kept = [state["values"][:, np.maximum(column, 0), 1] for state in states]
        out = cls()
        out.feature_names_in_ = model.feature_names_in_
        out.n_features_in_ = model.n_features_in_
        out.max_time_ = model.max_time_
        out.times_ = held
        out.preprocess_ = model.pipeline_[0]
        packed = _packed([s["nodes"] for s in states], [np.where(column < 0, 1.0, v) for v in kept])
        for name, value in packed.items():
            setattr(out, name, value)
        return out

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A package of the first layout (one scikit-learn ``Tree`` per tree in ``trees_``,
        each node's kept values as nodes × times × 1) unpickles into the flat arrays."""
        trees = state.pop("trees_", None)
        if trees is not None:
            states = [t.__getstate__() for t in trees]
            state |= _packed([s["nodes"] for s in states], [s["values"][..., 0] for s in states])
        super().__setstate__(state)

    def answers(self, times: Any) -> bool:
        held = np.minimum(check_times(times), self.max_time_)
        return bool(np.isin(held, self.times_).all())

    def _survival(self, X: FloatArray, times: FloatArray) -> FloatArray:
        return self._survival_of_each([self], X, [times])[0]

    @classmethod
    def _survival_of_each(
        cls, models: Sequence[SurvivalModel], X: FloatArray, times: list[FloatArray]
    ) -> list[FloatArray]:
        """Each kept forest's survival, the trees of all of them walked together (a stack's
        interval asks five fold forests: one walk of 1,000 trees costs little more than one
        of 200, numpy's per-step overhead dominating)."""
        forests = cast(list[ForestAtTimes], list(models))
        columns = [f._columns(t) for f, t in zip(forests, times, strict=True)]
        inputs = [impute(f.preprocess_, X) for f in forests]
        leaves = leaves_together(forests, ForestAtTimes._flat, inputs)
        return [
            np.asarray(f.value_[leaf].reshape(len(X), -1, len(f.times_)).mean(axis=1)[:, at])
            for f, leaf, at in zip(forests, leaves, columns, strict=True)
        ]

    def _flat(self) -> FlatTrees:
        return FlatTrees(self.roots_, self.left_, self.right_, self.feature_, self.threshold_)

    def _columns(self, times: FloatArray) -> np.ndarray:
        """The kept column of each of ``times``; any other time refused."""
        at = np.minimum(np.searchsorted(self.times_, times), len(self.times_) - 1)
        if not np.array_equal(self.times_[at], times):
            raise ValueError(
                f"this forest keeps survival at {self.times_.tolist()} days only, "
                f"asked for {np.asarray(times).tolist()}"
            )
        return at

    def _fit(self, X: FloatArray, event: np.ndarray, time: FloatArray) -> None:
        raise TypeError("a forest kept at fixed times is made from a fitted forest, not fitted")

    def _risk(self, X: FloatArray) -> FloatArray:
        raise TypeError("a forest kept at fixed times answers survival at those times only")


def _packed(trees: list[np.ndarray], values: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Trees' node records (scikit-learn's ``nodes``) and kept values, end to end: each
    tree's root, the children as global node numbers (−1 at a leaf), features, thresholds."""
    flat = _flat_of(trees)
    return {
        "roots_": flat.roots,
        "left_": flat.left,
        "right_": flat.right,
        "feature_": flat.feature,
        "threshold_": flat.threshold,
        "value_": np.concatenate(values),
    }


def _flat_of(trees: list[np.ndarray]) -> FlatTrees:
    """scikit-learn trees' node records end to end (``FlatTrees.concat``)."""
    flat, _ = FlatTrees.concat(
        [
            FlatTrees(
                np.zeros(1, dtype=np.intp),
                nodes["left_child"].astype(np.intp),
                nodes["right_child"].astype(np.intp),
                np.maximum(nodes["feature"], 0).astype(np.intp),  # leaves: never read
                nodes["threshold"].astype(float),
            )
            for nodes in trees
        ]
    )
    return flat


def forest_survival(forest: Any, X: FloatArray) -> FloatArray:
    """``forest.predict_survival_function(X, return_array=True)``: the mean of the trees'
    Kaplan–Meier curves at ``unique_times_``, read from each tree's node values directly.

    scikit-survival checks the input and dispatches a joblib call per tree: on the service's
    one-row calls that overhead was 15 ms of a 200-tree forest's 16 ms (measured under a
    load average of 3); the input here is already imputed and finite. A test pins it to the
    library's result (``tree_`` is scikit-learn's fitted tree, as scikit-survival reads it).
    """
    x32 = np.ascontiguousarray(X, dtype=np.float32)
    total = np.zeros((len(x32), len(forest.unique_times_)))
    for tree in forest.estimators_:
        total += tree.tree_.predict(x32)[..., 1]
    return np.asarray(total / len(forest.estimators_), dtype=float)


def forest_risk_and_survival(
    forest: Any,
    X: FloatArray,
    curve_rows: int | None = 0,
    tables: list[tuple[Any, FloatArray, FloatArray]] | None = None,
) -> tuple[FloatArray, FloatArray]:
    """``forest.predict(X)`` (the ensemble cumulative hazard summed over event times) and the
    survival curves of the first ``curve_rows`` rows (None: all), in one walk of each tree.

    Each tree's leaf for each row, then that leaf's risk and curve from ``node_tables``
    (``tables``; what ``tree_.predict`` copies out whole for every row, ~100 times × 2
    values): the
    same sums in the same order as scikit-survival's one-job ``predict`` (tested equal).
    ``X`` is imputed and finite.
    """
    x32 = np.ascontiguousarray(X, dtype=np.float32)
    rows = len(x32) if curve_rows is None else curve_rows
    risk = np.zeros(len(x32))
    curves = np.zeros((rows, len(forest.unique_times_)))
    for tree, node_risk, node_curve in node_tables(forest) if tables is None else tables:
        leaves = tree.apply(x32)
        risk += node_risk[leaves]
        if rows:
            curves += node_curve[leaves[:rows]]
    n = len(forest.estimators_)
    return risk / n, np.asarray(curves / n, dtype=float)


def node_tables(forest: Any) -> list[tuple[Any, FloatArray, FloatArray]]:
    """Per tree of ``forest``: its ``tree_``, each node's risk (its cumulative hazard summed
    over the tree's event times, as ``SurvivalTree.predict`` sums it) and each node's
    survival curve (a view of the node values)."""
    tables = []
    for est in forest.estimators_:
        values = est.tree_.value
        tables.append((est.tree_, values[:, est.is_event_time_, 0].sum(1), values[:, :, 1]))
    return tables


class _FastCoxPH(CoxPH):
    """scikit-survival's Cox loss with its O(n²) loops replaced by O(n log n) equivalents."""

    def __call__(self, y_true: Any, raw_prediction: Any, sample_weight: Any = None) -> float:
        event = y_true["event"].astype(bool)
        if not event.any():  # an out-of-bag subset without events: no partial likelihood
            return 0.0
        return cox_negative_log_likelihood(raw_prediction.ravel(), y_true["time"], event)

    def gradient(
        self, y_true: Any, raw_prediction: Any, sample_weight: Any = None, **kwargs: Any
    ) -> FloatArray:
        residuals = martingale_residuals(raw_prediction.ravel(), y_true["time"], y_true["event"])
        return residuals if sample_weight is None else residuals * sample_weight


class _FastCoxBoosting(GradientBoostingSurvivalAnalysis):
    def _get_loss(self, sample_weight: Any) -> Any:
        return _FastCoxPH() if self.loss == "coxph" else super()._get_loss(sample_weight)


class GradientBoostingModel(ProportionalHazardsModel):
    """Gradient-boosted regression trees on the Cox partial likelihood (scikit-survival).

    The margin is a log hazard ratio; absolute survival comes from the Breslow baseline on
    the training margins, exactly what scikit-survival's ``predict_survival_function`` does.
    Tree building dominates the fit (scikit-learn's exact splitter), so each split looks at
    ``max_features="sqrt"`` features and each tree at a ``subsample`` of rows: both
    regularise, and together they cut the fit on 20k × 50 from ~120 s to ~13 s.
    ``learning_rate=0.1`` with ``subsample=0.5`` is Friedman's stochastic gradient boosting
    setting (Comput Stat Data Anal 2002;38:367-78; Hastie et al., ESL §10.12): on a
    26k-row simulated fold it fits ~3x faster than 200 trees at 0.05 on 80% of the rows,
    and 150 trees end less shrunk (out-of-fold calibration slope 1.14 -> 1.06 simulated,
    1.22 -> 1.13 on pbcseq) at an equal or higher AUC.
    """

    model_name = "gbsa"

    def __init__(
        self,
        *,
        n_estimators: int = 150,
        learning_rate: float = 0.1,
        max_depth: int = 3,
        min_samples_leaf: int = 15,
        subsample: float = 0.5,
        max_features: str | int | float | None = "sqrt",
        random_state: int | None = 0,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.subsample = subsample
        self.max_features = max_features
        self.random_state = random_state

    def _fit_margin(self, X: FloatArray, event: np.ndarray, time: FloatArray) -> None:
        for name in ("n_estimators", "max_depth", "min_samples_leaf"):
            _check_positive_int(name, getattr(self, name))
        _check_fraction("learning_rate", self.learning_rate)
        _check_fraction("subsample", self.subsample)
        boosting = _FastCoxBoosting(
            loss="coxph",
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            subsample=self.subsample,
            max_features=self.max_features,
            random_state=self.random_state,
        )
        self.pipeline_ = Pipeline([*make_preprocessor(scale=False), ("boosting", boosting)])
        # Rows in time order make every subsample time-ordered too, so the loss's per-stage
        # argsort (three per stage) runs on sorted input: ~10% of the fit saved.
        order = np.argsort(time, kind="stable")
        self.pipeline_.fit(X[order], to_surv(event[order], time[order]))

    def _margin(self, X: FloatArray) -> FloatArray:
        boosting = self.pipeline_[-1]
        if len(X) > FAST_MAX_ROWS or not _plain_boosting(boosting):
            return np.asarray(self.pipeline_.predict(X), dtype=float)
        return boosting_margin(boosting, impute(self.pipeline_[0], X))


def _plain_boosting(boosting: Any) -> bool:
    """A Cox-loss boosting without dropout and with a zero start: what ``boosting_margin``
    reproduces (every ``gbsa`` ctcmon fits)."""
    return (
        boosting.loss == "coxph"
        and not hasattr(boosting, "_scale")
        and isinstance(boosting.init_, str)
        and boosting.init_ == "zero"
    )


def boosting_margin(boosting: Any, X: FloatArray) -> FloatArray:
    """``boosting.predict(X)`` for the Cox loss: the learning-rate-weighted sum of the trees,
    by scikit-learn's own ``predict_stages``, without the input checks around it."""
    x32 = np.ascontiguousarray(X, dtype=np.float32)
    raw = np.zeros((len(x32), boosting.n_trees_per_iteration_), dtype=np.float64)
    predict_stages(boosting.estimators_, x32, boosting.learning_rate, raw)
    return np.asarray(raw.ravel(), dtype=float)
