from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohort.errors import CohortError
from cohort.load import load_cohort
from tests.conftest import MANIFEST

MakeCohort = Callable[..., Path]


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(CohortError) as info:
        load_cohort(folder)
    return [str(p) for p in info.value.problems]


def test_the_tiny_cohort_loads_with_days_since_index(make_cohort: MakeCohort) -> None:
    cohort = load_cohort(make_cohort())
    assert cohort.n_patients == 4
    m = cohort.measurements
    first = m[(m.patient_id == "p1") & (m.marker == "ctc_total")].iloc[0]
    assert first["day"] == -2.0  # pre-operative draws are kept, before index
    assert cohort.outcomes.set_index("patient_id").loc["p1", "recurrence_day"] == 182.0


def test_units_are_converted_to_the_canonical_unit_and_originals_kept(
    make_cohort: MakeCohort,
) -> None:
    m = load_cohort(make_cohort()).measurements
    row = m[(m.patient_id == "p1") & (m.day == 31)].set_index("marker")
    assert row.loc["ctc_total", "value"] == pytest.approx(3.0)  # 2 cells/5mL x 1.5
    assert row.loc["ctc_total", "unit"] == "cells/7.5mL"
    assert row.loc["afp", "value"] == pytest.approx(30 * 1.21)
    assert row.loc["afp", "original_unit"] == "IU/mL"
    assert row.loc["afp", "original_value"] == 30


def test_the_afp_iu_factor_is_configurable_in_the_manifest(make_cohort: MakeCohort) -> None:
    manifest = MANIFEST.replace(
        "upper_normal = 20", 'upper_normal = 20\nconversions = {"IU/mL" = 1.28}'
    )
    m = load_cohort(make_cohort(manifest=manifest)).measurements
    afp = m[(m.patient_id == "p1") & (m.marker == "afp") & (m.day == 31)].iloc[0]
    assert afp["value"] == pytest.approx(30 * 1.28)


def test_detection_limit_qualifiers_are_kept(make_cohort: MakeCohort) -> None:
    m = load_cohort(make_cohort()).measurements
    afp = m[(m.patient_id == "p1") & (m.marker == "afp")].iloc[0]
    assert afp["qualifier"] == "<" and afp["value"] == 2


def test_ids_stay_strings_even_when_they_look_like_numbers(make_cohort: MakeCohort) -> None:
    def numeric_ids(t: dict[str, pd.DataFrame]) -> None:
        for frame in t.values():
            frame["patient_id"] = frame["patient_id"].str.replace("p", "00")

    cohort = load_cohort(make_cohort(numeric_ids))
    assert set(cohort.patients.patient_id) == {"001", "002", "003", "004"}


def test_parquet_cohorts_load_to_the_same_content_as_csv(make_cohort: MakeCohort) -> None:
    csv = load_cohort(make_cohort())
    parquet = load_cohort(make_cohort(fmt="parquet"))
    pd.testing.assert_frame_equal(csv.measurements, parquet.measurements)
    assert csv.digest == parquet.digest


def test_missing_covariates_become_nan_not_errors(make_cohort: MakeCohort) -> None:
    patients = load_cohort(make_cohort()).patients.set_index("patient_id")
    assert np.isnan(patients.loc["p3", "age"])


