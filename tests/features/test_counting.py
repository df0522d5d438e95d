"""Counting-process table: known intervals, agreement with lifelines, validation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxTimeVaryingFitter
from lifelines.utils import add_covariate_to_timeline, to_long_format

from cohort.cohort import Cohort
from cohort.vocabulary import DAY, EVENT, MARKER, PATIENT_ID, START, STOP, TIME, VALUE
from features import counting_process_table

PATIENTS = [
    {PATIENT_ID: "p1", "age": 61.0, "sex": "M", "mvi": 1},
    {PATIENT_ID: "p2", "age": 55.0, "sex": "F", "mvi": 0},
    {PATIENT_ID: "p3", "age": 70.0, "sex": "M", "mvi": 0},
]
MEASUREMENTS = [
    ("p1", -10, "ctc_total", 15),
    ("p1", 0, "ctc_total", 0),
    ("p1", 30, "ctc_total", 1),
    ("p1", 30, "afp", 10),
    ("p1", 60, "afp", 40),
    ("p1", 250, "ctc_total", 9),  # on the event day: no split, never used
    ("p2", 45, "ctc_total", 2),
    ("p3", -3, "afp", 7),
]
OUTCOMES = [
    {PATIENT_ID: "p1", "followup": 400, "recurrence": 250},
    {PATIENT_ID: "p2", "followup": 120},
    {PATIENT_ID: "p3", "followup": 0},
]


@pytest.fixture(scope="session")
def tiny(cohort_factory: Callable[..., Cohort]) -> Cohort:
    return cohort_factory(PATIENTS, MEASUREMENTS, OUTCOMES)


def test_follow_up_is_split_at_each_post_index_draw_with_values_carried_forward(
    tiny: Cohort,
) -> None:
    got = counting_process_table(tiny)
    nan = np.nan
    expected = pd.DataFrame(
        {
            PATIENT_ID: ["p1", "p1", "p1", "p2", "p2"],
            START: [0.0, 30.0, 60.0, 0.0, 45.0],
            STOP: [30.0, 60.0, 250.0, 45.0, 120.0],
            EVENT: [0, 0, 1, 0, 0],
            "ctc_total_last": [0.0, 1.0, 1.0, nan, 2.0],
            "afp_last": [nan, 10.0, 40.0, nan, nan],
        }
    )
    pd.testing.assert_frame_equal(got[expected.columns], expected)


def test_static_covariates_repeat_on_every_interval(tiny: Cohort) -> None:
    got = counting_process_table(tiny)
    assert got["age"].tolist() == [61.0, 61.0, 61.0, 55.0, 55.0]
    assert got[["sex_F", "sex_M", "mvi"]].iloc[-1].tolist() == [1.0, 0.0, 0.0]


def test_a_patient_without_follow_up_after_day_zero_has_no_interval(tiny: Cohort) -> None:
    assert "p3" not in set(counting_process_table(tiny)[PATIENT_ID])


def test_a_marker_subset_splits_only_at_its_own_draws(tiny: Cohort) -> None:
    got = counting_process_table(tiny, markers=["afp"])
    assert got[[START, STOP]].values.tolist() == [[0, 30], [30, 60], [60, 250], [0, 120]]
    assert "ctc_total_last" not in got.columns


def test_the_endpoint_can_be_chosen(tiny: Cohort) -> None:
    got = counting_process_table(tiny, endpoint="os")
    assert got.groupby(PATIENT_ID)[STOP].max().to_dict() == {"p1": 400.0, "p2": 120.0}
    assert got[EVENT].sum() == 0


def test_the_manifest_horizon_censors_follow_up(cohort_factory: Callable[..., Cohort]) -> None:
    cohort = cohort_factory(PATIENTS, MEASUREMENTS, OUTCOMES, horizon_days=50)
    got = counting_process_table(cohort)
    assert got[[PATIENT_ID, START, STOP, EVENT]].values.tolist() == [
        ["p1", 0.0, 30.0, 0],
        ["p1", 30.0, 50.0, 0],
        ["p2", 0.0, 45.0, 0],
        ["p2", 45.0, 50.0, 0],
    ]


def test_the_callers_frames_are_left_untouched(tiny: Cohort) -> None:
    before = [f.copy(deep=True) for f in (tiny.patients, tiny.measurements, tiny.outcomes)]
    counting_process_table(tiny)
    after = (tiny.patients, tiny.measurements, tiny.outcomes)
    for got, expected in zip(after, before, strict=True):
        pd.testing.assert_frame_equal(got, expected)


# ---------------------------------------------------------------- against lifelines


def random_cohort(factory: Callable[..., Cohort], n: int, seed: int) -> Cohort:
    """Continuous values, so consecutive draws always differ: lifelines drops unchanged rows."""
    rng = np.random.default_rng(seed)
    patients = [
        {PATIENT_ID: f"r{i:03d}", "age": 40.0 + i % 30, "sex": "MF"[i % 2], "mvi": i % 2}
        for i in range(n)
    ]
    draws: list[tuple[Any, ...]] = []
    outcomes = []
    for i, p in enumerate(patients):
        follow = float(rng.integers(20, 900))
        event = {"recurrence": follow} if i % 3 == 0 else {}
        outcomes.append({PATIENT_ID: p[PATIENT_ID], "followup": follow, **event})
        for marker in ("ctc_total", "afp"):
            days = np.unique(rng.integers(-30, 1000, size=rng.integers(0, 8)))
            draws += [(p[PATIENT_ID], float(d), marker, rng.gamma(2.0, 5.0)) for d in days]
    return factory(patients, draws, outcomes)


def lifelines_table(cohort: Cohort) -> pd.DataFrame:
    """The same table built with lifelines, one marker at a time, as its docs suggest."""
    ep = cohort.endpoint()
    base = ep[ep[TIME] > 0].reset_index(drop=True)
    table = to_long_format(base, duration_col=TIME)
    for marker in cohort.manifest.markers:
        cv = cohort.measurements.loc[
            cohort.measurements[MARKER] == marker, [PATIENT_ID, DAY, VALUE]
        ]
        # pre-operative values hold from day 0: lifelines' timeline starts there
        cv = cv.assign(**{DAY: cv[DAY].clip(lower=0)}).drop_duplicates(
            [PATIENT_ID, DAY], keep="last"
        )
        cv = cv.rename(columns={VALUE: f"{marker}_last"})
        table = add_covariate_to_timeline(table, cv, PATIENT_ID, DAY, EVENT)
    return table


def test_agrees_with_lifelines_add_covariate_to_timeline(
    cohort_factory: Callable[..., Cohort],
) -> None:
    cohort = random_cohort(cohort_factory, n=40, seed=7)
    cols = [PATIENT_ID, START, STOP, EVENT, "ctc_total_last", "afp_last"]
    ours = counting_process_table(cohort)[cols]
    theirs = lifelines_table(cohort)[cols].astype({EVENT: int, START: float})
    theirs = theirs.sort_values([PATIENT_ID, START]).reset_index(drop=True)
    assert len(ours) > 100
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)


def test_the_table_fits_a_time_varying_cox_model(cohort_factory: Callable[..., Cohort]) -> None:
    table = counting_process_table(random_cohort(cohort_factory, n=60, seed=3))
    data = table[[PATIENT_ID, START, STOP, EVENT, "age", "mvi"]].assign(
        log_ctc=np.log1p(table["ctc_total_last"].fillna(0.0))
    )
    fitter = CoxTimeVaryingFitter(penalizer=0.1).fit(
        data, id_col=PATIENT_ID, event_col=EVENT, start_col=START, stop_col=STOP
    )
    assert np.isfinite(fitter.params_).all()


# ---------------------------------------------------------------- validation


def test_markers_must_be_a_list_of_codes(tiny: Cohort) -> None:
    with pytest.raises(TypeError, match="markers must be a list of marker codes, got 'afp'"):
        counting_process_table(tiny, markers="afp")


def test_undeclared_markers_are_refused(tiny: Cohort) -> None:
    with pytest.raises(ValueError, match=r"markers \['pivka_ii'\] are not declared"):
        counting_process_table(tiny, markers=["afp", "pivka_ii"])


def test_an_unknown_endpoint_is_refused(tiny: Cohort) -> None:
    with pytest.raises(ValueError, match=r"endpoint must be one of .* got 'dfs'"):
        counting_process_table(tiny, endpoint="dfs")
