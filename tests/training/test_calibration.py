"""Known-answer tests of calibration and decision-curve analysis."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter

from cohort.vocabulary import EVENT, EVENT_FULL, PATIENT_ID, RESIDUAL_TIME, RESIDUAL_TIME_FULL
from training.calibration import (
    RISK_EPS,
    calibration_in_the_large,
    calibration_slope,
    calibration_table,
    cloglog,
    horizon_outcome,
    km_risk,
    net_benefit,
    rcs_basis,
    smooth_calibration,
    smooth_calibration_errors,
)

Simulate = Callable[..., pd.DataFrame]
H = 365.0


def rescaled(data: pd.DataFrame, k: float) -> np.ndarray:
    """Risk of a model whose linear predictor is k times the true one (k = 1: the truth)."""
    return np.asarray(1 - data["surv"] ** np.exp((k - 1) * data["lp"]))


# --------------------------------------------------------------------------- inputs
def test_the_outcome_is_truncated_at_the_horizon() -> None:
    table = pd.DataFrame({RESIDUAL_TIME: [100.0, 400.0, 500.0, 200.0], EVENT: [1, 1, 0, 0]})
    time, event = horizon_outcome(table, 365)
    assert time.tolist() == [100.0, 365.0, 365.0, 200.0]
    assert event.tolist() == [True, False, False, False]


def test_cloglog_is_log_minus_log_of_survival() -> None:
    assert cloglog([1 - np.exp(-1.0)]) == pytest.approx([0.0])
    assert cloglog([1 - np.exp(-np.e)]) == pytest.approx([1.0])


def test_kaplan_meier_risk_without_censoring_is_the_event_proportion() -> None:
    time = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    risk, low, high = km_risk(time, np.ones(8), 3.5)
    assert risk == pytest.approx(3 / 8)
    assert low < risk < high


def test_kaplan_meier_risk_with_censoring_matches_the_product_limit_by_hand() -> None:
    # S(2) = 4/5; censored at 3; S(4) = 4/5 * 1/2
    risk, _, _ = km_risk([2, 3, 4, 6, 7], [1, 0, 1, 0, 0], 5.0)
    assert risk == pytest.approx(1 - 0.8 * (1 - 1 / 3))


# --------------------------------------------------------------------------- slope
def test_the_slope_of_the_true_model_is_one(calibrated: pd.DataFrame) -> None:
    slope, low, high = calibration_slope(calibrated, "risk", H)
    assert slope == pytest.approx(1.0, abs=0.15)
    assert low < 1.0 < high


def test_a_calibration_fit_short_of_convergence_is_logged_not_printed(
    calibrated: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    """Separated outcomes (every event at risk 0.999): lifelines' Newton-Raphson stops short
    of its tolerance and warns; a run's output stays its own, the caveat goes to the log."""
    import logging
    import warnings

    _, event = horizon_outcome(calibrated, H)
    with warnings.catch_warnings(), caplog.at_level(logging.INFO, "training.calibration"):
        warnings.simplefilter("error")
        slope, low, high = calibration_slope(calibrated, np.where(event, 0.999, 0.001), H)
    assert np.isfinite(slope) and low < slope < high
    assert any("Newton-Raphson" in r.getMessage() for r in caplog.records)


def test_predictions_that_are_too_extreme_give_a_slope_below_one(calibrated: pd.DataFrame) -> None:
    slope, _, high = calibration_slope(calibrated, rescaled(calibrated, 2.0), H)
    assert slope == pytest.approx(0.5, abs=0.1)
    assert high < 1.0


def test_predictions_that_are_too_modest_give_a_slope_above_one(calibrated: pd.DataFrame) -> None:
    slope, low, _ = calibration_slope(calibrated, rescaled(calibrated, 0.5), H)
    assert slope == pytest.approx(2.0, abs=0.2)
    assert low > 1.0


