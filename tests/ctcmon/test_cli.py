"""The command line as a user meets it: real subprocesses, exit codes, stdout/stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer

from ctcmon.console import parse_days


def ctcmon(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctcmon", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_validate_accepts_pbcseq_with_a_summary(pbcseq_dir: Path) -> None:
    res = ctcmon("validate", pbcseq_dir)
    assert res.returncode == 0, res.stderr
    assert "is valid" in res.stdout
    assert "patients: 312" in res.stdout


def test_validate_json_is_machine_readable(pbcseq_dir: Path) -> None:
    res = ctcmon("validate", pbcseq_dir, "--json")
    assert res.returncode == 0, res.stderr
    payload = json.loads(res.stdout)
    assert payload["ok"] is True
    assert payload["patients"] == 312
    assert payload["events"]["os"] == 140


def test_validate_lists_every_problem_and_exits_2_without_traceback(
    make_cohort: Callable[..., Path],
) -> None:
    def break_two(t: dict[str, pd.DataFrame]) -> None:
        t["measurements"].loc[0, "value"] = "-3"
        t["imaging"].loc[0, "finding"] = "relapse"

    res = ctcmon("validate", make_cohort(break_two))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr + res.stdout
    assert "cohort refused: 2 problems" in res.stderr
    assert "measurements.csv, row 2, column 'value'" in res.stdout
    assert "imaging.csv, row 2, column 'finding'" in res.stdout


def test_validate_json_lists_problems_with_file_row_column(
    make_cohort: Callable[..., Path],
) -> None:
    folder = make_cohort(lambda t: t["measurements"].loc.__setitem__((3, "marker"), "cea"))
    res = ctcmon("validate", folder, "--json")
    assert res.returncode == 2
    problems = json.loads(res.stdout)["problems"]
    assert problems == [
        {
            "file": "measurements.csv",
            "row": 5,
            "column": "marker",
            "reason": "unknown marker 'cea'; cohort.toml declares ['afp', 'ctc_total']",
            "patient_id": "p1",  # added with item 8 of issue 14: a row names its patient
        }
    ]


def test_a_missing_folder_is_a_one_line_error(tmp_path: Path) -> None:
    res = ctcmon("validate", tmp_path / "nope")
    assert res.returncode == 2
    assert "no such folder" in res.stderr
    assert "Traceback" not in res.stderr


def test_landmark_lists_are_parsed() -> None:
    assert parse_days("90, 180,365", "--landmarks") == [90.0, 180.0, 365.0]
    assert parse_days(None, "--landmarks") is None


@pytest.mark.parametrize(
    ("bad", "message"),
    [("90,abc", "'abc' is not a number"), ("-5", "must be >= 0"), (",", "expected comma")],
)
def test_bad_landmark_lists_are_refused_naming_the_bad_item(bad: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_days(bad, "--landmarks")


def test_a_bad_train_landmark_is_a_one_line_error_naming_the_option(pbcseq_dir: Path) -> None:
    res = ctcmon("train", pbcseq_dir, "--landmarks", "1826", "--train-landmarks", "0,1y")
    assert res.returncode == 1
    assert "--train-landmarks: '1y' is not a number of days" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_marker_the_cohort_does_not_declare_is_a_one_line_error(pbcseq_dir: Path) -> None:
    res = ctcmon(
        "train", pbcseq_dir, "--landmarks", "1826", "--markers", "bili,afp", "--models", "cox"
    )
    assert res.returncode == 1
    assert "--markers: ['afp'] not among the cohort's markers" in res.stderr
    assert "Traceback" not in res.stderr


def test_compare_piped_shows_the_whole_table_with_the_alarm_and_serving_cost(
    trained_store: dict[str, Any],
) -> None:
    res = ctcmon("compare", "--experiment", "test", "--tracking-uri", trained_store["uri"])
    assert res.returncode == 0, res.stderr
    assert "…" not in res.stdout  # piped output is not cut to 80 columns
    header = next(line for line in res.stdout.splitlines() if "Harrell C" in line)
    for column in ("alarm sens.", "alarm spec.", "lead d", "serve ms"):
        assert column in header
    row = next(line for line in res.stdout.splitlines() if line.lstrip("│ ").startswith("cox"))
    assert row.count("—") <= 1  # every figure of the cox run is there


def test_a_command_module_that_fails_to_import_stops_the_cli_loudly() -> None:
    poisoned = "import sys; sys.modules['ctcmon.cmd_report'] = None; import ctcmon.cli"
    res = subprocess.run(
        [sys.executable, "-c", poisoned], capture_output=True, text=True, timeout=120, check=False
    )
    assert res.returncode != 0
    # the old registry skipped exactly this error (the module itself missing) in silence
    assert "ModuleNotFoundError" in res.stderr and "ctcmon.cmd_report" in res.stderr


def test_a_validator_s_value_error_is_a_one_line_reason(capsys: pytest.CaptureFixture[str]) -> None:
    from ctcmon.console import guarded

    def work() -> None:
        raise ValueError("horizon_days must be > 0, got -5")

    with pytest.raises(typer.Exit) as exited:
        guarded(False, work)
    assert exited.value.exit_code == 1
    assert "error: horizon_days must be > 0, got -5" in capsys.readouterr().err


@pytest.mark.parametrize("bug", [KeyError("risk_365"), TypeError("unsupported operand")])
def test_anything_else_is_reported_as_a_bug_with_the_debug_advice(
    bug: Exception, capsys: pytest.CaptureFixture[str]
) -> None:
    from ctcmon.console import guarded, report_bug

    def work() -> None:
        raise bug

    with pytest.raises(type(bug)) as raised:
        guarded(False, work)  # not turned into a user error
    with pytest.raises(SystemExit) as exited:
        report_bug(raised.value)
    assert exited.value.code == 70
    err = capsys.readouterr().err
    assert f"internal error (a bug in ctcmon, please report it): {type(bug).__name__}" in err
    assert "CTCMON_DEBUG=1" in err
