"""Training end to end: patient-grouped CV, MLflow runs, the registry, the packaged model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from cohort.cohort import Cohort
from cohort.records import history_from_cohort
from cohort.vocabulary import EVENT, FOLD, PATIENT_ID, RESIDUAL_TIME
from models.cox import CoxModel
from models.packaging import load_pipeline
from tracking.locations import CHAMPION, REGISTERED_MODEL, use_tracking
from tracking.registry import comparison_table
from training.evaluate import (
    OOF_RISK,
    _y,
    alarm_policy,
    cross_validate,
    expected_lead_days,
    feature_columns,
)
from training.train import (
    TrainConfig,
    _model_runs,
    _ModelJob,
    assign_folds,
    check_config,
    landmark_table,
    train,
)

pytestmark = pytest.mark.slow


def test_each_model_gets_one_run_with_nested_fold_runs(trained_store: dict[str, Any]) -> None:
    use_tracking(trained_store["uri"], "test")
    exp = mlflow.get_experiment_by_name("test")
    runs = mlflow.search_runs([exp.experiment_id])
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    if "tags.ctcmon.kind" in parents:  # other tests' lead-time runs share the store
        parents = parents[parents["tags.ctcmon.kind"].isna()]
    assert sorted(parents["tags.ctcmon.model"]) == ["baseline", "cox"]
    children = runs[runs["tags.mlflow.parentRunId"].notna()]
    assert len(children) == 2 * 3
    cox = parents[parents["tags.ctcmon.model"] == "cox"].iloc[0]
    for metric in (
        "harrell_c",
        "uno_c",
        "auc",
        "brier",
        "integrated_brier",
        "calibration_slope",
        "ici",
        "auc_low",
        "auc_high",
    ):
        assert np.isfinite(cox[f"metrics.{metric}"]), metric
    assert cox["tags.ctcmon.cohort_digest"] == trained_store["cohort"].digest
    assert cox["params.folds"] == "3"


def test_runs_carry_the_dataset_figures_and_predictions(trained_store: dict[str, Any]) -> None:
    use_tracking(trained_store["uri"], "test")
    run_id = trained_store["result"].run_ids["cox"]
    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.inputs.dataset_inputs[0].dataset.name == trained_store["cohort"].manifest.name
    figures = {f.path for f in client.list_artifacts(run_id, "figures")}
    assert {"figures/auc_by_landmark.png", "figures/calibration.png"} <= figures
    evaluation = {f.path for f in client.list_artifacts(run_id, "evaluation")}
    assert "evaluation/oof_predictions.csv" in evaluation


def test_the_champion_is_the_best_out_of_fold_model(trained_store: dict[str, Any]) -> None:
    use_tracking(trained_store["uri"], "test")
    res = trained_store["result"]
    best = max(res.results, key=lambda r: r.metrics["auc"])
    assert res.champion["model"] == best.name
    mv = MlflowClient().get_model_version_by_alias(REGISTERED_MODEL, CHAMPION)
    assert mv.run_id == res.run_ids[best.name]


def test_markers_beat_the_covariates_only_baseline(trained_store: dict[str, Any]) -> None:
    metrics = {r.name: r.metrics for r in trained_store["result"].results}
    assert metrics["cox"]["auc"] > metrics["baseline"]["auc"] + 0.05


def test_the_champion_scores_a_raw_patient_history(trained_store: dict[str, Any]) -> None:
    use_tracking(trained_store["uri"], "test")
    cohort = trained_store["cohort"]
    pid = str(cohort.measurements[PATIENT_ID].iloc[0])
    history = history_from_cohort(cohort, pid, as_of="2030-01-01").model_dump(exclude_none=True)
    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}@{CHAMPION}")
    (record,) = model.predict([history])
    assessment = record.model_dump()
    assert set(assessment["risk"]) == {"180", "365", "730"}
    assert (
        0
        <= assessment["risk"]["180"]
        <= assessment["risk"]["365"]
        <= assessment["risk"]["730"]
        <= 1
    )
    assert assessment["imaging"]["recommendation"] in {"bring_imaging_forward", "keep_schedule"}
    # logged from code with a typed signature: every output field has a type MLflow checks
    signature = model.metadata.signature
    assert signature is not None and signature.outputs is not None
    outputs = json.dumps(signature.outputs.to_dict())
    assert '"any"' not in outputs.lower() and '"risk_interval"' in outputs
    assert model.metadata.flavors["python_function"].get("model_code_path")


def test_the_packaged_pipeline_round_trips_through_mlflow(trained_store: dict[str, Any]) -> None:
    use_tracking(trained_store["uri"], "test")
    res = trained_store["result"]
    cox = next(r for r in res.results if r.name == "cox")
    loaded = load_pipeline(f"runs:/{res.run_ids['cox']}/model")
    cohort = trained_store["cohort"]
    points = cox.oof[[PATIENT_ID, "landmark_day"]].head(50)
    before = cox.pipeline.score(cohort, points)
    after = loaded.score(cohort, points)
    pd.testing.assert_frame_equal(before, after)


def test_compare_reads_the_table_back_from_mlflow(trained_store: dict[str, Any]) -> None:
    use_tracking(trained_store["uri"], "test")
    table = comparison_table("test")
    assert sorted(table["model"]) == ["baseline", "cox"]
    assert table["auc"].iloc[0] >= table["auc"].iloc[1]


def three_folds(cohort: Cohort) -> tuple[pd.DataFrame, Any, pd.Series]:
    """cox's landmark table of ``cohort`` and three folds of its patients (by position)."""
    table, featurizer = landmark_table(cohort, TrainConfig(models=["cox"], folds=3, n_boot=0))
    ids = np.sort(table[PATIENT_ID].unique())
    return table, featurizer, pd.Series((np.arange(len(ids)) % 3) + 1, index=ids, name=FOLD)


