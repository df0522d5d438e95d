"""Prospective mode: only the alarms the service issued, dated when they were issued."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cohort.cohort import Cohort
from cohort.load import load_cohort
from evaluation import run_leadtime
from evaluation.prospective import BY_AS_OF_RULE, ISSUED_RULE, issued_alarms, read_assessments
from tests.evaluation._leadtime_cohort import date, write_tiny

COLUMNS = (
    "patient_id,assessment_id,issued_at,as_of,model_name,model_version,risk_180,risk_365,"
    "risk_730,risk_band,alarm,alarm_threshold,alarm_horizon_days"
)
# (patient, as_of day, issued day, risk_365, alarm)
ISSUED = [
    ("p1", 100, 100, 0.10, "false"),
    ("p1", 200, 200, 0.40, "true"),
    ("p1", 300, 301, 0.50, "true"),
    ("p2", 200, 200, 0.35, "true"),
    ("p2", 400, 400, 0.99, "false"),  # a high risk the service did not alarm on: stays no alarm
    ("p3", 30, 30, 0.05, "false"),
]


def assessments_csv(folder: Path, rows: list[tuple] = ISSUED) -> Path:
    lines = [COLUMNS]
    for k, (pid, as_of, issued, risk, alarm) in enumerate(rows):
        lines.append(
            f"{pid},a{k},{date(issued)}T10:00:00Z,{date(as_of)},ctcmon-recurrence,3,"
            f"{risk / 2},{risk},{min(1.0, risk * 1.5)},high,{alarm},0.3,365"
        )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "assessments.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tiny(tmp_path: Path) -> Cohort:
    return load_cohort(write_tiny(tmp_path / "tiny"))


def issued_metrics(cohort: Cohort, source: Path | pd.DataFrame) -> dict:
    result = run_leadtime(cohort, rules=["ctc_total>=2"], prospective_assessments=source, n_boot=0)
    return result.rule(ISSUED_RULE).metrics


def test_issued_alarms_are_used_as_issued(tiny: Cohort, tmp_path: Path) -> None:
    m = issued_metrics(tiny, assessments_csv(tmp_path / "export"))
    assert m["n_detected"] == 1 and m["lead"]["median"] == 200  # p1's alarm issued on day 200
    assert m["n_controls_alarmed"] == 1  # p2's day-200 alarm; its 0.99 risk issued no alarm
    assert m["n_false_alarms"] == 1


def test_the_export_folder_or_the_csv_itself_is_accepted(tiny: Cohort, tmp_path: Path) -> None:
    path = assessments_csv(tmp_path / "export")
    assert issued_metrics(tiny, path.parent) == issued_metrics(tiny, path)


def test_later_risks_and_assessments_after_recurrence_change_nothing_before(
    tiny: Cohort, tmp_path: Path
) -> None:
    base = issued_alarms(tiny, read_assessments(assessments_csv(tmp_path / "a")))[0]
    altered = [
        (pid, a, i, 0.01 if (pid, a) == ("p1", 300) else r, al) for pid, a, i, r, al in ISSUED
    ]
    altered += [("p1", 450, 450, 0.9, "true"), ("p1", 150, 500, 0.9, "true")]  # after; back-filled
    later = issued_alarms(tiny, read_assessments(assessments_csv(tmp_path / "b", altered)))[0]
    early = base.frame[base.frame["day"] < 300].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        early, later.frame[later.frame["day"] < 300].reset_index(drop=True)
    )
    m_base = issued_metrics(tiny, tmp_path / "a")
    m_later = issued_metrics(tiny, tmp_path / "b")
    for key in ("n_detected", "lead", "lead_vs_last_negative", "specificity", "sensitivity"):
        assert m_base[key] == m_later[key], key


def test_an_assessment_is_dated_when_it_was_issued_not_its_as_of(
    tiny: Cohort, tmp_path: Path
) -> None:
    rows = [("p1", 150, 390, 0.9, "true")]  # scored as of day 150 but issued on day 390
    m = issued_metrics(tiny, assessments_csv(tmp_path / "late", rows))
    assert m["lead"]["median"] == 10


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    path = assessments_csv(tmp_path / "x")
    frame = pd.read_csv(path).drop(columns=["alarm"])
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['alarm'\]"):
        read_assessments(path)


def test_an_unparsable_alarm_is_refused_with_its_row(tmp_path: Path) -> None:
    path = assessments_csv(tmp_path / "x", [("p1", 100, 100, 0.1, "maybe")])
    with pytest.raises(ValueError, match="row 2, column 'alarm': expected true/false, got 'maybe'"):
        read_assessments(path)


def test_a_missing_export_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no issued assessments"):
        read_assessments(tmp_path / "nowhere")


def test_assessments_of_unknown_patients_are_ignored_with_a_note(
    tiny: Cohort, tmp_path: Path
) -> None:
    rows = [*ISSUED, ("p9", 100, 100, 0.9, "true")]
    result = run_leadtime(
        tiny,
        rules=["ctc_total>=2"],
        prospective_assessments=assessments_csv(tmp_path / "u", rows),
        n_boot=0,
    )
    assert result.rule(ISSUED_RULE).metrics["n_alarms"] == 3  # p1 on days 200 and 301, p2 on 200
    assert any("p9" in n for n in result.notes)


def test_back_filled_assessments_are_said_and_offered_by_as_of_labelled_as_such(
    tiny: Cohort, tmp_path: Path
) -> None:
    """Records typed in after follow-up ended: by issued_at nothing counts, and the report says
    why; dated by as_of (a separate, labelled rule) p1's day-200 alarm leads by 200 days."""
    rows = [
        ("p1", 200, 800, 0.9, "true"),
        ("p2", 200, 800, 0.2, "false"),
        ("p3", 30, 800, 0.1, "false"),
    ]
    result = run_leadtime(
        tiny,
        rules=["ctc_total>=2"],
        prospective_assessments=assessments_csv(tmp_path / "late", rows),
        n_boot=0,
    )
    issued = result.rule(ISSUED_RULE).metrics
    assert issued["n_detected"] == 0
    note = next(n for n in result.notes if "issued more than 7 days after" in n)
    assert "3 of 3 assessments (3 patients)" in note and "3 were issued after" in note
    by_as_of = result.rule(BY_AS_OF_RULE)
    assert "not prospective" in by_as_of.name
    assert by_as_of.metrics["n_detected"] == 1 and by_as_of.metrics["lead"]["median"] == 200


def test_assessments_issued_on_the_day_get_no_back_fill_rule(tiny: Cohort, tmp_path: Path) -> None:
    result = run_leadtime(
        tiny,
        rules=["ctc_total>=2"],
        prospective_assessments=assessments_csv(tmp_path / "ok"),
        n_boot=0,
    )
    issued = [r.name for r in result.rules if r.kind == "issued" and r.variant_of is None]
    assert issued == [ISSUED_RULE]
    assert not any("issued more than" in n for n in result.notes)
