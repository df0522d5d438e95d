"""The packaged alarm rule at serving time: confirmation over draws, and each risk's interval."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from cohort.records import history_from_cohort
from models.pipeline import RiskPipeline


def _pipeline(trained_store: dict[str, Any]) -> RiskPipeline:
    result = trained_store["result"]
    return next(r for r in result.results if r.name == "cox").pipeline


def _two_draws_rising(trained_store: dict[str, Any], pipeline: RiskPipeline) -> tuple:
    """A patient and two consecutive post-index draw dates whose risk rises from one to the next."""
    cohort = trained_store["cohort"]
    for pid in cohort.patients["patient_id"]:
        history = history_from_cohort(cohort, str(pid))
        index = history.patient.index_date
        dates = sorted({m.date for m in history.measurements if m.date and m.date > index})
        for before, after in itertools.pairwise(dates):
            r0 = pipeline.assess(history.model_copy(update={"as_of": before}))["risk"]["365"]
            r1 = pipeline.assess(history.model_copy(update={"as_of": after}))["risk"]["365"]
            if r1 > r0 + 0.02:
                return history, before, after, r0, r1
    raise AssertionError("no patient with a rising risk between two draws")


def test_with_confirm_two_an_alarm_needs_the_previous_draw_above_the_threshold_too(
    trained_store: dict[str, Any],
) -> None:
    pipeline = _pipeline(trained_store)
    history, _, after, r0, r1 = _two_draws_rising(trained_store, pipeline)
    at = history.model_copy(update={"as_of": after})

    def alarm(threshold: float, confirm: int) -> bool:
        policy = replace(pipeline.alarm, threshold=threshold, confirm=confirm)
        return bool(replace(pipeline, alarm=policy).assess(at)["alarm"])

    between = (r0 + r1) / 2
    assert alarm(between, 1)  # the latest draw alone is above
    assert not alarm(between, 2)  # the one before is not: no alarm yet
    assert alarm(r0 - 1e-4, 2)  # both above
    assert not alarm(r1 + 1e-4, 1)


def test_each_risk_carries_a_95_percent_interval_from_the_fold_models(
    trained_store: dict[str, Any],
) -> None:
    pipeline = _pipeline(trained_store)
    assert len(pipeline.interval_models) == 3
    history, _, after, _, _ = _two_draws_rising(trained_store, pipeline)
    a = pipeline.assess(history.model_copy(update={"as_of": after}))
    assert set(a["risk_interval"]) == set(a["risk"]) == {"180", "365", "730"}
    widths = []
    for h, risk in a["risk"].items():
        band = a["risk_interval"][h]
        assert 0 <= band["low"] <= risk <= band["high"] <= 1
        widths.append(band["high"] - band["low"])
    assert max(widths) > 0
    no_folds = replace(pipeline, interval_models=[])
    assert no_folds.assess(history.model_copy(update={"as_of": after}))["risk_interval"] == {}


def test_a_pipeline_pickled_before_the_interval_existed_still_loads_and_scores(
    trained_store: dict[str, Any],
) -> None:
    pipeline = _pipeline(trained_store)
    state = {k: v for k, v in pipeline.__dict__.items() if k not in ("interval_models", "rows")}
    old = RiskPipeline.__new__(RiskPipeline)
    old.__setstate__(state)
    history = history_from_cohort(
        trained_store["cohort"], str(trained_store["cohort"].patients["patient_id"].iloc[0])
    )
    out = old.assess(history)
    assert out["risk_interval"] == {} and np.isfinite(out["risk"]["365"])


@pytest.mark.parametrize("confirm", [1, 2])
def test_the_rule_stated_in_each_assessment_is_the_packaged_one(
    trained_store: dict[str, Any], confirm: int
) -> None:
    pipeline = _pipeline(trained_store)
    policy = replace(pipeline.alarm, confirm=confirm)
    history = history_from_cohort(
        trained_store["cohort"], str(trained_store["cohort"].patients["patient_id"].iloc[0])
    )
    rule = replace(pipeline, alarm=policy).assess(history)["alarm_rule"]
    assert rule["confirm"] == confirm
    assert rule["operating_point"] == pipeline.alarm.operating_point