def test_out_of_fold_predictions_never_see_their_own_outcomes(
    trained_store: dict[str, Any],
) -> None:
    """Permuting the outcomes of fold-1 patients must not change fold-1 predictions."""
    table, featurizer, folds = three_folds(trained_store["cohort"])
    first = cross_validate(table, featurizer, "cox", folds, horizon_days=365, n_boot=0)
    shuffled = table.copy()
    in_fold1 = shuffled[PATIENT_ID].map(folds).eq(1).to_numpy()
    rng = np.random.default_rng(0)
    for col in (RESIDUAL_TIME, EVENT, "residual_time_full", "event_full"):
        shuffled.loc[in_fold1, col] = rng.permutation(shuffled.loc[in_fold1, col].to_numpy())
    second = cross_validate(shuffled, featurizer, "cox", folds, horizon_days=365, n_boot=0)
    np.testing.assert_allclose(
        first.oof.loc[in_fold1, OOF_RISK], second.oof.loc[in_fold1, OOF_RISK]
    )
    assert not np.allclose(first.oof.loc[~in_fold1, OOF_RISK], second.oof.loc[~in_fold1, OOF_RISK])


def test_cox_s_inner_cv_sees_only_its_fold_s_training_patients_grouped_by_patient(
    trained_store: dict[str, Any],
) -> None:
    """Fold k's penalty is the inner CV of a fit on the other folds' rows, split by patient."""
    table, featurizer, folds = three_folds(trained_store["cohort"])
    result = cross_validate(table, featurizer, "cox", folds, horizon_days=365, n_boot=0)
    model = result.fold_models[0]  # fold 1's
    assert table.groupby(PATIENT_ID).size().max() > 1  # several rows per patient
    train_rows = table[table[PATIENT_ID].map(folds).ne(1).to_numpy()]
    cols = feature_columns(featurizer)
    direct = CoxModel().fit(train_rows[cols], _y(train_rows), groups=train_rows[PATIENT_ID])
    np.testing.assert_array_equal(model.cv_scores_, direct.cv_scores_)
    assert model.alpha_ == direct.alpha_
    assert [f["tuned_alpha"] for f in result.fold_metrics] == [m.alpha_ for m in result.fold_models]


