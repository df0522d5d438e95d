"""Penalised Cox and the static-covariate baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.preprocessing import StandardScaler
from sksurv.linear_model import CoxnetSurvivalAnalysis

from models.base import to_surv
from models.breslow import cox_negative_log_likelihood
from models.cox import (
    CV_STEPS,
    CV_TOL,
    BaselineModel,
    CoxModel,
    _path_coefficients,
    inner_splits,
    is_marker_feature,
    linear_margin,
    partial_log_likelihoods,
    penalty_path,
)
from tests.models.conftest import simulate


def test_cox_recovers_the_true_log_hazard_ratios(fitted, truth):
    model = fitted["cox"]
    scale = model.pipeline_.named_steps["scale"].scale_
    per_unit = model.coef_ / scale  # no missing indicators: the training data has no NaN
    for feature, coef in zip(model.feature_names_in_, per_unit, strict=True):
        assert coef == pytest.approx(truth.log_hr[feature], abs=0.25), feature


def test_baseline_ignores_marker_columns(fitted, test_data):
    X = test_data[0].head(50)
    changed = X.assign(ctc_total_last=X["ctc_total_last"] * 10 + 5, afp_log_slope=-3.0)
    model = fitted["baseline"]
    np.testing.assert_array_equal(model.predict(changed), model.predict(X))
    np.testing.assert_array_equal(
        model.predict_survival(changed, [365]), model.predict_survival(X, [365])
    )


def test_baseline_keeps_landmark_day_and_covariates_by_default(fitted, truth):
    assert fitted["baseline"].columns_ == truth.covariates


def test_baseline_uses_exactly_the_columns_it_is_given(train):
    X, y = train
    model = BaselineModel(columns=["age", "microvascular_invasion"]).fit(X, y)
    assert model.columns_ == ["age", "microvascular_invasion"]
    assert list(model.feature_names_in_) == list(X.columns)


def test_baseline_refuses_columns_that_are_not_in_x(train):
    X, y = train
    with pytest.raises(ValueError, match=r"baseline columns \['stage'\] are not in X"):
        BaselineModel(columns=["age", "stage"]).fit(X, y)


def test_baseline_refuses_a_single_string_for_columns(train):
    X, y = train
    with pytest.raises(TypeError, match="columns must be a sequence of column names, got 'age'"):
        BaselineModel(columns="age").fit(X, y)


def test_baseline_refuses_a_single_string_for_marker_prefixes(train):
    X, y = train
    with pytest.raises(TypeError, match="marker_prefixes must be a sequence of str, got 'ctc'"):
        BaselineModel(marker_prefixes="ctc").fit(X, y)


def test_baseline_refuses_a_frame_of_markers_only(train, truth):
    X, y = train
    with pytest.raises(ValueError, match="no covariate column"):
        BaselineModel().fit(X[truth.markers], y)


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("ctc_total_last", True),
        ("ctc_mesenchymal_max", True),
        ("afp_log_slope", True),
        ("afp", True),
        ("landmark_day", False),
        ("age", False),
        ("ctcae_grade", False),
    ],
)
def test_a_marker_feature_is_a_marker_code_then_an_underscore(column, expected):
    assert is_marker_feature(column, ("ctc", "afp")) is expected


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"alpha": 0}, "alpha must be a number > 0, .auto. or .cv., got 0"),
        ({"alpha": "0.1"}, "alpha must be a number > 0, .auto. or .cv., got '0.1'"),
        ({"cv_folds": 1}, "cv_folds must be an int >= 2, got 1"),
        ({"l1_ratio": 0}, r"l1_ratio must be in \(0, 1\], got 0"),
        ({"l1_ratio": 1.5}, r"l1_ratio must be in \(0, 1\], got 1.5"),
    ],
)
def test_cox_refuses_invalid_penalties(params, match, train):
    with pytest.raises(ValueError, match=match):
        CoxModel(**params).fit(*train)


def test_a_stronger_penalty_shrinks_the_coefficients(train):
    weak, strong = CoxModel(alpha=0.001).fit(*train), CoxModel(alpha=0.2).fit(*train)
    assert np.abs(strong.coef_).sum() < np.abs(weak.coef_).sum()


def test_pure_lasso_drops_noise_features(train):
    model = CoxModel(alpha=0.05, l1_ratio=1.0).fit(*train)
    coef = dict(zip(model.feature_names_in_, model.coef_, strict=False))
    assert coef["sex_M"] == 0.0


def _design(train):
    X, y = train
    design = StandardScaler().fit_transform(X.to_numpy(dtype=float))
    return design, y["event"], y["time"].astype(float)


def test_the_penalty_path_starts_where_every_coefficient_is_zero(train):
    design, event, time = _design(train)
    path = penalty_path(design, event, time, 0.01, 0.5)
    assert path[-1] == pytest.approx(0.01)
    assert np.all(np.diff(path) < 0)
    y = to_surv(event, time)
    with pytest.warns(UserWarning, match="all coefficients are zero"):
        at_max = CoxnetSurvivalAnalysis(alphas=[path[0]], l1_ratio=0.5).fit(design, y)
    below = CoxnetSurvivalAnalysis(alphas=[path[0] * 0.9], l1_ratio=0.5).fit(design, y)
    assert np.abs(at_max.coef_).max() < 1e-8
    assert np.abs(below.coef_).max() > 0


def test_the_penalty_path_is_just_alpha_when_alpha_already_zeroes_everything(train):
    design, event, time = _design(train)
    np.testing.assert_array_equal(penalty_path(design, event, time, 50.0, 0.5), [50.0])


def test_the_warm_started_path_lands_on_the_single_alpha_solution(train):
    X, y = train
    model = CoxModel(alpha=0.01).fit(X, y)
    design = model.pipeline_[:-1].transform(X.to_numpy(dtype=float))
    cold = CoxnetSurvivalAnalysis(alphas=[0.01], l1_ratio=0.5, tol=1e-10).fit(design, y)
    np.testing.assert_allclose(model.coef_, cold.coef_[:, -1], atol=1e-3)


@pytest.mark.parametrize("name", ["cox", "baseline"])
def test_the_linear_margin_equals_the_fitted_pipelines_predict(name, new_model, train, test_data):
    X, y = train
    # a column missing in training and rows missing values at predict time
    X = X.assign(empty=np.nan)
    model = new_model(name).fit(X, y)
    Xt = test_data[0].assign(empty=np.nan).copy()
    Xt.iloc[::7, 0] = np.nan
    Xt.iloc[::5, 2] = np.nan
    matrix = Xt.to_numpy(dtype=float)
    if name == "baseline":
        matrix = matrix[:, model.column_index_]
    np.testing.assert_allclose(
        linear_margin(model.pipeline_, matrix),
        model.pipeline_.predict(matrix),
        rtol=1e-10,
        atol=1e-12,
    )


# ---------------------------------------------------------------- the penalty by inner CV


def _noisy(n: int, seed: int, noise: int = 12) -> tuple[pd.DataFrame, np.ndarray]:
    """The conftest's data plus ``noise`` pure-noise columns (a penalty has work to do)."""
    X, y = simulate(n, seed)
    rng = np.random.default_rng(seed + 100)
    extra = pd.DataFrame(rng.normal(size=(n, noise)), columns=[f"noise_{j}" for j in range(noise)])
    return pd.concat([X, extra], axis=1), y


