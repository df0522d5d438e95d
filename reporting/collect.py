"""Gather every fact of a model report from MLflow: the run behind the model URI (tags,
params, metrics, dataset input, evaluation tables, figures), the packaged pipeline's
manifest, the registry entry, the other models of the experiment and lead-time runs."""

from __future__ import annotations

import io
import logging
import tempfile
from pathlib import Path
from typing import Any, Final

import mlflow
import pandas as pd
from matplotlib.figure import Figure
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from models.packaging import load_pipeline
from models.pipeline import RiskPipeline
from reporting.facts import ReportFacts
from reporting.related import comparison_rows, leadtime_facts, run_csv, sibling_runs
from reporting.resolve import ModelRef, resolve_model
from reporting.sources import cohort_facts, predictor_facts
from tracking.vocabulary import (
    CALIBRATION_BY_DAY_BAND,
    CALIBRATION_TABLE,
    DECISION_CURVE,
    FIGURES_DIR,
    METRICS_BY_FOLD,
    METRICS_BY_LANDMARK,
    NOTES_SEPARATOR,
    STACK_WEIGHTS,
    Tag,
    evaluation_artifact,
)
from training.plots import plot_auc_by_landmark, plot_decision_curve

log = logging.getLogger(__name__)

REQUIRED_TAGS: Final = (Tag.MODEL, Tag.COHORT, Tag.COHORT_DIGEST)
EVALUATION: Final = {
    "by_landmark": METRICS_BY_LANDMARK,
    "by_fold": METRICS_BY_FOLD,
    "calibration": CALIBRATION_TABLE,
    "decision_curve": DECISION_CURVE,
    "calibration_by_day_band": CALIBRATION_BY_DAY_BAND,
    "stack_weights": STACK_WEIGHTS,
}
DPI: Final = 100


def collect_facts(model_uri: str, tracking_uri: str) -> ReportFacts:
    """Every fact the report states about ``model_uri`` (tracking already pointed at the store)."""
    client = MlflowClient()
    ref = resolve_model(model_uri, client)
    run = client.get_run(ref.run_id)
    check_ctcmon_run(ref, run)
    pipeline = _load(ref)
    tables = evaluation_tables(ref.run_id)
    siblings = sibling_runs(client, run)
    facts = ReportFacts(
        model=_model_facts(ref, run, client, pipeline, tracking_uri),
        tags=dict(run.data.tags),
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        cohort=cohort_facts(run, dict(run.data.metrics), pipeline),
        manifest=pipeline.manifest.model_dump(mode="json"),
        predictors=predictor_facts(pipeline),
        hyperparameters=_hyperparameters(run),
        alarm=_alarm(pipeline),
        tables={k: _records(v) for k, v in tables.items()},
        comparison=comparison_rows(siblings, ref.run_id),
        leadtime=leadtime_facts(client, run),
        notes=_notes(run.data.tags),
    )
    facts.figures = {**run_figures(ref.run_id), **comparison_figures(siblings, facts.horizon_days)}
    return facts


def check_ctcmon_run(ref: ModelRef, run: Run) -> None:
    """A run logged by ``ctcmon train``, or a ValueError naming the URI and what is missing."""
    tags = run.data.tags
    missing = [t.value for t in REQUIRED_TAGS if not tags.get(t)]
    if missing or tags.get(Tag.KIND):
        what = f"lacks the tags {missing}" if missing else f"is a {tags[Tag.KIND]!r} run"
        raise ValueError(
            f"model URI {ref.model_uri!r} resolves to run {ref.run_id}, which {what}: "
            f"not a model training run logged by `ctcmon train`"
        )


def _load(ref: ModelRef) -> RiskPipeline:
    try:
        return load_pipeline(ref.model_uri)
    except (MlflowException, OSError) as exc:
        reason = str(getattr(exc, "message", exc)).splitlines()[0]
        raise ValueError(f"cannot load the model at {ref.model_uri!r}: {reason}") from None


