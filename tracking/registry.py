"""The model registry (champion alias) and the comparison table read back from MLflow."""

from __future__ import annotations

import tempfile
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from models.packaging import MODEL_ARTIFACT
from tracking.locations import CHAMPION, DEFAULT_EXPERIMENT, REGISTERED_MODEL
from tracking.vocabulary import STACK_PACKAGED, STACK_WEIGHTS, Tag, evaluation_artifact

# higher is better for these; lower for the rest
HIGHER_IS_BETTER = {"auc", "harrell_c", "uno_c"}


def best_run(run_ids: dict[str, str], metrics: dict[str, dict[str, float]], metric: str) -> str:
    """The model name whose OOF ``metric`` is best (NaN never wins)."""
    sign = 1.0 if metric in HIGHER_IS_BETTER else -1.0
    scored = {n: sign * metrics[n].get(metric, np.nan) for n in run_ids}
    finite = {n: v for n, v in scored.items() if np.isfinite(v)}
    if not finite:
        raise ValueError(f"no model has a finite {metric!r}; cannot pick a champion")
    return max(finite, key=lambda n: finite[n])


def register_champion(run_id: str, metric: str, value: float) -> str:
    """Register the run's model as ``ctcmon-recurrence`` and move alias ``champion`` to it."""
    client = MlflowClient()
    if not client.search_registered_models(f"name = '{REGISTERED_MODEL}'"):
        client.create_registered_model(REGISTERED_MODEL)
    source, model_id = _model_source(client, run_id)
    version = client.create_model_version(
        REGISTERED_MODEL, source, run_id=run_id, model_id=model_id
    )
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, version.version)
    client.set_model_version_tag(
        REGISTERED_MODEL, version.version, "selected_by", f"{metric}={value:.4f}"
    )
    return str(version.version)


def _model_source(client: MlflowClient, run_id: str) -> tuple[str, str | None]:
    """The run's logged model as ``models:/<model id>`` and its id (MLflow 3 keeps logged
    models outside the run's artifacts), or the run's ``model`` folder when it has none."""
    run = client.get_run(run_id)
    ids = [o.model_id for o in (run.outputs.model_outputs if run.outputs else [])]
    if ids:
        return f"models:/{ids[-1]}", ids[-1]
    return f"{run.info.artifact_uri}/{MODEL_ARTIFACT}", None


def comparison_table(
    experiment: str = DEFAULT_EXPERIMENT, latest_only: bool = True
) -> pd.DataFrame:
    """The model comparison read back from MLflow: one row per (latest) run of each model."""
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        raise ValueError(
            f"no MLflow experiment named {experiment!r} at {mlflow.get_tracking_uri()}"
        )
    runs = mlflow.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`{Tag.MODEL}` != ''",
        order_by=["attributes.start_time DESC"],
    )
    if runs.empty:
        raise ValueError(
            f"experiment {experiment!r} has no ctcmon runs yet; run `ctcmon train` first"
        )
    runs = runs[runs[Tag.PARENT_RUN_ID.column].isna()] if Tag.PARENT_RUN_ID.column in runs else runs
    # a lead-time (or other) analysis run names its model too, but holds no training metrics
    runs = runs[runs[Tag.KIND.column].isna()] if Tag.KIND.column in runs else runs
    if latest_only:
        runs = runs.drop_duplicates(Tag.MODEL.column, keep="first")
    return _tidy(runs)


COMPARISON_COLUMNS = (
    "harrell_c",
    "uno_c",
    "auc",
    "auc_low",
    "auc_high",
    "brier",
    "integrated_brier",
    "calibration_slope",
    "ici",
    "alarm_sensitivity",
    "alarm_patient_specificity",
    "alarm_median_lead_days",
    "fit_seconds",
    "serve_ms",
)


def _tidy(runs: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "model": runs[Tag.MODEL.column],
            "run_id": runs["run_id"],
            "cohort": runs.get(Tag.COHORT.column),
            "horizon_days": runs.get("params.horizon_days"),
        }
    )
    for col in COMPARISON_COLUMNS:
        key = f"metrics.{col}"
        out[col] = runs.get(key, np.nan)
    return out.sort_values("auc", ascending=False, na_position="last").reset_index(drop=True)


def packaged_stack_weights(run_id: str) -> pd.DataFrame | None:
    """A stack run's packaged weights per band (its ``evaluation/stack_weights.csv`` rows
    fitted on every fold), or None for a run that is not a stack's."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=evaluation_artifact(STACK_WEIGHTS), dst_path=tmp
            )
        except (MlflowException, OSError):
            return None
        table = pd.read_csv(path)
    packaged = table[table["fitted_on"] == STACK_PACKAGED].drop(columns="fitted_on")
    return packaged.reset_index(drop=True)


def champion_version() -> dict[str, Any] | None:
    """The registered champion (name, version, run id), or None if there is none."""
    client = MlflowClient()
    try:
        mv = client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None
    return {"name": REGISTERED_MODEL, "version": str(mv.version), "run_id": mv.run_id}
