"""XGBoost Cox (with a Breslow baseline) and AFT models."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb
from scipy.stats import norm
from sksurv.nonparametric import kaplan_meier_estimator

from models.xgb import XGBAFTModel, XGBCoxModel, aft_survival

HORIZONS = np.array([90.0, 180.0, 365.0, 730.0])


def _km(y, times):
    km_times, km_surv = kaplan_meier_estimator(y["event"], y["time"])
    return km_surv[np.searchsorted(km_times, times, side="right") - 1]


@pytest.fixture(scope="module")
def calibration_data(truth):
    return truth.simulate(2000, 11), truth.simulate(3000, 12)


@pytest.mark.parametrize(
    "model",
    [
        XGBCoxModel(nthread=1),
        # exponential times are log T = −log hazard + a minimum-Gumbel error of scale 1
        XGBAFTModel(distribution="extreme", scale=1.0, nthread=1),
    ],
    ids=["xgb_cox", "xgb_aft_extreme"],
)
def test_absolute_risks_are_calibrated_against_kaplan_meier(model, calibration_data):
    (X, y), (Xt, yt) = calibration_data
    predicted = model.fit(X, y).predict_survival(Xt, HORIZONS).mean(axis=0)
    np.testing.assert_allclose(predicted, _km(yt, HORIZONS), atol=0.05)


def test_cox_margin_is_the_boosters_log_hazard_ratio(fitted, test_data):
    model = fitted["xgb_cox"]
    X = test_data[0].head(20)
    hazard_ratio = model.booster_.predict(xgb.DMatrix(X.to_numpy()))
    np.testing.assert_allclose(np.exp(model.predict(X)), hazard_ratio, rtol=1e-5)


def test_aft_survival_is_the_error_distribution_at_the_log_time(fitted, test_data):
    model = fitted["xgb_aft"]
    X = test_data[0].head(5)
    mu = model.booster_.predict(xgb.DMatrix(X.to_numpy()), output_margin=True)
    expected = norm.sf((np.log(365.0) - mu) / model.scale)
    np.testing.assert_allclose(model.predict_survival(X, [365.0])[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(model.predict(X), -mu, rtol=1e-6)


@pytest.mark.parametrize(
    ("distribution", "cdf"),
    [
        ("normal", norm.cdf),
        ("logistic", lambda z: 1 / (1 + np.exp(-z))),
        ("extreme", lambda z: 1 - np.exp(-np.exp(z))),
    ],
)
def test_aft_survival_is_one_minus_the_cdf(distribution, cdf):
    z = np.array([[-30.0, -1.0, 0.0, 0.7, 5.0]])
    np.testing.assert_allclose(aft_survival(z, distribution), 1 - cdf(z), atol=1e-12)


@pytest.mark.parametrize("distribution", ["normal", "logistic", "extreme"])
def test_every_aft_distribution_fits_and_gives_curves(distribution, train, test_data):
    model = XGBAFTModel(distribution=distribution, n_estimators=50, nthread=1).fit(*train)
    surv = model.predict_survival(test_data[0].head(10), [0.0, 365.0, 1e6])
    assert (surv[:, 0] == 1.0).all() and (np.diff(surv, axis=1) <= 0).all()


def test_cox_without_subsampling_is_reproducible_across_thread_counts(train, test_data):
    params = {"n_estimators": 50, "subsample": 1.0, "colsample_bytree": 1.0}
    one = XGBCoxModel(nthread=1, **params).fit(*train).predict(test_data[0])
    two = XGBCoxModel(nthread=2, **params).fit(*train).predict(test_data[0])
    np.testing.assert_allclose(one, two, rtol=1e-6)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_estimators": 0}, "n_estimators must be an integer >= 1, got 0"),
        ({"nthread": 1.5}, "nthread must be an integer >= 1, got 1.5"),
        ({"learning_rate": 3}, r"learning_rate must be a number in \(0, 1\], got 3"),
        ({"subsample": 0}, r"subsample must be a number in \(0, 1\], got 0"),
    ],
)
def test_cox_refuses_invalid_boosting_parameters(params, match, train):
    with pytest.raises(ValueError, match=match):
        XGBCoxModel(**params).fit(*train)


def test_aft_refuses_an_unknown_distribution(train):
    with pytest.raises(ValueError, match=r"distribution must be one of .* got 'weibull'"):
        XGBAFTModel(distribution="weibull").fit(*train)


def test_aft_refuses_a_non_positive_scale(train):
    with pytest.raises(ValueError, match="scale must be a number > 0, got -1"):
        XGBAFTModel(scale=-1).fit(*train)


@pytest.mark.parametrize("name", ["xgb_cox", "xgb_aft"])
def test_one_row_margins_read_in_place_equal_the_dmatrix_margins(fitted, test_data, name):
    """The service's one-row path (the booster's trees walked as flat arrays) gives the batch
    path's margins to the last bit, NaN too."""
    model = fitted[name]
    X = test_data[0].head(80).to_numpy(dtype=float).copy()
    X[np.random.default_rng(0).random(X.shape) < 0.2] = np.nan
    batch = model.booster_.predict(xgb.DMatrix(X, missing=np.nan), output_margin=True)
    one_by_one = np.concatenate([model._raw_margin(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_array_equal(one_by_one, batch)
    assert len(X) > 64  # the batch above went through the DMatrix path itself
    np.testing.assert_array_equal(model._raw_margin(X), batch)