def test_a_constant_shift_of_the_risk_leaves_the_slope_at_one(calibrated: pd.DataFrame) -> None:
    # doubling the baseline hazard shifts cloglog(risk) by log 2: miscalibrated in the large only
    shifted = 1 - calibrated["surv"] ** 2
    assert calibration_slope(calibrated, shifted, H)[0] == pytest.approx(1.0, abs=0.15)
    citl = calibration_in_the_large(calibrated, shifted, H)
    assert citl["ratio"] < 0.75


def test_stacked_rows_of_a_patient_are_clustered_so_the_interval_does_not_shrink(
    calibrated: pd.DataFrame,
) -> None:
    one = calibrated.iloc[:800]
    stacked = pd.concat([one, one], ignore_index=True)  # each patient twice, as at two landmarks
    s1, lo1, hi1 = calibration_slope(one, "risk", H)
    s2, lo2, hi2 = calibration_slope(stacked, "risk", H)
    assert s2 == pytest.approx(s1, rel=0.01)  # Efron tie handling differs slightly
    # an unclustered fit would shrink the width by 1/sqrt(2) ~ 0.71
    assert (hi2 - lo2) > 0.85 * (hi1 - lo1)


def test_the_clustered_interval_is_lifelines_own_to_round_off(calibrated: pd.DataFrame) -> None:
    stacked = pd.concat([calibrated.iloc[:900], calibrated.iloc[300:1200]], ignore_index=True)
    stacked[RESIDUAL_TIME_FULL] = np.ceil(stacked[RESIDUAL_TIME_FULL])  # tied times
    risk = rescaled(stacked, 1.5)
    time, event = horizon_outcome(stacked, H)
    clipped = np.clip(risk, RISK_EPS, 1 - RISK_EPS)  # as calibration_slope clips
    frame = pd.DataFrame({"x0": cloglog(clipped), "T": time, "E": event.astype(int)})
    frame[PATIENT_ID] = stacked[PATIENT_ID].to_numpy()
    lifelines = CoxPHFitter().fit(
        frame, "T", "E", cluster_col=PATIENT_ID, fit_options={"step_size": 0.5}
    )
    ci = lifelines.confidence_intervals_.iloc[0]
    expected = (float(lifelines.params_.iloc[0]), float(ci.iloc[0]), float(ci.iloc[1]))
    assert calibration_slope(stacked, risk, H) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- calibration in the large
def test_calibration_in_the_large_of_the_true_model_agrees(calibrated: pd.DataFrame) -> None:
    citl = calibration_in_the_large(calibrated, "risk", H)
    assert citl["observed_low"] < citl["predicted"] < citl["observed_high"]
    assert citl["difference"] == pytest.approx(citl["observed"] - citl["predicted"])
    assert citl["ratio"] == pytest.approx(1.0, abs=0.1)


# --------------------------------------------------------------------------- smooth, ICI
def test_the_rcs_basis_is_linear_beyond_the_outer_knots_and_zero_below_the_first() -> None:
    knots = [0.0, 1.0, 3.0, 4.0]
    x = np.array([-2.0, -1.0, 5.0, 6.0, 7.0])
    basis = rcs_basis(x, knots)
    assert basis.shape == (5, 3)
    assert basis[:, 0].tolist() == x.tolist()
    assert np.allclose(basis[:2, 1:], 0.0)
    assert np.allclose(np.diff(basis[2:, 1:], n=2, axis=0), 0.0)  # linear tail


def test_the_rcs_basis_matches_harrells_formula_at_a_point() -> None:
    # k = 3 knots (0, 1, 2), x = 1.5: (1.5)^3 - (0.5)^3 * 2/1 + 0 = 3.375 - 0.25, scaled by 1/4
    assert rcs_basis([1.5], [0.0, 1.0, 2.0])[0, 1] == pytest.approx((3.375 - 0.25) / 4)


def test_the_true_model_has_a_small_ici_and_a_mis_scaled_one_a_large_ici(
    calibrated: pd.DataFrame,
) -> None:
    good = smooth_calibration_errors(smooth_calibration(calibrated, "risk", H))
    bad = smooth_calibration_errors(smooth_calibration(calibrated, rescaled(calibrated, 2.0), H))
    assert good["ici"] < 0.02
    assert bad["ici"] > 3 * good["ici"] and bad["ici"] > 0.05
    for errors in (good, bad):
        assert errors["e50"] <= errors["e90"]


