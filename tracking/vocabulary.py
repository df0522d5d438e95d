"""The names ctcmon writes into MLflow and reads back: tags, run kinds, artifacts, metric keys.

Every writer (``training.mlflow_runs``, ``evaluation.mlflow_log``) and every reader
(``tracking.registry``, ``evaluation.model_source``, ``reporting``) imports them from here, so
a name is spelled once. Lead-time metric keys are *built* from a rule's text
(``leadtime_metric_key``) and the rule's text is logged beside them as a tag
(``RULE_TAG_PREFIX``): a reader looks keys up from the rules, never parses a key back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Tag(StrEnum):
    """Run tags (``str`` values, so ``tags[Tag.MODEL]`` and f-strings read as the name)."""

    # a training run (training.mlflow_runs)
    MODEL = "ctcmon.model"
    COHORT = "ctcmon.cohort"
    COHORT_DIGEST = "ctcmon.cohort_digest"
    ENDPOINT = "ctcmon.endpoint"
    VERSION = "ctcmon.version"
    HORIZON_DAYS = "ctcmon.horizon_days"
    NOTES = "ctcmon.notes"
    FOLD = "ctcmon.fold"  # a nested per-fold run
    # a run that is not a model's training run (evaluation.mlflow_log): what kind it is
    KIND = "ctcmon.kind"
    MODEL_URI = "ctcmon.model_uri"
    SOURCE_RUN_ID = "ctcmon.source_run_id"
    MODEL_RISKS = "ctcmon.model_risks"
    # MLflow's own
    PARENT_RUN_ID = "mlflow.parentRunId"
    GIT_COMMIT = "mlflow.source.git.commit"

    @property
    def column(self) -> str:
        """The column of ``mlflow.search_runs``'s DataFrame holding this tag."""
        return f"tags.{self.value}"

    def equals(self, value: str) -> str:
        """A ``search_runs`` filter: this tag equals ``value``."""
        return f"tags.`{self.value}` = '{value}'"


NOTES_SEPARATOR: Final = " | "
TAG_VALUE_LIMIT: Final = 4000  # MLflow stores 5,000 characters at most; notes are cut before


class RunKind(StrEnum):
    """Values of ``Tag.KIND``; a model's training run has no kind."""

    LEADTIME = "leadtime"


# Artifact folders and files of a training run (training.mlflow_runs writes them)
EVALUATION_DIR: Final = "evaluation"
FIGURES_DIR: Final = "figures"
OOF_PREDICTIONS: Final = "oof_predictions.csv"
METRICS_BY_LANDMARK: Final = "metrics_by_landmark.csv"
METRICS_BY_FOLD: Final = "metrics_by_fold.csv"
CALIBRATION_TABLE: Final = "calibration_table.csv"
DECISION_CURVE: Final = "decision_curve.csv"
OOF_DRAWS: Final = "oof_draws.csv"  # out-of-fold risk after every post-index draw
CALIBRATION_BY_DAY_BAND: Final = "calibration_by_day_band.csv"
OPERATING_POINT: Final = "operating_point.json"  # the packaged alarm rule's figures
# a stack's weights per band of days since index: the packaged ones and each fold's
STACK_WEIGHTS: Final = "stack_weights.csv"
STACK_WEIGHT_PREFIX: Final = "stack_weight"
STACK_PACKAGED: Final = "every fold"  # ``fitted_on`` of the packaged weights' rows


def stack_weight_key(band: str, model: str) -> str:
    """The metric key of a packaged stack's weight of ``model`` in ``band``:
    ``stack_weight.d30_182.xgb_aft`` (``cox/mixed`` keeps its slash: MLflow allows it)."""
    return f"{STACK_WEIGHT_PREFIX}.{band}.{model}"


def evaluation_artifact(name: str) -> str:
    """``evaluation/<name>``: where a training run's table lives among its artifacts."""
    return f"{EVALUATION_DIR}/{name}"


# A lead-time run: the headline metrics of each rule (``evaluation.mlflow_log.HEADLINE``),
# keyed by the rule (leadtime_metric_key)
RULE_TAG_PREFIX: Final = "ctcmon.rule."
_KEY_LIMIT: Final = 200  # MLflow keys allow 250 characters; the prefix and metric need the rest
_OPERATORS: Final = ((">=", "_ge_"), ("<=", "_le_"), (">", "_gt_"), ("<", "_lt_"))


def rule_key(rule: str) -> str:
    """An MLflow-safe name for a rule's text, e.g. ``ctc_total>=2`` → ``ctc_total_ge_2``."""
    text = rule
    for op, code in _OPERATORS:
        text = text.replace(op, code)
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", text).strip("_")[:_KEY_LIMIT]


def leadtime_metric_key(rule: str, metric: str) -> str:
    """The metric key of ``metric`` for ``rule``, e.g. ``ctc_total_ge_2.sensitivity``."""
    return f"{rule_key(rule)}.{metric}"


@dataclass(frozen=True)
class LoggedRule:
    """A rule of a lead-time run as logged in its tag: its text, kind and the rule it varies."""

    name: str
    kind: str
    variant_of: str | None = None


def rule_tags(rules: Iterable[LoggedRule]) -> dict[str, str]:
    """One tag per rule (``ctcmon.rule.<rule_key>``), its value the rule as JSON."""
    return {
        f"{RULE_TAG_PREFIX}{rule_key(r.name)}": json.dumps(
            {"name": r.name, "kind": r.kind, "variant_of": r.variant_of}, ensure_ascii=False
        )
        for r in rules
    }


def logged_rules(tags: Mapping[str, str]) -> list[LoggedRule]:
    """The rules a lead-time run's tags name (``rule_tags`` read back), in key order."""
    return [
        LoggedRule(**json.loads(value))
        for key, value in sorted(tags.items())
        if key.startswith(RULE_TAG_PREFIX)
    ]
