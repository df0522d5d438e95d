"""Several models asked together (a stack's fold models, for its risk interval): the kept
forests' and the XGBoost boosters' trees walked as flat arrays give each model's own answer."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import xgboost as xgb

from cohort.vocabulary import LANDMARK_DAY
from models import SurvivalModel
from models.base import survival_by_kind
from models.flat_trees import Cached, leaf_sums_together, leaves_together
from models.stack import StackModel
from models.trees import ForestAtTimes
from models.xgb import BoosterTrees, XGBAFTModel, XGBCoxModel

EDGES = [30.0, 182.625, 365.25, 730.5]
HORIZONS = [180.0, 365.0, 730.0]
BASES = ("cox", "rsf", "gbsa", "xgb_cox", "xgb_aft", "baseline")


@pytest.fixture(scope="module")
def folds(train, new_model) -> list[tuple[list[tuple[str, SurvivalModel]], np.ndarray]]:
    """Three folds' base models and weights per band, some of them 0."""
    X, y = train
    rng = np.random.default_rng(7)
    out = []
    for fold in range(3):
        rows = np.arange(len(X)) % 3 != fold
        members = [(name, new_model(name).fit(X[rows], y[rows])) for name in BASES]
        weights = rng.dirichlet(np.ones(len(BASES)), size=len(EDGES) + 1)
        weights[:, 2 * fold] = 0.0  # a base without weight in every band of this fold
        weights[fold, 2 * fold + 1] = 0.0  # and one without weight in one band
        out.append((members, weights / weights.sum(axis=1, keepdims=True)))
    return out


@pytest.fixture(scope="module")
def fold_stacks(folds) -> list[StackModel]:
    """The fold stacks as ``training.stacking.fold_stacks`` makes them: each fold's base
    models (the forest kept at the horizons) with that fold's weights."""
    return [
        StackModel.of_fitted([(n, m.for_times(HORIZONS)) for n, m in members], EDGES, w, 365.0)
        for members, w in folds
    ]


@pytest.fixture(scope="module")
def rows(test_data) -> np.ndarray:
    """Rows in every band, some features missing and some far out of range."""
    X = test_data[0].head(40).to_numpy(dtype=float).copy()
    X[:, list(test_data[0].columns).index(LANDMARK_DAY)] = np.resize([0, 90, 300, 500, 2000], 40)
    rng = np.random.default_rng(3)
    X[rng.random(X.shape) < 0.15] = np.nan
    X[::7, 1] = 1e6
    return X


def test_fold_stacks_asked_together_answer_as_each_stack_alone(fold_stacks, rows) -> None:
    for i in range(len(rows)):
        x = rows[i : i + 1]
        together = survival_by_kind(fold_stacks, x, [HORIZONS] * len(fold_stacks))
        for stack, answer in zip(fold_stacks, together, strict=True):
            np.testing.assert_allclose(
                answer, stack.predict_survival_matrix(x, HORIZONS), rtol=0, atol=1e-12
            )
    # a batch too, at unsorted, repeated times
    times = [730.0, 180.0, 365.0, 180.0]
    together = survival_by_kind(fold_stacks, rows, [times] * len(fold_stacks))
    for stack, answer in zip(fold_stacks, together, strict=True):
        np.testing.assert_allclose(
            answer, stack.predict_survival_matrix(rows, times), rtol=0, atol=1e-12
        )


def test_a_stacks_served_survival_asks_its_other_models_by_kind_and_is_unchanged(
    folds, rows
) -> None:
    ref = np.nanmedian(rows, axis=0)[None, :]
    for members, weights in folds:
        stack = StackModel.of_fitted(members, EDGES, weights, 365.0)
        for i in range(0, len(rows), 3):
            x = rows[i : i + 1]
            surv, _ = stack.survival_and_contributions(x, ref, HORIZONS)
            expected = stack.predict_survival_matrix(x, HORIZONS)
            np.testing.assert_allclose(surv, expected, rtol=0, atol=1e-12)


def test_models_of_different_kinds_are_answered_in_their_own_order(fold_stacks, rows) -> None:
    models: list[SurvivalModel] = [m for s in fold_stacks for m in s.models_][::-1]
    x = rows[:1]
    together = survival_by_kind(models, x, [HORIZONS[:2]] * len(models))
    for model, answer in zip(models, together, strict=True):
        np.testing.assert_array_equal(answer, model.predict_survival_matrix(x, HORIZONS[:2]))


def _on_splits(rows: np.ndarray, feature: np.ndarray, split: np.ndarray) -> np.ndarray:
    """Copies of ``rows``, each with one feature set to a split value or the float32 just
    below or above it: where a walk's ``<`` against ``<=`` would show."""
    out = np.resize(rows, (3 * len(split), rows.shape[1]))
    for k, (f, c) in enumerate(zip(feature, split.astype(np.float32), strict=True)):
        out[3 * k : 3 * k + 3, f] = [c, np.nextafter(c, -np.inf), np.nextafter(c, np.inf)]
    return out


