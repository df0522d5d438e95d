"""The Bayes-optimal risk of the simulator's process (evaluation.bayes_bound)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm, poisson

from cohort.load import load_cohort
from cohort.simulate import SimulationParams, simulate_cohort
from cohort.simulate_model import courses, marker_traits, patient_base, prior_courses
from cohort.vocabulary import LANDMARK_DAY, PATIENT_ID
from evaluation.bayes_bound import (
    BOUND_ESS,
    BOUND_RISK,
    PatientData,
    _lognormal_loglik,
    bayes_risks,
    ctc_loglik,
    patient_data,
    posterior_risk,
)
from features.landmark import build_landmark_table
from training.metrics import landmark_metrics

P = SimulationParams()
COVARIATES = {
    "site": 0.0,
    "age": 60.0,
    "male": 1.0,
    "etiology": 3.0,  # MASLD: no AFP flares
    "cirrhosis": 1.0,
    "child_pugh_b": 0.0,
    "tumor_size_cm": 4.5,
    "tumor_count": 1.0,
    "mvi": np.nan,
}
PLANNED = np.array([90.0, 180, 270, 360, 450, 540, 630, 720, 900, 1080, 1260])


def test_patient_base_keeps_reported_covariates_and_draws_unreported_ones() -> None:
    rng = np.random.default_rng(0)
    base = patient_base(COVARIATES, 4000, rng, P)
    assert (base["tumor_size_cm"] == 4.5).all() and (base["site"] == 0).all()
    # MVI unreported: drawn from the simulator's model (≈ 17% at 4.5 cm), both values present
    assert 0.1 < base["mvi"].mean() < 0.25
    reported = patient_base({**COVARIATES, "mvi": 1.0}, 10, rng, P)
    assert reported["mvi"].all()
    with pytest.raises(ValueError, match="tumor_count"):
        patient_base({k: v for k, v in COVARIATES.items() if k != "tumor_count"}, 10, rng, P)


def test_prior_courses_follow_the_simulator_prior() -> None:
    pop = prior_courses(COVARIATES, 20000, np.random.default_rng(1), P)
    residual = (pop.kind == 1).mean()
    assert 0.15 < residual < 0.45  # the simulator's logistic for this patient
    assert np.median(pop.doubling_time) == pytest.approx(P.doubling_time_median_days, rel=0.05)
    assert np.isnan(pop.visible_day[pop.kind == 0]).all()


def test_ctc_likelihood_is_poisson_without_draw_noise() -> None:
    p = dataclasses.replace(P, ctc_draw_sigma=1e-6)
    rng = np.random.default_rng(2)
    base = patient_base(COVARIATES, 50, rng, p)
    pop = courses(rng, base, marker_traits(rng, base, p), p, disease=False)
    days, counts = np.array([60.0, 90.0]), np.array([0.0, 3.0])
    ll = ctc_loglik(pop, days, counts, np.ones(2), p)
    mean = p.ctc_background * pop.shedding  # no disease: background only
    expected = poisson.logpmf(counts[None, :], mean[:, None])
    np.testing.assert_allclose(ll, expected, rtol=1e-6, atol=1e-9)


def test_lognormal_likelihood_is_censored_below_and_above_the_limits() -> None:
    log_mean, sigma = np.log(np.array([2.0, 2.0, 2.0])), 0.15
    value, qual = np.array([2.0, 2.0, 2.0]), np.array([0, 1, 2])
    ll = _lognormal_loglik(log_mean, value, qual, sigma)
    z = (np.log(2.0) - np.log(2.0) + sigma**2 / 2) / sigma
    assert ll[0] == pytest.approx(norm.logpdf(z) - np.log(sigma))
    assert ll[1] == pytest.approx(norm.logcdf(z))
    assert ll[2] == pytest.approx(norm.logsf(z))


def _patient(ctc: list[float], afp: list[float], scans: list[float]) -> PatientData:
    """Draws at -7, 30, 60, 90, ... with the given CTC totals and AFP (ng/mL), PIVKA flat."""
    days = np.array([-7.0, 30, 60, 90, 180, 270, 360][: len(ctc)])
    empty = np.array([], dtype=float)
    return PatientData(
        covariates=dict(COVARIATES),
        ctc_day=days,
        ctc_count=np.array(ctc, dtype=float),
        ctc_volume=np.ones(len(days)),
        sub_day=empty,
        sub_count=np.zeros((0, 3)),
        afp_day=days,
        afp_ng=np.array(afp, dtype=float),
        afp_qual=np.zeros(len(days), dtype=int),
        pivka_day=days,
        pivka_value=np.array([150.0] + [20.0] * (len(days) - 1)),
        scan_day=np.array(scans, dtype=float),
        scan_modality=np.zeros(len(scans), dtype=int),
        scan_finding=np.zeros(len(scans), dtype=int),
    )


def _risk(data: PatientData, days: list[float], seed: int = 0) -> np.ndarray:
    risk, ess = posterior_risk(
        data,
        np.array(days),
        horizon=365.0,
        planned_scans=PLANNED,
        p=P,
        k=1500,
        rng=np.random.default_rng(seed),
    )
    assert (ess >= 1).all()
    return risk


def test_rising_markers_mean_high_risk_and_quiet_ones_low() -> None:
    rising = _patient([2, 1, 3, 6, 12, 15], [300, 9, 4, 12, 60, 250], [90, 180])
    quiet = _patient([2, 0, 0, 0, 0, 1], [300, 9, 4, 3.5, 3.4, 3.6], [90, 180])
    high, low = _risk(rising, [180.0])[0], _risk(quiet, [180.0])[0]
    assert high > 0.9
    assert low < 0.25
    assert low < high


def test_the_risk_at_s_uses_nothing_after_s() -> None:
    full = _patient([2, 1, 3, 6, 12, 15, 15], [300, 9, 4, 12, 60, 250, 900], [90, 180, 270])
    keep = full.ctc_day <= 90

    def cut(values: np.ndarray) -> np.ndarray:
        return values[keep]

    truncated = dataclasses.replace(
        full,
        ctc_day=cut(full.ctc_day),
        ctc_count=cut(full.ctc_count),
        ctc_volume=cut(full.ctc_volume),
        afp_day=cut(full.afp_day),
        afp_ng=cut(full.afp_ng),
        afp_qual=cut(full.afp_qual),
        pivka_day=cut(full.pivka_day),
        pivka_value=cut(full.pivka_value),
        scan_day=full.scan_day[:1],
        scan_modality=full.scan_modality[:1],
        scan_finding=full.scan_finding[:1],
    )
    np.testing.assert_allclose(_risk(full, [60.0, 90.0]), _risk(truncated, [60.0, 90.0]))


def test_patient_data_refuses_a_cohort_the_simulator_did_not_write(tmp_path: Path) -> None:
    simulate_cohort(tmp_path / "c", n_patients=20, seed=4)
    cohort = load_cohort(tmp_path / "c")
    assert len(patient_data(cohort, P)) == 20
    cohort.patients.loc[0, "site_id"] = "site-z"
    with pytest.raises(ValueError, match="site-z"):
        patient_data(cohort, P)


@pytest.mark.slow
def test_bound_is_calibrated_and_discriminates_on_a_simulated_cohort(tmp_path: Path) -> None:
    simulate_cohort(tmp_path / "c", n_patients=300, seed=21)
    cohort = load_cohort(tmp_path / "c")
    table = build_landmark_table(cohort, [90.0, 270.0, 450.0], horizon_days=365.0)
    points = table[[PATIENT_ID, LANDMARK_DAY]]
    risks = bayes_risks(cohort, points, horizon=365.0, k=400, seed=1)
    assert list(risks[PATIENT_ID]) == list(points[PATIENT_ID].astype(str))
    assert np.isfinite(risks[BOUND_RISK]).all() and (risks[BOUND_ESS] >= 1).all()
    auc = landmark_metrics(table, risks[BOUND_RISK].to_numpy(), None, 365.0, scores=("auc",))
    assert auc["auc"] > 0.85
    # calibration in the large against rows followed to the horizon or to their event
    followed = (table["event"] == 1) | (table["residual_time"] >= 365.0)
    observed = table.loc[followed, "event"].mean()
    predicted = pd.Series(risks[BOUND_RISK].to_numpy())[followed.to_numpy()].mean()
    assert predicted == pytest.approx(observed, abs=0.05)


def test_pooled_batches_raise_the_effective_sample_size() -> None:
    rising = _patient([2, 1, 3, 6, 12, 15], [300, 9, 4, 12, 60, 250], [90, 180])
    kwargs = {"horizon": 365.0, "planned_scans": PLANNED, "p": P, "k": 800}
    one, ess_one = posterior_risk(rising, np.array([180.0]), rng=np.random.default_rng(3), **kwargs)
    four, ess_four = posterior_risk(
        rising,
        np.array([180.0]),
        rng=np.random.default_rng(3),
        min_ess=1e9,
        max_batches=4,
        **kwargs,
    )
    assert ess_four[0] > 2 * ess_one[0]
    assert four[0] == pytest.approx(one[0], abs=0.1)
