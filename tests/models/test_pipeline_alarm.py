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


def test_a_training_patient_is_served_by_the_fold_model_that_left_them_out(
    trained_store: dict[str, Any],
) -> None:
    """Cross-fitting: the packaged model saw a training patient's outcome, so their risk
    comes from the cross-validation's model fitted without them — the risks the alarm's
    threshold and stated figures were set on. Anyone else gets the packaged model."""
    result = next(r for r in trained_store["result"].results if r.name == "cox")
    pipeline = result.pipeline
    cohort = trained_store["cohort"]
    pid = str(cohort.patients["patient_id"].iloc[5])
    history = history_from_cohort(cohort, pid)
    own = pipeline.fold_model_for(pid, history.patient.site_id)
    assert own is not None
    position = pipeline.interval_models.index(own)
    # the fold model that serves the patient is the one whose held-out fold holds them
    assert str(result.fold_metrics[position]["fold"]) == str(result.patient_folds[pid])
    dates = sorted({m.date for m in history.measurements if m.date})
    at = history.model_copy(update={"as_of": dates[len(dates) // 2]})
    served = pipeline.assess(at)
    assert served["cross_fitted"] is True
    # exactly the fold model's risks, at every horizon and before the next scan
    by_fold = replace(pipeline, model=own, held_out={}).assess(at)
    assert served["risk"] == by_fold["risk"]
    assert served["imaging"] == by_fold["imaging"]
    in_sample = replace(pipeline, held_out={}).assess(at)
    assert in_sample["cross_fitted"] is False
    assert in_sample["risk"] != served["risk"]
    # a new patient with the same history is not a training patient
    renamed = at.model_copy(
        update={"patient": at.patient.model_copy(update={"patient_id": "someone-new"})}
    )
    assert pipeline.fold_model_for("someone-new", history.patient.site_id) is None
    new = pipeline.assess(renamed)
    assert new["cross_fitted"] is False and new["risk"] == in_sample["risk"]
    # nor is the same id at another site (ids are unique within a site only)
    elsewhere = at.model_copy(
        update={"patient": at.patient.model_copy(update={"site_id": "another-site"})}
    )
    assert pipeline.assess(elsewhere)["cross_fitted"] is False
    # a history without a site is matched by id among patients recorded without one only
    assert pipeline.fold_model_for(pid, None) is None


def test_the_package_names_its_training_patients_by_digest_only(
    trained_store: dict[str, Any],
) -> None:
    pipeline = _pipeline(trained_store)
    ids = [str(p) for p in trained_store["cohort"].patients["patient_id"]]
    assert len(pipeline.held_out) == len(ids)
    assert set(pipeline.held_out.values()) == {0, 1, 2}
    listed = " ".join(pipeline.held_out)
    assert not any(pid in listed for pid in ids)
