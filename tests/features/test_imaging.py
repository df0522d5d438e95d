"""Scan statistics: known answers, no look-ahead, the confirming scan left out, one patient
alone as in the cohort, and a cohort without imaging left without them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from cohort.cohort import Cohort
from cohort.vocabulary import DAY, LANDMARK_DAY, PATIENT_ID
from features import LandmarkFeatures, LandmarkInput
from features.imaging import SCAN_STATS, scan_statistics

PATIENTS = [
    {PATIENT_ID: "p1", "age": 61.0, "sex": "M", "mvi": 1},
    {PATIENT_ID: "p2", "age": 55.0, "sex": "F", "mvi": 0},
    {PATIENT_ID: "p3", "age": 70.0, "sex": "M", "mvi": 0},
]
MEASUREMENTS = [("p1", 30, "afp", 5), ("p2", 30, "afp", 4), ("p3", 30, "afp", 3)]
OUTCOMES = [
    {PATIENT_ID: "p1", "followup": 400, "recurrence": 360},
    {PATIENT_ID: "p2", "followup": 400},
    {PATIENT_ID: "p3", "followup": 400},
]
# p1: negative at 90, indeterminate at 180, negative at 270, recurrence confirmed at 360;
# p2: a pre-operative scan only; p3: no scan.
SCANS = [
    ("p1", 90.0, "no_evidence"),
    ("p1", 180.0, "indeterminate"),
    ("p1", 270.0, "no_evidence"),
    ("p1", 360.0, "recurrence"),
    ("p2", -5.0, "indeterminate"),
]


def _scans(rows: list[tuple[str, float, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[PATIENT_ID, DAY, "finding"])


@pytest.fixture(scope="module")
def scanned(cohort_factory: Callable[..., Cohort]) -> Cohort:
    return replace(cohort_factory(PATIENTS, MEASUREMENTS, OUTCOMES), imaging=_scans(SCANS))


def _features(cohort: Cohort, pairs: list[tuple[str, float]]) -> pd.DataFrame:
    points = pd.DataFrame(pairs, columns=[PATIENT_ID, LANDMARK_DAY])
    X = LandmarkInput.from_cohort(cohort, points)
    return LandmarkFeatures.from_manifest(cohort.manifest).fit_transform(X).set_index(PATIENT_ID)


def test_known_answers_from_the_scans_read_up_to_s(scanned: Cohort) -> None:
    got = _features(scanned, [("p1", 200.0), ("p2", 200.0), ("p3", 200.0)])
    p1, p2, p3 = (got.loc[p, list(SCAN_STATS)].to_numpy(dtype=float) for p in ("p1", "p2", "p3"))
    np.testing.assert_array_equal(p1, [20.0, 1.0, 1.0, 20.0])
    # the pre-operative scan describes the resected tumour: no post-index scan yet
    np.testing.assert_array_equal(p2, [np.nan, np.nan, 0.0, np.nan])
    np.testing.assert_array_equal(p3, [np.nan, np.nan, 0.0, np.nan])


def test_a_scan_dated_after_s_changes_nothing_and_one_on_s_counts(scanned: Cohort) -> None:
    got = _features(scanned, [("p1", 179.0), ("p1", 180.0), ("p1", 300.0)])
    np.testing.assert_array_equal(
        got[list(SCAN_STATS)].to_numpy(dtype=float),
        [[89.0, 0.0, 0.0, np.nan], [0.0, 1.0, 1.0, 0.0], [30.0, 0.0, 1.0, 120.0]],
    )


def test_the_scan_that_confirmed_the_recurrence_is_not_a_predictor(scanned: Cohort) -> None:
    got = _features(scanned, [("p1", 360.0)])
    # the last scan seen is the negative one of day 270, not day 360's confirmation
    assert got["scan_days_since_last"].iloc[0] == 90.0


def test_one_patient_alone_equals_the_cohort(scanned: Cohort) -> None:
    s = _scans(SCANS)
    codes = pd.Index(["p1", "p2", "p3"]).get_indexer(s[PATIENT_ID])
    keep = (s["finding"] != "recurrence").to_numpy()
    ind = (s["finding"] == "indeterminate").to_numpy()
    days = np.array([0.0, 90.0, 100.0, 180.0, 270.0, 500.0])
    rows = np.zeros(len(days), dtype=np.int64)
    cohort = scan_statistics(codes[keep], s[DAY].to_numpy()[keep], ind[keep], rows, days)
    mine = (s[PATIENT_ID] == "p1").to_numpy() & keep
    alone = scan_statistics(
        np.zeros(mine.sum(), dtype=np.int64), s[DAY].to_numpy()[mine], ind[mine], rows, days
    )
    for name in SCAN_STATS:
        np.testing.assert_array_equal(cohort[name], alone[name])


def test_a_cohort_without_imaging_gets_no_scan_features(
    cohort_factory: Callable[..., Cohort],
) -> None:
    plain = cohort_factory(PATIENTS, MEASUREMENTS, OUTCOMES)
    names = set(_features(plain, [("p1", 200.0)]).columns)
    assert not names & set(SCAN_STATS)
    off = LandmarkFeatures.from_manifest(plain.manifest, imaging=False)
    assert not off.imaging


def test_an_unknown_finding_is_refused(scanned: Cohort) -> None:
    with pytest.raises(ValueError, match="finding must be one of"):
        LandmarkInput(
            scanned.patients,
            scanned.measurements,
            pd.DataFrame({PATIENT_ID: ["p1"], LANDMARK_DAY: [10.0]}),
            _scans([("p1", 5.0, "tumour?")]),
        )