def test_ici_is_the_mean_absolute_gap_of_the_smooth_curve(calibrated: pd.DataFrame) -> None:
    smooth = smooth_calibration(calibrated, "risk", H, n_knots=4)
    errors = smooth_calibration_errors(smooth)
    gap = (smooth["observed"] - smooth["predicted"]).abs()
    assert errors["ici"] == pytest.approx(gap.mean())
    assert errors["e90"] == pytest.approx(gap.quantile(0.9))
    assert smooth["predicted"].is_monotonic_increasing and len(smooth) == len(calibrated)


# --------------------------------------------------------------------------- grouped table
def test_the_grouped_table_has_deciles_covering_every_row(calibrated: pd.DataFrame) -> None:
    grouped = calibration_table(calibrated, "risk", H)
    assert grouped["group"].tolist() == list(range(1, 11))
    assert grouped["n"].sum() == len(calibrated)
    assert grouped["predicted"].is_monotonic_increasing
    assert (grouped["observed_low"] <= grouped["observed"]).all()
    assert (grouped["observed"] <= grouped["observed_high"]).all()
    inside = (grouped["observed_low"] <= grouped["predicted"]) & (
        grouped["predicted"] <= grouped["observed_high"]
    )
    assert inside.sum() >= 8  # 95% intervals of a calibrated model


def test_tied_predictions_merge_groups_rather_than_fail(calibrated: pd.DataFrame) -> None:
    coarse = np.round(np.asarray(calibrated["risk"]), 1)
    assert len(calibration_table(calibrated, coarse, H)) < 10


# --------------------------------------------------------------------------- net benefit
def test_treat_all_net_benefit_without_censoring_is_prevalence_minus_harm(
    simulated: Simulate,
) -> None:
    data = simulated(n=1000, seed=12, censor=None)
    prevalence = float((data[RESIDUAL_TIME_FULL] <= H).mean())
    pt = np.array([0.05, 0.1, 0.2, 0.5])
    curve = net_benefit(data, "risk", H, pt)
    assert curve["treat_all"].to_numpy() == pytest.approx(
        prevalence - (1 - prevalence) * pt / (1 - pt)
    )
    assert (curve["treat_none"] == 0).all()


def test_model_net_benefit_without_censoring_is_true_minus_weighted_false_positives(
    simulated: Simulate,
) -> None:
    data = simulated(n=1000, seed=13, censor=None)
    case = (data[RESIDUAL_TIME_FULL] <= H).to_numpy()
    pt = np.array([0.1, 0.3, 0.6])
    curve = net_benefit(data, "risk", H, pt)
    for i, cut in enumerate(pt):
        treated = data["risk"].to_numpy() >= cut
        tp, fp = (treated & case).mean(), (treated & ~case).mean()
        assert curve["net_benefit"].iloc[i] == pytest.approx(tp - fp * cut / (1 - cut))


def test_net_benefit_is_zero_when_no_one_reaches_the_threshold(calibrated: pd.DataFrame) -> None:
    curve = net_benefit(calibrated, np.full(len(calibrated), 0.2), H, [0.5])
    assert curve["net_benefit"].item() == 0.0 and curve["n_treated"].item() == 0


def test_the_default_thresholds_run_from_one_to_ninety_nine_percent(
    calibrated: pd.DataFrame,
) -> None:
    curve = net_benefit(calibrated, "risk", H)
    assert curve["threshold"].iloc[0] == 0.01 and curve["threshold"].iloc[-1] == 0.99
    assert len(curve) == 99


def test_a_useful_model_beats_treat_all_and_treat_none_at_moderate_thresholds(
    calibrated: pd.DataFrame,
) -> None:
    curve = net_benefit(calibrated, "risk", H, [0.2, 0.3, 0.4])
    assert (curve["net_benefit"] > curve["treat_all"]).all()
    assert (curve["net_benefit"] > 0).all()


