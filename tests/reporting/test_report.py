"""The model report (``ctcmon report``): generated from the MLflow run, TRIPOD+AI items."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from reporting import ReportResult, build_model_report
from reporting.facts import ReportFacts
from reporting.filters import ci, num
from reporting.limitations import limitations
from reporting.render import decision_rows

CHAMPION = "models:/ctcmon-recurrence@champion"
TRIPOD_AI_ITEMS = [
    *("1", "2", "3a", "3b", "3c", "4", "5a", "5b", "6a", "6b", "6c", "7", "8a", "8b", "8c"),
    *("9a", "9b", "9c", "10", "11", "12a", "12b", "12c", "12d", "12e", "12f", "12g"),
    *("13", "14", "15", "16", "17", "18a", "18b", "18c", "18d", "18e", "18f", "19"),
    *("20a", "20b", "20c", "21", "22", "23a", "23b", "24", "25", "26", "27a", "27b", "27c"),
]
SHOWN_METRICS = (
    "harrell_c",
    "harrell_c_low",
    "harrell_c_high",
    "uno_c",
    "auc",
    "auc_low",
    "auc_high",
    "brier",
    "integrated_brier",
    "calibration_slope",
    "calibration_slope_low",
    "calibration_slope_high",
    "ici",
    "e50",
    "e90",
)


@pytest.fixture(scope="module")
def champion_report(
    trained_store: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[ReportResult, str]:
    out = tmp_path_factory.mktemp("report")
    res = build_model_report(CHAMPION, out, tracking_uri=trained_store["uri"])
    return res, res.html.read_text(encoding="utf-8")


def client(store: dict[str, Any]) -> MlflowClient:
    return MlflowClient(tracking_uri=store["uri"], registry_uri=store["uri"])


# --------------------------------------------------------------------------- from the store
@pytest.mark.slow
def test_the_champion_alias_resolves_to_the_registered_run(
    trained_store: dict[str, Any], champion_report: tuple[ReportResult, str]
) -> None:
    res, _ = champion_report
    champion = trained_store["result"].champion
    assert res.run_id == champion["run_id"]
    assert res.model_name == champion["model"]
    assert res.registered == f"ctcmon-recurrence version {champion['version']}"
    assert res.html.name == "model_report.html" and res.html.is_file()
    assert json.loads(res.json.read_text())["model"]["run_id"] == champion["run_id"]


@pytest.mark.slow
def test_the_html_shows_the_runs_metrics_formatted_to_three_decimals(
    trained_store: dict[str, Any], champion_report: tuple[ReportResult, str]
) -> None:
    res, html = champion_report
    metrics = client(trained_store).get_run(res.run_id).data.metrics
    assert {"harrell_c", "auc", "brier", "calibration_slope", "ici"} <= set(metrics)
    for key in SHOWN_METRICS:
        if key in metrics:  # a CI the run could not estimate is shown as a dash
            assert f"{metrics[key]:.3f}" in html, key
    assert f"{metrics['n_patients']:,.0f}" in html
    assert f"{metrics['n_events']:,.0f}" in html


@pytest.mark.slow
def test_the_html_has_a_row_for_every_tripod_ai_item(
    champion_report: tuple[ReportResult, str],
) -> None:
    res, html = champion_report
    rows = re.findall(
        r'<tr id="tripod-(\w+)"><td class="nw">\w+</td><td>[^<]+</td>\s*<td class="status[^"]*">([a-z ]+)</td>',
        html,
    )
    assert [n for n, _ in rows] == TRIPOD_AI_ITEMS
    assert {s for _, s in rows} <= {"reported", "partly reported", "not applicable", "not reported"}
    assert sum(res.tripod.values()) == len(TRIPOD_AI_ITEMS)


@pytest.mark.slow
def test_the_html_embeds_every_figure_the_run_logged(
    trained_store: dict[str, Any], champion_report: tuple[ReportResult, str]
) -> None:
    res, html = champion_report
    c = client(trained_store)
    logged = [a.path for a in c.list_artifacts(res.run_id, "figures")]
    assert len(logged) >= 3
    with tempfile.TemporaryDirectory() as tmp:
        for path in logged:
            data = Path(c.download_artifacts(res.run_id, path, tmp)).read_bytes()
            assert base64.b64encode(data).decode() in html, path
            assert (res.html.parent / Path(path).name).read_bytes() == data
    # the comparison figures drawn from the other runs' tables (cox vs baseline)
    assert "compare_auc_by_landmark" in res.figures
    assert html.count('src="data:image/png;base64,') == len(res.figures)


@pytest.mark.slow
def test_limitations_say_the_data_are_simulated_for_a_simulated_cohort(
    champion_report: tuple[ReportResult, str],
) -> None:
    res, html = champion_report
    assert res.limitations[0].startswith("Simulated data")
    assert "Simulated data: cohort &#39;sim-hcc-post-resection&#39;" in html
    assert any("Internal validation only" in text for text in res.limitations)


@pytest.mark.slow
def test_a_run_uri_gives_the_report_of_that_run(
    trained_store: dict[str, Any], tmp_path: Path
) -> None:
    run_id = trained_store["result"].run_ids["baseline"]
    res = build_model_report(f"runs:/{run_id}/model", tmp_path, tracking_uri=trained_store["uri"])
    html = res.html.read_text(encoding="utf-8")
    auc = client(trained_store).get_run(run_id).data.metrics["auc"]
    assert (res.run_id, res.model_name) == (run_id, "baseline")
    assert f"{auc:.3f}" in html
    assert any("covariates-only baseline" in text for text in res.limitations)
    facts = json.loads(res.json.read_text())
    assert facts["predictors"]["uses_markers"] is False
    assert facts["cohort"]["digest"] == trained_store["cohort"].digest


@pytest.mark.slow
def test_the_json_holds_the_facts_the_html_states(
    trained_store: dict[str, Any], champion_report: tuple[ReportResult, str]
) -> None:
    res, _ = champion_report
    facts = json.loads(res.json.read_text())
    run = client(trained_store).get_run(res.run_id)
    assert facts["metrics"]["auc"] == pytest.approx(run.data.metrics["auc"])
    assert facts["tags"]["ctcmon.cohort"] == run.data.tags["ctcmon.cohort"]
    assert facts["cohort"]["accrual_start"] <= facts["cohort"]["accrual_end"]
    assert {r["model"] for r in facts["comparison"]} == {"cox", "baseline"}
    assert len(facts["tripod"]) == len(TRIPOD_AI_ITEMS)
    assert sorted(facts["figures"]) == sorted(f"{k}.png" for k in res.figures)


@pytest.mark.slow
def test_an_unknown_registered_model_is_a_value_error_naming_the_uri(
    trained_store: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(
        ValueError, match=r"cannot resolve model URI 'models:/no-such-model@champion'"
    ):
        build_model_report(
            "models:/no-such-model@champion", tmp_path, tracking_uri=trained_store["uri"]
        )


@pytest.mark.slow
def test_an_unknown_run_is_a_value_error_naming_the_uri(
    trained_store: dict[str, Any], tmp_path: Path
) -> None:
    uri = "runs:/0123456789abcdef0123456789abcdef/model"
    with pytest.raises(ValueError, match=re.escape(f"cannot resolve model URI {uri!r}")):
        build_model_report(uri, tmp_path, tracking_uri=trained_store["uri"])


@pytest.mark.slow
def test_a_run_without_ctcmon_tags_is_refused_with_the_missing_tags(
    trained_store: dict[str, Any], tmp_path: Path
) -> None:
    c = client(trained_store)
    experiment = c.create_experiment("not-ctcmon")
    run = c.create_run(experiment)
    c.log_param(run.info.run_id, "alpha", "0.1")
    c.set_terminated(run.info.run_id)
    uri = f"runs:/{run.info.run_id}/model"
    with pytest.raises(
        ValueError, match=r"lacks the tags \['ctcmon.model'.*not a model training run"
    ):
        build_model_report(uri, tmp_path, tracking_uri=trained_store["uri"])


@pytest.mark.slow
def test_the_cli_writes_the_report_and_prints_json(
    trained_store: dict[str, Any], tmp_path: Path
) -> None:
    args = [
        "report",
        "--model",
        CHAMPION,
        "--out",
        str(tmp_path),
        "--tracking-uri",
        trained_store["uri"],
    ]
    res = subprocess.run(
        [sys.executable, "-m", "ctcmon", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    payload = json.loads(res.stdout)
    assert payload["ok"] is True
    assert Path(payload["html"]) == tmp_path / "model_report.html"


# --------------------------------------------------------------------------- no store needed
def test_an_unsupported_uri_is_refused_before_mlflow_is_touched(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"unsupported model URI 'ctcmon-recurrence'; expected models:/"
    ):
        build_model_report("ctcmon-recurrence", tmp_path, tracking_uri="sqlite:///never/used.db")
    assert not (tmp_path / "model_report.html").exists()


def test_an_output_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("x")
    with pytest.raises(ValueError, match="--out must be a folder"):
        build_model_report(CHAMPION, target, tracking_uri="sqlite:///never/used.db")


def test_the_cli_error_for_a_bad_uri_is_one_line(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "ctcmon", "report", "--model", "foo", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert (
        res.stderr.strip().splitlines() == [res.stderr.strip().splitlines()[0]]
        and "unsupported model URI 'foo'" in res.stderr
    )


def facts(**changes: Any) -> ReportFacts:
    """Minimal facts of a real-cohort cox model that raises no optional limitation."""
    base: dict[str, Any] = {
        "model": {"name": "cox", "run_id": "r1", "model_uri": "runs:/r1/model"},
        "tags": {"ctcmon.horizon_days": "365.0"},
        "params": {"folds": "5", "n_boot": "500"},
        "metrics": {"n_events": 400.0, "calibration_slope": 0.95, "auc": 0.8, "auc_low": 0.77},
        "cohort": {"name": "hcc-registry", "simulated": False, "files": "match"},
        "manifest": {},
        "predictors": {"n_used": 20, "markers": [], "covariates": [], "other": []},
        "hyperparameters": {},
        "alarm": {"target_specificity": 0.9, "threshold": 0.2},
        "tables": {"by_landmark": []},
        "comparison": [{"model": "baseline", "auc": 0.6}],
        "leadtime": None,
        "notes": [],
    }
    for key, value in changes.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) else value
    return ReportFacts(**base)


def test_a_real_cohort_with_enough_events_gets_only_the_standing_limitations() -> None:
    found = limitations(facts())
    assert not any("Simulated" in t or "Few events" in t or "Calibration slope" in t for t in found)
    assert any("Internal validation only" in t for t in found)


@pytest.mark.parametrize(
    ("slope", "expected"),
    [(0.6, "too extreme"), (1.4, "too modest"), (float("nan"), "could not be estimated")],
)
def test_a_calibration_slope_outside_0_8_to_1_2_is_a_limitation(
    slope: float, expected: str
) -> None:
    assert any(expected in t for t in limitations(facts(metrics={"calibration_slope": slope})))


def test_few_events_and_few_events_per_feature_are_limitations() -> None:
    found = limitations(facts(metrics={"n_events": 60.0}))
    assert any(t.startswith("Few events: 60 patients") for t in found)
    assert any("60 events for 20 candidate features (3.0 per feature" in t for t in found)


def test_unscored_and_thin_landmarks_are_limitations() -> None:
    rows = [
        {"landmark_day": 30.0, "n_events": 50.0, "reason": ""},
        {"landmark_day": 900.0, "n_events": 4.0, "reason": ""},
        {"landmark_day": 1800.0, "n_events": 0.0, "reason": "no event within 365.0 days"},
    ]
    found = " ".join(limitations(facts(tables={"by_landmark": rows})))
    assert "Landmarks not scored (1): day 1800: no event within 365.0 days." in found
    assert "landmark day(s) 900 (4)" in found


def test_a_model_inside_the_baselines_uncertainty_is_a_limitation() -> None:
    found = limitations(facts(metrics={"auc": 0.62, "auc_low": 0.58}))
    assert any("AUC gain over the covariates-only baseline (+0.020)" in t for t in found)


def test_training_notes_and_changed_cohort_files_are_limitations() -> None:
    found = limitations(
        facts(
            notes=["calibration plot: too few events"],
            cohort={"files": "changed", "source": "/data/c"},
        )
    )
    assert "Training note: calibration plot: too few events." in found
    assert any("changed since training (digest differs) (/data/c)" in t for t in found)


def test_numbers_and_intervals_format_with_a_dash_for_missing() -> None:
    assert (num(0.84795), num(None), num(float("nan"))) == ("0.848", "—", "—")
    assert ci(0.8281, 0.8637) == "(0.828–0.864)"
    assert ci(None, 0.9) == ""


def test_the_decision_table_keeps_round_thresholds_and_the_one_nearest_the_alarm() -> None:
    curve = [{"threshold": t / 100, "net_benefit": 0.1} for t in range(1, 60)]
    rows = decision_rows(curve, alarm=0.243)
    assert [r["threshold"] for r in rows] == [0.05, 0.1, 0.15, 0.2, 0.24, 0.3, 0.4, 0.5]
    assert [r["threshold"] for r in rows if r["alarm"]] == [0.24]


@pytest.mark.slow
def test_the_report_states_the_alarm_per_patient_the_rows_fitted_and_calibration_by_day(
    trained_store: dict[str, Any], champion_report: tuple[ReportResult, str]
) -> None:
    res, html = champion_report
    metrics = client(trained_store).get_run(res.run_id).data.metrics
    assert "The alarm as clinicians meet it" in html
    assert f"{100 * metrics['alarm_patient_specificity']:.1f}%" in html
    assert f"{100 * metrics['alarm_sensitivity']:.1f}%" in html
    assert "own post-index draw days" in html  # the rows fitted, in words
    assert "recurrence-free patients never alarmed" in html  # the definition
    assert "months 7–12" in html and "Calibrated on the days it is served" in html
    facts = json.loads(res.json.read_text())
    assert facts["alarm"]["operating_point"]["threshold"] == pytest.approx(
        metrics["alarm_threshold"]
    )
    assert facts["alarm"]["interval_models"] == 3