def test_the_inner_cv_alpha_is_the_grid_point_of_the_best_cross_validated_likelihood(train):
    model = CoxModel(alpha="cv").fit(*train)
    assert len(model.cv_alphas_) >= CV_STEPS and np.all(np.diff(model.cv_alphas_) < 0)
    assert model.alpha_ == model.cv_alphas_[int(np.nanargmax(model.cv_scores_))]
    assert model.tuned_params() == {"alpha": model.alpha_}
    # the top of the grid zeroes every coefficient: the data beat it
    assert model.cv_scores_[0] < np.nanmax(model.cv_scores_)


def test_cox_chooses_its_penalty_by_inner_cv_by_default(train):
    assert CoxModel().alpha == "cv"
    assert CoxModel().fit(*train).alpha_ == CoxModel(alpha="cv").fit(*train).alpha_


def test_inner_folds_keep_every_row_of_a_patient_on_one_side():
    groups = np.repeat([f"p{i}" for i in range(40)], 3)
    event = np.tile([True, False, False], 40)
    splits = inner_splits(groups, event, 5, seed=0)
    assert len(splits) == 5
    for train, test in splits:
        assert not set(groups[train]) & set(groups[test])
    held_out = np.concatenate([test for _, test in splits])
    assert sorted(held_out) == list(range(len(groups)))