# --------------------------------------------------------------------------- validation
def test_risks_outside_zero_one_are_refused(calibrated: pd.DataFrame) -> None:
    with pytest.raises(
        ValueError, match=r"risk must be probabilities in \[0, 1\], got range \[-0\.1, "
    ):
        calibration_slope(calibrated, np.r_[-0.1, calibrated["risk"].to_numpy()[1:]], H)


def test_risks_of_exactly_zero_or_one_are_clipped_not_refused(calibrated: pd.DataFrame) -> None:
    risk = calibrated["risk"].to_numpy().copy()
    risk[:2] = [0.0, 1.0]
    assert np.isfinite(calibration_slope(calibrated, risk, H)[0])


def test_calibration_without_events_by_the_horizon_is_refused() -> None:
    table = pd.DataFrame({RESIDUAL_TIME: [100.0, 400.0], EVENT: [0, 1]})
    with pytest.raises(ValueError, match=r"no event within 365\.0 days: calibration is undefined"):
        calibration_slope(table, [0.1, 0.2], H)


def test_a_non_positive_horizon_is_refused() -> None:
    table = pd.DataFrame({RESIDUAL_TIME: [100.0], EVENT: [1]})
    with pytest.raises(ValueError, match=r"horizon_days must be > 0, got -1"):
        horizon_outcome(table, -1)


def test_unsupported_knot_counts_and_too_few_distinct_risks_are_refused(
    calibrated: pd.DataFrame,
) -> None:
    with pytest.raises(ValueError, match=r"n_knots must be one of \[3, 4, 5\], got 7"):
        smooth_calibration(calibrated, "risk", H, n_knots=7)
    with pytest.raises(ValueError, match=r"too few distinct values for 3 knots"):
        smooth_calibration(calibrated, np.full(len(calibrated), 0.3), H)
    with pytest.raises(
        ValueError, match=r"knots must be >= 3 strictly increasing values, got \[1\.0, 1\.0, 2\.0\]"
    ):
        rcs_basis([1.0], [1.0, 1.0, 2.0])


def test_fewer_than_two_groups_are_refused(calibrated: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"n_groups must be >= 2, got 1"):
        calibration_table(calibrated, "risk", H, n_groups=1)


@pytest.mark.parametrize("thresholds", [[0.0, 0.5], [0.5, 1.0], []])
def test_thresholds_outside_the_open_unit_interval_are_refused(
    calibrated: pd.DataFrame, thresholds: list[float]
) -> None:
    with pytest.raises(ValueError, match=r"thresholds must be non-empty and in \(0, 1\)"):
        net_benefit(calibrated, "risk", H, thresholds)


def test_the_callers_frame_is_not_mutated(calibrated: pd.DataFrame) -> None:
    before = calibrated.copy()
    calibration_slope(calibrated.assign(**{PATIENT_ID: "same"}), "risk", H)
    calibration_table(calibrated, "risk", H)
    pd.testing.assert_frame_equal(calibrated, before)
    assert {RESIDUAL_TIME_FULL, EVENT_FULL} <= set(calibrated.columns)


def test_kaplan_meier_risk_refuses_a_negative_horizon() -> None:
    with pytest.raises(ValueError, match=r"horizon_days must be >= 0, got -5"):
        km_risk([1.0, 2.0], [1, 0], -5)


@pytest.mark.parametrize("horizon", [0.5, 20.0, 50.0, 99.0, 200.0])
def test_km_risk_and_its_interval_equal_lifelines_log_log_greenwood(horizon: float) -> None:
    from lifelines import KaplanMeierFitter

    rng = np.random.default_rng(1)
    time, event = rng.integers(1, 100, 300).astype(float), rng.random(300) < 0.5
    kmf = KaplanMeierFitter(alpha=0.05).fit(time, event)
    ci = kmf.confidence_interval_survival_function_.loc[:horizon].iloc[-1]
    expected = (
        1 - float(kmf.survival_function_at_times(horizon).iloc[0]),
        1 - float(ci.iloc[1]),
        1 - float(ci.iloc[0]),
    )
    np.testing.assert_allclose(km_risk(time, event, horizon), expected, rtol=1e-9, atol=1e-12)
