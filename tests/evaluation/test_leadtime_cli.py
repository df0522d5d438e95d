"""``ctcmon leadtime`` as a user meets it: exit codes, one-line errors, the summary, --json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.evaluation._leadtime_cohort import write_tiny


def ctcmon(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctcmon", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_an_unknown_rule_token_is_a_one_line_error_without_traceback(tmp_path: Path) -> None:
    res = ctcmon("leadtime", write_tiny(tmp_path / "c"), "--rule", "ctc>=2")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr + res.stdout
    assert "unknown marker 'ctc'" in res.stderr
    assert "valid markers: ['afp', 'ctc_total']" in res.stderr


def test_a_cohort_without_imaging_is_refused_in_json_too(tmp_path: Path) -> None:
    def drop_imaging(t: dict[str, pd.DataFrame]) -> None:
        del t["imaging"]

    res = ctcmon("leadtime", write_tiny(tmp_path / "c", drop_imaging), "--json")
    assert res.returncode == 1
    payload = json.loads(res.stdout)
    assert payload["ok"] is False
    assert payload["reason"].startswith("lead time over imaging needs imaging.csv")


@pytest.mark.slow
def test_a_run_prints_each_rule_and_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    res = ctcmon(
        "leadtime",
        write_tiny(tmp_path / "c"),
        "--rule",
        "ctc_total>=2",
        "--rule",
        "ctc_total>=2 & afp_rise",
        "--confirm",
        "1",
        "--bootstrap",
        "20",
        "--out",
        out,
    )
    assert res.returncode == 0, res.stderr
    assert "ctc_total>=2 & afp_rise" in res.stdout
    assert "sensitivity 50.0%" in res.stdout
    assert f"report: {out / 'report.html'}" in res.stdout
    assert json.loads((out / "leadtime.json").read_text())["settings"]["confirm"] == 1
