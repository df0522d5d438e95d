"""``ctcmon train`` with the stack: it competes in the comparison, its weights per band of
days since index are printed (whole, when piped) and logged to MLflow."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tracking.vocabulary import STACK_WEIGHTS, evaluation_artifact, stack_weight_key
from training.stacking import BAND_NAMES

pytestmark = pytest.mark.slow


def test_the_stack_is_compared_with_its_weights_per_band_printed_whole(
    stack_store: dict[str, Any],
) -> None:
    out = stack_store["stdout"]
    assert "…" not in out  # piped: neither table is cut to 80 columns
    rows = [line.strip("│ ").split()[0] for line in out.splitlines() if line.startswith("│")]
    assert {"cox", "xgb_cox", "stack"} <= set(rows)
    header = next(line for line in out.splitlines() if "chosen on" in line)
    assert "cox" in header and "xgb_cox" in header
    for band in BAND_NAMES:
        assert any(line.startswith(f"│ {band} ") for line in out.splitlines()), band


def test_the_stack_s_weights_are_logged_as_metrics_and_a_table(
    stack_store: dict[str, Any],
) -> None:
    client = MlflowClient(tracking_uri=stack_store["uri"])
    run = client.get_run(stack_store["run_id"])
    assert run.data.params["model.base_models"] == "cox,xgb_cox"
    weights = np.array(
        [
            [run.data.metrics[stack_weight_key(band, m)] for m in ("cox", "xgb_cox")]
            for band in BAND_NAMES
        ]
    )
    assert (weights >= 0).all()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    path = client.download_artifacts(run.info.run_id, evaluation_artifact(STACK_WEIGHTS))
    table = pd.read_csv(path)
    packaged = table[table["fitted_on"] == "every fold"]
    np.testing.assert_allclose(packaged[["cox", "xgb_cox"]].to_numpy(), weights, atol=1e-6)
    assert set(table["fitted_on"]) == {"every fold", *(f"all but fold {k}" for k in (1, 2, 3))}
    for metric in ("auc", "brier", "integrated_brier", "alarm_sensitivity", "serve_ms"):
        assert np.isfinite(run.data.metrics[metric]), metric


def test_compare_reads_the_stack_s_weights_back_from_mlflow(stack_store: dict[str, Any]) -> None:
    from tests.ctcmon.test_cli import ctcmon

    res = ctcmon("compare", "--experiment", "stack", "--tracking-uri", stack_store["uri"])
    assert res.returncode == 0, res.stderr
    assert "…" not in res.stdout
    assert "stack: weights per band of days since index" in res.stdout
    header = next(line for line in res.stdout.splitlines() if "chosen on" in line)
    assert "cox" in header and "xgb_cox" in header


def test_the_stack_s_risks_carry_an_interval_from_its_fold_stacks(
    stack_store: dict[str, Any],
) -> None:
    from cohort.load import load_cohort
    from cohort.records import history_from_cohort
    from models.packaging import load_pipeline
    from models.stack import StackModel
    from tracking.locations import use_tracking

    use_tracking(stack_store["uri"], "stack")
    pipeline = load_pipeline("models:/ctcmon-recurrence@champion")
    assert isinstance(pipeline.model, StackModel)
    # one stack per fold: fold k's base models with fold k's weights
    assert len(pipeline.interval_models) == 3
    assert all(isinstance(m, StackModel) for m in pipeline.interval_models)
    fold_weights = [m.weights_ for m in pipeline.interval_models]
    assert not all(np.allclose(w, fold_weights[0]) for w in fold_weights[1:])
    cohort = load_cohort(stack_store["cohort_dir"])
    widths = []
    for pid in cohort.patients["patient_id"].head(5):
        a = pipeline.assess(history_from_cohort(cohort, str(pid)))
        assert set(a["risk_interval"]) == set(a["risk"])
        for h, risk in a["risk"].items():
            band = a["risk_interval"][h]
            assert 0 <= band["low"] <= risk <= band["high"] <= 1
            widths.append(band["high"] - band["low"])
    assert max(widths) > 0


def test_the_fold_stacks_asked_together_answer_as_each_asked_alone(
    stack_store: dict[str, Any],
) -> None:
    """The interval's fast path (every fold stack's base models of one kind in one pass)
    against each trained fold stack asked alone, at every draw of a few patients."""
    from cohort.load import load_cohort
    from cohort.parsed import parsed_from_cohort
    from cohort.records import history_from_cohort, history_to_cohort
    from models.base import survival_by_kind
    from models.packaging import load_pipeline
    from tracking.locations import use_tracking

    use_tracking(stack_store["uri"], "stack")
    pipeline = load_pipeline("models:/ctcmon-recurrence@champion")
    folds, hs = pipeline.interval_models, list(pipeline.horizons)
    cohort = load_cohort(stack_store["cohort_dir"])
    checked = 0
    for pid in cohort.patients["patient_id"].head(4):
        history = history_from_cohort(cohort, str(pid))
        parsed = parsed_from_cohort(history_to_cohort(history, pipeline.manifest))
        for day in np.unique(np.r_[0.0, parsed.day[parsed.day > 0]]):
            x = pipeline._x_at(parsed, float(day))
            together = survival_by_kind(folds, x, [hs] * len(folds))
            for fold, answer in zip(folds, together, strict=True):
                alone = fold.predict_survival_matrix(x, hs)
                np.testing.assert_allclose(answer, alone, rtol=0, atol=1e-12)
                checked += 1
    assert checked > 30


def test_a_training_patient_is_served_by_the_fold_stack_that_left_them_out(
    stack_store: dict[str, Any],
) -> None:
    from dataclasses import replace

    from cohort.load import load_cohort
    from cohort.records import history_from_cohort
    from models.packaging import load_pipeline
    from tracking.locations import use_tracking

    use_tracking(stack_store["uri"], "stack")
    pipeline = load_pipeline("models:/ctcmon-recurrence@champion")
    cohort = load_cohort(stack_store["cohort_dir"])
    pid = str(cohort.patients["patient_id"].iloc[3])
    history = history_from_cohort(cohort, pid)
    own = pipeline.fold_model_for(pid, history.patient.site_id)
    assert own is not None and own in pipeline.interval_models
    served = pipeline.assess(history)
    assert served["cross_fitted"]
    assert served["risk"] == replace(pipeline, model=own, held_out={}).assess(history)["risk"]
    assert replace(pipeline, held_out={}).assess(history)["risk"] != served["risk"]


def test_a_loaded_stack_has_its_fold_models_flat_trees_built_before_any_request(
    stack_store: dict[str, Any],
) -> None:
    from models.flat_trees import Cached
    from models.packaging import load_pipeline
    from models.xgb import XGBCoxModel
    from tracking.locations import use_tracking

    use_tracking(stack_store["uri"], "stack")
    pipeline = load_pipeline("models:/ctcmon-recurrence@champion")
    boosters = [
        m for fold in pipeline.interval_models for m in fold.models_ if isinstance(m, XGBCoxModel)
    ]
    assert len(boosters) == 3
    tables = [vars(m).get(Cached._CACHE, {}) for m in boosters]
    assert all(t.get("booster_trees") is not None for t in tables)
    assert len({id(t["joint_trees"]) for t in tables}) == 1  # walked together, packed once