def test_cox_s_chosen_penalties_are_logged_per_fold_and_for_the_packaged_model(
    trained_store: dict[str, Any],
) -> None:
    cox = next(r for r in trained_store["result"].results if r.name == "cox")
    client = MlflowClient(tracking_uri=trained_store["uri"])
    run_id = trained_store["result"].run_ids["cox"]
    parent = client.get_run(run_id)
    assert cox.pipeline is not None
    assert parent.data.metrics["tuned_alpha"] == pytest.approx(cox.pipeline.model.alpha_)
    assert parent.data.params["model.alpha"] == "cv"
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'"
    )
    logged = {int(c.data.tags["ctcmon.fold"]): c.data.metrics["tuned_alpha"] for c in children}
    assert logged == pytest.approx(
        {int(f["fold"]): m.alpha_ for f, m in zip(cox.fold_metrics, cox.fold_models, strict=True)}
    )
    assert len(set(logged.values())) > 1  # chosen per fold, not once


def test_every_patient_sits_in_exactly_one_fold(trained_store: dict[str, Any]) -> None:
    cox = next(r for r in trained_store["result"].results if r.name == "cox")
    per_patient = cox.oof.groupby(PATIENT_ID)[FOLD].nunique()
    assert (per_patient == 1).all()
    assert (cox.oof[FOLD] > 0).all()


def test_the_alarm_threshold_holds_the_target_specificity_on_known_controls() -> None:
    rng = np.random.default_rng(1)
    oof = pd.DataFrame(
        {
            OOF_RISK: rng.uniform(size=2000),
            "residual_time_full": rng.uniform(0, 1000, size=2000),
            EVENT: rng.integers(0, 2, size=2000),
            PATIENT_ID: np.arange(2000).astype(str),
            "landmark_day": 0.0,
        }
    )
    oof["event_full"] = oof[EVENT]
    policy = alarm_policy(oof, 365, specificity=0.9)
    controls = (oof["residual_time_full"] > 365) & (oof[EVENT] == 0)
    assert (oof.loc[controls, OOF_RISK] < policy.threshold).mean() == pytest.approx(0.9, abs=0.01)
    assert policy.low_below < policy.threshold


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"models": ["cox", "deepsurv"]}, "unknown model"),
        ({"horizon_days": 0}, "--horizon must be > 0"),
        ({"select_by": "accuracy"}, "cannot select by 'accuracy'"),
        ({"specificity": 1.5}, "specificity"),
    ],
)
def test_bad_training_configurations_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_config(TrainConfig(**change))


def test_expected_lead_is_the_median_first_alarm_before_the_event() -> None:
    # two patients with events: first alarms 200 and 100 days before; one never alarmed
    oof = pd.DataFrame(
        {
            PATIENT_ID: ["a", "a", "a", "b", "b", "c"],
            "landmark_day": [0.0, 100.0, 200.0, 0.0, 100.0, 0.0],
            "residual_time_full": [300.0, 200.0, 100.0, 200.0, 100.0, 50.0],
            "event_full": [1, 1, 1, 1, 1, 1],
            OOF_RISK: [0.1, 0.9, 0.9, 0.1, 0.9, 0.1],
        }
    )
    assert expected_lead_days(oof, threshold=0.5) == pytest.approx(150.0)
    assert expected_lead_days(oof, threshold=0.95) is None


def test_an_unknown_model_uri_is_a_clear_error(trained_store: dict[str, Any]) -> None:
    use_tracking(trained_store["uri"], "test")
    with pytest.raises(ValueError, match="cannot load model 'models:/nope@champion'"):
        load_pipeline("models:/nope@champion")


