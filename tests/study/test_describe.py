"""describe_cohort end to end: tables, files, the HTML report, skipped notes, --by errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohort.cohort import Cohort
from cohort.vocabulary import PATIENT_ID
from reporting.study import write_study_report
from study.characteristics import characteristics_table
from study.ctc_dynamics import counting_table, ctc_groups, ctc_pairs
from study.describe import describe_cohort
from study.options import CtcOptions


@pytest.fixture(scope="module")
def written(simulated: Cohort, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    out = tmp_path_factory.mktemp("describe")
    return write_study_report(describe_cohort(simulated), out), out


def test_report_html_is_written_and_contains_the_tables(written: tuple) -> None:
    result, out = written
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Patient characteristics" in html and "Best overall response" in html
    assert "TACE+lenvatinib" in html and "data:image/png;base64," in html
    assert "<h2>Skipped</h2>" in html and "no progression_date" in html
    assert {p.name for p in result.files} >= {
        "report.html",
        "km_rfs.png",
        "safety.csv",
        "survival_rates.csv",
        "ctc_cox.csv",
    }
    assert all(Path(p).stat().st_size > 0 for p in result.files)
    csv = pd.read_csv(out / "survival_summary.csv")
    assert set(csv["endpoint"]) >= {"RFS", "OS"}


def test_result_serialises_to_json_without_nan(written: tuple) -> None:
    result, _ = written
    text = json.dumps(result.to_dict(), allow_nan=False, default=str)
    assert '"by": "arm"' in text and "NaN" not in text
    assert "skipped PFS" in result.summary()


def test_pbcseq_without_imaging_or_adverse_events_still_gets_what_applies(pbcseq: Cohort) -> None:
    result = describe_cohort(pbcseq)
    assert {"characteristics", "survival_summary", "km", "markers"} <= set(result.tables)
    skipped = {s.part: s.reason for s in result.skipped}
    assert "no imaging" in skipped["Tumour response"]
    assert "no adverse events" in skipped["Safety"]
    assert "no eligibility criteria declared" in skipped["Eligibility"]


def test_by_a_column_not_in_patients_names_it_and_lists_the_available_ones(
    simulated: Cohort,
) -> None:
    with pytest.raises(
        ValueError,
        match=r"--by column 'armm' is not a patients column; "
        r"available: \['site_id', 'age', 'sex', 'arm'",
    ):
        describe_cohort(simulated, by="armm")


def test_by_a_continuous_column_is_refused(simulated: Cohort) -> None:
    with pytest.raises(ValueError, match="'age' has 240 distinct values"):
        describe_cohort(simulated, by="age")


def test_describe_never_mutates_the_cohort_frames(simulated: Cohort) -> None:
    before = {n: getattr(simulated, n).copy() for n in ("patients", "outcomes", "measurements")}
    describe_cohort(simulated, by="sex")
    for name, frame in before.items():
        pd.testing.assert_frame_equal(getattr(simulated, name), frame)


def test_table_one_shows_median_iqr_counts_and_missing(
    cohort_builder: Callable[..., Cohort],
) -> None:
    pats = pd.DataFrame(
        {
            PATIENT_ID: list("abcde"),
            "age": [40.0, 50.0, 60.0, np.nan, 70.0],
            "sex": ["M", "F", "M", None, "M"],
            "arm": list("XXYYY"),
        }
    )
    table = characteristics_table(pats, {"age": "numeric", "sex": "categorical"}, "arm")
    rows = table.set_index(["variable", "level"])
    assert rows.loc[("N", ""), ["Overall", "X", "Y"]].tolist() == ["5", "2", "3"]
    assert rows.loc[("age", "median [IQR]"), "Overall"] == "55.0 [47.5, 62.5]"
    assert rows.loc[("age", "missing"), "Y"] == "1"
    assert rows.loc[("sex", "M"), "Overall"] == "3 (60.0%)"
    assert rows.loc[("sex", "missing"), "Y"] == "1 (33.3%)"
    assert rows.loc[("age", "median [IQR]"), "test"] == "Kruskal-Wallis"


def test_ctc_groups_and_counting_table_follow_the_draws(
    cohort_builder: Callable[..., Cohort],
) -> None:
    def draw(pid: str, day: float, v: float) -> dict:
        return {PATIENT_ID: pid, "day": day, "marker": "ctc_total", "value": v, "unit": "c"}

    meas = [
        draw("a", -2, 5),
        draw("a", 30, 0),
        draw("a", 200, 3),
        draw("b", -2, 1),
        draw("b", 28, 4),
        draw("c", -90, 3),
        draw("c", 30, 3),
    ]
    outcomes = [
        {PATIENT_ID: "a", "last_followup_day": 400.0, "recurrence_day": 300.0},
        {PATIENT_ID: "b", "last_followup_day": 500.0},
        {PATIENT_ID: "c", "last_followup_day": 500.0},
    ]
    cohort = cohort_builder([{PATIENT_ID: p} for p in "abc"], outcomes, measurements=meas)
    groups = ctc_groups(ctc_pairs(cohort.measurements, CtcOptions()), 2).set_index(PATIENT_ID)
    assert list(groups.index) == ["a", "b"]  # c's pre-operative draw is 90 days before index
    assert groups["ctc_change"].tolist() == ["fall", "rise"]
    assert groups["ctc_persistence"].tolist() == ["turned negative", "turned positive"]
    table = counting_table(cohort.measurements, cohort.endpoint("rfs"), "ctc_total", 2)
    a = table[table[PATIENT_ID] == "a"]
    assert a[["start", "stop", "event", "ctc_positive"]].to_numpy().tolist() == [
        [0, 30, 0, 1],
        [30, 200, 0, 0],
        [200, 300, 1, 1],
    ]
