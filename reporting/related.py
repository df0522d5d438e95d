"""Runs related to the reported one in its experiment: the other models trained on the same
cohort at the same horizon (the comparison, baseline included) and lead-time analyses."""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Any, Final

import mlflow
import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

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
LEADTIME_KIND: Final = "leadtime"  # evaluation.mlflow_log.KIND
LEADTIME_STATS: Final = (
    "sensitivity",
    "specificity",
    "lead_median",
    "lead_vs_last_negative_median",
    "false_alarms_per_patient_year",
    "ppv",
    "hazard_ratio",
)


def sibling_runs(client: MlflowClient, run: Run) -> list[Run]:
    """Latest top-level training run of each model on the same cohort digest and horizon."""
    tags = run.data.tags
    found = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.`ctcmon.cohort_digest` = '{tags.get('ctcmon.cohort_digest', '')}'",
        order_by=["attributes.start_time DESC"],
        max_results=500,
    )
    latest: dict[str, Run] = {}
    for other in found:
        t = other.data.tags
        same = t.get("ctcmon.horizon_days") == tags.get("ctcmon.horizon_days")
        top = "mlflow.parentRunId" not in t and t.get("ctcmon.kind") is None
        if same and top and t.get("ctcmon.model") and t["ctcmon.model"] not in latest:
            latest[t["ctcmon.model"]] = other
    latest[tags["ctcmon.model"]] = run  # the reported run, even when a newer one exists
    return sorted(latest.values(), key=lambda r: -r.data.metrics.get("auc", float("-inf")))


def comparison_rows(runs: list[Run], reported_run_id: str) -> list[dict[str, Any]]:
    """One row per model, with the AUC difference to the covariates-only baseline."""
    base = next((r for r in runs if r.data.tags.get("ctcmon.model") == BASELINE), None)
    base_auc = base.data.metrics.get("auc") if base else None
    rows = []
    for r in runs:
        m = r.data.metrics
        row: dict[str, Any] = {
            "model": r.data.tags["ctcmon.model"],
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
        filter_string=f"tags.`ctcmon.kind` = '{LEADTIME_KIND}'",
        order_by=["attributes.start_time DESC"],
        max_results=200,
    )
    tags = run.data.tags
    for other in found:
        t = other.data.tags
        own = t.get("ctcmon.source_run_id") == run.info.run_id
        same_cohort = t.get("ctcmon.cohort_digest") == tags.get("ctcmon.cohort_digest")
        if own and same_cohort:
            return _leadtime_summary(other)
    return None


def _leadtime_summary(run: Run) -> dict[str, Any]:
    t, p = run.data.tags, run.data.params
    rules: dict[str, dict[str, float]] = {}
    for key, value in run.data.metrics.items():
        rule, _, stat = key.rpartition(".")
        if stat in LEADTIME_STATS:
            rules.setdefault(rule, {})[stat] = value
    model = t.get("ctcmon.model", "")
    rows: list[dict[str, Any]] = [
        {"key": k, "rule": readable_rule(k, model), **v} for k, v in rules.items()
    ]
    rows.sort(
        key=lambda r: (not r["key"].startswith("model_"), "_specificity_" in r["key"], r["key"])
    )
    return {
        "run_id": run.info.run_id,
        "model_uri": t.get("ctcmon.model_uri"),
        "model_risks": t.get("ctcmon.model_risks"),
        "target_specificity": p.get("target_specificity"),
        "lookback_days": p.get("lookback_days"),
        "confirm": p.get("confirm"),
        "n_boot": p.get("n_boot"),
        "rules": rows,
    }


_OPS: Final = (("_ge_", " ≥ "), ("_gt_", " > "), ("_le_", " ≤ "), ("_lt_", " < "))
_SWEPT: Final = re.compile(r"_specificity_(?P<spec>[0-9.]+)$")


def readable_rule(key: str, model: str = "") -> str:
    """``ctc_total_ge_5_specificity_0.90`` → ``ctc_total ≥ 5 (threshold at specificity ≥ 0.90)``;
    ``model_cox_risk_365_ge_0.2`` → ``model cox: risk_365 ≥ 0.2``."""
    swept = _SWEPT.search(key)
    text = key[: swept.start()] if swept else key
    for code, op in _OPS:
        text = text.replace(code, op)
    if model and text.startswith(f"model_{model}_"):
        text = f"model {model}: " + text.removeprefix(f"model_{model}_")
    elif text.startswith("model_"):
        text = "model " + text.removeprefix("model_")
    return f"{text} (threshold at specificity ≥ {swept['spec']})" if swept else text
