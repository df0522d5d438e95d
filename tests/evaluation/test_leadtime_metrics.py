"""Lead-time metrics on a hand-made cohort whose answers are known (see _leadtime_cohort)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alarms.metrics import patient_summary
from alarms.rules import parse_rule
from alarms.series import marker_alarms, run_lengths
from alarms.surveillance import surveillance_table
from cohort.cohort import Cohort
from cohort.load import load_cohort
from evaluation import run_leadtime
from tests.evaluation._leadtime_cohort import write_tiny

CTC = "ctc_total>=2"
YEARS = (400 + 730 + 730 + 900) / 365.25


@pytest.fixture
def tiny(tmp_path: Path) -> Cohort:
    return load_cohort(write_tiny(tmp_path / "tiny"))


def metrics(cohort: Cohort, **kw: object) -> dict:
    result = run_leadtime(cohort, rules=[CTC], n_boot=0, **kw)  # type: ignore[arg-type]
    return result.rule(CTC).metrics


def test_lead_time_is_measured_against_both_ends_of_the_imaging_interval(tiny: Cohort) -> None:
    m = metrics(tiny)
    summary = patient_summary(
        marker_alarms(tiny, parse_rule(CTC, tiny.manifest)), surveillance_table(tiny), 365
    )
    p1 = summary.set_index("patient_id").loc["p1"]
    assert p1["first_alarm_day"] == 200
    assert p1["lead_days"] == 200  # confirming scan on day 400
    assert p1["lead_days_vs_last_negative"] == 110  # last no_evidence scan on day 310
    assert m["lead"]["median"] == 200
    assert m["lead_vs_last_negative"]["median"] == 110
    assert m["share_before_last_negative"] == 1.0


def test_counts_sensitivity_specificity_false_alarms_and_ppv_by_hand(tiny: Cohort) -> None:
    m = metrics(tiny)
    assert (m["n_recurrences"], m["n_detected"]) == (2, 1)
    assert m["sensitivity"] == 0.5  # p4's only alarm is older than the look-back
    assert (m["n_controls"], m["n_controls_alarmed"]) == (2, 1)
    assert m["specificity"] == 0.5  # p2 had one false alarm
    assert (m["n_alarms"], m["n_false_alarms"]) == (5, 2)  # p1: 3 true; p2 and p4: one false each
    assert m["false_alarms_per_patient_year"] == pytest.approx(2 / YEARS)
    assert m["ppv"] == pytest.approx(1 / 3)  # p1 detected among p1, p2, p4 alarmed
    assert m["ppv_alarm"] == pytest.approx(3 / 5)


def test_confirm_two_needs_two_consecutive_positive_draws(tiny: Cohort) -> None:
    m = metrics(tiny, confirm=2)
    # p1: positive on 200 and 300 (the AFP-only draw on 250 is skipped, not a break)
    assert m["lead"]["median"] == 100
    assert m["lead_vs_last_negative"]["median"] == 10
    assert m["specificity"] == 1.0  # p2's single positive draw no longer alarms
    assert m["n_false_alarms"] == 0


def test_a_negative_draw_breaks_a_run_of_positives() -> None:
    patient = np.array(["a", "a", "a", "a", "b", "b"])
    positive = np.array([True, False, True, True, True, True])
    assert run_lengths(patient, positive).tolist() == [1, 0, 1, 2, 1, 2]


def test_the_look_back_window_excludes_older_alarms(tiny: Cohort) -> None:
    short = metrics(tiny, lookback_days=365)
    long = metrics(tiny, lookback_days=1000)
    assert short["n_detected"] == 1
    assert long["n_detected"] == 2  # p4's alarm on day 100 is 800 days before its recurrence
    assert long["lead"]["max"] == 800
    assert long["n_false_alarms"] == 1


def test_intervals_bracket_the_estimates(tiny: Cohort) -> None:
    r = run_leadtime(tiny, rules=[CTC, "afp>20"], n_boot=200)
    m = r.rule(CTC).metrics
    low, high = m["sensitivity_ci"]
    assert low <= m["sensitivity"] <= high
    assert r.rule("afp>20").vs_reference["reference"] == CTC


def test_a_cohort_without_imaging_is_refused(tmp_path: Path) -> None:
    def drop_imaging(t: dict[str, pd.DataFrame]) -> None:
        del t["imaging"]

    cohort = load_cohort(write_tiny(tmp_path / "noimg", drop_imaging))
    with pytest.raises(ValueError, match=r"lead time over imaging needs imaging\.csv"):
        run_leadtime(cohort, n_boot=0)


def test_an_empty_imaging_table_is_refused(tmp_path: Path) -> None:
    def empty(t: dict[str, pd.DataFrame]) -> None:
        t["imaging"] = t["imaging"].iloc[0:0]

    cohort = load_cohort(write_tiny(tmp_path / "empty", empty))
    with pytest.raises(ValueError, match="an empty imaging table"):
        run_leadtime(cohort, n_boot=0)


def test_no_recurrence_gives_null_metrics_with_a_note(tmp_path: Path) -> None:
    def no_recurrence(t: dict[str, pd.DataFrame]) -> None:
        t["outcomes"]["recurrence_date"] = ""
        t["imaging"]["finding"] = "no_evidence"

    r = run_leadtime(
        load_cohort(write_tiny(tmp_path / "norec", no_recurrence)), rules=[CTC], n_boot=50
    )
    m = r.rule(CTC).metrics
    assert m["sensitivity"] is None and m["lead"]["median"] is None
    assert m["specificity"] == 0.25  # now recurrence-free: p1, p2 and p4 alarmed, only p3 not
    assert r.rule(CTC).hazard_ratio["hr"] is None
    assert any("no recurrence" in n for n in r.notes)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"specificity": 1.0}, "specificity must be in"),
        ({"lookback_days": 0}, "lookback_days must be > 0"),
        ({"confirm": 0}, "confirm must be an integer >= 1"),
        ({"n_boot": 1}, "n_boot must be 0"),
        ({"rules": ["ctc_total>=2", "ctc_total>=2"]}, "given twice"),
    ],
)
def test_bad_settings_are_refused_with_the_value(tiny: Cohort, kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        run_leadtime(tiny, **{"rules": [CTC], "n_boot": 0, **kw})


def test_the_callers_frames_are_not_modified(tiny: Cohort) -> None:
    before = tiny.measurements.copy(), tiny.imaging.copy(), tiny.outcomes.copy()
    run_leadtime(tiny, n_boot=0)
    for old, new in zip(before, (tiny.measurements, tiny.imaging, tiny.outcomes), strict=True):
        pd.testing.assert_frame_equal(old, new)