def test_kept_forests_walked_together_take_scikit_learns_way_at_every_split(folds, rows):
    for members, _ in folds:
        forest = dict(members)["rsf"]
        tree = forest.pipeline_[-1].estimators_[0].tree_
        inner = np.flatnonzero(tree.children_left >= 0)[:20]
        # the imputed columns the trees split on are the input's own (indicators come after)
        inner = inner[tree.feature[inner] < rows.shape[1]]
        x = _on_splits(rows, tree.feature[inner], tree.threshold[inner])
        kept = forest.for_times(HORIZONS)
        np.testing.assert_allclose(
            kept.predict_survival_matrix(x, HORIZONS),
            forest.predict_survival_matrix(x, HORIZONS),
            rtol=0,
            atol=1e-12,
        )


@pytest.mark.parametrize("kind", [XGBCoxModel, XGBAFTModel])
def test_boosters_walked_as_flat_trees_give_xgboosts_own_margins(fold_stacks, rows, kind) -> None:
    """The same float32 sums in the same order: equal to the last bit, missing values and
    values on the splits too."""
    models = [m for s in fold_stacks for m in s.models_ if type(m) is kind]
    assert len(models) >= 2
    for model in models:
        trees = BoosterTrees.of(model.booster_)
        assert trees is not None
        inner = np.flatnonzero(trees.trees.left >= 0)[:40]
        x = np.vstack([rows, _on_splits(rows, trees.trees.feature[inner], trees.value[inner])])
        leaves = leaves_together([trees], lambda t: t.trees, [x])[0]
        expected = model.booster_.inplace_predict(
            x.astype(np.float32), predict_type="margin", missing=np.nan
        )
        np.testing.assert_array_equal(trees.margin(leaves, len(x)), expected)
    # every booster at once, their margins summed in the compiled walk
    x = np.vstack([rows, rows[:3] * 2])
    together = leaf_sums_together(
        models,
        lambda m: BoosterTrees.of(m.booster_).trees,
        lambda m: BoosterTrees.of(m.booster_).value,
        [BoosterTrees.of(m.booster_).base for m in models],
        [x] * len(models),
    )
    for model, margin in zip(models, together, strict=True):
        expected = model.booster_.inplace_predict(
            x.astype(np.float32), predict_type="margin", missing=np.nan
        )
        np.testing.assert_array_equal(margin, expected)


def test_a_booster_it_cannot_reproduce_is_left_to_xgboost(train, rows) -> None:
    X, y = train
    plain = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(X, label=y["time"]), 5)
    assert BoosterTrees.of(plain) is None  # an identity link: no log base margin
    # more rows than a service call: one DMatrix read by every booster, the same answer
    models = [XGBCoxModel(n_estimators=20, nthread=1).fit(X, y), XGBAFTModel(n_estimators=20)]
    models[1].fit(X, y)
    batch = np.vstack([rows] * 2)
    assert len(batch) > 64
    together = XGBCoxModel.survival_of_each(models, batch, [HORIZONS] * 2)
    for model, answer in zip(models, together, strict=True):
        np.testing.assert_array_equal(answer, model.predict_survival_matrix(batch, HORIZONS))


def test_forests_asked_together_share_one_packing_that_is_never_pickled(fold_stacks, rows) -> None:
    kept = [m for s in fold_stacks for m in s.models_ if isinstance(m, ForestAtTimes)]
    forests = [pickle.loads(pickle.dumps(f)) for f in kept]  # none packed yet
    assert len(forests) == 3
    sizes = [len(pickle.dumps(f)) for f in forests]
    alone = [f.predict_survival_matrix(rows, HORIZONS) for f in forests]
    # asked in a pair, then all three: the packing grows to hold every forest once
    survival_by_kind(forests[:2], rows, [HORIZONS] * 2)
    assert vars(forests[0])[Cached._CACHE] is not vars(forests[2]).get(Cached._CACHE)
    together = survival_by_kind(forests[::-1], rows, [HORIZONS] * len(forests))[::-1]
    packings = {id(vars(f)[Cached._CACHE]["joint_trees"]) for f in forests}
    assert len(packings) == 1
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_array_equal(a, b)
    assert [len(pickle.dumps(f)) for f in forests] == sizes
    again = pickle.loads(pickle.dumps(forests[0]))
    assert Cached._CACHE not in vars(again)
    np.testing.assert_array_equal(again.predict_survival_matrix(rows, HORIZONS), alone[0])


def test_models_asked_together_refuse_a_matrix_of_other_columns(fold_stacks, rows) -> None:
    with pytest.raises(ValueError, match=r"2-D matrix with each fitted model's columns"):
        survival_by_kind(fold_stacks, rows[:, :-1], [HORIZONS] * len(fold_stacks))
    with pytest.raises(ValueError, match=r"2-D matrix"):
        survival_by_kind(fold_stacks, rows[0], [HORIZONS] * len(fold_stacks))
