"""Patient-grouped cross-validation: folds by patient, never by row."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cohort.vocabulary import EVENT, FOLD, PATIENT_ID
from training.cv import folds_from_file, iter_folds, patient_folds

PBCSEQ_FOLDS = Path(__file__).resolve().parents[2] / "cohort" / "datasets" / "pbcseq_folds.csv"


def landmark_rows(n_patients: int, rows_per_patient: int = 3, event_every: int = 3) -> pd.DataFrame:
    ids = np.repeat([f"p{i}" for i in range(n_patients)], rows_per_patient)
    events = np.repeat((np.arange(n_patients) % event_every == 0).astype(int), rows_per_patient)
    return pd.DataFrame({PATIENT_ID: ids, EVENT: events})


# --------------------------------------------------------------------------- patient_folds
def test_every_patient_gets_exactly_one_fold_numbered_from_one_to_k() -> None:
    table = landmark_rows(40)
    folds = patient_folds(table[PATIENT_ID], 4)
    assert folds.name == FOLD
    assert folds.index.name == PATIENT_ID
    assert sorted(folds.index) == sorted(table[PATIENT_ID].unique())
    assert sorted(folds.unique()) == [1, 2, 3, 4]
    assert folds.value_counts().tolist() == [10, 10, 10, 10]


def test_stratified_folds_keep_the_event_rate_of_each_fold_close_to_the_overall_rate() -> None:
    rng = np.random.default_rng(3)
    n = 300
    events = rng.uniform(size=n) < 0.3
    ids = np.repeat([f"p{i}" for i in range(n)], 2)
    folds = patient_folds(ids, 5, events=np.repeat(events, 2), seed=7)
    per_patient = pd.Series(events, index=[f"p{i}" for i in range(n)])
    rates = per_patient.groupby(folds.loc[per_patient.index]).mean()
    assert len(rates) == 5
    assert np.abs(rates - events.mean()).max() < 0.02


def test_a_patient_counts_as_an_event_when_any_of_its_rows_has_one() -> None:
    # p0..p4 have the event only on their last row; stratification must still see 5 events
    ids = np.repeat([f"p{i}" for i in range(10)], 2)
    events = np.array([0, 1] * 5 + [0, 0] * 5)
    folds = patient_folds(ids, 5, events=events, seed=0)
    event_patients = {f"p{i}" for i in range(5)}
    per_fold = [sum(p in event_patients for p in folds.index[folds == k]) for k in range(1, 6)]
    assert per_fold == [1, 1, 1, 1, 1]


def test_the_same_seed_gives_the_same_folds_and_another_seed_different_ones() -> None:
    ids = [f"p{i}" for i in range(60)]
    assert patient_folds(ids, 5, seed=1).equals(patient_folds(ids, 5, seed=1))
    assert not patient_folds(ids, 5, seed=1).equals(patient_folds(ids, 5, seed=2))


@pytest.mark.parametrize("n_splits", [1, 0, 11])
def test_n_splits_below_two_or_above_the_number_of_patients_is_refused(n_splits: int) -> None:
    with pytest.raises(ValueError, match=rf"n_splits={n_splits} must be between 2 and .*\(10\)"):
        patient_folds([f"p{i}" for i in range(10)], n_splits)


def test_a_non_integer_n_splits_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"n_splits must be an int, got 2\.5"):
        patient_folds(["a", "b", "c"], 2.5)  # type: ignore[arg-type]


def test_events_of_another_length_than_the_ids_are_refused() -> None:
    with pytest.raises(ValueError, match=r"events has 2 values but patient_ids has 3"):
        patient_folds(["a", "b", "c"], 2, events=[0, 1])


def test_events_that_are_not_zero_or_one_are_refused() -> None:
    with pytest.raises(ValueError, match=r"events must be 0/1, got 2"):
        patient_folds(["a", "b", "c", "d"], 2, events=[0, 1, 2, 0])


def test_stratifying_with_fewer_event_patients_than_folds_is_refused_with_a_fix() -> None:
    table = landmark_rows(20, event_every=10)  # 2 event patients, 5 folds
    with pytest.raises(ValueError, match=r"cannot stratify 5 folds.*pass events=None"):
        patient_folds(table[PATIENT_ID], 5, events=table[EVENT])


# --------------------------------------------------------------------------- iter_folds
@settings(max_examples=60, deadline=None)
@given(
    rows_per_patient=st.lists(st.integers(1, 6), min_size=2, max_size=40),
    n_splits=st.integers(2, 8),
    seed=st.integers(0, 2**16),
)
def test_grouped_folds_never_put_a_patient_in_both_train_and_test(
    rows_per_patient: list[int], n_splits: int, seed: int
) -> None:
    n_splits = min(n_splits, len(rows_per_patient))
    rng = np.random.default_rng(seed)
    ids = np.repeat(
        [f"id{rng.integers(10**6)}-{i}" for i in range(len(rows_per_patient))], rows_per_patient
    )
    table = pd.DataFrame({PATIENT_ID: rng.permutation(ids)})  # rows of a patient scattered
    folds = patient_folds(table[PATIENT_ID], n_splits, seed=seed)
    tested = np.zeros(len(table), dtype=int)
    for _, train, test in iter_folds(table, folds):
        train_ids = set(table[PATIENT_ID].iloc[train])
        test_ids = set(table[PATIENT_ID].iloc[test])
        assert not train_ids & test_ids
        assert len(train) + len(test) == len(table)
        tested[test] += 1
    assert (tested == 1).all()  # every row is tested exactly once


def test_iter_folds_yields_positional_indices_and_fold_numbers() -> None:
    table = pd.DataFrame({PATIENT_ID: ["a", "b", "a", "c"]}, index=[10, 20, 30, 40])
    folds = pd.Series([1, 2, 2], index=["a", "b", "c"], name=FOLD)
    got = [(k, train.tolist(), test.tolist()) for k, train, test in iter_folds(table, folds)]
    assert got == [(1, [1, 3], [0, 2]), (2, [0, 2], [1, 3])]


def test_integer_patient_ids_in_the_table_match_string_ids_in_the_folds() -> None:
    table = pd.DataFrame({PATIENT_ID: [1, 2, 3, 1]})
    folds = pd.Series([1, 2, 1], index=["1", "2", "3"])
    assert [k for k, _, _ in iter_folds(table, folds)] == [1, 2]


def test_a_fold_without_patients_in_the_table_is_skipped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = pd.DataFrame({PATIENT_ID: ["a", "b"]})
    folds = pd.Series([1, 2, 3], index=["a", "b", "gone"])
    with caplog.at_level(logging.INFO, logger="training.cv"):
        assert [k for k, _, _ in iter_folds(table, folds)] == [1, 2]
    assert "fold 3 has no patient in the table" in caplog.text


def test_patients_of_the_table_missing_from_the_folds_are_listed() -> None:
    table = pd.DataFrame({PATIENT_ID: ["a", "x", "y", "x"]})
    folds = pd.Series([1, 2], index=["a", "b"])
    with pytest.raises(ValueError, match=r"2 patient\(s\) in the table have no fold: x, y"):
        list(iter_folds(table, folds))


def test_a_table_without_patient_id_is_refused() -> None:
    with pytest.raises(ValueError, match=r"table has no 'patient_id' column"):
        list(iter_folds(pd.DataFrame({"id": ["a"]}), pd.Series([1], index=["a"])))


def test_folds_listing_a_patient_twice_are_refused() -> None:
    folds = pd.Series([1, 2], index=["a", "a"])
    with pytest.raises(ValueError, match=r"folds list patient\(s\) more than once: a"):
        list(iter_folds(pd.DataFrame({PATIENT_ID: ["a"]}), folds))


# --------------------------------------------------------------------------- folds_from_file
def test_the_pbcseq_folds_file_loads_312_patients_in_folds_one_to_five() -> None:
    folds = folds_from_file(PBCSEQ_FOLDS)
    assert len(folds) == 312
    assert folds.index.is_unique
    assert sorted(folds.unique()) == [1, 2, 3, 4, 5]
    assert all(isinstance(p, str) for p in folds.index)
    assert folds.loc["1"] == 1 and folds.loc["3"] == 4  # first rows of the file
    assert folds.value_counts().between(62, 63).all()


def test_folds_from_a_file_drive_iter_folds_over_a_landmark_table(tmp_path: Path) -> None:
    path = tmp_path / "folds.csv"
    path.write_text('"patient_id","fold"\n"007",1\n"8",2\n')
    folds = folds_from_file(path)
    assert folds.index.tolist() == ["007", "8"]  # leading zeros kept: ids are strings
    table = pd.DataFrame({PATIENT_ID: ["8", "007", "8"]})
    assert [(k, test.tolist()) for k, _, test in iter_folds(table, folds)] == [
        (1, [1]),
        (2, [0, 2]),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id,fold\n1,1\n", r"missing column\(s\) \['patient_id'\]"),
        ("patient_id,fold\n1,1\n1,2\n", r"patient\(s\) listed more than once: 1"),
        ("patient_id,fold\n1,0\n2,x\n", r"fold must be an integer >= 1, got 0, x"),
        ("patient_id,fold\n1,1.5\n", r"fold must be an integer >= 1, got 1\.5"),
    ],
)
def test_a_malformed_folds_file_is_refused_with_the_offending_values(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "folds.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        folds_from_file(path)
