"""On a simulated cohort the observed lead times agree with the simulator's latent truth."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cohort.load import load_cohort
from cohort.simulate import simulate_cohort
from evaluation import LeadtimeResult, run_leadtime
from evaluation.truth import read_truth, truth_rows
from reporting.leadtime import publish_leadtime
from tests.evaluation._leadtime_cohort import write_tiny

CTC = "ctc_total>=2"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[LeadtimeResult, Path]:
    folder = tmp_path_factory.mktemp("sim") / "cohort"
    simulate_cohort(folder, n_patients=400, seed=3)
    out = folder.parent / "report"
    result = run_leadtime(load_cohort(folder), rules=[CTC, "afp>20"], n_boot=100)
    result = publish_leadtime(result, out)
    return result, out


@pytest.mark.slow
def test_the_latent_lead_bounds_the_observed_lead_up_to_the_scan_interval(
    simulated: tuple[LeadtimeResult, Path],
) -> None:
    result, _ = simulated
    cohort = load_cohort(Path(result.cohort["source"]))
    rows = truth_rows(result.summaries[CTC], read_truth(cohort))
    assert len(rows) == result.rule(CTC).metrics["n_detected"] > 50
    # alarms before the latent marker signal are background noise: rare at CTC >= 2
    assert rows["within_bound"].mean() >= 0.85
    assert (rows["observed_lead_days"] <= 365).all()
    check = result.truth["rules"][CTC]
    assert check["share_within_bound"] == pytest.approx(rows["within_bound"].mean())
    assert 0 <= check["captured_median"] <= 1
    assert result.truth["latent"]["latent_lead_median"] > 0


@pytest.mark.slow
def test_the_latent_lead_bounds_the_episode_lead_for_nearly_every_detection(
    simulated: tuple[LeadtimeResult, Path],
) -> None:
    result, _ = simulated
    cohort = load_cohort(Path(result.cohort["source"]))
    first = truth_rows(result.summaries[CTC], read_truth(cohort))
    episode = truth_rows(result.summaries[CTC], read_truth(cohort), episode=True)
    assert len(episode) == result.rule(CTC).metrics["n_detected_ongoing_episode"] > 0.9 * len(first)
    assert (
        episode["observed_lead_days"]
        <= first.set_index("patient_id").loc[episode["patient_id"], "observed_lead_days"].to_numpy()
    ).all()
    # Measured with CTC >= 2 on simulated cohorts: 94.5-96.6% of episode leads within the
    # bound over seeds 1-5 (400 patients; 94.9% on this one, seed 3) and 95.5% on 1,000
    # patients, against 88.7-95.5% (93.3% here) for the first alarm in the window, which
    # this threshold fails. Most of the rest follow a scan that missed a visible lesion
    # (the bound's interval then understates imaging's delay); the others, 1.0-2.9% of
    # detections (2.3% here), are noisy draws over the patient's background crossing the
    # cut-off before the expected tumour-derived count does: mostly under 2 tumour
    # doublings early, a few a chance positive on the last draw before the signal, with
    # no draw in between to end the episode (draws are 3-6 months apart).
    assert episode["within_bound"].mean() >= 0.94
    unexplained = ~episode["within_bound"] & ~episode["after_missed_scan"]
    assert unexplained.mean() <= 0.03
    check = result.truth["rules"][CTC]["episode"]
    assert check["share_within_bound"] == pytest.approx(episode["within_bound"].mean())
    assert check["share_within_bound"] > result.truth["rules"][CTC]["share_within_bound"]


@pytest.mark.slow
def test_the_report_holds_json_html_and_every_figure(
    simulated: tuple[LeadtimeResult, Path],
) -> None:
    _result, out = simulated
    payload = json.loads((out / "leadtime.json").read_text(encoding="utf-8"))
    assert [r["name"] for r in payload["rules"]][:2] == [CTC, "afp>20"]
    assert payload["truth_check"]["rules"][CTC]["n_detected"] > 0
    html = (out / "report.html").read_text(encoding="utf-8")
    for text in ("Rules side by side", "last negative scan", "Truth check", "Paired comparison"):
        assert text in html
    for png in ("swimmer.png", "lead_distribution.png", "sweep.png", "km_1.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    lead = pd.read_csv(out / "lead_times.csv")
    assert set(lead["rule"]) >= {CTC, "afp>20"}
    assert {"first_alarm_day", "episode_start_day", "episode_lead_days"} <= set(lead.columns)
    assert payload["truth_check"]["rules"][CTC]["episode"]["n_detected"] > 0


@pytest.mark.slow
def test_the_swept_ctc_cut_off_reaches_the_target_specificity(
    simulated: tuple[LeadtimeResult, Path],
) -> None:
    result, _ = simulated
    (sweep,) = [s for s in result.sweeps if s.score_name == "ctc_total"]
    variant = [r for r in result.rules if r.variant_of == CTC]
    if sweep.reached:
        assert variant and variant[0].metrics["specificity"] >= 0.9
    # a higher cut-off alarms on a subset of draws: never less specific, never more sensitive
    assert sweep.table["specificity"].is_monotonic_increasing
    assert sweep.table["sensitivity"].is_monotonic_decreasing


def test_a_truth_file_without_the_latent_days_is_refused_with_its_columns(tmp_path: Path) -> None:
    folder = write_tiny(tmp_path / "tiny")
    pd.DataFrame({"patient_id": ["p1"], "visible_day": [300.0]}).to_csv(
        folder / "truth.csv", index=False
    )
    with pytest.raises(ValueError, match=r"truth\.csv lacks column\(s\) \['doubling_time_days'"):
        run_leadtime(load_cohort(folder), rules=[CTC], n_boot=0)
