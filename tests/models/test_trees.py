"""Random survival forest and boosted Cox trees from scikit-survival."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sksurv.ensemble import GradientBoostingSurvivalAnalysis

from models.base import step_lookup
from models.trees import (
    WALK_MAX_ROWS,
    GradientBoostingModel,
    RandomSurvivalForestModel,
    bin_times,
    forest_survival,
    impute,
)


def test_forest_survival_equals_scikit_survivals_curve_at_its_times(fitted, test_data):
    model = fitted["rsf"]
    forest = model.pipeline_[-1]
    X = test_data[0].head(20)
    expected = forest.predict_survival_function(
        model.pipeline_[:-1].transform(X.to_numpy()), return_array=True
    )
    times = forest.unique_times_[forest.unique_times_ <= model.max_time_]
    np.testing.assert_allclose(
        model.predict_survival(X, times), expected[:, : len(times)], rtol=1e-12
    )
    # the service's one-row call reads the same curve
    np.testing.assert_allclose(
        model.predict_survival(X.head(1), times), expected[:1, : len(times)], rtol=1e-12
    )


def test_the_walked_forest_equals_scikit_learns_tree_by_tree_prediction_bit_for_bit(
    fitted, test_data
):
    """The service's few rows walk the packaged forest's trees as flat arrays; a row on a
    split's threshold, just below or just above it, goes scikit-learn's way."""
    model = fitted["rsf"]
    forest = model.pipeline_[-1]
    X = impute(model.pipeline_[0], test_data[0].head(30).to_numpy(dtype=float))
    tree = forest.estimators_[0].tree_
    inner = np.flatnonzero(tree.children_left >= 0)[:10]
    on_splits = np.repeat(X[:1], 30, axis=0)
    for k, (f, c) in enumerate(zip(tree.feature[inner], tree.threshold[inner], strict=True)):
        c32 = np.float32(c)
        on_splits[3 * k : 3 * k + 3, f] = [c32, np.nextafter(c32, -1e9), np.nextafter(c32, 1e9)]
    for x in (X, X[:1], on_splits):
        np.testing.assert_array_equal(model._walked_survival(x), forest_survival(forest, x))
    assert len(X) <= WALK_MAX_ROWS  # the path predict_survival takes for these rows


def test_a_forest_kept_at_fixed_times_answers_them_exactly_and_is_far_smaller(fitted, test_data):
    import pickle

    model = fitted["rsf"]
    forest = model.pipeline_[-1]
    # before the first grid time, on grid times, between them, past follow-up
    times = [forest.unique_times_[0] / 2, forest.unique_times_[3], 365.0, model.max_time_ + 500]
    kept = model.for_times(times)
    X = test_data[0].head(25)
    np.testing.assert_allclose(
        kept.predict_survival(X, times), model.predict_survival(X, times), rtol=1e-12
    )
    np.testing.assert_allclose(
        kept.predict_survival(X, times[1:3]), model.predict_survival(X, times[1:3]), rtol=1e-12
    )
    assert kept.predict_survival(X, times)[:, 0].tolist() == [1.0] * len(X)
    assert len(pickle.dumps(kept)) * 5 < len(pickle.dumps(model))
    with pytest.raises(ValueError, match="keeps survival at"):
        kept.predict_survival(X, [100.5])
    with pytest.raises(TypeError, match="survival at those times only"):
        kept.predict(X)


def test_a_forest_kept_in_the_first_layout_unpickles_and_answers_the_same(fitted, test_data):
    """Packages made at b9c6a80 held one scikit-learn Tree per tree (values sliced to the
    kept times); they load into the flat layout and give the same survival."""
    import pickle

    from sklearn.tree._tree import Tree

    from models.trees import ForestAtTimes

    model = fitted["rsf"]
    times = [30.0, 180.0, 365.0]
    kept = model.for_times(times)
    forest = model.pipeline_[-1]
    column = np.searchsorted(forest.unique_times_, kept.times_, side="right") - 1
    old_trees = []
    for t in forest.estimators_:
        state = t.tree_.__getstate__()
        surv = np.where(column < 0, 1.0, state["values"][:, np.maximum(column, 0), 1])
        tree = Tree(t.tree_.n_features, np.ones(len(column), dtype=np.intp), len(column))
        tree.__setstate__(state | {"values": np.ascontiguousarray(surv[..., None])})
        old_trees.append(tree)
    flat = ("roots_", "left_", "right_", "feature_", "threshold_", "value_")
    old = ForestAtTimes.__new__(ForestAtTimes)
    old.__dict__.update({k: v for k, v in kept.__dict__.items() if k not in flat})
    old.__dict__["trees_"] = old_trees
    loaded = pickle.loads(pickle.dumps(old))
    X = test_data[0].head(10)
    np.testing.assert_allclose(
        loaded.predict_survival(X, times), model.predict_survival(X, times), rtol=1e-12
    )
    assert not hasattr(loaded, "trees_")


def test_other_models_are_their_own_model_at_any_times(fitted):
    assert fitted["cox"].for_times([180, 365]) is fitted["cox"]
    with pytest.raises(ValueError, match="finite and >= 0"):
        fitted["cox"].for_times([-1])


def test_boosting_matches_scikit_survivals_own_implementation(train, test_data):
    X, y = train
    params = {"n_estimators": 30, "max_depth": 2, "learning_rate": 0.1, "subsample": 0.8}
    params |= {"max_features": "sqrt"}
    ours = GradientBoostingModel(min_samples_leaf=15, **params).fit(X, y)
    order = np.argsort(y["time"], kind="stable")  # ours fits on time-ordered rows
    theirs = GradientBoostingSurvivalAnalysis(
        loss="coxph", min_samples_leaf=15, random_state=0, **params
    ).fit(X.to_numpy()[order], y[order])
    Xt = test_data[0].head(30)
    np.testing.assert_allclose(ours.predict(Xt), theirs.predict(Xt.to_numpy()), rtol=1e-9)
    times = np.array([30.0, 200.0, 600.0])
    expected = np.vstack([f(times) for f in theirs.predict_survival_function(Xt.to_numpy())])
    np.testing.assert_allclose(ours.predict_survival(Xt, times), expected, rtol=1e-9)


def test_binning_moves_each_time_to_the_nearest_grid_time():
    time = np.array([1.0, 2.0, 4.0, 9.0, 10.0, 30.0])
    event = np.array([True, False, True, True, True, False])
    binned = bin_times(time, event, n_points=3)  # grid: 1, 6.5, 10 (event-time quantiles)
    np.testing.assert_array_equal(binned, [1.0, 1.0, 6.5, 10.0, 10.0, 10.0])


def test_binning_can_be_turned_off():
    time = np.array([1.0, 2.0, 3.5])
    assert bin_times(time, np.ones(3, bool), None) is time


def test_forest_caps_the_rows_each_tree_sees_at_the_sample_count(train):
    X, y = train
    model = RandomSurvivalForestModel(n_estimators=3, max_samples=10_000, n_jobs=1).fit(X, y)
    assert model.pipeline_[-1].max_samples == len(X)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_estimators": 0}, "n_estimators must be an integer >= 1, got 0"),
        ({"min_samples_leaf": 2.5}, "min_samples_leaf must be an integer >= 1, got 2.5"),
        ({"max_samples": -1}, "max_samples must be an integer >= 1, got -1"),
        ({"n_time_points": 1}, "n_time_points must be an integer >= 2, got 1"),
    ],
)
def test_forest_refuses_invalid_parameters(params, match, train):
    with pytest.raises(ValueError, match=match):
        RandomSurvivalForestModel(**params).fit(*train)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_estimators": True}, "n_estimators must be an integer >= 1, got True"),
        ({"learning_rate": 0.0}, r"learning_rate must be a number in \(0, 1\], got 0.0"),
        ({"subsample": 2}, r"subsample must be a number in \(0, 1\], got 2"),
    ],
)
def test_boosting_refuses_invalid_parameters(params, match, train):
    with pytest.raises(ValueError, match=match):
        GradientBoostingModel(**params).fit(*train)


@pytest.fixture(scope="module")
def with_gaps(train, test_data):
    """Training and test features with missing values (the imputer's indicators in play)."""
    rng = np.random.default_rng(5)
    X, y = train[0].copy(), train[1]
    X.loc[:, :] = np.where(rng.random(X.shape) < 0.2, np.nan, X.to_numpy())
    Xt = test_data[0].head(25).to_numpy()
    Xt = np.where(rng.random(Xt.shape) < 0.2, np.nan, Xt)
    Xt[:, 2] = np.nan  # a column with no gap in training (no indicator)
    return X, y, Xt


def test_the_one_row_tree_paths_equal_scikit_learns_checked_ones(with_gaps):
    """The service's small calls skip scikit-learn's checks and per-tree dispatch (models/
    trees.py, ``FAST_MAX_ROWS``): the same numbers as the library's own predict."""
    X, y, Xt = with_gaps
    rsf = RandomSurvivalForestModel(n_estimators=15, n_jobs=1).fit(X, y)
    gbsa = GradientBoostingModel(n_estimators=40).fit(X, y)
    imputer = gbsa.pipeline_[0]
    assert len(imputer.indicator_.features_) > 0
    np.testing.assert_array_equal(impute(imputer, Xt), imputer.transform(Xt))
    np.testing.assert_allclose(gbsa._margin(Xt), gbsa.pipeline_.predict(Xt), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(rsf._risk(Xt), rsf.pipeline_.predict(Xt), rtol=1e-9, atol=1e-12)
    forest = rsf.pipeline_[-1]
    times = np.array([30.0, 200.0, 600.0])
    for row in range(3):
        x, ref = Xt[row : row + 1], Xt[row + 3 : row + 4]
        surv, effects = rsf.survival_and_contributions(x, ref, times)
        batch = rsf.pipeline_[:-1].transform(rsf._perturbed(x, ref))
        risk = forest.predict(batch)
        np.testing.assert_allclose(effects, risk[0] - risk[1:], rtol=1e-9, atol=1e-12)
        curve = forest.predict_survival_function(batch[:1], return_array=True)
        expected = step_lookup(forest.unique_times_, curve, np.minimum(times, rsf.max_time_), 1.0)
        np.testing.assert_allclose(surv, expected, rtol=1e-9, atol=1e-12)
    # the node tables the forest built for this are not packaged with it
    assert "_serving_tables" in vars(rsf)
    again = pickle.loads(pickle.dumps(rsf))
    assert "_serving_tables" not in vars(again)
    np.testing.assert_array_equal(again._risk(Xt), rsf._risk(Xt))
    with pytest.raises(ValueError, match="infinity"):
        gbsa.predict_survival_matrix(np.where(np.isnan(Xt[:1]), np.inf, Xt[:1]), [30.0])


def test_a_forest_kept_at_some_times_says_it_answers_those_only(fitted) -> None:
    forest = fitted["rsf"]
    kept = forest.for_times([180.0, 365.0])
    assert forest.answers([17.0, 365.0])
    assert kept.answers([180.0]) and kept.answers([365.0, 180.0])
    assert not kept.answers([200.0]) and not kept.answers([180.0, 90.0])
