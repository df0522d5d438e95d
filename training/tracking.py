"""MLflow tracking and registry: one run per model, nested runs per fold, the packaged model.

The store defaults to an SQLite file in the working directory (no server needed); any
``MLFLOW_TRACKING_URI`` works the same, e.g. a team tracking server backed by PostgreSQL.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow.data.pandas_dataset import from_pandas
from mlflow.tracking import MlflowClient

import ctcmon
from cohort.cohort import Cohort
from training.evaluate import CVResult
from training.packaging import MODEL_ARTIFACT, CtcmonRiskModel
from training.plots import png_bytes

log = logging.getLogger(__name__)

REGISTERED_MODEL = "ctcmon-recurrence"
CHAMPION = "champion"
DEFAULT_EXPERIMENT = "ctcmon"
DEFAULT_DB = "mlflow.db"
# higher is better for these; lower for the rest
HIGHER_IS_BETTER = {"auc", "harrell_c", "uno_c"}


def resolve_tracking_uri(uri: str | None = None) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else an SQLite store in the working dir."""
    if uri:
        return uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(Path.cwd() / DEFAULT_DB).as_posix()}"


def use_tracking(uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT) -> str:
    """Point MLflow at the store and experiment (created with local artifacts beside an SQLite db)."""
    resolved = resolve_tracking_uri(uri)
    mlflow.set_tracking_uri(resolved)
    mlflow.set_registry_uri(resolved)
    if mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(
            experiment, artifact_location=_artifact_location(resolved, experiment)
        )
    mlflow.set_experiment(experiment)
    return resolved


