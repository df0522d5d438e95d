"""The simulator writes a valid, reproducible cohort that reproduces the published figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cohort.simulate as simulate_module
from cohort.cohort import Cohort
from cohort.load import load_cohort
from cohort.manifest import load_manifest
from cohort.simulate import SimulationParams, SimulationSummary, simulate_cohort
from cohort.vocabulary import (
    AFP,
    CTC_TOTAL,
    DATE,
    DEATH_DATE,
    FINDING,
    FINDING_RECURRENCE,
    LAST_FOLLOWUP_DATE,
    MANIFEST_FILE,
    MARKER,
    PATIENT_ID,
    QUALIFIER,
    RECURRENCE_DATE,
    TRUTH_FILE,
    UNIT,
    VALUE,
)

CSV_FILES = ("patients.csv", "measurements.csv", "imaging.csv", "outcomes.csv", "treatments.csv")
LARGE = 3000  # enough for the published figures within a few points
Large = tuple[SimulationSummary, Path]


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Large:
    out = tmp_path_factory.mktemp("large") / "cohort"
    return simulate_cohort(out, n_patients=LARGE, seed=11), out


@pytest.fixture(scope="module")
def tables(large: Large) -> dict[str, pd.DataFrame]:
    _, out = large
    read = {name: pd.read_csv(out / name, dtype={PATIENT_ID: str}) for name in CSV_FILES}
    read[TRUTH_FILE] = pd.read_csv(out / TRUTH_FILE, dtype={PATIENT_ID: str})
    return read


@pytest.fixture(scope="module")
def loaded(large: Large) -> Cohort:
    return load_cohort(large[1])


def _km_risk(time: np.ndarray, event: np.ndarray, at: float) -> float:
    """Kaplan-Meier cumulative incidence, written independently of the simulator's."""
    surv = 1.0
    for t in np.unique(time[event & (time <= at)]):
        surv *= 1 - ((time == t) & event).sum() / (time >= t).sum()
    return 1 - surv


def _ctc_per_7_5(measurements: pd.DataFrame) -> pd.DataFrame:
    ctc = measurements[measurements[MARKER] == CTC_TOTAL].copy()
    ctc[VALUE] = ctc[VALUE] * np.where(ctc[UNIT] == "cells/5mL", 1.5, 1.0)
    return ctc


# --- reproducibility -------------------------------------------------------------------------


def test_the_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    simulate_cohort(tmp_path / "a", n_patients=200, seed=5)
    simulate_cohort(tmp_path / "b", n_patients=200, seed=5)
    for name in (*CSV_FILES, TRUTH_FILE, MANIFEST_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_different_seeds_write_different_cohorts(tmp_path: Path) -> None:
    simulate_cohort(tmp_path / "a", n_patients=200, seed=5)
    simulate_cohort(tmp_path / "b", n_patients=200, seed=6)
    for name in ("measurements.csv", "imaging.csv", TRUTH_FILE):
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "b" / name).read_bytes(), name


# --- the data contract ------------------------------------------------------------------------


def test_a_simulated_cohort_loads_cleanly_through_the_contract(
    loaded: Cohort, large: Large
) -> None:
    summary, _ = large
    assert loaded.n_patients == LARGE == summary.n_patients
    assert len(loaded.measurements) == summary.n_measurement_rows
    assert len(loaded.imaging) == summary.n_imaging_rows
    assert loaded.manifest.time_zero == "resection"
    assert set(loaded.patients["site_id"]) == {"site-a", "site-b", "site-c"}


def test_sites_send_units_the_loader_must_convert(tables: dict[str, pd.DataFrame]) -> None:
    m = tables["measurements.csv"]
    units = set(zip(m[MARKER], m[UNIT], strict=True))
    assert {(CTC_TOTAL, "cells/5mL"), (CTC_TOTAL, "cells/7.5mL")} <= units
    assert {(AFP, "IU/mL"), (AFP, "ng/mL")} <= units
    assert {"ctc_epithelial", "ctc_mixed", "ctc_mesenchymal", "pivka_ii"} <= set(m[MARKER])


def test_loader_converts_ctc_counted_in_5_ml_to_7_5_ml(loaded: Cohort) -> None:
    m = loaded.measurements
    from_5 = m[(m[MARKER] == CTC_TOTAL) & (m["original_unit"] == "cells/5mL")]
    np.testing.assert_allclose(from_5[VALUE], from_5["original_value"] * 1.5)
    assert (from_5["unit"] == "cells/7.5mL").all()


def test_afp_below_the_detection_limit_is_stored_as_the_limit_with_a_qualifier(
    tables: dict[str, pd.DataFrame],
) -> None:
    afp = tables["measurements.csv"].query("marker == @AFP")
    below = afp[afp[QUALIFIER] == "<"]
    assert len(below) > 0
    ng = below[below[UNIT] == "ng/mL"][VALUE]
    assert (ng == 2.0).all()
    assert (afp.loc[afp[UNIT] == "ng/mL", VALUE] >= 2.0).all()


