"""The model report of a stack states its weights per band of days since index."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from reporting import build_model_report
from tracking.vocabulary import stack_weight_key

pytestmark = pytest.mark.slow


def test_the_stack_s_report_shows_its_packaged_weights_per_band(
    stack_store: dict[str, Any], tmp_path: Path
) -> None:
    res = build_model_report(
        "models:/ctcmon-recurrence@champion", tmp_path, tracking_uri=stack_store["uri"]
    )
    html = res.html.read_text(encoding="utf-8")
    assert "A stack of models, weighted per band of days since index" in html
    run = MlflowClient(tracking_uri=stack_store["uri"]).get_run(stack_store["run_id"])
    weight = run.data.metrics[stack_weight_key("d30_182", "xgb_cox")]
    table = html[html.index("A stack of models") :]
    row = re.search(r"<tr><td>months 2–6</td>.*?</tr>", table, re.S)
    assert row is not None
    assert f"{weight:.2f}" in row.group(0)
