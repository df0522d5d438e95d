"""Log a lead-time analysis to the model's MLflow experiment, as a new run.

The training run is never touched: the analysis gets its own run, tagged
``ctcmon.kind=leadtime`` with the model URI, its source run, the cohort digest and each
rule's text, holding the headline metrics of each rule (``tracking.vocabulary``) and the
report files as artifacts under ``leadtime/``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import mlflow

from alarms.metrics import BOOTSTRAPPED
from evaluation.model_source import ModelSource
from evaluation.results import LeadtimeResult
from tracking.vocabulary import (
    LoggedRule,
    RunKind,
    Tag,
    leadtime_metric_key,
    rule_tags,
)

log = logging.getLogger(__name__)

# The metrics of each rule a lead-time run holds: every bootstrapped one, and the hazard ratio
HEADLINE: Final = (*BOOTSTRAPPED, "hazard_ratio")


def headline_metrics(result: LeadtimeResult) -> dict[str, float]:
    """Each rule's ``HEADLINE`` metrics that have a value, keyed by ``leadtime_metric_key``."""
    out: dict[str, float] = {}
    for r in result.rules:
        values = {**r.metrics, "hazard_ratio": r.hazard_ratio.get("hr")}
        for metric in HEADLINE:
            if values.get(metric) is not None:
                out[leadtime_metric_key(r.name, metric)] = float(values[metric])
    return out


def log_leadtime_run(result: LeadtimeResult, artifacts: Iterable[str | Path]) -> str | None:
    """A new run in the model's experiment holding ``artifacts`` (the report's files) under
    ``leadtime/``; None when the result has no model or the model has no run."""
    if result.model is None:
        return None
    source = ModelSource(**result.model)
    if source.experiment_id is None:
        return None
    with mlflow.start_run(
        experiment_id=source.experiment_id, run_name=f"leadtime-{source.model_name}"
    ) as run:
        mlflow.set_tags(_tags(result, source))
        mlflow.log_params(_params(result))
        mlflow.log_metrics(headline_metrics(result))
        for path in artifacts:
            mlflow.log_artifact(str(path), artifact_path=RunKind.LEADTIME.value)
    log.info("lead-time analysis logged as run %s", run.info.run_id)
    return str(run.info.run_id)


def not_logged_note(result: LeadtimeResult) -> str:
    """The note a result gets when its model has no MLflow run to log beside."""
    uri = None if result.model is None else result.model["model_uri"]
    return f"{uri} has no MLflow run: the analysis was not logged"


def _tags(result: LeadtimeResult, source: ModelSource) -> dict[str, str]:
    return {
        Tag.KIND: RunKind.LEADTIME,
        Tag.MODEL_URI: source.model_uri,
        Tag.MODEL: source.model_name,
        Tag.SOURCE_RUN_ID: source.run_id or "",
        Tag.MODEL_RISKS: source.mode,
        Tag.COHORT: str(result.cohort["name"]),
        Tag.COHORT_DIGEST: str(result.cohort["digest"]),
        **rule_tags(LoggedRule(r.name, r.kind, r.variant_of) for r in result.rules),
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