def test_predict_scores_an_external_cohort_and_flags_resubstitution(
    trained_store: dict[str, Any], tmp_path: Path
) -> None:
    from cohort.load import load_cohort
    from cohort.simulate import simulate_cohort
    from training.predict import score_cohort

    use_tracking(trained_store["uri"], "test")
    uri = f"models:/{REGISTERED_MODEL}@{CHAMPION}"
    simulate_cohort(tmp_path / "ext", n_patients=150, seed=99)
    external = load_cohort(tmp_path / "ext")
    scored, metrics = score_cohort(external, uri, landmarks=[90, 365])
    ep = external.endpoint(horizon_days=None).set_index(PATIENT_ID)
    at_risk = ep.loc[scored[PATIENT_ID], "time"].to_numpy() > scored["landmark_day"].to_numpy()
    assert at_risk.all()
    assert (scored["risk_180"] <= scored["risk_365"]).all()
    assert "auc_365" in metrics
    _, own = score_cohort(trained_store["cohort"], uri, landmarks=[90])
    assert own and all(k.endswith("_resubstitution") for k in own)


@pytest.fixture(scope="module")
def small_cohort(tmp_path_factory: pytest.TempPathFactory) -> Cohort:
    from cohort.load import load_cohort
    from cohort.simulate import simulate_cohort

    root = tmp_path_factory.mktemp("small")
    simulate_cohort(root / "cohort", n_patients=200, seed=5)
    return load_cohort(root / "cohort")


def _run_content(uri: str, run_id: str) -> dict[str, Any]:
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    return {
        "params": run.data.params,
        "metrics": {
            k: v for k, v in run.data.metrics.items() if k not in ("fit_seconds", "serve_ms")
        },
        "tags": {k: v for k, v in run.data.tags.items() if k.startswith("ctcmon.")},
        "figures": sorted(f.path for f in client.list_artifacts(run_id, "figures")),
        "evaluation": sorted(f.path for f in client.list_artifacts(run_id, "evaluation")),
    }


def test_results_and_runs_do_not_depend_on_the_number_of_worker_processes(
    small_cohort: Cohort, tmp_path: Path
) -> None:
    config = TrainConfig(models=["cox", "xgb_cox", "baseline"], folds=3, n_boot=10, seed=4)
    trained = {
        workers: train(
            small_cohort,
            config,
            tracking_uri=f"sqlite:///{(tmp_path / f'{workers}.db').as_posix()}",
            experiment="workers",
            workers=workers,
        )
        for workers in (1, 2)
    }
    serial, parallel = trained[1], trained[2]
    assert [r.name for r in parallel.results] == config.models
    for one, two in zip(serial.results, parallel.results, strict=True):
        pd.testing.assert_frame_equal(one.oof, two.oof)
        pd.testing.assert_frame_equal(one.by_landmark, two.by_landmark)
        for timing in ("fit_seconds", "serve_ms"):  # clocks, not results
            del one.metrics[timing], two.metrics[timing]
        assert one.metrics.keys() == two.metrics.keys()
        np.testing.assert_array_equal(list(one.metrics.values()), list(two.metrics.values()))
        assert one.notes == two.notes
        content = [_run_content(t.tracking_uri, t.run_ids[one.name]) for t in (serial, parallel)]
        assert content[0] == content[1]
        assert "figures/calibration.png" in content[0]["figures"]


def test_a_model_failing_in_its_worker_is_named_in_the_error(small_cohort: Cohort) -> None:
    config = TrainConfig(models=["baseline", "cox"], folds=3, n_boot=0)
    table, featurizer = landmark_table(small_cohort, config)
    folds = assign_folds(small_cohort, config)
    broken = folds.drop(str(table[PATIENT_ID].iloc[0]))  # one patient without a fold
    jobs = [
        _ModelJob("baseline", small_cohort, table, featurizer, folds, config),
        _ModelJob("cox", small_cohort, table, featurizer, broken, config),
    ]
    with (
        pytest.raises(ValueError, match=r"model 'cox': 1 patient\(s\) in the table have no fold"),
        _model_runs(jobs, workers=2) as outcomes,
    ):
        list(outcomes)


def test_an_error_while_logging_cancels_the_running_models_without_a_warning(
    small_cohort: Cohort,
) -> None:
    config = TrainConfig(models=["baseline", "cox"], folds=3, n_boot=0)
    table, featurizer = landmark_table(small_cohort, config)
    folds = assign_folds(small_cohort, config)
    jobs = [_ModelJob(m, small_cohort, table, featurizer, folds, config) for m in config.models]
    with pytest.raises(ValueError, match="no tracking store"), _model_runs(jobs, workers=2):
        raise ValueError("no tracking store")