def test_pbcseq_is_accepted(pbcseq_dir: Path) -> None:
    cohort = load_cohort(pbcseq_dir)
    assert cohort.n_patients == 312
    assert len(cohort.measurements[["patient_id", "date"]].drop_duplicates()) == 1945
    assert int(cohort.endpoint()["event"].sum()) == 140


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda t: t["measurements"].loc.__setitem__((0, "value"), "-1"),
            "measurements.csv, row 2, column 'value'.*>= 0.*'-1'",
        ),
        (
            lambda t: t["measurements"].loc.__setitem__((1, "value"), "abc"),
            "measurements.csv, row 3, column 'value'.*'abc'",
        ),
        (
            lambda t: t["measurements"].loc.__setitem__((2, "patient_id"), "ghost"),
            "measurements.csv, row 4, column 'patient_id': unknown patient 'ghost'",
        ),
        (
            lambda t: t["measurements"].loc.__setitem__((3, "marker"), "cea"),
            "measurements.csv, row 5, column 'marker': unknown marker 'cea'",
        ),
        (
            lambda t: t["measurements"].loc.__setitem__((4, "unit"), "cells/mL"),
            "measurements.csv, row 6, column 'unit': unknown unit 'cells/mL' for marker 'ctc_total'",
        ),
        (
            lambda t: t["measurements"].loc.__setitem__((5, "date"), "2024-02-30"),
            "measurements.csv, row 7, column 'date': not a date in ISO format.*'2024-02-30'",
        ),
        (
            lambda t: t["measurements"].loc.__setitem__((5, "date"), "01/02/2024"),
            "measurements.csv, row 7, column 'date': not a date in ISO format",
        ),
        (
            lambda t: t["measurements"].loc.__setitem__((8, "date"), "2024-07-01"),
            "measurements.csv, row 10, column 'date': draw on 2024-07-01 after death",
        ),
        (
            lambda t: t["measurements"].loc.__setitem__((0, "qualifier"), "<="),
            "measurements.csv, row 2, column 'qualifier': must be one of",
        ),
        (
            lambda t: t["patients"].loc.__setitem__((1, "patient_id"), "p1"),
            "patients.csv, row 3, column 'patient_id': duplicate patient_id 'p1' \\(first at row 2\\)",
        ),
        (
            lambda t: t["patients"].loc.__setitem__((0, "age"), "sixty"),
            "patients.csv, row 2, column 'age': not a number",
        ),
        (
            lambda t: t["patients"].loc.__setitem__((0, "microvascular_invasion"), "2"),
            "patients.csv, row 2, column 'microvascular_invasion': binary covariate must be 0 or 1",
        ),
        (
            lambda t: t["patients"].loc.__setitem__((0, "site_id"), ""),
            "patients.csv, row 2, column 'site_id': site_id is empty",
        ),
        (
            lambda t: t["outcomes"].loc.__setitem__((3, "last_followup_date"), "2024-01-01"),
            "outcomes.csv, row 5, column 'last_followup_date': follow-up ends .* before index",
        ),
        (
            lambda t: t["outcomes"].loc.__setitem__((0, "recurrence_date"), "2024-10-01"),
            "outcomes.csv, row 2, column 'recurrence_date': recurrence \\(2024-10-01\\) after last",
        ),
        (
            lambda t: t["imaging"].loc.__setitem__((0, "finding"), "relapse"),
            "imaging.csv, row 2, column 'finding': must be one of",
        ),
        (
            lambda t: t["imaging"].loc.__setitem__((1, "modality"), "XRAY"),
            "imaging.csv, row 3, column 'modality': must be one of",
        ),
    ],
)
def test_each_contract_violation_is_named_with_file_row_and_column(
    make_cohort: MakeCohort, edit: Callable[[dict[str, pd.DataFrame]], None], expected: str
) -> None:
    found = problems_of(make_cohort(edit))
    assert any(pd.Series([p]).str.contains(expected, regex=True).iloc[0] for p in found), found


def test_every_problem_is_listed_not_just_the_first(make_cohort: MakeCohort) -> None:
    def break_many(t: dict[str, pd.DataFrame]) -> None:
        t["measurements"].loc[0, "value"] = "-5"
        t["measurements"].loc[1, "marker"] = "nope"
        t["patients"].loc[2, "index_date"] = "yesterday"

    found = problems_of(make_cohort(break_many))
    assert len(found) >= 3
    files = {p.split(",")[0] for p in found}
    assert {"measurements.csv", "patients.csv"} <= files


def test_a_missing_required_file_or_column_is_reported(make_cohort: MakeCohort) -> None:
    folder = make_cohort(lambda t: t["measurements"].drop(columns="unit", inplace=True))
    (folder / "outcomes.csv").unlink()
    found = problems_of(folder)
    assert any("outcomes.csv: required file is missing" in p for p in found)
    assert any("measurements.csv, column 'unit': required column is missing" in p for p in found)


def test_a_patient_without_outcome_is_reported(make_cohort: MakeCohort) -> None:
    found = problems_of(make_cohort(lambda t: t.__setitem__("outcomes", t["outcomes"].iloc[:3])))
    assert any("patient 'p4' has no outcome row" in p for p in found)


def test_duplicate_measurements_are_refused(make_cohort: MakeCohort) -> None:
    def dup(t: dict[str, pd.DataFrame]) -> None:
        t["measurements"] = pd.concat([t["measurements"], t["measurements"].iloc[[5]]])

    found = problems_of(make_cohort(dup))
    assert any(
        "duplicate measurement of 'ctc_total' for patient 'p2' on 2024-02-01" in p for p in found
    )


def test_a_broken_manifest_names_the_bad_key(make_cohort: MakeCohort) -> None:
    bad = MANIFEST.replace('endpoint = "rfs"', 'endpoint = "dfs"').replace(
        'age = "numeric"', 'age = "number"'
    )
    found = problems_of(make_cohort(manifest=bad))
    assert any("cohort.toml, column 'endpoint'" in p for p in found)
    assert any("cohort.toml, column 'covariates.age'" in p for p in found)


def test_a_manifest_that_is_not_toml_is_refused(make_cohort: MakeCohort) -> None:
    found = problems_of(make_cohort(manifest="name = [unclosed"))
    assert any("not valid TOML" in p for p in found)


def test_a_missing_folder_is_refused() -> None:
    with pytest.raises(CohortError, match="no such folder"):
        load_cohort("/definitely/not/here")