def test_grouping_the_inner_cv_by_patient_stops_copies_of_a_patient_rewarding_overfit():
    # each patient's row three times (as a landmark table repeats a patient): split by row,
    # a held-out row's copies are in the inner training set and the weakest penalty wins
    X, y = _noisy(150, seed=5)
    X3, y3 = pd.concat([X] * 3, ignore_index=True), np.concatenate([y] * 3)
    patients = np.tile(np.arange(150), 3)
    by_row = CoxModel(alpha="cv").fit(X3, y3)
    by_patient = CoxModel(alpha="cv").fit(X3, y3, groups=patients)
    assert by_patient.alpha_ > 2 * by_row.alpha_


def test_the_inner_cv_uses_only_the_rows_it_is_fitted_on(train):
    # what training relies on: a fold model never sees its held-out patients, so changing
    # rows outside the fit cannot move the chosen penalty
    X, y = _noisy(300, seed=6)
    groups = np.arange(300)
    first = CoxModel(alpha="cv").fit(X.iloc[:200], y[:200], groups=groups[:200])
    y_changed = y.copy()
    y_changed["time"][200:] = 1.0
    again = CoxModel(alpha="cv").fit(X.iloc[:200], y_changed[:200], groups=groups[:200])
    assert again.alpha_ == first.alpha_
    np.testing.assert_array_equal(again.coef_, first.coef_)


def test_groups_must_label_every_row(train):
    X, y = train
    with pytest.raises(ValueError, match="groups has 3 labels but X has 400 rows"):
        CoxModel().fit(X, y, groups=["a", "b", "c"])


def test_the_groups_are_not_kept_with_the_fitted_model(train):
    X, y = train
    model = CoxModel().fit(X, y, groups=np.arange(len(X)))
    assert model._groups is None


def test_a_fixed_alpha_is_used_as_given(train):
    model = CoxModel(alpha=0.02).fit(*train)
    assert model.alpha_ == 0.02 and not hasattr(model, "cv_alphas_")


def test_the_partial_likelihoods_of_many_predictors_are_each_columns_own(train):
    X, y = train
    rng = np.random.default_rng(3)
    eta = rng.normal(size=(len(X), 4)) * [0.1, 1.0, 5.0, 40.0]  # 40: a wide spread
    time = np.round(y["time"] / 30) * 30  # many ties
    got = partial_log_likelihoods(eta, time, y["event"])
    want = [-cox_negative_log_likelihood(eta[:, j], time, y["event"]) for j in range(4)]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_a_cox_model_pickled_before_the_inner_cv_loads_and_clones(train):
    model = CoxModel(alpha="auto").fit(*train)
    state = dict(model.__getstate__())
    del state["cv_folds"], state["random_state"]
    old = CoxModel.__new__(CoxModel)
    old.__setstate__(state)
    np.testing.assert_array_equal(old.predict(train[0]), model.predict(train[0]))
    assert clone(old).get_params() == {**model.get_params(), "alpha": "auto"}


@pytest.mark.parametrize("fits_up_to", [0, 3, 7, 12])
def test_a_path_that_overflows_is_cut_at_the_longest_prefix_that_fits(
    monkeypatch: pytest.MonkeyPatch, fits_up_to: int
) -> None:
    """Coxnet raises ArithmeticError when a path overflows at small alphas (tiny or
    separable data, hard to provoke on purpose): here it does so past ``fits_up_to``
    alphas. The inner CV keeps the longest prefix that fits — the same columns a fit of
    that prefix gives — found in a few fits, not one per alpha."""
    rng = np.random.default_rng(4)
    design = rng.normal(size=(120, 4))
    time = np.exp(rng.normal(size=120)) * 300
    event = rng.random(120) < 0.7
    top = penalty_path(design, event, time, np.finfo(float).tiny, 0.5)[0]
    alphas = np.geomspace(top, top * 1e-3, 13)
    calls: list[int] = []

    class Overflowing(CoxnetSurvivalAnalysis):
        def fit(self, X, y):  # type: ignore[no-untyped-def]
            calls.append(len(self.alphas))
            if len(self.alphas) > fits_up_to:
                raise ArithmeticError("overflow in the path (simulated)")
            return super().fit(X, y)

    monkeypatch.setattr("models.cox.CoxnetSurvivalAnalysis", Overflowing)
    coef = _path_coefficients(design, event, time, alphas, 0.5, 100_000)
    assert coef.shape[1] <= fits_up_to
    if fits_up_to:
        alone = CoxnetSurvivalAnalysis(
            alphas=alphas[:fits_up_to], l1_ratio=0.5, max_iter=100_000, tol=CV_TOL
        ).fit(design, to_surv(event, time))
        np.testing.assert_array_equal(coef, alone.coef_)
    assert len(calls) <= 5  # the whole path, then a bisection of 13