def _artifact_location(uri: str, experiment: str) -> str | None:
    """Artifacts of an SQLite store go in ``mlartifacts/`` beside the db file, as absolute URIs,
    so runs stay readable whatever directory a later command starts from."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///"))
    return (db.parent / "mlartifacts" / experiment).resolve().as_uri()


def git_commit() -> str | None:
    """Commit of the ctcmon source tree, when it is a git checkout."""
    src = Path(ctcmon.__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}


def _params(config: dict[str, Any], model_params: dict[str, Any]) -> dict[str, str]:
    flat = {**config, **{f"model.{k}": v for k, v in model_params.items()}}
    return {k: str(v)[:500] for k, v in flat.items()}


def log_model_run(
    result: CVResult,
    cohort: Cohort,
    config: dict[str, Any],
    figures: Mapping[str, Figure | bytes],
    input_example: list[dict[str, Any]] | None,
) -> str:
    """One parent run for ``result`` (nested runs per fold); returns the run id.

    ``figures`` are Figures or their PNG bytes (see ``png_bytes``), logged as ``figures/<name>.png``.
    """
    assert result.pipeline is not None, "fit the pipeline before logging"
    with mlflow.start_run(run_name=result.name) as run:
        mlflow.set_tags(_tags(result, cohort))
        mlflow.log_params(_params(config, result.params))
        mlflow.log_metrics(_finite(result.metrics))
        _log_by_landmark(result.by_landmark)
        _log_dataset(cohort)
        for fold in result.fold_metrics:
            with mlflow.start_run(run_name=f"{result.name}-fold{int(fold['fold'])}", nested=True):
                mlflow.set_tag("ctcmon.fold", int(fold["fold"]))
                mlflow.log_metrics(_finite({k: v for k, v in fold.items() if k != "fold"}))
        _log_tables_and_figures(result, figures)
        with warnings.catch_warnings():
            # The assessment's nested fields (risk by horizon, imaging, drivers) are typed
            # ``Any`` for MLflow; the pipeline itself validates its input histories.
            warnings.filterwarnings("ignore", message=".*Any type hint is inferred as AnyType")
            mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=CtcmonRiskModel(result.pipeline),
                input_example=input_example,
                pip_requirements=_requirements(),
            )
        return run.info.run_id


def _tags(result: CVResult, cohort: Cohort) -> dict[str, str]:
    tags = {
        "ctcmon.model": result.name,
        "ctcmon.cohort": cohort.manifest.name,
        "ctcmon.cohort_digest": cohort.digest,
        "ctcmon.endpoint": cohort.manifest.endpoint,
        "ctcmon.version": ctcmon.__version__,
        "ctcmon.horizon_days": str(result.horizon_days),
    }
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    if result.notes:
        tags["ctcmon.notes"] = " | ".join(result.notes)[:4000]
    return tags


def _log_by_landmark(by_landmark: pd.DataFrame) -> None:
    """Per-landmark AUC/Brier as metric steps (step = landmark day), so MLflow plots them."""
    if by_landmark.empty:
        return
    days = by_landmark["landmark_day"].to_numpy(dtype=float)
    for key in ("auc", "brier"):
        for day, value in zip(days, by_landmark.get(key, []), strict=False):
            if np.isfinite(value):
                mlflow.log_metric(f"{key}_by_landmark", float(value), step=int(day))


def _log_dataset(cohort: Cohort) -> None:
    with warnings.catch_warnings():
        # a local folder matches two equivalent MLflow source types; MLflow picks one
        warnings.filterwarnings(
            "ignore", message=".*dataset source can be interpreted in multiple ways"
        )
        dataset = from_pandas(
            cohort.patients,
            source=str(Path(cohort.source).resolve()) if cohort.source else "memory",
            name=cohort.manifest.name,
            digest=cohort.digest[:36],
        )
    mlflow.log_input(dataset, context="training")


def _log_tables_and_figures(result: CVResult, figures: Mapping[str, Figure | bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "evaluation"
        folder.mkdir()
        result.oof.to_csv(folder / "oof_predictions.csv", index=False)
        result.by_landmark.to_csv(folder / "metrics_by_landmark.csv", index=False)
        pd.DataFrame(result.fold_metrics).to_csv(folder / "metrics_by_fold.csv", index=False)
        if not result.decision_curve.empty:
            result.decision_curve.to_csv(folder / "decision_curve.csv", index=False)
        if "calibration_table" in result.calibration:
            result.calibration["calibration_table"].to_csv(
                folder / "calibration_table.csv", index=False
            )
        mlflow.log_artifacts(str(folder), artifact_path="evaluation")
        if figures:
            pictures = Path(tmp) / "figures"
            pictures.mkdir()
            for name, fig in figures.items():
                png = fig if isinstance(fig, bytes) else png_bytes(fig)
                (pictures / f"{name}.png").write_bytes(png)
            mlflow.log_artifacts(str(pictures), artifact_path="figures")


def _requirements() -> list[str]:
    from importlib.metadata import version

    pkgs = (
        "numpy",
        "pandas",
        "scikit-learn",
        "scikit-survival",
        "xgboost",
        "pydantic",
        "lifelines",
    )
    return [f"{p}=={version(p)}" for p in pkgs]


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
    version = mlflow.register_model(f"runs:/{run_id}/{MODEL_ARTIFACT}", REGISTERED_MODEL)
    client = MlflowClient()
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, version.version)
    client.set_model_version_tag(
        REGISTERED_MODEL, version.version, "selected_by", f"{metric}={value:.4f}"
    )
    return str(version.version)


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
        filter_string="tags.`ctcmon.model` != ''",
        order_by=["attributes.start_time DESC"],
    )
    if runs.empty:
        raise ValueError(
            f"experiment {experiment!r} has no ctcmon runs yet; run `ctcmon train` first"
        )
    runs = (
        runs[runs["tags.mlflow.parentRunId"].isna()] if "tags.mlflow.parentRunId" in runs else runs
    )
    if latest_only:
        runs = runs.drop_duplicates("tags.ctcmon.model", keep="first")
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
    "fit_seconds",
)


def _tidy(runs: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "model": runs["tags.ctcmon.model"],
            "run_id": runs["run_id"],
            "cohort": runs.get("tags.ctcmon.cohort"),
            "horizon_days": runs.get("params.horizon_days"),
        }
    )
    for col in COMPARISON_COLUMNS:
        key = f"metrics.{col}"
        out[col] = runs.get(key, np.nan)
    return out.sort_values("auc", ascending=False, na_position="last").reset_index(drop=True)


def champion_version() -> dict[str, Any] | None:
    """The registered champion (name, version, run id), or None if there is none."""
    client = MlflowClient()
    try:
        mv = client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None
    return {"name": REGISTERED_MODEL, "version": str(mv.version), "run_id": mv.run_id}
