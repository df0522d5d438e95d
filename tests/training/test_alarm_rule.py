"""Train where you serve: rows at every draw, the alarm rule chosen per patient over the course."""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from alarms.surveillance import END_DAY, course_table
from cohort.cohort import Cohort
from cohort.vocabulary import EVENT, FOLD, LANDMARK_DAY, PATIENT_ID, RESIDUAL_TIME
from features.landmark import draw_points
from training.evaluate import OOF_RISK, cross_validate
from training.train import TrainConfig, assign_folds, check_config, training_rows


def test_the_models_are_fitted_on_each_patients_own_draw_days_and_scored_at_the_landmarks(
    trained_store: dict[str, Any],
) -> None:
    cohort: Cohort = trained_store["cohort"]
    rows = training_rows(cohort, TrainConfig(models=["cox"], folds=3))
    fitted = rows.table[rows.fit]
    draws = draw_points(cohort)
    ends = cohort.endpoint(horizon_days=None).set_index(PATIENT_ID)["time"]
    at_risk = draws[draws[LANDMARK_DAY].to_numpy() < draws[PATIENT_ID].map(ends).to_numpy()]
    pairs = set(zip(fitted[PATIENT_ID], fitted[LANDMARK_DAY], strict=True))
    assert pairs == set(zip(at_risk[PATIENT_ID], at_risk[LANDMARK_DAY], strict=True))
    assert not (rows.fit & rows.scored).any()  # landmark rows are scored, never fitted
    assert set(rows.table.loc[rows.scored, LANDMARK_DAY]) <= {30.0, 60.0, 90.0, *range(0, 4000)}
    end = course_table(cohort).set_index(PATIENT_ID)[END_DAY]
    assert (rows.replay[LANDMARK_DAY] > 0).all()
    assert (rows.replay[LANDMARK_DAY] <= rows.replay[PATIENT_ID].map(end)).all()
    assert "own post-index draw days" in rows.describe()["fitted"]


def test_fitting_on_landmarks_is_still_possible_and_says_so(trained_store: dict[str, Any]) -> None:
    cohort: Cohort = trained_store["cohort"]
    rows = training_rows(cohort, TrainConfig(models=["cox"], fit_on="landmarks"))
    assert rows.fit.all() and rows.scored.all()
    assert "the landmark rows" in rows.describe()["fitted"]
    with pytest.raises(ValueError, match="--fit-on must be one of"):
        check_config(TrainConfig(fit_on="visits"))


def test_out_of_fold_risks_at_the_draws_never_see_their_own_patients_outcomes(
    trained_store: dict[str, Any],
) -> None:
    cohort: Cohort = trained_store["cohort"]
    config = TrainConfig(models=["cox"], folds=3, n_boot=0)
    rows = training_rows(cohort, config)
    folds = assign_folds(cohort, config)
    kwargs: dict[str, Any] = {
        "horizon_days": 365,
        "n_boot": 0,
        "fit_rows": rows.fit,
        "scored_rows": rows.scored,
        "replay": rows.replay,
    }
    first = cross_validate(rows.table, rows.featurizer, "cox", folds, **kwargs)
    shuffled = rows.table.copy()
    in_fold1 = shuffled[PATIENT_ID].map(folds).eq(1).to_numpy()
    rng = np.random.default_rng(0)
    for col in (RESIDUAL_TIME, EVENT, "residual_time_full", "event_full"):
        shuffled.loc[in_fold1, col] = rng.permutation(shuffled.loc[in_fold1, col].to_numpy())
    second = cross_validate(shuffled, rows.featurizer, "cox", folds, **kwargs)
    assert first.oof_draws is not None and second.oof_draws is not None
    mine = first.oof_draws[FOLD].eq(1).to_numpy()
    assert mine.any() and first.oof_draws[OOF_RISK].notna().all()
    np.testing.assert_allclose(
        first.oof_draws.loc[mine, OOF_RISK], second.oof_draws.loc[mine, OOF_RISK]
    )
    assert not np.allclose(
        first.oof_draws.loc[~mine, OOF_RISK], second.oof_draws.loc[~mine, OOF_RISK]
    )
    assert len(first.fold_models) == 3


