"""The MLflow vocabulary: lead-time keys are built from rules, and rules read back from tags."""

from __future__ import annotations

from tracking.vocabulary import (
    LoggedRule,
    Tag,
    leadtime_metric_key,
    logged_rules,
    rule_key,
    rule_tags,
)


def test_a_rule_s_metric_key_is_mlflow_safe_and_keeps_the_operator() -> None:
    assert leadtime_metric_key("ctc_total>=2", "sensitivity") == "ctc_total_ge_2.sensitivity"
    assert rule_key("afp>20") != rule_key("afp>=20")
    assert rule_key("model cox: risk_365>=0.243") == "model_cox_risk_365_ge_0.243"
    assert len(rule_key("afp>20 & " * 100)) <= 200


def test_the_rules_of_a_run_read_back_from_its_tags_exactly_as_logged() -> None:
    rules = [
        LoggedRule("model cox: risk_365>=0.243", "model"),
        LoggedRule("ctc_total>=5 (specificity ≥ 0.90)", "marker", variant_of="ctc_total>=2"),
        LoggedRule("ctc_total>=2", "marker"),
    ]
    tags = {Tag.MODEL.value: "cox", "unrelated": "x", **rule_tags(rules)}
    assert sorted(logged_rules(tags), key=lambda r: r.name) == sorted(rules, key=lambda r: r.name)


def test_tags_are_their_names_where_mlflow_reads_them() -> None:
    assert {Tag.MODEL: "cox"}["ctcmon.model"] == "cox"
    assert Tag.MODEL.column == "tags.ctcmon.model"
    assert Tag.KIND.equals("leadtime") == "tags.`ctcmon.kind` = 'leadtime'"