def test_some_covariates_are_missing_as_in_hospital_records(
    tables: dict[str, pd.DataFrame],
) -> None:
    missing = tables["patients.csv"].isna().mean()
    assert 0.01 < missing["microvascular_invasion"] < 0.15
    assert 0.005 < missing["child_pugh"] < 0.1
    assert missing.drop(["microvascular_invasion", "child_pugh"]).eq(0).all()


def test_no_draw_or_scan_falls_after_last_followup_or_death(
    tables: dict[str, pd.DataFrame],
) -> None:
    outcomes = tables["outcomes.csv"].set_index(PATIENT_ID)
    for name in ("measurements.csv", "imaging.csv"):
        frame = tables[name]
        end = frame[PATIENT_ID].map(outcomes[LAST_FOLLOWUP_DATE])
        assert (frame[DATE] <= end).all(), name
    died = outcomes[DEATH_DATE].notna()
    assert (outcomes.loc[died, DEATH_DATE] == outcomes.loc[died, LAST_FOLLOWUP_DATE]).all()


def test_recurrence_is_the_first_scan_finding_it_and_surveillance_stops_there(
    tables: dict[str, pd.DataFrame],
) -> None:
    imaging, outcomes = tables["imaging.csv"], tables["outcomes.csv"].set_index(PATIENT_ID)
    first = imaging[imaging[FINDING] == FINDING_RECURRENCE].groupby(PATIENT_ID)[DATE].min()
    recorded = outcomes[RECURRENCE_DATE].dropna()
    pd.testing.assert_series_equal(first.sort_index(), recorded.sort_index(), check_names=False)
    last_scan = imaging.groupby(PATIENT_ID)[DATE].max()
    assert (last_scan.reindex(recorded.index) == recorded).all()
    draws_after = tables["measurements.csv"].merge(recorded.rename("rec").reset_index())
    assert (draws_after[DATE] <= draws_after["rec"]).all()


def test_the_manifest_declares_schedules_and_markers(large: Large) -> None:
    manifest = load_manifest(large[1])
    assert manifest.imaging_schedule().days_until(900) == [
        90,
        180,
        270,
        360,
        450,
        540,
        630,
        720,
        900,
    ]
    assert manifest.draws is not None and manifest.draws.schedule_days[0] == 30
    assert manifest.markers[CTC_TOTAL].positive_at == 2
    assert manifest.markers[AFP].upper_normal == 20


# --- the published figures --------------------------------------------------------------------


def test_two_year_recurrence_matches_the_published_39_percent(
    large: Large, tables: dict[str, pd.DataFrame]
) -> None:
    summary, _ = large
    o, p = tables["outcomes.csv"], tables["patients.csv"]
    index = pd.to_datetime(p.set_index(PATIENT_ID)["index_date"]).reindex(o[PATIENT_ID])
    rec = (pd.to_datetime(o[RECURRENCE_DATE]) - index.to_numpy()).dt.days.to_numpy()
    fu = (pd.to_datetime(o[LAST_FOLLOWUP_DATE]) - index.to_numpy()).dt.days.to_numpy()
    event = ~np.isnan(rec)
    risk = _km_risk(np.where(event, rec, fu), event, 730)
    assert risk == pytest.approx(0.39, abs=0.05)
    assert summary.recurrence_2y_fraction == pytest.approx(risk, abs=1e-9)


def test_recurrence_keeps_rising_to_about_60_percent_at_five_years(large: Large) -> None:
    summary, _ = large
    assert summary.recurrence_5y_fraction == pytest.approx(0.60, abs=0.06)
    assert summary.recurrence_5y_fraction > summary.recurrence_2y_fraction + 0.1


def test_ctc_positivity_before_and_one_month_after_resection_matches_sun_2013(
    tables: dict[str, pd.DataFrame],
) -> None:
    ctc = _ctc_per_7_5(tables["measurements.csv"])
    visit = ctc["draw_id"].str[-3:]
    pre, month = ctc[visit == "v00"][VALUE], ctc[visit == "v01"][VALUE]
    assert (pre >= 2).mean() == pytest.approx(0.415, abs=0.06)
    assert (pre >= 1).mean() == pytest.approx(0.67, abs=0.08)
    assert (month >= 2).mean() == pytest.approx(0.28, abs=0.06)
    assert pre.mean() > month.mean()


def test_ctc_counts_are_overdispersed_with_many_zeros_and_a_long_tail(
    tables: dict[str, pd.DataFrame],
) -> None:
    counts = _ctc_per_7_5(tables["measurements.csv"])[VALUE]
    assert (counts == 0).mean() > 0.3
    assert counts.var() > 3 * counts.mean()
    assert counts.max() >= 30


def test_about_sixty_percent_of_tumours_secrete_afp(tables: dict[str, pd.DataFrame]) -> None:
    assert tables[TRUTH_FILE]["afp_secretor"].mean() == pytest.approx(0.60, abs=0.04)


