"""The alarm's operating point per patient over the course, on hand-made risk series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alarms.metrics import patient_summary, point_metrics
from alarms.operating_point import OperatingPoint, Target, choose, figures
from alarms.series import SCORE, score_alarms
from alarms.surveillance import (
    END_DAY,
    FOLLOWUP_YEARS,
    LAST_NEGATIVE_DAY,
    RECURRED,
    RECURRENCE_DAY,
)
from cohort.vocabulary import DAY, PATIENT_ID

DRAWS = np.arange(30.0, 721.0, 60.0)  # a draw every two months to day 690


def _course(rng: np.random.Generator, n_controls: int = 60, n_cases: int = 40) -> tuple:
    """Controls: low risks with one isolated spike each (some); cases: risk rising for the
    last 4 draws before recurrence at day 700 (a scan confirms it; last negative at 600)."""
    rows, surv = [], []
    for i in range(n_controls):
        pid = f"c{i:03d}"
        risk = rng.uniform(0.02, 0.2, len(DRAWS))
        if i % 3 == 0:  # one isolated high draw, like a noisy CTC count
            risk[rng.integers(len(DRAWS))] = rng.uniform(0.5, 0.9)
        rows += [(pid, d, r) for d, r in zip(DRAWS, risk, strict=True)]
        surv.append((pid, np.nan, False, 720.0, np.nan))
    for i in range(n_cases):
        pid = f"r{i:03d}"
        risk = rng.uniform(0.02, 0.2, len(DRAWS))
        risk[-5:-1] = np.linspace(0.4, 0.8, 4) + rng.uniform(-0.05, 0.05, 4)
        rows += [(pid, d, r) for d, r in zip(DRAWS, risk, strict=True)]
        surv.append((pid, 700.0, True, 700.0, 600.0))
    risks = pd.DataFrame(rows, columns=[PATIENT_ID, DAY, SCORE])
    s = pd.DataFrame(
        surv, columns=[PATIENT_ID, RECURRENCE_DAY, RECURRED, END_DAY, LAST_NEGATIVE_DAY]
    )
    s[FOLLOWUP_YEARS] = s[END_DAY] / 365.25
    return risks, s


def _spec(risks: pd.DataFrame, surv: pd.DataFrame, threshold: float, confirm: int) -> float:
    series = score_alarms(
        risks,
        name="m",
        kind="model",
        threshold=threshold,
        confirm=confirm,
        score_name="risk",
        description="",
    )
    return float(point_metrics(patient_summary(series, surv, 365.0))["specificity"])


def test_the_chosen_threshold_is_the_lowest_risk_meeting_the_patient_specificity() -> None:
    risks, surv = _course(np.random.default_rng(0))
    point = choose(risks, surv, Target(patient_specificity=0.9), confirms=(1,), n_boot=0)
    assert point.confirm == 1 and point.target_reached
    assert point.patient_specificity is not None and point.patient_specificity >= 0.9
    below = risks[SCORE][risks[SCORE] < point.threshold].max()
    assert _spec(risks, surv, float(below), 1) < 0.9  # one notch lower misses the target


def test_confirming_at_two_draws_wins_when_single_spikes_are_what_alarms_controls() -> None:
    risks, surv = _course(np.random.default_rng(1))
    point = choose(risks, surv, Target(patient_specificity=0.95), confirms=(1, 2), n_boot=0)
    single = choose(risks, surv, Target(patient_specificity=0.95), confirms=(1,), n_boot=0)
    assert point.confirm == 2
    assert point.sensitivity is not None and single.sensitivity is not None
    assert point.sensitivity > single.sensitivity
    assert "2 consecutive draws" in point.definition


def test_figures_are_the_lead_time_analysis_figures_with_bootstrap_intervals() -> None:
    risks, surv = _course(np.random.default_rng(2))
    point = figures(risks, surv, 0.62, 1, n_boot=200, seed=4)
    series = score_alarms(
        risks, name="m", kind="model", threshold=0.62, confirm=1, score_name="r", description=""
    )
    m = point_metrics(patient_summary(series, surv, 365.0))
    assert point.sensitivity == pytest.approx(m["sensitivity"])
    assert point.patient_specificity == pytest.approx(m["specificity"])
    assert point.median_lead_days == pytest.approx(m["lead_median"])
    assert point.false_alarms_per_patient_year == pytest.approx(m["false_alarms_per_patient_year"])
    assert (
        point.patient_specificity_low < point.patient_specificity < point.patient_specificity_high
    )
    assert point.sensitivity_low <= point.sensitivity <= point.sensitivity_high
    controls = risks[risks[PATIENT_ID].str.startswith("c")]
    assert point.per_draw_specificity == pytest.approx((controls[SCORE] < 0.62).mean())
    assert OperatingPoint.from_dict(point.to_dict()) == point


def test_a_false_alarm_rate_target_is_met_at_the_lowest_threshold() -> None:
    risks, surv = _course(np.random.default_rng(3))
    point = choose(
        risks, surv, Target(patient_specificity=None, false_alarms_per_year=0.05), n_boot=0
    )
    assert point.target == "false_alarms_per_patient_year<=0.05" and point.target_reached
    assert point.false_alarms_per_patient_year is not None
    assert point.false_alarms_per_patient_year <= 0.05


def test_an_unreachable_target_is_reported_as_such_not_pretended() -> None:
    risks, surv = _course(np.random.default_rng(4))
    # every control alarms at its very first draw: no threshold on these risks spares them
    first = risks[DAY] == DRAWS[0]
    risks.loc[first & risks[PATIENT_ID].str.startswith("c"), SCORE] = 0.99
    point = choose(risks, surv, Target(patient_specificity=0.9), confirms=(1,), n_boot=0)
    assert not point.target_reached
    assert point.threshold > risks[SCORE].max()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"patient_specificity": 1.5}, "specificity must be in"),
        ({"patient_specificity": None, "false_alarms_per_year": -1.0}, "must be > 0"),
        ({"patient_specificity": 0.9, "false_alarms_per_year": 0.1}, "exactly one target"),
    ],
)
def test_a_bad_target_is_refused_with_the_value(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Target(**kwargs)
