"""The SurvivalModel contract, checked for every model in the zoo."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sksurv.metrics import concordance_index_censored
from sksurv.util import Surv

from models import MODEL_NAMES, make_model
from models.base import check_times

# sklearn.utils.estimator_checks.parametrize_with_checks cannot run here: its checks
# generate y as plain float/int vectors, while every survival model needs a structured
# (event, time) array, and they pass bare numpy X where ctcmon models require named
# DataFrame columns. The contract those checks cover (get_params/set_params/clone,
# fit returns self, fitted attributes with a trailing underscore, unfitted errors,
# deterministic refits, pickling) is tested directly below.

ALL = pytest.mark.parametrize("name", MODEL_NAMES)


@ALL
def test_risk_ranks_held_out_patients_better_than_chance(name, fitted, test_data):
    X, y = test_data
    c_index = concordance_index_censored(y["event"], y["time"], fitted[name].predict(X))[0]
    # The baseline sees no marker, and the markers carry much of the simulated signal.
    assert c_index > (0.58 if name == "baseline" else 0.65)


def test_monitoring_with_markers_beats_the_static_baseline(fitted, test_data):
    X, y = test_data
    cox, baseline = (fitted[n].score(X, y) for n in ("cox", "baseline"))
    assert cox > baseline + 0.05


@ALL
@settings(max_examples=25, deadline=None)
@given(
    rows=st.lists(st.integers(0, 999), min_size=1, max_size=5),
    times=st.lists(st.floats(0, 5000, allow_nan=False), min_size=1, max_size=8),
)
def test_survival_is_a_probability_non_increasing_in_time(name, fitted, test_data, rows, times):
    X, _ = test_data
    ordered = np.sort(times)
    surv = fitted[name].predict_survival(X.iloc[rows], ordered)
    assert surv.shape == (len(rows), len(times))
    assert ((surv >= 0) & (surv <= 1)).all()
    assert (np.diff(surv, axis=1) <= 0).all()


@ALL
def test_survival_starts_at_one_and_falls_over_follow_up(name, fitted, test_data):
    surv = fitted[name].predict_survival(test_data[0].head(50), [0.0, 1000.0])
    assert np.allclose(surv[:, 0], 1.0, atol=0.01)
    assert surv[:, 1].mean() < 0.9


@ALL
def test_survival_is_flat_beyond_the_longest_training_time(name, fitted, test_data):
    model = fitted[name]
    surv = model.predict_survival(test_data[0].head(20), [model.max_time_, 10 * model.max_time_])
    np.testing.assert_array_equal(surv[:, 0], surv[:, 1])


@ALL
def test_survival_keeps_the_callers_order_of_times(name, fitted, test_data):
    X = test_data[0].head(10)
    times = np.array([730.0, 90.0, 365.0, 90.0])
    forward = fitted[name].predict_survival(X, np.sort(times))
    np.testing.assert_allclose(
        fitted[name].predict_survival(X, times), forward[:, [3, 0, 2, 1]], rtol=0
    )


@ALL
def test_risk_at_a_horizon_is_one_minus_survival(name, fitted, test_data):
    X = test_data[0].head(10)
    np.testing.assert_allclose(
        fitted[name].predict_risk(X, [180, 365]), 1 - fitted[name].predict_survival(X, [180, 365])
    )


@ALL
def test_higher_risk_score_means_lower_survival_on_average(name, fitted, test_data):
    X = test_data[0]
    model = fitted[name]
    risk, surv = model.predict(X), model.predict_survival(X, [365.0])[:, 0]
    high = risk > np.median(risk)
    assert surv[high].mean() < surv[~high].mean()


@ALL
def test_pickling_round_trip_gives_identical_predictions(name, fitted, test_data):
    X = test_data[0].head(50)
    model = fitted[name]
    clone_ = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone_.predict(X), model.predict(X))
    np.testing.assert_array_equal(
        clone_.predict_survival(X, [90, 365]), model.predict_survival(X, [90, 365])
    )


@ALL
def test_refitting_with_the_same_seed_gives_identical_predictions(name, new_model, train):
    X, y = train
    first, second = new_model(name).fit(X, y), new_model(name).fit(X, y)
    np.testing.assert_array_equal(first.predict(X), second.predict(X))


@ALL
def test_missing_values_are_accepted_in_fit_and_predict(name, new_model, train):
    X, y = train
    holes = X.mask(np.random.default_rng(0).random(X.shape) < 0.15)
    holes["sex_M"] = np.nan  # a column with no observed value at all
    model = new_model(name).fit(holes, y)
    assert np.isfinite(model.predict(holes)).all()
    assert np.isfinite(model.predict_survival(holes, [100, 400])).all()


@ALL
def test_fit_returns_the_model_and_records_the_feature_names(name, new_model, train):
    X, y = train
    model = new_model(name)
    assert model.fit(X, y) is model
    assert list(model.feature_names_in_) == list(X.columns)
    assert model.n_features_in_ == X.shape[1]


@ALL
def test_params_round_trip_through_get_set_params_and_clone(name):
    model = make_model(name)
    params = model.get_params()
    assert make_model(name, **params).get_params() == params
    key = next(iter(params))
    cloned = clone(model)
    assert cloned.get_params() == params and cloned is not model
    assert model.set_params(**{key: params[key]}) is model


@ALL
def test_predicting_before_fit_raises_not_fitted(name, test_data):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        make_model(name).predict(test_data[0])


@ALL
def test_fit_does_not_modify_the_callers_frame(name, new_model, train):
    X, y = train
    before = X.copy()
    new_model(name).fit(X, y)
    pd.testing.assert_frame_equal(X, before)


def test_an_event_at_the_landmark_day_is_accepted(new_model, train):
    X, y = train
    time = y["time"].copy()
    time[:5] = 0.0
    y0 = Surv.from_arrays(event=y["event"], time=time)
    for name in MODEL_NAMES:
        assert np.isfinite(new_model(name).fit(X, y0).predict(X)).all()


def test_fit_refuses_a_numpy_matrix(train):
    X, y = train
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        make_model("cox").fit(X.to_numpy(), y)


def test_fit_refuses_non_numeric_columns(train):
    X, y = train
    with pytest.raises(TypeError, match=r"must be numeric.*\['site'\]"):
        make_model("cox").fit(X.assign(site="a"), y)


def test_fit_refuses_non_string_column_names(train):
    X, y = train
    with pytest.raises(TypeError, match="names must be strings"):
        make_model("cox").fit(X.set_axis(range(X.shape[1]), axis=1), y)


def test_fit_refuses_infinite_values_naming_the_column(train):
    X, y = train
    bad = X.copy()
    bad.loc[3, "age"] = np.inf
    with pytest.raises(ValueError, match=r"inf in columns \['age'\]"):
        make_model("cox").fit(bad, y)


def test_fit_refuses_y_that_is_not_a_structured_array(train):
    X, y = train
    with pytest.raises(TypeError, match=r"Surv\.from_arrays"):
        make_model("cox").fit(X, y["time"])


def test_fit_refuses_y_of_another_length(train):
    X, y = train
    with pytest.raises(ValueError, match="y has 399 rows but X has 400"):
        make_model("cox").fit(X, y[1:])


def test_fit_refuses_negative_times(train):
    X, y = train
    bad = Surv.from_arrays(event=y["event"], time=np.r_[-3.0, y["time"][1:]])
    with pytest.raises(ValueError, match=r"finite and >= 0, got e.g. \[-3.0\]"):
        make_model("cox").fit(X, bad)


def test_fit_refuses_data_without_any_event(train):
    X, y = train
    with pytest.raises(ValueError, match="no event"):
        make_model("cox").fit(X, Surv.from_arrays(event=np.zeros(len(X), bool), time=y["time"]))


def test_predict_refuses_missing_or_unexpected_columns(fitted, test_data):
    X = test_data[0]
    with pytest.raises(ValueError, match=r"missing \['age'\], unexpected \['height'\]"):
        fitted["cox"].predict(X.drop(columns="age").assign(height=1.0))


def test_predict_accepts_columns_in_another_order(fitted, test_data):
    X = test_data[0].head(20)
    np.testing.assert_array_equal(
        fitted["cox"].predict(X[X.columns[::-1]]), fitted["cox"].predict(X)
    )


@pytest.mark.parametrize("times", [[-1.0], [np.nan], [[1.0, 2.0]]])
def test_survival_times_must_be_finite_non_negative_and_one_dimensional(times):
    with pytest.raises(ValueError, match="times must be"):
        check_times(times)


def test_score_is_harrells_concordance(fitted, test_data):
    X, y = test_data
    expected = concordance_index_censored(y["event"], y["time"], fitted["cox"].predict(X))[0]
    assert fitted["cox"].score(X, y) == pytest.approx(expected)


@pytest.mark.slow
@ALL
def test_default_models_fit_a_larger_table_and_rank_held_out_risk(name, truth, test_data):
    # the defaults (200 trees, bootstrap caps, two XGBoost threads) rather than test sizes
    X, y = truth.simulate(3000, 21)
    model = make_model(name).fit(X, y)
    assert model.score(*test_data) > (0.58 if name == "baseline" else 0.65)
