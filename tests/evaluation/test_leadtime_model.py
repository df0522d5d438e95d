"""Model alarms: out-of-fold risks on the training cohort, scoring elsewhere; a new MLflow run."""

from __future__ import annotations

import warnings
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

with warnings.catch_warnings():
    # importing mlflow.pyfunc warns about its own type hints (filterwarnings = error)
    warnings.simplefilter("ignore")
    import mlflow.pyfunc

from cohort.load import load_cohort
from cohort.simulate import simulate_cohort
from training.train import TrainConfig, train

pytestmark = [
    pytest.mark.slow,
    # MLflow's SQL store uses a loader strategy SQLAlchemy 2.1 deprecates (not ours to fix)
    pytest.mark.filterwarnings("ignore:.*noload.*:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    root = tmp_path_factory.mktemp("model")
    simulate_cohort(root / "train", n_patients=300, seed=5)
    uri = f"sqlite:///{(root / 'mlflow.db').as_posix()}"
    config = TrainConfig(models=["xgb_cox"], folds=3, n_boot=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # training's own MLflow warnings: not under test here
        res = train(load_cohort(root / "train"), config, tracking_uri=uri, experiment="lt-test")
    return root, uri, res.run_ids["xgb_cox"]


def test_the_training_cohort_uses_out_of_fold_risks_and_logs_a_new_run(
    trained: tuple[Path, str, str],
) -> None:
    from evaluation import run_leadtime
    from reporting.leadtime import publish_leadtime
    from reporting.related import leadtime_facts

    root, uri, train_run = trained
    before = MlflowClient(uri).get_run(train_run).data
    result = run_leadtime(
        load_cohort(root / "train"),
        model_uri=f"runs:/{train_run}/model",
        rules=["ctc_total>=2"],
        n_boot=20,
        tracking_uri=uri,
    )
    result = publish_leadtime(result, root / "report")
    assert result.model is not None and result.model["mode"] == "out-of-fold"
    model_rule = next(r for r in result.rules if r.kind == "model" and r.variant_of is None)
    assert model_rule.metrics["n_recurrences"] > 0
    assert model_rule.vs_reference["reference"] == "ctc_total>=2"
    run = MlflowClient(uri).get_run(result.mlflow_run_id)
    assert run.data.tags["ctcmon.kind"] == "leadtime"
    assert run.info.experiment_id == MlflowClient(uri).get_run(train_run).info.experiment_id
    assert any(k.endswith(".sensitivity") for k in run.data.metrics)
    after = MlflowClient(uri).get_run(train_run).data
    assert (after.tags, after.metrics) == (before.tags, before.metrics)  # training run untouched
    # the model report reads each rule back by its logged text, metrics by keys built from it
    read = leadtime_facts(MlflowClient(uri), MlflowClient(uri).get_run(train_run))
    assert read is not None and read["run_id"] == result.mlflow_run_id
    by_rule = {row["rule"]: row for row in read["rules"]}
    assert set(by_rule) == {r.name for r in result.rules}
    assert by_rule["ctc_total>=2"]["sensitivity"] == pytest.approx(
        result.rule("ctc_total>=2").metrics["sensitivity"]
    )
    assert read["rules"][0]["rule"] == model_rule.name  # the model's own alarm first
    mlflow.set_tracking_uri(None)


def test_another_cohort_is_scored_at_each_draw_day(trained: tuple[Path, str, str]) -> None:
    from evaluation import run_leadtime

    root, uri, train_run = trained
    simulate_cohort(root / "external", n_patients=150, seed=6)
    result = run_leadtime(
        load_cohort(root / "external"),
        model_uri=f"runs:/{train_run}/model",
        rules=["ctc_total>=2"],
        n_boot=0,
        tracking_uri=uri,
    )
    assert result.model is not None and result.model["mode"] == "scored"
    series = next(s for s in result.series.values() if s.kind == "model")
    assert series.frame["day"].nunique() > 20  # actual draw days, not the landmark grid
