"""One MLflow run per trained model: params, OOF metrics, nested fold runs, figures, the model."""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow.data.pandas_dataset import from_pandas

from cohort.cohort import Cohort
from features.mixed import MIXED_MODEL_TEXT
from models.packaging import log_pipeline
from tracking.locations import git_commit
from tracking.vocabulary import (
    CALIBRATION_BY_DAY_BAND,
    CALIBRATION_TABLE,
    DECISION_CURVE,
    EVALUATION_DIR,
    FIGURES_DIR,
    METRICS_BY_FOLD,
    METRICS_BY_LANDMARK,
    NOTES_SEPARATOR,
    OOF_DRAWS,
    OOF_PREDICTIONS,
    OPERATING_POINT,
    STACK_WEIGHTS,
    TAG_VALUE_LIMIT,
    Tag,
    stack_weight_key,
)
from training.evaluate import CVResult
from training.plots import png_bytes
from training.stacking import base_names, packaged_weights

# the packaged featuriser's mixed models (β, D, σ² per marker), when it has the stage
MIXED_MODELS_ARTIFACT = "features/mixed_models.json"


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
        mlflow.log_metrics(stack_weight_metrics(result))
        _log_by_landmark(result.by_landmark)
        _log_dataset(cohort)
        for fold in result.fold_metrics:
            with mlflow.start_run(run_name=f"{result.name}-fold{int(fold['fold'])}", nested=True):
                mlflow.set_tag(Tag.FOLD, int(fold["fold"]))
                mlflow.log_metrics(_finite({k: v for k, v in fold.items() if k != "fold"}))
        _log_tables_and_figures(result, figures)
        _log_mixed_models(result)
        log_pipeline(result.pipeline, input_example, _requirements())
        return run.info.run_id


def stack_weight_metrics(result: CVResult) -> dict[str, float]:
    """A stack's packaged weights (fitted on every fold) as metrics, one per band and model."""
    if result.stack_weights is None:
        return {}
    return {
        stack_weight_key(str(row["band"]), name): float(row[name])
        for row in packaged_weights(result).to_dict(orient="records")
        for name in base_names(result)
    }


def _log_mixed_models(result: CVResult) -> None:
    """The fitted mixed models the packaged featuriser carries (fitted on every patient)."""
    assert result.pipeline is not None
    fitted = getattr(result.pipeline.featurizer, "mixed_", {})
    if not fitted:
        return
    mlflow.log_dict(
        {
            "model": MIXED_MODEL_TEXT,
            "markers": {m: None if lme is None else lme.to_dict() for m, lme in fitted.items()},
        },
        MIXED_MODELS_ARTIFACT,
    )


def _tags(result: CVResult, cohort: Cohort) -> dict[str, str]:
    tags: dict[str, str] = {
        Tag.MODEL: result.name,
        Tag.COHORT: cohort.manifest.name,
        Tag.COHORT_DIGEST: cohort.digest,
        Tag.ENDPOINT: cohort.manifest.endpoint,
        Tag.VERSION: version("ctcmon"),
        Tag.HORIZON_DAYS: str(result.horizon_days),
    }
    commit = git_commit()
    if commit:
        tags[Tag.GIT_COMMIT] = commit
    if result.notes:
        tags[Tag.NOTES] = NOTES_SEPARATOR.join(result.notes)[:TAG_VALUE_LIMIT]
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
        folder = Path(tmp) / EVALUATION_DIR
        folder.mkdir()
        result.oof.to_csv(folder / OOF_PREDICTIONS, index=False)
        result.by_landmark.to_csv(folder / METRICS_BY_LANDMARK, index=False)
        pd.DataFrame(result.fold_metrics).to_csv(folder / METRICS_BY_FOLD, index=False)
        if result.oof_draws is not None:
            result.oof_draws.to_csv(folder / OOF_DRAWS, index=False)
        if result.served_calibration is not None:
            result.served_calibration.to_csv(folder / CALIBRATION_BY_DAY_BAND, index=False)
        if result.pipeline is not None and result.pipeline.alarm.operating_point:
            (folder / OPERATING_POINT).write_text(
                json.dumps(result.pipeline.alarm.operating_point, indent=2)
            )
        if result.stack_weights is not None:
            result.stack_weights.to_csv(folder / STACK_WEIGHTS, index=False)
        if not result.decision_curve.empty:
            result.decision_curve.to_csv(folder / DECISION_CURVE, index=False)
        if "calibration_table" in result.calibration:
            result.calibration["calibration_table"].to_csv(folder / CALIBRATION_TABLE, index=False)
        mlflow.log_artifacts(str(folder), artifact_path=EVALUATION_DIR)
        if figures:
            pictures = Path(tmp) / FIGURES_DIR
            pictures.mkdir()
            for name, fig in figures.items():
                png = fig if isinstance(fig, bytes) else png_bytes(fig)
                (pictures / f"{name}.png").write_bytes(png)
            mlflow.log_artifacts(str(pictures), artifact_path=FIGURES_DIR)


def _requirements() -> list[str]:
    pkgs = (
        "numpy",
        "pandas",
        "scikit-learn",
        "scikit-survival",
        "xgboost",
        "numba",
        "pydantic",
        "lifelines",
    )
    return [f"{p}=={version(p)}" for p in pkgs]