def test_the_packaged_rule_and_its_figures_are_logged_with_the_calibration_by_day_band(
    trained_store: dict[str, Any],
) -> None:
    result = trained_store["result"]
    cox = next(r for r in result.results if r.name == "cox")
    alarm = cox.pipeline.alarm
    op = alarm.operating_point
    assert op is not None and op["threshold"] == alarm.threshold and op["confirm"] == alarm.confirm
    if op["target_reached"]:
        assert op["patient_specificity"] >= 0.9
    run = MlflowClient(tracking_uri=trained_store["uri"]).get_run(result.run_ids["cox"])
    metrics = run.data.metrics
    assert metrics["alarm_patient_specificity"] == pytest.approx(op["patient_specificity"])
    assert metrics["alarm_sensitivity_low"] == pytest.approx(op["sensitivity_low"])
    assert "calib_d30_182_difference" in metrics and "calib_d0_30_n_rows" in metrics
    assert run.data.params["fit_on"] == "draws"
    assert "own post-index draw days" in run.data.params["rows_fitted"]
    mlflow.set_tracking_uri(trained_store["uri"])
    listed = {f.path for f in MlflowClient().list_artifacts(run.info.run_id, "evaluation")}
    assert {"evaluation/oof_draws.csv", "evaluation/operating_point.json"} <= listed
    bands = cox.served_calibration
    assert list(bands["band"]) == ["d0_30", "d30_182", "d182_365", "d365_730", "d730_plus"]
    assert bands["n_rows"].sum() > 0


def test_lead_time_on_the_training_cohort_reproduces_the_stated_operating_point(
    trained_store: dict[str, Any],
) -> None:
    """One definition: `ctcmon leadtime --model` replays the same out-of-fold risks at every
    draw with the packaged rule, so its point figures are the ones the model states."""
    from evaluation import run_leadtime

    cohort: Cohort = trained_store["cohort"]
    result = trained_store["result"]
    champion = result.champion
    res = run_leadtime(
        cohort,
        model_uri=f"models:/{champion['name']}/{champion['version']}",
        tracking_uri=trained_store["uri"],
        rules=["ctc_total>=2"],
        n_boot=20,
    )
    model_rule = next(r for r in res.rules if r.kind == "model" and r.variant_of is None)
    stated = res.model["stated_operating_point"]
    assert model_rule.confirm == stated["confirm"]
    assert model_rule.metrics["specificity"] == pytest.approx(stated["patient_specificity"])
    assert model_rule.metrics["sensitivity"] == pytest.approx(stated["sensitivity"])
    assert model_rule.metrics["lead_median"] == pytest.approx(stated["median_lead_days"])
    assert "every post-index draw" in model_rule.description
    assert isinstance(res.model["stated_operating_point"]["definition"], str)


def test_the_lead_time_report_shows_the_stated_operating_point_beside_the_measured(
    trained_store: dict[str, Any], tmp_path: Any
) -> None:
    from evaluation import run_leadtime
    from reporting.leadtime import write_report

    champion = trained_store["result"].champion
    res = run_leadtime(
        trained_store["cohort"],
        model_uri=f"models:/{champion['name']}/{champion['version']}",
        tracking_uri=trained_store["uri"],
        rules=["ctc_total>=2"],
        n_boot=20,
    )
    written = write_report(res, tmp_path / "lt")  # no MLflow run: the store is shared
    html = (tmp_path / "lt" / "report.html").read_text(encoding="utf-8")
    stated = res.model["stated_operating_point"]
    assert "The model's stated operating point" in html
    assert html.count(f"{100 * stated['patient_specificity']:.1f}%") >= 2  # stated = measured here
    assert written.files["html"].endswith("report.html")
