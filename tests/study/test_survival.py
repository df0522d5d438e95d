"""Survival tables: contract → endpoint → lifelines → table, checked against known answers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.datasets import load_lung
from lifelines.statistics import multivariate_logrank_test
from sksurv.nonparametric import kaplan_meier_estimator

from cohort.cohort import Cohort
from cohort.vocabulary import EVENT, PATIENT_ID, TIME
from reporting.study import write_study_report
from study.describe import describe_cohort
from study.options import study_options
from study.survival import endpoint_specs, survival_part

PBCSEQ = Path(__file__).resolve().parents[2] / "cohort" / "datasets" / "pbcseq"


def _km_rows(tables: dict[str, pd.DataFrame], endpoint: str, group: str) -> pd.DataFrame:
    km = tables["km"]
    return km[(km["endpoint"] == endpoint) & (km["group"] == group)]


def _assert_matches_lifelines(rows: pd.DataFrame, time: pd.Series, event: pd.Series) -> None:
    ref = KaplanMeierFitter().fit(time, event)
    np.testing.assert_allclose(rows[TIME], ref.survival_function_.index, rtol=0, atol=1e-9)
    np.testing.assert_allclose(rows["survival"], ref.survival_function_.iloc[:, 0], atol=1e-9)
    ci = ref.confidence_interval_survival_function_
    np.testing.assert_allclose(rows["lower"], ci.iloc[:, 0], atol=1e-9)
    np.testing.assert_allclose(rows["upper"], ci.iloc[:, 1], atol=1e-9)


def test_km_of_every_arm_equals_lifelines_fit_on_the_raw_outcome_dates(simulated: Cohort) -> None:
    result = describe_cohort(simulated)
    out, pats = simulated.outcomes, simulated.patients
    # endpoint by hand from the dates, independent of cohort.endpoints
    days = out[["recurrence_day", "death_day"]].min(axis=1)
    time = days.fillna(out["last_followup_day"])
    event = days.notna().astype(int)
    arm = pats.set_index(PATIENT_ID)["arm"].reindex(out[PATIENT_ID]).to_numpy()
    _assert_matches_lifelines(_km_rows(result.tables, "RFS", "Overall"), time, event)
    for level in np.unique(arm):
        mask = arm == level
        _assert_matches_lifelines(_km_rows(result.tables, "RFS", level), time[mask], event[mask])


def test_km_agrees_with_scikit_survival_as_an_independent_estimator(simulated: Cohort) -> None:
    rows = _km_rows(
        survival_part(simulated, study_options(simulated.manifest), None).tables, "OS", "Overall"
    )
    data = simulated.endpoint("os")
    t, s = kaplan_meier_estimator(data[EVENT].astype(bool), data[TIME])
    ours = rows.set_index(TIME)["survival"].reindex(t)
    np.testing.assert_allclose(ours.to_numpy(), s, atol=1e-12)


def _lung_cohort(make_cohort: Callable[..., Cohort]) -> Cohort:
    lung = load_lung()  # R survival::lung, status recoded 1 = death
    ids = [str(i) for i in range(len(lung))]
    patients = [{PATIENT_ID: i, "sex": str(s)} for i, s in zip(ids, lung["sex"], strict=True)]
    outcomes = [
        {PATIENT_ID: i, "last_followup_day": float(t), "death_day": float(t) if e == 1 else np.nan}
        for i, t, e in zip(ids, lung["time"], lung["status"], strict=True)
    ]
    manifest = {
        "name": "lung",
        "time_zero": "diagnosis",
        "endpoint": "os",
        "covariates": {"sex": "categorical"},
        "markers": {"ctc_total": {"unit": "cells"}},
    }
    return make_cohort(patients, outcomes, manifest)


def test_lung_median_and_sex_log_rank_reproduce_r_survival(
    cohort_builder: Callable[..., Cohort],
) -> None:
    # R: survfit(Surv(time, status) ~ 1, lung) → n 228, events 165, median 310;
    #    survdiff(Surv(time, status) ~ sex, lung) → Chisq = 10.3 on 1 df, p = 0.00131;
    #    summary(fit, times = 365)$surv = 0.409. R's median CI (285, 363) uses log CIs,
    #    ours are log-log (lifelines default), so the CI is checked against lifelines only.
    result = describe_cohort(_lung_cohort(cohort_builder), by="sex")
    overall = result.tables["survival_summary"].set_index("group").loc["Overall"]
    assert (overall["n"], overall["events"], overall["median_days"]) == (228, 165, 310.0)
    test = result.tables["logrank"].iloc[0]
    assert test["chisq"] == pytest.approx(10.33, abs=0.01)
    assert test["p_value"] == pytest.approx(0.00131, abs=1e-5)
    rates = result.tables["survival_rates"]
    at_1y = rates[(rates["group"] == "Overall") & (rates["years"] == 1.0)].iloc[0]
    assert at_1y["survival"] == pytest.approx(0.4092, abs=5e-4)  # whole-day times: 365.25 = R's 365


def test_pbcseq_overall_survival_matches_lifelines_and_the_published_numbers_at_risk(
    pbcseq: Cohort,
) -> None:
    # The brief's R figures (median 3395, CI 3090-3853; survdiff trt chisq 0.1, p 0.75) are for
    # survival::pbc, whose follow-up ends in 1986; pbcseq's follow-up is longer (140 deaths,
    # not 125), so they do not apply here and are not asserted. Checked instead: the numbers at
    # risk 290 / 278 / 202 at 1 / 2 / 5 years published with the dataset (PROVENANCE.md, from R),
    # and the whole path against lifelines fitted on the raw CSV dates.
    result = describe_cohort(pbcseq, by="trt")
    raw = pd.read_csv(PBCSEQ / "outcomes.csv", dtype={PATIENT_ID: str})
    death = pd.to_datetime(raw["death_date"]) - pd.Timestamp("1990-01-01")
    last = pd.to_datetime(raw["last_followup_date"]) - pd.Timestamp("1990-01-01")
    time = death.fillna(last).dt.days.astype(float)
    event = death.notna().astype(int)
    _assert_matches_lifelines(_km_rows(result.tables, "OS", "Overall"), time, event)
    summary = result.tables["survival_summary"].set_index("group").loc["Overall"]
    assert (summary["n"], summary["events"]) == (312, 140)
    assert (summary["median_days"], summary["median_lower"], summary["median_upper"]) == (
        3445.0,
        3090.0,
        3903.0,
    )
    rates = result.tables["survival_rates"]
    assert rates.loc[rates["group"] == "Overall", "at_risk"].tolist() == [290, 278, 202]
    trt = pbcseq.patients.set_index(PATIENT_ID)["trt"].reindex(raw[PATIENT_ID])
    ref = multivariate_logrank_test(time, trt.to_numpy(), event)
    test = result.tables["logrank"].iloc[0]
    assert test["chisq"] == pytest.approx(ref.test_statistic, abs=1e-9)
    assert test["p_value"] == pytest.approx(0.9915, abs=1e-4)


@pytest.mark.slow
def test_simulator_cohort_km_equals_lifelines_through_the_loader(tmp_path: Path) -> None:
    from cohort.load import load_cohort
    from cohort.simulate import simulate_cohort

    simulate_cohort(tmp_path / "sim", n_patients=150, seed=3)
    cohort = load_cohort(tmp_path / "sim")
    result = write_study_report(describe_cohort(cohort), tmp_path / "out")
    data = cohort.endpoint("rfs")
    _assert_matches_lifelines(_km_rows(result.tables, "RFS", "Overall"), data[TIME], data[EVENT])
    assert (tmp_path / "out" / "km_rfs.png").stat().st_size > 0


def test_horizon_censors_at_endpoint_years_and_blanks_rates_beyond_it(
    cohort_builder: Callable[..., Cohort],
) -> None:
    manifest = {
        "name": "t",
        "time_zero": "enrollment",
        "endpoint": "os",
        "markers": {"afp": {"unit": "ng/mL"}},
        "study": {"endpoint_years": 2},
    }
    outcomes = [
        {PATIENT_ID: "a", "last_followup_day": 1000.0, "death_day": 1000.0},
        {PATIENT_ID: "b", "last_followup_day": 200.0, "death_day": 200.0},
        {PATIENT_ID: "c", "last_followup_day": 900.0},
    ]
    cohort = cohort_builder([{PATIENT_ID: p} for p in "abc"], outcomes, manifest)
    part = survival_part(cohort, study_options(cohort.manifest), None)
    summary = part.tables["survival_summary"].iloc[0]
    assert summary["events"] == 1  # the death at day 1000 falls after 2 years
    rates = part.tables["survival_rates"].set_index("years")
    assert rates.loc[1.0, "survival"] == pytest.approx(2 / 3)
    assert np.isnan(rates.loc[5.0, "survival"])


def test_metastatic_patients_get_pfs_and_the_others_rfs(
    cohort_builder: Callable[..., Cohort],
) -> None:
    manifest = {
        "name": "t",
        "time_zero": "diagnosis",
        "endpoint": "os",
        "covariates": {"meta": "binary"},
        "markers": {"afp": {"unit": "ng/mL"}},
        "study": {"metastatic": "meta"},
    }
    patients = [
        {PATIENT_ID: "a", "meta": 1.0},
        {PATIENT_ID: "b", "meta": 0.0},
        {PATIENT_ID: "c", "meta": np.nan},
    ]
    outcomes = [{PATIENT_ID: p, "last_followup_day": 500.0} for p in "abc"]
    cohort = cohort_builder(patients, outcomes, manifest)
    specs, skipped = endpoint_specs(cohort, study_options(cohort.manifest))
    by_name = {s.name: s for s in specs}
    assert by_name["pfs_metastatic"].patient_ids == {"a"}
    assert by_name["rfs_nonmetastatic"].patient_ids == {"b"}
    assert by_name["os"].patient_ids is None
    assert skipped == []