def test_a_landmark_supermodel_fits_on_every_landmark_but_scores_only_the_chosen_ones(
    small_cohort: Cohort,
) -> None:
    config = TrainConfig(models=["cox"], landmarks=[365.0], train_landmarks=[0.0, 180.0], folds=3)
    table, featurizer = landmark_table(small_cohort, config)
    assert sorted(table["landmark_day"].unique()) == [0.0, 180.0, 365.0]
    folds = assign_folds(small_cohort, config)
    kwargs: dict[str, Any] = {"horizon_days": 365, "n_boot": 0}
    super_ = cross_validate(table, featurizer, "cox", folds, evaluate_at=[365.0], **kwargs)
    at_365 = table[table["landmark_day"] == 365.0].reset_index(drop=True)
    alone = cross_validate(at_365, featurizer, "cox", folds, **kwargs)
    # the same rows are scored, in the same order, by models that saw more rows
    assert (super_.oof["landmark_day"] == 365.0).all()
    assert super_.oof[PATIENT_ID].tolist() == alone.oof[PATIENT_ID].tolist()
    assert super_.metrics["n_rows"] == len(at_365)
    assert not np.allclose(super_.oof[OOF_RISK], alone.oof[OOF_RISK])
    # held-out patients' earlier rows are never fitted on: permuting the outcomes of fold-1
    # patients at every landmark leaves their predictions unchanged
    shuffled = table.copy()
    in_fold1 = shuffled[PATIENT_ID].map(folds).eq(1).to_numpy()
    rng = np.random.default_rng(0)
    for col in (RESIDUAL_TIME, EVENT, "residual_time_full", "event_full"):
        shuffled.loc[in_fold1, col] = rng.permutation(shuffled.loc[in_fold1, col].to_numpy())
    again = cross_validate(shuffled, featurizer, "cox", folds, evaluate_at=[365.0], **kwargs)
    scored_fold1 = super_.oof[FOLD] == 1
    np.testing.assert_allclose(
        super_.oof.loc[scored_fold1, OOF_RISK], again.oof.loc[scored_fold1, OOF_RISK]
    )
    assert not np.allclose(
        super_.oof.loc[~scored_fold1, OOF_RISK], again.oof.loc[~scored_fold1, OOF_RISK]
    )


def test_scoring_a_landmark_the_table_lacks_is_a_clear_error(small_cohort: Cohort) -> None:
    config = TrainConfig(models=["cox"], landmarks=[0.0, 180.0], folds=3)
    table, featurizer = landmark_table(small_cohort, config)
    folds = assign_folds(small_cohort, config)
    with pytest.raises(ValueError, match=r"no row at the evaluation landmark\(s\) \[365.0\]"):
        cross_validate(table, featurizer, "cox", folds, horizon_days=365, evaluate_at=[365.0])


def test_training_a_supermodel_logs_which_landmarks_were_fitted_and_scored(
    small_cohort: Cohort, tmp_path: Path
) -> None:
    config = TrainConfig(
        models=["cox"], landmarks=[365.0], train_landmarks=[0.0, 180.0], folds=3, n_boot=0
    )
    uri = f"sqlite:///{(tmp_path / 'super.db').as_posix()}"
    result = train(small_cohort, config, tracking_uri=uri, experiment="super")
    assert result.landmarks == [365.0]
    (cox,) = result.results
    assert set(cox.oof["landmark_day"]) == {365.0}
    assert cox.by_landmark["landmark_day"].tolist() == [365.0]
    params = _run_content(uri, result.run_ids["cox"])["params"]
    assert params["landmarks"] == "365"
    assert params["train_landmarks"] == "0,180,365"
    assert int(params["n_scored_rows"]) == len(cox.oof) < int(params["n_landmark_rows"])
    assert result.n_rows == int(params["n_landmark_rows"])
