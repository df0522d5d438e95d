"""The episode lead time (first alarm of the alarm episode still ongoing at recurrence),
known by hand on built series, beside the first-alarm lead it refines."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alarms.metrics import (
    EPISODE_LEAD,
    EPISODE_START_DAY,
    FIRST_ALARM_DAY,
    LEAD,
    patient_summary,
)
from alarms.series import EVALUABLE, POSITIVE, AlarmSeries, with_alarms
from alarms.surveillance import (
    END_DAY,
    FOLLOWUP_YEARS,
    LAST_NEGATIVE_DAY,
    RECURRED,
    RECURRENCE_DAY,
)
from cohort.cohort import Cohort
from cohort.load import load_cohort
from cohort.vocabulary import DAY
from evaluation import run_leadtime
from reporting.leadtime import publish_leadtime
from tests.evaluation._leadtime_cohort import write_tiny

CTC = "ctc_total>=2"
R = 400.0
# a draw: (day, positive), with None for a draw where the rule cannot be evaluated
Draws = list[tuple[float, bool | None]]


def leads(draws: Draws, *, confirm: int = 1, recurrence: float = R, lookback: float = 365):
    """(first alarm day, episode start day) of one recurring patient."""
    summary = summarise({"p": draws}, confirm=confirm, recurrence=recurrence, lookback=lookback)
    row = summary.iloc[0]
    return _day(row[FIRST_ALARM_DAY]), _day(row[EPISODE_START_DAY])


def summarise(
    series: dict[str, Draws], *, confirm: int = 1, recurrence: float = R, lookback: float = 365
) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            {"patient_id": pid, DAY: float(d), EVALUABLE: p is not None, POSITIVE: bool(p)}
            for pid, draws in series.items()
            for d, p in draws
        ],
        columns=["patient_id", DAY, EVALUABLE, POSITIVE],
    )
    alarms = AlarmSeries("rule", "marker", with_alarms(frame, confirm), confirm=confirm)
    surv = pd.DataFrame(
        {
            "patient_id": list(series),
            RECURRENCE_DAY: recurrence,
            RECURRED: True,
            END_DAY: recurrence,
            FOLLOWUP_YEARS: recurrence / 365.25,
            LAST_NEGATIVE_DAY: recurrence - 90,
        }
    )
    return patient_summary(alarms, surv, lookback)


def _day(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def test_an_uninterrupted_run_up_to_recurrence_is_one_episode() -> None:
    assert leads([(100, False), (200, True), (300, True), (400, True)]) == (200, 200)


def test_a_negative_draw_starts_a_new_episode() -> None:
    # the chance alarm on day 100 stays the first alarm; the episode starts after the break
    assert leads([(100, True), (200, False), (300, True), (400, True)]) == (100, 300)


def test_an_unevaluable_draw_neither_breaks_nor_extends_an_episode() -> None:
    assert leads([(200, False), (300, True), (350, None), (400, True)]) == (300, 300)
    assert leads([(200, True), (300, None), (350, False), (400, True)]) == (200, 400)


def test_an_episode_that_lapsed_before_recurrence_gives_no_episode_lead() -> None:
    assert leads([(200, True), (300, True), (400, False)]) == (200, None)
    # the last evaluable draw decides, even when the confirming visit's draw is unevaluable
    assert leads([(200, True), (300, False), (400, None)]) == (200, None)


def test_with_confirm_two_the_episode_starts_at_the_second_consecutive_positive() -> None:
    draws: Draws = [(100, True), (150, True), (200, False), (300, True), (350, True), (400, True)]
    assert leads(draws, confirm=2) == (150, 350)
    # one positive after the break is not yet an alarm: no episode is ongoing
    assert leads([(100, True), (150, True), (200, False), (400, True)], confirm=2) == (150, None)


def test_no_alarm_gives_neither_lead() -> None:
    assert leads([(100, False), (200, False), (400, False)]) == (None, None)
    assert leads([(100, None), (400, None)]) == (None, None)


def test_alarms_after_recurrence_are_ignored() -> None:
    assert leads([(300, False), (400, True), (450, True)]) == (400, 400)
    assert leads([(300, False), (400, False), (450, True), (500, True)]) == (None, None)


def test_an_episode_older_than_the_look_back_counts_from_the_window() -> None:
    draws: Draws = [(d, True) for d in (100, 200, 300, 400, 500, 600)]
    # window [235, 600]: both leads start at its first alarm, day 300
    assert leads(draws, recurrence=600) == (300, 300)


def test_patients_are_kept_apart() -> None:
    # a's quiet draw must not end b's episode, nor b's alarms extend a's
    s = summarise(
        {"a": [(200, True), (350, False)], "b": [(100, False), (300, True), (400, True)]}
    ).set_index("patient_id")
    assert np.isnan(s.loc["a", EPISODE_START_DAY]) and s.loc["a", FIRST_ALARM_DAY] == 200
    assert (s.loc["b", FIRST_ALARM_DAY], s.loc["b", EPISODE_START_DAY]) == (300, 300)


# --------------------------------------------------------------------------- invariants
def reference_episode_start(draws: Draws, confirm: int, lookback: float) -> float | None:
    """A plain loop over the draws, written from the definition in alarms.metrics."""
    run, start = 0, None
    for day, positive in sorted(draws, key=lambda x: x[0]):
        if day > R or positive is None:
            continue
        run = run + 1 if positive else 0
        alarm = run >= confirm
        if day < R - lookback:
            continue
        if not alarm:
            start = None
        elif start is None:
            start = float(day)
    return start


draw_lists = st.lists(
    st.tuples(st.integers(1, 500), st.sampled_from([True, False, None])),
    max_size=12,
    unique_by=lambda x: x[0],
)


@settings(max_examples=150, deadline=None)
@given(draws=draw_lists, confirm=st.integers(1, 3), lookback=st.sampled_from([100.0, 365.0]))
def test_the_episode_start_matches_a_plain_loop_and_never_precedes_the_first_alarm(
    draws: Draws, confirm: int, lookback: float
) -> None:
    first, episode = leads(draws, confirm=confirm, lookback=lookback)
    assert episode == reference_episode_start(draws, confirm, lookback)
    if episode is not None:
        assert first is not None and first <= episode <= R


# --------------------------------------------------------------------------- the report
@pytest.fixture
def tiny(tmp_path: Path) -> Cohort:
    return load_cohort(write_tiny(tmp_path / "tiny"))


def test_the_metrics_report_the_episode_lead_beside_the_first_alarm_lead(tiny: Cohort) -> None:
    result = run_leadtime(tiny, rules=[CTC, "afp>20"], n_boot=50)
    m = result.rule(CTC).metrics
    # p1: CTC 0, 1, 3, 4, 5 on days 30-400: one episode from day 200 to the recurrence
    assert (m["n_detected"], m["n_detected_ongoing_episode"]) == (1, 1)
    assert m["episode_lead"]["median"] == m["lead"]["median"] == 200
    assert m["episode_lead_median"] == 200
    assert m["episode_lead_median_ci"] == [200, 200]
    assert "episode_lead_median" in result.rule("afp>20").vs_reference
    summary = result.summaries[CTC].set_index("patient_id")
    assert summary.loc["p1", EPISODE_LEAD] == summary.loc["p1", LEAD] == 200


def test_with_confirm_two_the_tiny_cohorts_episode_starts_on_day_300(tiny: Cohort) -> None:
    m = run_leadtime(tiny, rules=[CTC], n_boot=0, confirm=2).rule(CTC).metrics
    assert m["episode_lead"]["median"] == 100  # positive on 200 and 300: alarm from day 300


def test_a_lapsed_episode_keeps_the_detection_but_has_no_episode_lead(tmp_path: Path) -> None:
    def negative_at_recurrence(t: dict[str, pd.DataFrame]) -> None:
        m = t["measurements"]
        last = (m["patient_id"] == "p1") & (m["marker"] == "ctc_total") & (m["value"] == "5")
        m.loc[last, "value"] = "0"

    cohort = load_cohort(write_tiny(tmp_path / "lapsed", negative_at_recurrence))
    m = run_leadtime(cohort, rules=[CTC], n_boot=0).rule(CTC).metrics
    assert (m["n_detected"], m["n_detected_ongoing_episode"]) == (1, 0)
    assert m["lead"]["median"] == 200
    assert m["episode_lead"]["median"] is None and m["episode_lead_median"] is None


def test_the_report_shows_both_leads(tiny: Cohort, tmp_path: Path) -> None:
    out = tmp_path / "report"
    publish_leadtime(run_leadtime(tiny, rules=[CTC], n_boot=20), out)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Median episode lead, days (IQR) [95% CI]" in html
    assert "Episode lead time:" in html
    lead = pd.read_csv(out / "lead_times.csv")
    p1 = lead[(lead["rule"] == CTC) & (lead["patient_id"] == "p1")].iloc[0]
    assert (p1[EPISODE_START_DAY], p1[EPISODE_LEAD]) == (200, 200)


def test_writing_the_report_gives_a_new_result_and_leaves_the_computed_one_as_it_was(
    tiny: Cohort, tmp_path: Path
) -> None:
    computed = run_leadtime(tiny, rules=[CTC], n_boot=0)
    published = publish_leadtime(computed, tmp_path / "report")
    assert computed.files == {} and published.files["html"].endswith("report.html")
    saved = json.loads((tmp_path / "report" / "leadtime.json").read_text(encoding="utf-8"))
    assert saved["files"] == dict(published.files)
    with pytest.raises(dataclasses.FrozenInstanceError):
        computed.notes = ()  # type: ignore[misc]
