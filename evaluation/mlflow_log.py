"""Log a lead-time analysis to the model's MLflow experiment, as a new run.

The training run is never touched: the analysis gets its own run, tagged
``ctcmon.kind=leadtime`` with the model URI, its source run and the cohort digest, holding
the headline metrics of each rule and the report files as artifacts under ``leadtime/``.
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Any, Final

import mlflow

from evaluation.api import LeadtimeResult
from evaluation.model_source import ModelSource

log = logging.getLogger(__name__)

KIND_TAG: Final = "ctcmon.kind"
KIND: Final = "leadtime"
HEADLINE: Final = (
    "sensitivity",
    "specificity",
    "false_alarms_per_patient_year",
    "ppv",
    "lead_median",
    "lead_vs_last_negative_median",
    "share_before_last_negative",
    "episode_lead_median",
)


def metric_key(rule: str, metric: str) -> str:
    """An MLflow-safe metric name, e.g. ``ctc_total_ge_2.sensitivity``."""
    text = (
        rule.replace(">=", "_ge_").replace("<=", "_le_").replace(">", "_gt_").replace("<", "_lt_")
    )
    text = re.sub(r"[^A-Za-z0-9_.\-]+", "_", text).strip("_")
    return f"{text[:200]}.{metric}"


def headline_metrics(result: LeadtimeResult) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in result.rules:
        for key in HEADLINE:
            value = r.metrics.get(key)
            if value is not None:
                out[metric_key(r.name, key)] = float(value)
        if r.hazard_ratio.get("hr") is not None:
            out[metric_key(r.name, "hazard_ratio")] = float(r.hazard_ratio["hr"])
    return out


def log_leadtime_run(result: LeadtimeResult, source: ModelSource) -> str | None:
    """A new run in the model's experiment; None (with a note) when the model has no run."""
    if source.experiment_id is None:
        result.notes.append(f"{source.model_uri} has no MLflow run: the analysis was not logged")
        return None
    with mlflow.start_run(
        experiment_id=source.experiment_id, run_name=f"leadtime-{source.model_name}"
    ) as run:
        mlflow.set_tags(_tags(result, source))
        mlflow.log_params(_params(result))
        mlflow.log_metrics(headline_metrics(result))
        _log_files(result)
    log.info("lead-time analysis logged as run %s", run.info.run_id)
    return str(run.info.run_id)


def _tags(result: LeadtimeResult, source: ModelSource) -> dict[str, str]:
    return {
        KIND_TAG: KIND,
        "ctcmon.model_uri": source.model_uri,
        "ctcmon.model": source.model_name,
        "ctcmon.source_run_id": source.run_id or "",
        "ctcmon.model_risks": source.mode,
        "ctcmon.cohort": str(result.cohort["name"]),
        "ctcmon.cohort_digest": str(result.cohort["digest"]),
    }


def _params(result: LeadtimeResult) -> dict[str, Any]:
    s = result.settings
    return {
        "rules": " ; ".join(s["rules"])[:500],
        "confirm": s["confirm"],
        "target_specificity": s["specificity"],
        "lookback_days": s["lookback_days"],
        "n_boot": s["n_boot"],
    }


def _log_files(result: LeadtimeResult) -> None:
    """The report's own files (not whatever else sits in its folder); a temporary report
    when none was asked for."""
    if result.files:
        for path in result.files.values():
            mlflow.log_artifact(path, artifact_path=KIND)
        return
    from evaluation.report import write_report

    with tempfile.TemporaryDirectory() as tmp:
        for path in write_report(result, Path(tmp)).values():
            mlflow.log_artifact(path, artifact_path=KIND)
    result.files = {}  # the temporary copies are gone; the run's artifacts hold them