def _model_facts(
    ref: ModelRef, run: Run, client: MlflowClient, pipeline: RiskPipeline, tracking_uri: str
) -> dict[str, Any]:
    tags = run.data.tags
    cls = type(pipeline.model)
    return {
        **ref.as_dict(),
        "name": tags[Tag.MODEL],
        "class": cls.__name__,
        "description": _first_paragraph(cls.__doc__),
        "run_name": run.info.run_name,
        "experiment_id": run.info.experiment_id,
        "experiment": client.get_experiment(run.info.experiment_id).name,
        "run_started": _iso_ms(run.info.start_time),
        "trained_at": pipeline.trained_at or None,
        "horizons": list(pipeline.horizons),
        "ctcmon_version": tags.get(Tag.VERSION),
        "git_commit": tags.get(Tag.GIT_COMMIT),
        "tracking_uri": tracking_uri,
    }


def _first_paragraph(doc: str | None) -> str:
    """A class docstring's summary, without reStructuredText literals."""
    return (doc or "").strip().split("\n\n")[0].replace("\n", " ").replace("``", "")


def _hyperparameters(run: Run) -> dict[str, str]:
    return {
        k.removeprefix("model."): v
        for k, v in sorted(run.data.params.items())
        if k.startswith("model.")
    }


def _alarm(pipeline: RiskPipeline) -> dict[str, Any]:
    """The packaged rule, its operating point per patient over the course (out of fold), which
    rows the model was fitted and scored on, and whether its risks carry intervals."""
    a = pipeline.alarm
    return {
        "horizon_days": a.horizon_days,
        "threshold": a.threshold,
        "confirm": a.confirm,
        "low_below": a.low_below,
        "target_specificity": a.target_specificity,
        "expected_lead_days": a.expected_lead_days,
        "operating_point": a.operating_point,
        "rows": dict(pipeline.rows),
        "interval_models": len(pipeline.interval_models),
    }


def _notes(tags: dict[str, str]) -> list[str]:
    return [n.strip() for n in tags.get(Tag.NOTES, "").split(NOTES_SEPARATOR) if n.strip()]


def evaluation_tables(run_id: str) -> dict[str, pd.DataFrame]:
    """The run's ``evaluation/*.csv`` tables that exist, by short name."""
    found = {key: run_csv(run_id, evaluation_artifact(name)) for key, name in EVALUATION.items()}
    return {k: v for k, v in found.items() if v is not None}


def run_figures(run_id: str) -> dict[str, bytes]:
    """The PNG figures the training run logged under ``figures/``, by stem."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=FIGURES_DIR, dst_path=tmp
            )
        except (MlflowException, OSError) as exc:
            log.info("run %s has no figures: %s", run_id, exc)
            return {}
        return {p.stem: p.read_bytes() for p in sorted(Path(folder).glob("*.png"))}


def comparison_figures(runs: list[Run], horizon_days: float) -> dict[str, bytes]:
    """AUC by landmark and decision curves of every model side by side (when more than one)."""
    if len(runs) < 2:
        return {}
    names = [r.data.tags[Tag.MODEL] for r in runs]
    by_landmark = {
        n: run_csv(r.info.run_id, evaluation_artifact(METRICS_BY_LANDMARK))
        for n, r in zip(names, runs, strict=True)
    }
    curves = {
        n: run_csv(r.info.run_id, evaluation_artifact(DECISION_CURVE))
        for n, r in zip(names, runs, strict=True)
    }
    figs: dict[str, bytes] = {}
    lm = {
        n: f.dropna(subset=["auc"]) for n, f in by_landmark.items() if f is not None and not f.empty
    }
    if len(lm) > 1:
        figs["compare_auc_by_landmark"] = png(plot_auc_by_landmark(lm, horizon_days=horizon_days))
    dc = {n: f for n, f in curves.items() if f is not None and not f.empty}
    if len(dc) > 1:
        figs["compare_decision_curve"] = png(plot_decision_curve(dc))
    return figs


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {str(k): (None if pd.isna(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def _iso_ms(ms: int | None) -> str | None:
    if ms is None:
        return None
    return pd.Timestamp(ms, unit="ms", tz="UTC").isoformat(timespec="seconds")
