"""The mixed-model stage inside cross-validation: refitted per fold on the training
patients only, and packaged and logged with the model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from cohort.cohort import Cohort
from cohort.records import history_from_cohort
from cohort.vocabulary import PATIENT_ID, VALUE
from models.packaging import load_pipeline
from tracking.locations import use_tracking
from training.fold_features import fold_columns
from training.mlflow_runs import MIXED_MODELS_ARTIFACT
from training.train import TrainConfig, assign_folds, check_config, train, training_rows

pytestmark = pytest.mark.slow

CONFIG = TrainConfig(models=["cox"], folds=3, n_boot=0, features="mixed")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Cohort:
    from cohort.load import load_cohort
    from cohort.simulate import simulate_cohort

    root = tmp_path_factory.mktemp("mixed-folds")
    simulate_cohort(root / "cohort", n_patients=150, seed=8)
    return load_cohort(root / "cohort")


def _with_scrambled(cohort: Cohort, patients: set[str]) -> Cohort:
    """The cohort with every value of ``patients`` changed (and nothing else)."""
    m = cohort.measurements
    mine = m[PATIENT_ID].isin(patients)
    changed = m.assign(**{VALUE: np.where(mine, m[VALUE] * 40 + 3, m[VALUE])})
    return replace(cohort, measurements=changed)


def test_a_held_out_fold_s_patients_never_enter_its_mixed_models(cohort: Cohort) -> None:
    rows = training_rows(cohort, CONFIG)
    folds = assign_folds(cohort, CONFIG)
    before = fold_columns(cohort, rows.table, rows.featurizer, folds, rows.replay)
    assert before is not None
    held_out = set(folds.index[folds == 1].astype(str))
    after = fold_columns(
        _with_scrambled(cohort, held_out), rows.table, rows.featurizer, folds, rows.replay
    )
    assert after is not None
    assert after.featurizers[1].mixed_ == before.featurizers[1].mixed_
    # the training patients' fold-1 columns do not move; the other folds' models do
    train = ~rows.table[PATIENT_ID].astype(str).isin(held_out).to_numpy()
    pd.testing.assert_frame_equal(after.table[1][train], before.table[1][train])
    for k in (2, 3):
        assert after.featurizers[k].mixed_["afp"] != before.featurizers[k].mixed_["afp"]


def test_each_fold_refits_on_fewer_patients_than_the_packaged_models(cohort: Cohort) -> None:
    rows = training_rows(cohort, CONFIG)
    folds = assign_folds(cohort, CONFIG)
    per_fold = fold_columns(cohort, rows.table, rows.featurizer, folds, rows.replay)
    assert per_fold is not None
    everyone = rows.featurizer.mixed_["afp"].n_patients
    for k, est in per_fold.featurizers.items():
        fold_patients = set(folds.index[folds == k].astype(str))
        assert est.mixed_["afp"].n_patients <= everyone - len(
            fold_patients & set(rows.table[PATIENT_ID].astype(str))
        )
        # the replayed draws of the fold's own patients, and only theirs, carry its columns
        replayed = rows.replay.loc[per_fold.replay[k].index, PATIENT_ID].astype(str)
        assert set(replayed) <= fold_patients


def test_the_summary_features_have_no_fold_stage(cohort: Cohort) -> None:
    config = TrainConfig(models=["cox"], folds=3, n_boot=0)
    rows = training_rows(cohort, config)
    assert fold_columns(cohort, rows.table, rows.featurizer, assign_folds(cohort, config)) is None


def test_an_unknown_feature_set_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"--features must be one or more of .*got 'summary,fancy'"
    ):
        check_config(TrainConfig(features="summary,fancy"))


def test_the_packaged_model_carries_its_mixed_models_and_mlflow_logs_them(
    cohort: Cohort, tmp_path: Path
) -> None:
    uri = f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}"
    result = train(cohort, CONFIG, tracking_uri=uri, experiment="mixed")
    run_id = result.run_ids["cox"]
    client = MlflowClient(tracking_uri=uri)
    assert client.get_run(run_id).data.params["features"] == "mixed"
    logged = json.loads(Path(client.download_artifacts(run_id, MIXED_MODELS_ARTIFACT)).read_text())
    use_tracking(uri, "mixed")
    pipeline = load_pipeline(f"runs:/{run_id}/model")
    packaged = pipeline.featurizer.mixed_
    assert logged["markers"]["afp"] == packaged["afp"].to_dict()
    assert set(pipeline.featurizer.mixed_names()) <= set(pipeline.model.feature_names_in_)
    assert np.isfinite(result.results[0].metrics["auc"])


def cox_and_baseline(
    cohort: Cohort, uri: str, experiment: str, **config: Any
) -> tuple[Any, dict[str, Any]]:
    """``train`` with cox and baseline, three folds, no bootstrap, and ``config``'s settings;
    the result and its model results by name."""
    settings = TrainConfig(models=["cox", "baseline"], folds=3, n_boot=0, **config)
    result = train(cohort, settings, tracking_uri=uri, experiment=experiment)
    return result, {r.name: r for r in result.results}


def test_an_ablation_runs_each_model_per_feature_set_as_a_single_set_run_would(
    cohort: Cohort, tmp_path: Path
) -> None:
    uri = f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}"
    _, by_name = cox_and_baseline(
        cohort, uri, "ablation", features="summary,mixed,mixed-no-ctc,summary-no-scans"
    )
    assert sorted(by_name) == [
        "baseline",
        "cox/mixed",
        "cox/mixed-no-ctc",
        "cox/summary",
        "cox/summary-no-scans",
    ]
    columns = {n: list(r.pipeline.model.feature_names_in_) for n, r in by_name.items()}
    assert not any("_mm_" in c for c in columns["cox/summary"])
    assert any(c.startswith("ctc_total_mm_") for c in columns["cox/mixed"])
    no_ctc = columns["cox/mixed-no-ctc"]
    assert not any(c.startswith("ctc") for c in no_ctc) and "afp_mm_level" in no_ctc
    # the blood alone: every marker feature of the summary set, no scan reading
    scans = [c for c in columns["cox/summary"] if c.startswith("scan_")]
    assert scans and set(columns["cox/summary-no-scans"]) == set(columns["cox/summary"]) - set(
        scans
    )
    single = train(cohort, CONFIG, tracking_uri=uri, experiment="single")
    assert by_name["cox/mixed"].metrics["auc"] == single.results[0].metrics["auc"]
    pd.testing.assert_frame_equal(by_name["cox/mixed"].oof, single.results[0].oof)


def test_pre_specified_markers_and_covariates_with_the_blup_set_are_all_a_model_sees(
    cohort: Cohort, tmp_path: Path
) -> None:
    """Two-stage landmarking as R's reference runs it: chosen markers' BLUPs, chosen covariates."""
    uri = f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}"
    result, by_name = cox_and_baseline(
        cohort,
        uri,
        "blup",
        features="blup",
        markers=["afp", "ctc_total"],
        covariates=["age", "sex"],
    )
    cox = by_name["cox"].pipeline
    assert cox is not None
    expected = ["afp_mm_level", "afp_mm_slope", "ctc_total_mm_level", "ctc_total_mm_slope"]
    assert [c for c in cox.model.feature_names_in_ if c.endswith(("_mm_level", "_mm_slope"))] == (
        expected
    )
    covariates = {"age", "sex_F", "sex_M"}
    scans = {c for c in cox.model.feature_names_in_ if c.startswith("scan_")}
    assert set(cox.model.feature_names_in_) == {"landmark_day", *expected, *covariates, *scans}
    baseline = by_name["baseline"].pipeline
    assert baseline is not None
    assert set(baseline.model.columns_) == {"landmark_day", *covariates}
    # the service computes the same columns for one patient (the other markers ignored)
    pid = str(cohort.patients[PATIENT_ID].iloc[0])
    assessed = cox.assess(history_from_cohort(cohort, pid))
    assert set(assessed["risk"]) == {"180", "365", "730"}
    params = MlflowClient(tracking_uri=uri).get_run(result.run_ids["cox"]).data.params
    assert params["markers"] == "['afp', 'ctc_total']" and params["covariates"] == "['age', 'sex']"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"markers": ["afp", "bilirubin"]}, r"--markers: \['bilirubin'\] not among"),
        ({"covariates": ["age", "bmi"]}, r"--covariates: \['bmi'\] not among"),
    ],
)
def test_a_marker_or_covariate_the_cohort_does_not_declare_is_refused(
    cohort: Cohort, change: dict[str, list[str]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        training_rows(cohort, replace(CONFIG, **change))


@pytest.mark.parametrize("models", [("cox",), ("cox", "baseline", "stack")])
def test_a_training_patient_is_served_the_risk_their_fold_model_was_validated_with(
    cohort: Cohort, tmp_path: Path, models: tuple[str, ...]
) -> None:
    """Cross-fitting with the mixed-model stage: a training patient's served risk after a
    draw is the out-of-fold risk the alarm's threshold was chosen on, to rounding — their
    fold model, reading the mixed-model columns of its own fold's fits (fitted without
    them), not the packaged fits that saw their draws."""
    uri = f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}"
    config = replace(CONFIG, models=list(models))
    trained = train(cohort, config, tracking_uri=uri, experiment="crossfit")
    result = next(r for r in trained.results if r.name == models[-1])
    pipeline = result.pipeline
    assert pipeline is not None and result.oof_draws is not None
    assert len(pipeline.interval_mixed) == len(pipeline.interval_models) == 3
    draws = result.oof_draws
    served, packaged_fits = [], []
    for pid in [str(p) for p in cohort.patients[PATIENT_ID].iloc[:12]]:
        history = history_from_cohort(cohort, pid)
        index = pd.Timestamp(history.patient.index_date)
        mine = draws[draws[PATIENT_ID].astype(str) == pid]
        for day, oof in zip(mine["landmark_day"].iloc[:3], mine["oof_risk"].iloc[:3], strict=True):
            at = history.model_copy(
                update={"as_of": (index + pd.Timedelta(days=float(day))).date().isoformat()}
            )
            doc = pipeline.assess(at)
            assert doc["cross_fitted"] is True
            served.append((doc["risk"]["365"], oof))
            old = replace(pipeline, interval_mixed=[]).assess(at)  # the packaged fits' columns
            packaged_fits.append((old["risk"]["365"], oof))
    assert len(served) >= 20
    assert max(abs(s - o) for s, o in served) <= 5e-5  # the rounding to 4 decimals
    # the check has teeth: read with the packaged fits, the risks move off the OOF ones
    assert max(abs(s - o) for s, o in packaged_fits) > 5e-4


def test_a_new_patient_s_interval_asks_each_fold_model_with_its_own_fold_s_fits(
    cohort: Cohort, tmp_path: Path
) -> None:
    """The interval is the grouped jackknife of the whole fitted pipeline: each fold model
    reads the mixed-model columns of its own fold's fits, as it was trained, for a patient
    the model never saw too; the served risk (the packaged model's) does not move."""
    from cohort.parsed import quick_parse

    uri = f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}"
    trained = train(cohort, CONFIG, tracking_uri=uri, experiment="interval")
    pipeline = trained.results[0].pipeline
    assert pipeline is not None and len(pipeline.interval_mixed) == 3
    moved = 0
    for pid in [str(p) for p in cohort.patients[PATIENT_ID].iloc[:8]]:
        history = history_from_cohort(cohort, pid)
        new = history.model_copy(  # not a training patient: no fold model is theirs
            update={"patient": history.patient.model_copy(update={PATIENT_ID: f"new-{pid}"})}
        )
        parsed = quick_parse(new, pipeline.manifest)
        assert parsed is not None
        day = float(parsed.day.max())
        x = pipeline._x_at(parsed, day)
        rows = pipeline._fold_xs(parsed, day, x, None)
        assert rows is not None and rows.shape == (3, x.shape[1])
        for k in range(3):  # one exact mixed_at call per fold, to rounding (side by side)
            exact = pipeline._fold_row(parsed, day, x, k)[0]
            np.testing.assert_allclose(rows[k], exact, rtol=1e-9, atol=1e-9, equal_nan=True)
        # a training patient's own fold row is the exact one, bit for bit (their stated risk)
        assert np.array_equal(
            pipeline._fold_xs(parsed, day, x, 1)[1],  # type: ignore[index]
            pipeline._fold_row(parsed, day, x, 1)[0],
            equal_nan=True,
        )
        # columns other than the mixed-model ones are the packaged row's
        others = [j for j in range(x.shape[1]) if j not in dict(pipeline._mixed_positions)]
        assert np.array_equal(rows[:, others], np.repeat(x[:, others], 3, axis=0), equal_nan=True)
        doc = pipeline.assess(new)
        assert doc["cross_fitted"] is False
        packaged = replace(pipeline, interval_mixed=[]).assess(new)
        assert doc["risk"] == packaged["risk"]
        moved += doc["risk_interval"] != packaged["risk_interval"]
    assert moved >= 4  # the check has teeth: the fold fits' columns move the interval