def test_ctc_fails_to_fall_after_surgery_in_early_recurrence(
    tables: dict[str, pd.DataFrame],
) -> None:
    truth = tables[TRUTH_FILE].set_index(PATIENT_ID)
    ctc = _ctc_per_7_5(tables["measurements.csv"])
    month = ctc[ctc["draw_id"].str.endswith("v01")].set_index(PATIENT_ID)[VALUE]
    early = truth["recurrence_day_observed"] <= 365
    late_or_never = ~(truth["recurrence_day_observed"] <= 730)
    assert (
        month.reindex(truth.index[early]).mean()
        > 2 * month.reindex(truth.index[late_or_never]).mean()
    )


# --- markers lead imaging ---------------------------------------------------------------------


def test_markers_become_detectable_before_imaging_in_most_residual_patients(
    tables: dict[str, pd.DataFrame],
) -> None:
    truth = tables[TRUTH_FILE]
    residual = truth[truth["residual_disease"] == 1]
    assert len(residual) > 0.2 * LARGE
    assert (residual["marker_detectable_day"] < residual["visible_day"]).mean() > 0.8
    observed = truth["recurrence_day_observed"].notna()
    assert (
        truth.loc[observed, "recurrence_day_observed"] >= truth.loc[observed, "visible_day"]
    ).all()


@pytest.mark.parametrize("marker", [CTC_TOTAL, AFP])
def test_markers_are_higher_in_the_six_months_before_recurrence_than_without_recurrence(
    loaded: Cohort, marker: str
) -> None:
    m = loaded.measurements
    m = m[(m[MARKER] == marker) & (m["day"] > 60)]  # past the resected primary's clearance
    rec = m[PATIENT_ID].map(loaded.outcomes.set_index(PATIENT_ID)["recurrence_day"])
    before = m[(rec - m["day"]).between(0, 182)][VALUE]
    free = m[rec.isna()][VALUE]
    assert before.mean() > 2 * free.mean()


# --- arguments and failures -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_patients": 0}, "n_patients must be >= 1, got 0"),
        ({"n_patients": -3}, "n_patients must be >= 1, got -3"),
        ({"seed": -1}, "seed must be >= 0, got -1"),
    ],
)
def test_bad_arguments_raise_a_value_error(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        simulate_cohort(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kwargs", [{"n_patients": 2.5}, {"seed": "1"}, {"n_patients": True}])
def test_arguments_of_the_wrong_type_raise_a_type_error(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(TypeError, match="must be an integer"):
        simulate_cohort(tmp_path / "out", **kwargs)


def test_it_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("precious")
    with pytest.raises(ValueError, match="not written by the simulator; refusing to overwrite"):
        simulate_cohort(tmp_path, n_patients=10)
    assert (tmp_path / "notes.txt").read_text() == "precious"


def test_it_refuses_an_out_dir_that_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "cohort"
    target.write_text("x")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        simulate_cohort(target, n_patients=10)


def test_a_rerun_replaces_an_earlier_simulated_cohort(tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    simulate_cohort(out, n_patients=20, seed=1)
    summary = simulate_cohort(out, n_patients=30, seed=2)
    assert len(pd.read_csv(out / "patients.csv")) == 30 == summary.n_patients
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort"]


def test_an_empty_existing_folder_is_filled(tmp_path: Path) -> None:
    simulate_cohort(tmp_path, n_patients=10)
    assert (tmp_path / "patients.csv").is_file()


def test_a_crash_while_writing_leaves_no_half_cohort(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "cohort"
    simulate_cohort(out, n_patients=20, seed=1)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_write = simulate_module._write_file
    written: list[Path] = []

    def failing_write(path: Path, content: object) -> None:
        if len(written) == 2:
            raise OSError("disk full")
        written.append(path)
        real_write(path, content)

    monkeypatch.setattr(simulate_module, "_write_file", failing_write)
    with pytest.raises(OSError, match="disk full"):
        simulate_cohort(out, n_patients=30, seed=2)
    with pytest.raises(OSError, match="disk full"):
        simulate_cohort(tmp_path / "fresh", n_patients=30, seed=2)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"afp_secretor_prob": 1.5}, "afp_secretor_prob must be in \\[0, 1\\]"),
        ({"doubling_time_median_days": 0.0}, "doubling_time_median_days must be > 0"),
        ({"site_weights": (0.5, 0.5, 0.5)}, "site_weights must sum to 1"),
        ({"data_cut": "2010-01-01"}, "accrual_start <= accrual_end < data_cut"),
        ({"data_cut": "31/12/2024"}, "must be ISO YYYY-MM-DD"),
        ({"ctc_saturation": 1.0}, "must be below ctc_saturation"),
        ({"preop_draw_day": 3.0}, "preop_draw_day must be < 0"),
        ({"ctc_background": -0.1}, "ctc_background must be finite and >= 0"),
    ],
)
def test_invalid_simulation_params_raise_a_value_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SimulationParams(**kwargs)


def test_the_summary_reads_as_a_few_human_lines(large: Large) -> None:
    summary, out = large
    lines = summary.lines()
    assert str(out) in lines[0]
    assert any("recurrence at 2 / 5 years" in line for line in lines)
    assert summary.n_recurrences == pd.read_csv(out / "outcomes.csv")[RECURRENCE_DATE].notna().sum()
