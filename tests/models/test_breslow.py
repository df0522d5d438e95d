"""Breslow baseline hazard: known answers, lifelines and scikit-survival agreement."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines import CoxPHFitter
from sksurv.ensemble._coxph_loss import coxph_loss, coxph_negative_gradient
from sksurv.linear_model.coxph import BreslowEstimator

from models.breslow import (
    cox_negative_log_likelihood,
    fit_breslow,
    martingale_residuals,
    step_lookup,
)

# Four subjects, two tied events at t=2 and one censored at t=2 (still at risk then):
# H0(1) = 1/(e^0 + e^1 + e^0 + e^0.5); H0(2) = H0(1) + 2/(e^1 + e^0 + e^0.5).
TIME = np.array([1.0, 2.0, 2.0, 2.0, 3.0])
EVENT = np.array([True, True, True, False, False])
ETA = np.array([0.0, 1.0, 0.0, 0.5, 0.2])


def test_ties_share_one_risk_set_known_answer():
    h1 = 1 / np.exp(ETA).sum()
    h2 = h1 + 2 / np.exp(ETA[1:]).sum()
    baseline = fit_breslow(ETA, TIME, EVENT)
    np.testing.assert_allclose(
        baseline.baseline_cumulative_hazard([0.5, 1.0, 1.5, 2.0, 3.0, 9.0]),
        [0, h1, h1, h2, h2, h2],
        rtol=1e-12,
    )


def test_matches_lifelines_baseline_cumulative_hazard(train):
    X, y = train
    frame = X.assign(T=y["time"], E=y["event"].astype(int))
    cph = CoxPHFitter().fit(frame, duration_col="T", event_col="E")
    # lifelines' baseline is for covariates at their mean
    eta = (X - X.mean()).to_numpy() @ cph.params_[X.columns].to_numpy()
    lifelines_h0 = cph.baseline_cumulative_hazard_
    ours = fit_breslow(eta, y["time"], y["event"]).baseline_cumulative_hazard(
        lifelines_h0.index.to_numpy()
    )
    np.testing.assert_allclose(ours, lifelines_h0.iloc[:, 0].to_numpy(), rtol=1e-6)


def test_matches_scikit_survival_breslow_estimator(train):
    _, y = train
    eta = np.random.default_rng(3).normal(0, 1.5, len(y))
    reference = BreslowEstimator().fit(eta, y["event"], y["time"])
    ours = fit_breslow(eta, y["time"], y["event"])
    times = reference.unique_times_
    np.testing.assert_allclose(
        ours.baseline_cumulative_hazard(times), reference.cum_baseline_hazard_.y, rtol=1e-9
    )
    expected = np.vstack([f(times) for f in reference.get_survival_function(eta[:5])])
    np.testing.assert_allclose(ours.survival(eta[:5], times), expected, rtol=1e-9)


def test_survival_does_not_depend_on_a_shift_of_the_linear_predictor():
    shifted = fit_breslow(ETA + 250.0, TIME, EVENT).survival(ETA[:3] + 250.0, [1.0, 2.5])
    np.testing.assert_allclose(
        shifted, fit_breslow(ETA, TIME, EVENT).survival(ETA[:3], [1.0, 2.5]), rtol=1e-12
    )


def test_extreme_predictors_give_zero_or_one_without_overflow():
    surv = fit_breslow(ETA, TIME, EVENT).survival([-1e4, 1e4], [0.5, 2.0])
    np.testing.assert_array_equal(surv, [[1.0, 1.0], [1.0, 0.0]])


def test_martingale_residuals_equal_scikit_survivals_cox_gradient(train):
    _, y = train
    eta = np.random.default_rng(4).normal(size=len(y))
    expected = coxph_negative_gradient(y["event"].astype(np.uint8), y["time"], eta)
    np.testing.assert_allclose(martingale_residuals(eta, y["time"], y["event"]), expected)


def test_negative_log_likelihood_equals_scikit_survivals_cox_loss(train):
    _, y = train
    eta = np.random.default_rng(5).normal(size=len(y))
    expected = coxph_loss(y["event"].astype(np.uint8), y["time"], eta)
    assert cox_negative_log_likelihood(eta, y["time"], y["event"]) == pytest.approx(expected)


@settings(max_examples=50, deadline=None)
@given(
    eta=st.lists(st.floats(-20, 20), min_size=2, max_size=30),
    times=st.lists(st.floats(0, 100), min_size=1, max_size=6),
)
def test_survival_is_a_probability_non_increasing_in_time(eta, times):
    n = len(eta)
    rng = np.random.default_rng(n)
    time = rng.integers(1, 20, n).astype(float)
    event = np.r_[True, rng.random(n - 1) < 0.6]
    surv = fit_breslow(eta, time, event).survival(eta, np.sort(times))
    assert ((surv >= 0) & (surv <= 1)).all()
    assert (np.diff(surv, axis=1) <= 0).all()


def test_step_lookup_is_right_continuous_with_a_value_before_the_first_step():
    grid, values = np.array([1.0, 3.0]), np.array([0.9, 0.5])
    out = step_lookup(grid, values, np.array([0.0, 1.0, 2.9, 3.0, 7.0]), before=1.0)
    np.testing.assert_array_equal(out, [1.0, 0.9, 0.9, 0.5, 0.5])


def test_refuses_inputs_of_different_lengths():
    with pytest.raises(ValueError, match="differ in length: 5, 4, 5"):
        fit_breslow(ETA, TIME[:4], EVENT)


def test_refuses_a_non_finite_linear_predictor():
    with pytest.raises(ValueError, match="linear_predictor must be finite"):
        fit_breslow(np.r_[np.nan, ETA[1:]], TIME, EVENT)


def test_refuses_non_finite_times():
    with pytest.raises(ValueError, match="time must be finite"):
        fit_breslow(ETA, np.r_[np.inf, TIME[1:]], EVENT)


def test_refuses_event_flags_other_than_zero_or_one():
    with pytest.raises(ValueError, match=r"event must be boolean or 0/1, got values \[0 1 2\]"):
        fit_breslow(ETA, TIME, np.array([1, 2, 0, 0, 1]))


def test_refuses_data_without_an_event():
    with pytest.raises(ValueError, match="no event"):
        fit_breslow(ETA, TIME, np.zeros(5, bool))


def test_a_late_risk_set_of_low_risk_rows_keeps_its_hazard_where_sksurv_loses_it():
    # S(2 | η=-20) = exp(-(e^-20 / (e^20 + e^-20) + 1)) ≈ e^-1: the last row is its own risk set
    eta, time, event = np.array([20.0, -20.0]), np.array([1.0, 2.0]), np.array([True, True])
    ours = fit_breslow(eta, time, event).survival(eta[1:], [2.0])
    assert ours[0, 0] == pytest.approx(np.exp(-1.0), rel=1e-9)
    shifted = eta - eta.max()  # the shift does not save the running-sum risk sets
    with np.errstate(divide="ignore"):
        reference = BreslowEstimator().fit(shifted, event, time)
        assert float(reference.get_survival_function(shifted[1:])[0](2.0)) == 0.0
