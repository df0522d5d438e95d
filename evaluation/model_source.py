"""Model alarms from an MLflow model URI: out-of-fold risks when they exist, else scoring.

When the model's training run was fitted on this very cohort (its ``ctcmon.cohort_digest``
tag equals ``Cohort.digest``), scoring the cohort with the packaged model would grade it on
its own training data. The run's out-of-fold predictions (``evaluation/oof_predictions.csv``)
are used instead: each risk comes from a model that never saw the patient, at the training
landmarks (the scheduled draw days), at the run's horizon. On any other cohort the packaged
pipeline scores every post-index draw day with the data up to that day only.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from alarms.series import SCORE, AlarmSeries, score_alarms
from alarms.surveillance import END_DAY
from cohort.cohort import Cohort
from cohort.vocabulary import DAY, LANDMARK_DAY, MARKER, PATIENT_ID, risk_column
from models.packaging import load_pipeline
from tracking.vocabulary import OOF_DRAWS, OOF_PREDICTIONS, Tag, evaluation_artifact
from training.evaluate import OOF_RISK

log = logging.getLogger(__name__)

OOF_ARTIFACT: Final = evaluation_artifact(OOF_PREDICTIONS)
# every post-index draw, out of fold
OOF_DRAWS_ARTIFACT: Final = evaluation_artifact(OOF_DRAWS)


@dataclass(frozen=True)
class ModelSource:
    """Where the model's risks came from, for the report and the MLflow run."""

    model_uri: str
    model_name: str
    run_id: str | None
    experiment_id: str | None
    mode: str  # "out-of-fold" | "scored"
    horizon_days: float
    threshold: float
    confirm: int = 1
    # what the packaged model states about its alarm (per patient over the course, out of fold)
    stated_operating_point: dict | None = None


def model_run(model_uri: str) -> tuple[str | None, dict[str, str], str | None]:
    """(run id, run tags, experiment id) of the run that logged the model, when known."""
    try:
        run_id = mlflow.models.get_model_info(model_uri).run_id
    except mlflow.exceptions.MlflowException as exc:
        raise ValueError(f"cannot resolve model URI {model_uri!r}: {exc}") from None
    if not run_id:
        return None, {}, None
    run = MlflowClient().get_run(run_id)
    return run_id, dict(run.data.tags), run.info.experiment_id


def model_alarms(
    cohort: Cohort, model_uri: str, surv: pd.DataFrame, confirm: int = 1
) -> tuple[AlarmSeries, ModelSource]:
    """The model's alarm series (risk >= its packaged threshold) and where it came from."""
    run_id, tags, experiment_id = model_run(model_uri)
    pipeline = load_pipeline(model_uri)
    threshold = float(pipeline.alarm.threshold)
    # the packaged rule is the rule: its own confirmation, whatever --confirm says of markers
    confirm = int(pipeline.alarm.confirm) if pipeline.alarm.operating_point else confirm
    own_cohort = run_id is not None and tags.get(Tag.COHORT_DIGEST) == cohort.digest
    where = "each draw day"
    if own_cohort:
        horizon = float(tags.get(Tag.HORIZON_DAYS, pipeline.alarm.horizon_days))
        scores, where = _oof_scores(run_id)  # type: ignore[arg-type]
        mode = "out-of-fold"
    else:
        horizon = float(pipeline.alarm.horizon_days)
        scores = _scored(cohort, pipeline, surv, horizon)
        mode = "scored"
    source = ModelSource(
        model_uri,
        pipeline.model_name,
        run_id,
        experiment_id,
        mode,
        horizon,
        threshold,
        confirm,
        pipeline.alarm.operating_point,
    )
    series = score_alarms(
        scores,
        name=f"model {pipeline.model_name}: {risk_column(horizon)}>={threshold:.3g}"
        + (f" at {confirm} consecutive draws" if confirm > 1 else ""),
        kind="model",
        threshold=threshold,
        confirm=confirm,
        score_name=f"model {pipeline.model_name} {risk_column(horizon)}",
        description=f"{model_uri}, risk within {horizon:g} days at {where}",
    )
    return series, source


def _oof_scores(run_id: str) -> tuple[pd.DataFrame, str]:
    """Out-of-fold risks at every draw (or, for runs logged before, at the landmarks)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=OOF_DRAWS_ARTIFACT, dst_path=tmp
            )
            where = "out-of-fold predictions of its training run at every post-index draw"
        except mlflow.exceptions.MlflowException:
            path, where = (
                None,
                "out-of-fold predictions of its training run at the training landmarks",
            )
        try:
            path = path or mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=OOF_ARTIFACT, dst_path=tmp
            )
        except mlflow.exceptions.MlflowException as exc:
            raise ValueError(
                f"run {run_id} trained on this cohort but has no {OOF_ARTIFACT}: scoring its own "
                f"training data would be optimistic ({exc})"
            ) from None
        oof = pd.read_csv(Path(path), dtype={PATIENT_ID: str})
    log.info("model alarms from %d out-of-fold predictions of run %s", len(oof), run_id)
    frame = pd.DataFrame(
        {PATIENT_ID: oof[PATIENT_ID], DAY: oof[LANDMARK_DAY].astype(float), SCORE: oof[OOF_RISK]}
    )
    return frame, where


def _scored(cohort: Cohort, pipeline: object, surv: pd.DataFrame, horizon: float) -> pd.DataFrame:
    """Risk at every post-index draw day under surveillance, from data up to that day."""
    m = cohort.measurements
    m = m.loc[m[MARKER].isin(cohort.manifest.markers), [PATIENT_ID, DAY]].drop_duplicates()
    m = m.merge(surv[[PATIENT_ID, END_DAY]], on=PATIENT_ID)
    points = m[(m[DAY] > 0) & (m[DAY] <= m[END_DAY])][[PATIENT_ID, DAY]]
    points = points.rename(columns={DAY: LANDMARK_DAY}).reset_index(drop=True)
    scored = pipeline.score(cohort, points, [horizon])  # type: ignore[attr-defined]
    log.info("model alarms: scored %d draw days", len(scored))
    return pd.DataFrame(
        {
            PATIENT_ID: scored[PATIENT_ID],
            DAY: scored[LANDMARK_DAY].astype(float),
            SCORE: scored[risk_column(horizon)],
        }
    )