def test_loading_never_mutates_files_or_returns_half_a_cohort(make_cohort: MakeCohort) -> None:
    folder = make_cohort(lambda t: t["measurements"].loc.__setitem__((0, "value"), "-1"))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(CohortError):
        load_cohort(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


@pytest.mark.parametrize("blank", [" ", "\t", "\u00a0"])
def test_a_marker_of_blanks_is_a_listed_problem_and_validate_exits_2(
    make_cohort: MakeCohort, blank: str
) -> None:
    import subprocess
    import sys

    def edit(t: dict[str, pd.DataFrame]) -> None:
        t["measurements"].loc[0, "marker"] = blank

    folder = make_cohort(edit=edit)
    [problem] = problems_of(folder)
    assert problem.startswith("measurements.csv, row 2, column 'marker': marker is empty")
    run = subprocess.run(
        [sys.executable, "-m", "ctcmon", "validate", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert "column 'marker': marker is empty" in run.stdout


def test_words_with_blanks_around_them_load_as_the_clean_words(make_cohort: MakeCohort) -> None:
    def edit(t: dict[str, pd.DataFrame]) -> None:
        t["measurements"]["marker"] = " " + t["measurements"]["marker"] + "\u00a0"
        t["measurements"]["unit"] = t["measurements"]["unit"] + "\t"

    m = load_cohort(make_cohort(edit=edit)).measurements
    assert set(m["marker"]) == {"ctc_total", "afp"}
    assert not m["original_unit"].str.contains(r"\s").any()


def test_a_fractional_cell_count_is_refused(make_cohort: MakeCohort) -> None:
    def edit(t: dict[str, pd.DataFrame]) -> None:
        ctc = t["measurements"].index[t["measurements"]["marker"] == "ctc_total"][0]
        t["measurements"].loc[ctc, "value"] = "2.5"

    [problem] = problems_of(make_cohort(edit=edit))
    assert "a count must be a whole number of cells" in problem and "(got 2.5)" in problem


def test_a_row_level_problem_names_the_row_s_patient(make_cohort: MakeCohort) -> None:
    tables: dict[str, pd.DataFrame] = {}

    def edit(t: dict[str, pd.DataFrame]) -> None:
        t["measurements"].loc[0, "value"] = "-5"  # a per-file rule (pandera)
        t["outcomes"].loc[0, "recurrence_date"] = "2024-10-01"  # a cross-file check
        tables.update(t)

    with pytest.raises(CohortError) as raised:
        load_cohort(make_cohort(edit))
    by_column = {p.column: p for p in raised.value.problems}
    for name, column in (("measurements", "value"), ("outcomes", "recurrence_date")):
        patient = str(tables[name].loc[0, "patient_id"])
        problem = by_column[column]
        assert problem.patient_id == patient
        assert str(problem).endswith(f"(patient {patient!r})")
        assert problem.as_dict()["patient_id"] == patient


RANGED = MANIFEST.replace(
    "[markers.ctc_total]",
    '[covariate_ranges]\nage = [18, 110]\n\n[covariate_levels]\nsex = ["F", "M"]\n\n'
    "[markers.ctc_total]",
)


@pytest.mark.parametrize(
    ("column", "cell", "expected"),
    [
        ("age", "-5", "age must be between 18 and 110 (cohort.toml [covariate_ranges]) (got '-5')"),
        ("age", "111", "age must be between 18 and 110"),
        ("sex", "X", "sex must be one of ['F', 'M'] (cohort.toml [covariate_levels]) (got 'X')"),
        ("sex", "m", "sex must be one of ['F', 'M']"),
    ],
)
def test_a_covariate_outside_the_manifest_s_range_or_levels_is_refused_naming_it(
    make_cohort: MakeCohort, column: str, cell: str, expected: str
) -> None:
    import subprocess
    import sys

    def edit(t: dict[str, pd.DataFrame]) -> None:
        t["patients"].loc[1, column] = cell

    folder = make_cohort(edit=edit, manifest=RANGED)
    [problem] = problems_of(folder)
    assert problem.startswith(f"patients.csv, row 3, column '{column}': {expected}"), problem
    assert problem.endswith("(patient 'p2')")
    run = subprocess.run(
        [sys.executable, "-m", "ctcmon", "validate", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert expected in run.stdout and expected in run.stderr  # the list, and the one-line head


def test_covariates_within_range_and_levels_and_missing_ones_load(make_cohort: MakeCohort) -> None:
    def edit(t: dict[str, pd.DataFrame]) -> None:
        t["patients"].loc[0, "age"] = "18"
        t["patients"].loc[1, "age"] = "110.0"
        t["patients"].loc[2, "sex"] = " F"  # trimmed, then a level

    patients = load_cohort(make_cohort(edit=edit, manifest=RANGED)).patients
    assert patients["age"].tolist()[:2] == [18.0, 110.0]
    assert patients["age"].isna().sum() == 1  # p3's age is missing: not a range problem
    assert patients["sex"].tolist()[2] == "F"


def test_a_non_number_is_one_problem_not_two(make_cohort: MakeCohort) -> None:
    folder = make_cohort(
        edit=lambda t: t["patients"].loc.__setitem__((0, "age"), "old"), manifest=RANGED
    )
    [problem] = problems_of(folder)
    assert "not a number (got 'old')" in problem
