"""Runs related to the reported one in its experiment: the other models trained on the same
cohort at the same horizon (the comparison, baseline included) and lead-time analyses."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Final

import mlflow
import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from evaluation.mlflow_log import HEADLINE
from tracking.vocabulary import RunKind, Tag, leadtime_metric_key, logged_rules

log = logging.getLogger(__name__)

COMPARED: Final = (
    "harrell_c",
    "harrell_c_low",
    "harrell_c_high",
    "uno_c",
    "auc",
    "auc_low",
    "auc_high",
    "brier",
    "integrated_brier",
    "calibration_slope",
    "calibration_slope_low",
    "calibration_slope_high",
    "ici",
)
BASELINE: Final = "baseline"


def sibling_runs(client: MlflowClient, run: Run) -> list[Run]:
    """Latest top-level training run of each model on the same cohort digest and horizon."""
    tags = run.data.tags
    found = client.search_runs(
        [run.info.experiment_id],
        filter_string=Tag.COHORT_DIGEST.equals(tags.get(Tag.COHORT_DIGEST, "")),
        order_by=["attributes.start_time DESC"],
        max_results=500,
    )
    latest: dict[str, Run] = {}
    for other in found:
        t = other.data.tags
        same = t.get(Tag.HORIZON_DAYS) == tags.get(Tag.HORIZON_DAYS)
        top = Tag.PARENT_RUN_ID not in t and t.get(Tag.KIND) is None
        if same and top and t.get(Tag.MODEL) and t[Tag.MODEL] not in latest:
            latest[t[Tag.MODEL]] = other
    latest[tags[Tag.MODEL]] = run  # the reported run, even when a newer one exists
    return sorted(latest.values(), key=lambda r: -r.data.metrics.get("auc", float("-inf")))


def comparison_rows(runs: list[Run], reported_run_id: str) -> list[dict[str, Any]]:
    """One row per model, with the AUC difference to the covariates-only baseline."""
    base = next((r for r in runs if r.data.tags.get(Tag.MODEL) == BASELINE), None)
    base_auc = base.data.metrics.get("auc") if base else None
    rows = []
    for r in runs:
        m = r.data.metrics
        row: dict[str, Any] = {
            "model": r.data.tags[Tag.MODEL],
            "run_id": r.info.run_id,
            "reported": r.info.run_id == reported_run_id,
            **{k: m.get(k) for k in COMPARED},
        }
        auc = m.get("auc")
        row["delta_auc_vs_baseline"] = None if base_auc is None or auc is None else auc - base_auc
        rows.append(row)
    return rows


def run_csv(run_id: str, artifact: str) -> pd.DataFrame | None:
    """A CSV artifact of a run, or None when the run has none."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=artifact, dst_path=tmp
            )
        except (MlflowException, OSError) as exc:
            log.info("run %s has no %s: %s", run_id, artifact, exc)
            return None
        return pd.read_csv(Path(path))


def leadtime_facts(client: MlflowClient, run: Run) -> dict[str, Any] | None:
    """Headline of the latest lead-time analysis of this model on this cohort, if any."""
    found = client.search_runs(
        [run.info.experiment_id],
        filter_string=Tag.KIND.equals(RunKind.LEADTIME),
        order_by=["attributes.start_time DESC"],
        max_results=200,
    )
    tags = run.data.tags
    for other in found:
        t = other.data.tags
        own = t.get(Tag.SOURCE_RUN_ID) == run.info.run_id
        same_cohort = t.get(Tag.COHORT_DIGEST) == tags.get(Tag.COHORT_DIGEST)
        if own and same_cohort:
            return _leadtime_summary(other)
    return None


def _leadtime_summary(run: Run) -> dict[str, Any]:
    t, p, metrics = run.data.tags, run.data.params, run.data.metrics
    rules = sorted(
        logged_rules(t), key=lambda r: (r.kind != "model", r.variant_of is not None, r.name)
    )
    rows: list[dict[str, Any]] = [{"rule": r.name, **_rule_metrics(metrics, r.name)} for r in rules]
    return {
        "run_id": run.info.run_id,
        "model_uri": t.get(Tag.MODEL_URI),
        "model_risks": t.get(Tag.MODEL_RISKS),
        "target_specificity": p.get("target_specificity"),
        "lookback_days": p.get("lookback_days"),
        "confirm": p.get("confirm"),
        "n_boot": p.get("n_boot"),
        "rules": rows,
    }


def _rule_metrics(metrics: dict[str, float], rule: str) -> dict[str, float]:
    """The rule's lead-time metrics, looked up by the keys built from its text."""
    keys = {m: leadtime_metric_key(rule, m) for m in HEADLINE}
    return {m: metrics[k] for m, k in keys.items() if k in metrics}
