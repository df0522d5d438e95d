"""Landmark features: known answers, the at-risk rule, no look-ahead, conventions, validation."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import (
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
)

from cohort.cohort import Cohort
from cohort.vocabulary import (
    DAY,
    EVENT,
    LANDMARK_DAY,
    MARKER,
    PATIENT_ID,
    QUALIFIER,
    RESIDUAL_TIME,
    TIME,
    VALUE,
)
from features import (
    EVENT_FULL,
    RESIDUAL_TIME_FULL,
    LandmarkFeatures,
    LandmarkInput,
    build_landmark_table,
    default_landmarks,
)

LN2 = math.log(2.0)

PATIENTS = [
    {PATIENT_ID: "p1", "age": 61.0, "sex": "M", "mvi": 1},
    {PATIENT_ID: "p2", "age": 55.0, "sex": "F", "mvi": 0},
    {PATIENT_ID: "p3", "age": 70.0, "sex": "M", "mvi": 0},
]
# p1's CTC counts 0, 1, 3, 7 on days 0..90 make log1p rise by exactly ln 2 per 30 days;
# its AFP quadruples every 30 days from day 30 (doubling time 15 days).
MEASUREMENTS = [
    ("p1", -10, "ctc_total", 15),
    ("p1", 0, "ctc_total", 0),
    ("p1", 30, "ctc_total", 1),
    ("p1", 60, "ctc_total", 3),
    ("p1", 90, "ctc_total", 7),
    ("p1", 200, "ctc_total", 1),
    ("p1", -10, "afp", 400),
    ("p1", 30, "afp", 10),
    ("p1", 60, "afp", 40),
    ("p1", 90, "afp", 160),
    ("p2", 30, "ctc_total", 2, "<"),
    ("p2", 60, "ctc_total", 4),
    ("p3", 60, "afp", 5),
]
OUTCOMES = [
    {PATIENT_ID: "p1", "followup": 400, "recurrence": 250},
    {PATIENT_ID: "p2", "followup": 120},
    {PATIENT_ID: "p3", "followup": 300, "death": 50},
]


@pytest.fixture(scope="session")
def tiny(cohort_factory: Callable[..., Cohort]) -> Cohort:
    return cohort_factory(PATIENTS, MEASUREMENTS, OUTCOMES)


def features_at(cohort: Cohort, pairs: list[tuple[str, float]], **params: Any) -> pd.DataFrame:
    points = pd.DataFrame(pairs, columns=[PATIENT_ID, LANDMARK_DAY])
    X = LandmarkInput.from_cohort(cohort, points)
    return LandmarkFeatures.from_manifest(cohort.manifest, **params).fit_transform(X)


def row(frame: pd.DataFrame, i: int = 0) -> dict[str, Any]:
    return {str(k): v for k, v in frame.iloc[i].items()}


# ---------------------------------------------------------------- known answers


def test_level_features_at_a_draw_day_include_that_draw(tiny: Cohort) -> None:
    got = row(features_at(tiny, [("p1", 90.0)]))
    assert got["ctc_total_last"] == 7
    assert got["ctc_total_log_last"] == pytest.approx(math.log(8))
    assert got["ctc_total_days_since_last"] == 0
    assert got["ctc_total_n_draws"] == 5  # the pre-operative draw counts
    assert got["ctc_total_pre"] == 15
    assert got["ctc_total_max"] == 7  # the pre-operative 15 is not post-index
    assert got["ctc_total_change_post"] == pytest.approx(math.log(8) - math.log(1))


def test_log_slope_is_ln2_per_30_days_for_counts_doubling_in_log1p(tiny: Cohort) -> None:
    assert row(features_at(tiny, [("p1", 90.0)]))["ctc_total_log_slope"] == pytest.approx(LN2)


def test_log_slope_uses_only_the_last_slope_draws_draws(tiny: Cohort) -> None:
    got = row(features_at(tiny, [("p1", 200.0)], slope_draws=2))
    # (90, 7) -> (200, 1): log1p falls from ln 8 to ln 2 over 110 days
    assert got["ctc_total_log_slope"] == pytest.approx((math.log(2) - math.log(8)) * 30 / 110)


def test_log_slope_matches_least_squares_over_four_irregular_draws(tiny: Cohort) -> None:
    days = np.array([30.0, 60.0, 90.0, 200.0])
    expected = np.polyfit(days / 30, np.log1p([1.0, 3.0, 7.0, 1.0]), 1)[0]
    assert row(features_at(tiny, [("p1", 200.0)]))["ctc_total_log_slope"] == pytest.approx(expected)


def test_log_slope_is_zero_with_one_draw_and_nan_with_none(tiny: Cohort) -> None:
    got = features_at(tiny, [("p3", 60.0), ("p3", 30.0)])
    assert got["afp_log_slope"].iloc[0] == 0.0
    assert np.isnan(got["afp_log_slope"].iloc[1])


def test_log_slope_is_zero_when_all_draws_share_one_day(
    cohort_factory: Callable[..., Cohort],
) -> None:
    cohort = cohort_factory(
        PATIENTS[:1], [("p1", 10, "afp", 3), ("p1", 10, "afp", 30)], OUTCOMES[:1]
    )
    assert row(features_at(cohort, [("p1", 20.0)]))["afp_log_slope"] == 0.0


def test_days_since_last_counts_from_the_last_draw_before_the_landmark(tiny: Cohort) -> None:
    got = row(features_at(tiny, [("p1", 100.0)]))
    assert got["ctc_total_days_since_last"] == 10
    assert got[LANDMARK_DAY] == 100


def test_positives_count_and_consecutive_run_follow_the_cut_off(tiny: Cohort) -> None:
    at_90, at_200 = (row(features_at(tiny, [("p1", s)])) for s in (90.0, 200.0))
    assert (at_90["ctc_total_n_positive"], at_90["ctc_total_consec_positive"]) == (3, 2)
    assert (at_200["ctc_total_n_positive"], at_200["ctc_total_consec_positive"]) == (3, 0)


def test_consecutive_run_spans_pre_operative_and_post_index_draws(
    cohort_factory: Callable[..., Cohort],
) -> None:
    draws = [("p1", -5, "ctc_total", 3), ("p1", 30, "ctc_total", 2), ("p1", 60, "ctc_total", 1)]
    cohort = cohort_factory(PATIENTS[:1], draws, OUTCOMES[:1])
    got = features_at(cohort, [("p1", 30.0), ("p1", 60.0)])
    assert got["ctc_total_consec_positive"].tolist() == [2, 0]
    assert got["ctc_total_n_positive"].tolist() == [2, 2]


def test_at_day_zero_the_slope_runs_from_the_pre_operative_draw(tiny: Cohort) -> None:
    got = row(features_at(tiny, [("p1", 0.0)]))
    # day -10: 15 (positive), day 0: 0 (negative)
    assert (got["ctc_total_n_positive"], got["ctc_total_consec_positive"]) == (1, 0)
    assert got["ctc_total_log_slope"] == pytest.approx((0 - math.log(16)) * 30 / 10)


def test_a_below_detection_limit_value_is_never_positive(tiny: Cohort) -> None:
    got = features_at(tiny, [("p2", 30.0), ("p2", 60.0)])
    assert got["ctc_total_n_positive"].tolist() == [0, 1]
    assert got["ctc_total_consec_positive"].tolist() == [0, 1]


def test_afp_doubling_time_uses_the_last_two_draws_when_rising(tiny: Cohort) -> None:
    got = features_at(tiny, [("p1", 30.0), ("p1", 60.0), ("p1", 95.0)])
    # 10 -> 40 in 30 days: DT = 30 ln2 / ln 4 = 15; falling 400 -> 10 has none
    assert np.isnan(got["afp_doubling_days"].iloc[0])
    assert got["afp_doubling_days"].iloc[1:].tolist() == pytest.approx([15.0, 15.0])


def test_doubling_time_stays_finite_from_a_vanishingly_small_value(
    cohort_factory: Callable[..., Cohort],
) -> None:
    draws = [("p1", 0, "afp", 1e-300), ("p1", 30, "afp", 1.0)]
    cohort = cohort_factory(PATIENTS[:1], draws, OUTCOMES[:1])
    got = row(features_at(cohort, [("p1", 30.0)]))["afp_doubling_days"]
    assert got == pytest.approx(30 * LN2 / (300 * math.log(10)))


def test_afp_log_velocity_is_finite_when_falling(tiny: Cohort) -> None:
    got = features_at(tiny, [("p1", 30.0), ("p1", 90.0)])
    assert got["afp_log_velocity"].iloc[0] == pytest.approx(
        (math.log(11) - math.log(401)) * 30 / 40
    )
    assert got["afp_log_velocity"].iloc[1] == pytest.approx(math.log(161) - math.log(41))


def test_afp_normalised_reads_the_last_value_against_the_upper_normal(tiny: Cohort) -> None:
    got = features_at(tiny, [("p1", 0.0), ("p1", 30.0), ("p1", 60.0), ("p2", 60.0)])
    assert got["afp_normalised"].iloc[:3].tolist() == [0.0, 1.0, 0.0]
    assert np.isnan(got["afp_normalised"].iloc[3])


def test_rise_from_the_own_nadir_and_baseline_use_post_index_draws_up_to_s(tiny: Cohort) -> None:
    got = row(features_at(tiny, [("p1", 90.0)]))
    # CTC 0, 1, 3, 7 on days 0..90 (the pre-operative 15 is no nadir): lowest 0 on day 0
    assert got["ctc_total_rise_nadir"] == pytest.approx(math.log(8))
    assert got["ctc_total_days_since_nadir"] == 90
    mean_before = (0 + math.log(2) + math.log(4)) / 3
    assert got["ctc_total_rise_baseline"] == pytest.approx(math.log(8) - mean_before)
    later = row(features_at(tiny, [("p1", 250.0)]))  # day 200's 1 is above the nadir 0
    assert later["ctc_total_rise_nadir"] == pytest.approx(math.log(2))
    assert later["ctc_total_days_since_nadir"] == 250
    early = row(features_at(tiny, [("p1", 10.0)]))  # day 0's count alone: no earlier draw
    assert early["ctc_total_rise_nadir"] == 0 and early["ctc_total_days_since_nadir"] == 10
    assert np.isnan(early["ctc_total_rise_baseline"]) and np.isnan(early["afp_rise_nadir"])


def test_change_post_and_max_are_undefined_before_the_first_post_index_draw(tiny: Cohort) -> None:
    got = row(features_at(tiny, [("p1", 10.0)]))
    assert got["afp_pre"] == 400 and got["afp_last"] == 400
    assert np.isnan(got["afp_change_post"]) and np.isnan(got["afp_max"])


def test_a_patient_without_draws_yet_gets_zero_counts_and_nan_values(tiny: Cohort) -> None:
    got = row(features_at(tiny, [("p2", 10.0)]))
    assert got["ctc_total_n_draws"] == 0 and got["ctc_total_n_positive"] == 0
    assert got["ctc_total_consec_positive"] == 0
    stats = ("last", "log_last", "days_since_last", "log_slope", "change_post", "max", "pre")
    for stat in (*stats, "rise_nadir", "days_since_nadir", "rise_baseline"):
        assert np.isnan(got[f"ctc_total_{stat}"]), stat


def test_markers_without_cut_offs_get_only_the_base_statistics(tiny: Cohort) -> None:
    names = set(LandmarkFeatures.from_manifest(tiny.manifest).fit(_input(tiny)).feature_names_out_)
    assert {"ctc_total_n_positive", "afp_doubling_days", "afp_normalised"} <= names
    assert not {"afp_n_positive", "ctc_total_doubling_days", "ctc_total_normalised"} & names


# ---------------------------------------------------------------- output shape


def _input(cohort: Cohort, days: tuple[float, ...] = (30.0, 90.0)) -> LandmarkInput:
    return LandmarkInput.from_cohort(cohort, list(days))


def test_transform_returns_one_row_per_point_in_the_points_order(tiny: Cohort) -> None:
    pairs = [("p3", 90.0), ("p1", 30.0), ("p3", 10.0), ("p1", 30.0)]
    got = features_at(tiny, pairs)
    assert list(zip(got[PATIENT_ID], got[LANDMARK_DAY], strict=True)) == pairs


def test_columns_are_patient_id_then_the_feature_names_out(tiny: Cohort) -> None:
    est = LandmarkFeatures.from_manifest(tiny.manifest).fit(_input(tiny))
    got = est.transform(_input(tiny))
    assert list(got.columns) == [PATIENT_ID, *est.get_feature_names_out()]
    assert est.feature_names_out_[0] == LANDMARK_DAY
    assert all(pd.api.types.is_float_dtype(got[c]) for c in est.feature_names_out_)


def test_landmark_day_can_be_left_out_of_the_features_but_stays_a_column(tiny: Cohort) -> None:
    est = LandmarkFeatures.from_manifest(tiny.manifest, include_landmark_day=False)
    got = est.fit_transform(_input(tiny))
    assert LANDMARK_DAY not in est.feature_names_out_
    assert list(got.columns[:2]) == [PATIENT_ID, LANDMARK_DAY]


def test_without_a_marker_list_fit_takes_every_marker_seen_sorted(tiny: Cohort) -> None:
    est = LandmarkFeatures(covariates={}).fit(_input(tiny))
    assert list(est.markers_) == ["afp", "ctc_total"]
    assert "ctc_total_n_positive" not in est.feature_names_out_


def test_without_covariate_types_fit_infers_them_from_the_patients_frame(tiny: Cohort) -> None:
    est = LandmarkFeatures().fit(_input(tiny))
    assert est.covariates_ == {"age": "numeric", "sex": "categorical", "mvi": "numeric"}


def test_an_empty_set_of_points_gives_an_empty_frame_with_every_column(tiny: Cohort) -> None:
    est = LandmarkFeatures.from_manifest(tiny.manifest).fit(_input(tiny))
    got = est.transform(LandmarkInput.from_cohort(tiny, _points([])))
    assert got.empty and list(got.columns) == [PATIENT_ID, *est.feature_names_out_]


def _points(pairs: list[tuple[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=[PATIENT_ID, LANDMARK_DAY])


# ---------------------------------------------------------------- covariates


def test_categorical_levels_are_fixed_at_fit_and_unseen_levels_encode_as_zeros(
    tiny: Cohort,
) -> None:
    est = LandmarkFeatures.from_manifest(tiny.manifest).fit(_input(tiny))
    other = tiny.patients.assign(sex=pd.Series(["X", pd.NA, "F"], dtype=object))
    got = est.transform(
        LandmarkInput(other, tiny.measurements, _points([("p1", 30), ("p2", 30), ("p3", 30)]))
    )
    assert list(got.columns) == [PATIENT_ID, *est.feature_names_out_]
    assert got["sex_F"].tolist() == [0.0, 0.0, 1.0]
    assert got["sex_M"].tolist() == [0.0, 0.0, 0.0]


def test_numeric_and_binary_covariates_pass_through_as_floats(tiny: Cohort) -> None:
    got = features_at(tiny, [("p2", 30.0)])
    assert (got["age"].iloc[0], got["mvi"].iloc[0]) == (55.0, 0.0)


# ---------------------------------------------------------------- targets and the at-risk rule


def test_only_patients_with_endpoint_after_the_landmark_are_at_risk(tiny: Cohort) -> None:
    table = build_landmark_table(tiny, landmarks=[30, 90, 120, 250], horizon_days=100)
    got = sorted(zip(table[PATIENT_ID], table[LANDMARK_DAY], strict=True))
    # p1 recurs at 250 (at risk at 30, 90, 120; not at 250), p2 censored at 120,
    # p3 dies at 50
    assert got == [("p1", 30), ("p1", 90), ("p1", 120), ("p2", 30), ("p2", 90), ("p3", 30)]


def test_targets_truncate_at_the_horizon_and_keep_the_full_follow_up(tiny: Cohort) -> None:
    table = build_landmark_table(tiny, landmarks=[30, 90, 120, 250], horizon_days=100)
    got = table.set_index([PATIENT_ID, LANDMARK_DAY])
    expected = {  # residual_time, event, residual_time_full, event_full
        ("p1", 30): (100, 0, 220, 1),
        ("p1", 90): (100, 0, 160, 1),
        ("p1", 120): (100, 0, 130, 1),
        ("p2", 30): (90, 0, 90, 0),
        ("p2", 90): (30, 0, 30, 0),
        ("p3", 30): (20, 1, 20, 1),  # death counts for RFS
    }
    cols = [RESIDUAL_TIME, EVENT, RESIDUAL_TIME_FULL, EVENT_FULL]
    assert {k: tuple(got.loc[k, cols]) for k in expected} == expected


def test_an_event_exactly_at_the_horizon_counts(tiny: Cohort) -> None:
    table = build_landmark_table(tiny, landmarks=[150], horizon_days=100)
    assert table[[RESIDUAL_TIME, EVENT]].values.tolist() == [[100, 1]]


def test_without_a_horizon_nothing_is_truncated(tiny: Cohort) -> None:
    table = build_landmark_table(tiny, landmarks=[30])
    assert table[RESIDUAL_TIME].tolist() == table[RESIDUAL_TIME_FULL].tolist() == [220, 90, 20]
    assert table[EVENT].tolist() == table[EVENT_FULL].tolist() == [1, 0, 1]


def test_the_manifest_horizon_is_the_default_window(cohort_factory: Callable[..., Cohort]) -> None:
    cohort = cohort_factory(PATIENTS, MEASUREMENTS, OUTCOMES, horizon_days=50)
    table = build_landmark_table(cohort, landmarks=[30])
    assert table[RESIDUAL_TIME].tolist() == [50, 50, 20]


def test_an_endpoint_can_be_named_or_given_as_a_frame(tiny: Cohort) -> None:
    os_table = build_landmark_table(tiny, landmarks=[30], endpoint="os")
    assert os_table[EVENT].tolist() == [0, 0, 1]
    frame = pd.DataFrame({PATIENT_ID: ["p1", "p2"], TIME: [40.0, 20.0], EVENT: [1, 0]})
    given_table = build_landmark_table(tiny, landmarks=[30], endpoint=frame)
    assert given_table[[PATIENT_ID, RESIDUAL_TIME, EVENT]].values.tolist() == [["p1", 10.0, 1]]


def test_table_features_equal_the_transformer_output(tiny: Cohort) -> None:
    table = build_landmark_table(tiny, landmarks=[30, 90])
    direct = features_at(tiny, list(zip(table[PATIENT_ID], table[LANDMARK_DAY], strict=True)))
    pd.testing.assert_frame_equal(table[direct.columns], direct)


def test_a_fitted_featurizer_is_used_as_is_and_an_unfitted_one_is_cloned(tiny: Cohort) -> None:
    fitted = LandmarkFeatures.from_manifest(tiny.manifest, include_landmark_day=False)
    fitted.fit(LandmarkInput(tiny.patients.assign(sex="F"), tiny.measurements, _points([])))
    table = build_landmark_table(tiny, landmarks=[30], featurizer=fitted)
    assert "sex_M" not in table.columns
    unfitted = LandmarkFeatures(slope_draws=3)
    build_landmark_table(tiny, landmarks=[30], featurizer=unfitted)
    assert not hasattr(unfitted, "feature_names_out_")


# ---------------------------------------------------------------- default landmarks


def test_default_landmarks_follow_the_draw_schedule_then_its_interval(
    cohort_factory: Callable[..., Cohort],
) -> None:
    draws = {"schedule_days": [0, 30, 90, 180], "then_every_days": 180}
    cohort = cohort_factory(PATIENTS, MEASUREMENTS, OUTCOMES, draws=draws)
    assert default_landmarks(cohort, max_day=600) == [0, 30, 90, 180, 360, 540]


def test_default_landmarks_fall_back_to_imaging_then_yearly(
    cohort_factory: Callable[..., Cohort],
) -> None:
    imaging = {"schedule_days": [90, 180], "then_every_days": None}
    with_imaging = cohort_factory(PATIENTS, MEASUREMENTS, OUTCOMES, imaging=imaging)
    assert default_landmarks(with_imaging, max_day=1000) == [90, 180]
    bare = cohort_factory(PATIENTS, MEASUREMENTS, OUTCOMES)
    assert default_landmarks(bare, max_day=800) == [365.25, 730.5]


def test_default_landmarks_stop_at_the_90th_percentile_of_follow_up(
    cohort_factory: Callable[..., Cohort],
) -> None:
    patients = [{PATIENT_ID: f"q{i}", "age": 50.0, "sex": "F", "mvi": 0} for i in range(10)]
    outcomes = [{PATIENT_ID: f"q{i}", "followup": 100.0 * (i + 1)} for i in range(10)]
    draws = {"schedule_days": [300, 600, 900, 960], "then_every_days": None}
    cohort = cohort_factory(patients, [], outcomes, draws=draws)
    assert default_landmarks(cohort) == [300, 600, 900]  # 90th percentile: 910


# ---------------------------------------------------------------- no look-ahead

_DAYS = st.integers(min_value=-60, max_value=400)
_VALUES = st.one_of(st.integers(0, 50), st.floats(0, 5000, allow_nan=False))
_DRAW = st.tuples(
    st.sampled_from(["p1", "p2", "p3"]),
    _DAYS,
    st.sampled_from(["ctc_total", "afp"]),
    _VALUES,
    st.sampled_from([pd.NA, "<", ">"]),
)


def _split(draws: list[tuple[Any, ...]], s: float) -> tuple[list[Any], list[Any]]:
    return [d for d in draws if d[1] <= s], [d for d in draws if d[1] > s]


def _frame(draws: list[tuple[Any, ...]]) -> pd.DataFrame:
    return pd.DataFrame(draws, columns=[PATIENT_ID, DAY, MARKER, VALUE, QUALIFIER]).astype(
        {DAY: float, VALUE: float}
    )


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(
    draws=st.lists(_DRAW, max_size=30),
    future=st.lists(_DRAW, max_size=10),
    s=st.integers(0, 400),
    data=st.data(),
)
def test_measurements_dated_after_the_landmark_never_change_its_features(
    tiny: Cohort,
    draws: list[tuple[Any, ...]],
    future: list[tuple[Any, ...]],
    s: int,
    data: st.DataObject,
) -> None:
    past, later = _split(draws, s)
    altered = [(p, d, m, data.draw(_VALUES), q) for p, d, m, _, q in later]
    added = [(p, s + 1 + abs(d), m, v, q) for p, d, m, v, q in future]
    points = _points([(p, float(s)) for p in ("p1", "p2", "p3")])
    est = LandmarkFeatures.from_manifest(tiny.manifest).fit(_input(tiny))
    seen_then = est.transform(LandmarkInput(tiny.patients, _frame(past), points))
    for rows in (past + later, past + altered + added):
        got = est.transform(LandmarkInput(tiny.patients, _frame(rows), points))
        pd.testing.assert_frame_equal(got, seen_then)


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(draws=st.lists(_DRAW, max_size=20), s=st.integers(0, 400), later=st.integers(1, 400))
def test_outcomes_after_the_landmark_never_change_its_features(
    cohort_factory: Callable[..., Cohort], draws: list[tuple[Any, ...]], s: int, later: int
) -> None:
    patients = ("p1", "p2", "p3")
    censored = [{PATIENT_ID: p, "followup": 800} for p in patients]
    recurred = [{PATIENT_ID: p, "followup": 900, "recurrence": s + later} for p in patients]
    tables = [
        build_landmark_table(cohort_factory(PATIENTS, draws, out), landmarks=[s])
        for out in (censored, recurred)
    ]
    features = list(tables[0].columns[: tables[0].columns.get_loc(RESIDUAL_TIME)])
    pd.testing.assert_frame_equal(tables[1][features], tables[0][features])


# ---------------------------------------------------------------- conventions


def _snapshot(cohort: Cohort) -> list[pd.DataFrame]:
    return [f.copy(deep=True) for f in (cohort.patients, cohort.measurements, cohort.outcomes)]


def test_builders_never_mutate_the_callers_frames(tiny: Cohort) -> None:
    before = _snapshot(tiny)
    points = _points([("p1", 30.0)])
    points_before = points.copy(deep=True)
    X = LandmarkInput.from_cohort(tiny, points)
    LandmarkFeatures.from_manifest(tiny.manifest).fit_transform(X)
    build_landmark_table(tiny, landmarks=[30, 90])
    for got, expected in zip(_snapshot(tiny), before, strict=True):
        pd.testing.assert_frame_equal(got, expected)
    pd.testing.assert_frame_equal(points, points_before)


def test_landmark_input_keeps_a_copy_the_caller_cannot_change(tiny: Cohort) -> None:
    points = _points([("p1", 30.0)])
    X = LandmarkInput.from_cohort(tiny, points)
    points.loc[0, LANDMARK_DAY] = 90.0
    assert X.points[LANDMARK_DAY].tolist() == [30.0]


def test_the_estimator_follows_scikit_learn_conventions(tiny: Cohort) -> None:
    est = LandmarkFeatures.from_manifest(tiny.manifest, slope_draws=3)
    check_parameters_default_constructible("LandmarkFeatures", est)
    check_no_attributes_set_in_init("LandmarkFeatures", est)
    assert clone(est).get_params() == est.get_params()
    assert est.fit(_input(tiny)) is est
    with pytest.raises(NotFittedError):
        LandmarkFeatures().transform(_input(tiny))


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("landmarks", "match"),
    [
        (["abc"], "got 'abc'"),
        ([-30], "got -30"),
        ([float("nan")], "got nan"),
        ([True], "got True"),
        ([], "landmarks is empty"),
        ("90", "got '90'"),
        (90, "got 90"),
    ],
)
def test_bad_landmarks_are_refused_quoting_the_value(
    tiny: Cohort, landmarks: Any, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        build_landmark_table(tiny, landmarks=landmarks)


@pytest.mark.parametrize(
    ("horizon", "match"),
    [(-100, "got -100"), (0, "got 0"), ("a year", "got 'a year'"), (math.inf, "got inf")],
)
def test_a_bad_horizon_is_refused_quoting_the_value(tiny: Cohort, horizon: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_landmark_table(tiny, landmarks=[30], horizon_days=horizon)


def test_a_bad_endpoint_is_refused(tiny: Cohort) -> None:
    with pytest.raises(ValueError, match=r"endpoint must be one of .* got 'dfs'"):
        build_landmark_table(tiny, landmarks=[30], endpoint="dfs")
    with pytest.raises(ValueError, match=r"endpoint is missing column\(s\) \['event'\]"):
        build_landmark_table(
            tiny, landmarks=[30], endpoint=pd.DataFrame({PATIENT_ID: [], TIME: []})
        )


def test_a_featurizer_of_another_type_is_refused(tiny: Cohort) -> None:
    with pytest.raises(TypeError, match="featurizer must be a LandmarkFeatures, got dict"):
        build_landmark_table(tiny, landmarks=[30], featurizer={})  # type: ignore[arg-type]


def test_default_landmarks_refuse_a_negative_cap(tiny: Cohort) -> None:
    with pytest.raises(ValueError, match="max_day must be a number of days >= 0, got -1"):
        default_landmarks(tiny, max_day=-1)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"slope_draws": 1}, ValueError, "slope_draws must be >= 2, got 1"),
        ({"slope_draws": 2.5}, TypeError, "slope_draws must be an int >= 2, got 2.5"),
        (
            {"include_landmark_day": "yes"},
            TypeError,
            "include_landmark_day must be True or False, got 'yes'",
        ),
        ({"markers": {}}, ValueError, "markers must be a non-empty dict"),
        ({"markers": {"afp": 20}}, ValueError, "marker 'afp': cut-offs must be a dict, got 20"),
        (
            {"markers": {"afp": {"uln": 20}}},
            ValueError,
            r"marker 'afp': unknown key\(s\) \['uln'\]",
        ),
        (
            {"markers": {"afp": {"upper_normal": -1}}},
            ValueError,
            "upper_normal must be a number >= 0 or None, got -1",
        ),
        (
            {"covariates": {"age": "float"}},
            ValueError,
            r"covariate types must be one of .*'age': 'float'",
        ),
        (
            {"covariates": ["age"]},
            TypeError,
            r"covariates must be a dict name -> type, got \['age'\]",
        ),
        ({"covariates": {"bmi": "numeric"}}, ValueError, r"no column for covariate\(s\) \['bmi'\]"),
        (
            {"covariates": {"sex": "numeric"}},
            TypeError,
            "covariate 'sex' is declared numeric but holds non-numbers",
        ),
        (
            {"covariates": {"age": "binary"}},
            ValueError,
            "binary covariate 'age' must be 0/1, got 61.0",
        ),
        (
            {"markers": {"age": {}}, "covariates": {"age_last": "numeric"}},
            ValueError,
            "feature names collide",
        ),
    ],
)
def test_bad_hyperparameters_are_refused_at_fit(
    tiny: Cohort, params: dict[str, Any], error: type[Exception], match: str
) -> None:
    patients = tiny.patients.assign(age_last=1.0)
    X = LandmarkInput(patients, tiny.measurements, _points([("p1", 30.0)]))
    with pytest.raises(error, match=match):
        LandmarkFeatures(**params).fit_transform(X)


def test_transform_refuses_anything_but_a_landmark_input(tiny: Cohort) -> None:
    est = LandmarkFeatures.from_manifest(tiny.manifest).fit(_input(tiny))
    with pytest.raises(TypeError, match=r"X must be a LandmarkInput .* got DataFrame"):
        est.transform(tiny.patients)  # type: ignore[arg-type]


def test_transform_refuses_patients_missing_a_fitted_covariate(tiny: Cohort) -> None:
    est = LandmarkFeatures.from_manifest(tiny.manifest).fit(_input(tiny))
    X = LandmarkInput(tiny.patients.drop(columns="age"), tiny.measurements, _points([]))
    with pytest.raises(ValueError, match=r"no column for covariate\(s\) \['age'\]"):
        est.transform(X)


@pytest.mark.parametrize(
    ("frames", "error", "match"),
    [
        ({"patients": [1, 2]}, TypeError, "patients must be a pandas DataFrame, got list"),
        (
            {"points": pd.DataFrame({PATIENT_ID: ["p1"]})},
            ValueError,
            r"points is missing column\(s\) \['landmark_day'\]",
        ),
        ({"points": _points([("p1", -5.0)])}, ValueError, "must be finite and >= 0, got -5.0"),
        (
            {"points": _points([("p1", "soon")])},
            ValueError,
            "'landmark_day' must be numbers, got 'soon'",
        ),
        (
            {"points": _points([("nobody", 30.0)])},
            ValueError,
            r"absent from patients, e.g. \['nobody'\]",
        ),
        (
            {"patients": pd.DataFrame({PATIENT_ID: ["p1", "p1"]})},
            ValueError,
            r"duplicates \['p1'\]",
        ),
        ({"measurements": "value"}, ValueError, "'value' must be finite and >= 0, got -1.0"),
        ({"measurements": "day"}, ValueError, "'day' must be finite, got inf"),
    ],
)
def test_landmark_input_refuses_bad_frames(
    tiny: Cohort, frames: dict[str, Any], error: type[Exception], match: str
) -> None:
    args = {"patients": tiny.patients, "measurements": tiny.measurements, "points": _points([])}
    args.update(frames)
    if frames.get("measurements") in ("value", "day"):
        column = frames["measurements"]
        bad = -1.0 if column == "value" else math.inf
        args["measurements"] = tiny.measurements.assign(**{column: bad})
    with pytest.raises(error, match=match):
        LandmarkInput(**args)


@pytest.fixture(scope="module")
def simulated() -> Cohort:
    import tempfile
    from pathlib import Path

    from cohort.load import load_cohort
    from cohort.simulate import simulate_cohort

    folder = Path(tempfile.mkdtemp(prefix="features-at-")) / "cohort"
    simulate_cohort(folder, n_patients=40, seed=5)
    return load_cohort(folder)


def test_features_at_for_one_patient_equals_the_cohort_transform(simulated: Cohort) -> None:
    est = LandmarkFeatures.from_manifest(simulated.manifest).fit(
        LandmarkInput.from_cohort(simulated, [0.0])
    )
    assert est.scans_ and (simulated.imaging["finding"] == "indeterminate").any()
    assert_one_patient_calls_equal_the_cohort(est, simulated, simulated.measurements)


def test_features_at_equals_the_cohort_transform_with_markers_missing(simulated: Cohort) -> None:
    """The one-patient call computes every marker in one pass: a patient without any draw of
    a marker, or with only a marker the model does not know, still gets exactly the cohort's
    values (markers with and without cut-offs side by side)."""
    est = LandmarkFeatures.from_manifest(simulated.manifest).fit(
        LandmarkInput.from_cohort(simulated, [0.0])
    )
    thresholds = list(est.markers_.values())
    assert any(t.positive_at is not None for t in thresholds)
    assert any(t.upper_normal is None for t in thresholds)
    m = simulated.measurements
    ids = simulated.patients[PATIENT_ID].tolist()
    markers = list(est.markers_)
    drop = np.zeros(len(m), dtype=bool)
    for k, pid in enumerate(ids[:12]):  # each of the first 12 patients loses one marker
        drop |= (m[PATIENT_ID] == pid).to_numpy() & (
            m["marker"] == markers[k % len(markers)]
        ).to_numpy()
    drop |= (m[PATIENT_ID] == ids[12]).to_numpy()  # and one patient has no draw at all
    assert_one_patient_calls_equal_the_cohort(est, simulated, m[~drop], unknown_marker=True)


def assert_one_patient_calls_equal_the_cohort(
    est: LandmarkFeatures, cohort: Cohort, m: pd.DataFrame, unknown_marker: bool = False
) -> None:
    days = [0.0, 30.0, 200.0, 365.0, 1000.0]
    points = LandmarkInput.from_cohort(cohort, days).points
    table = est.transform(LandmarkInput(cohort.patients, m, points, cohort.imaging))
    names = list(est.get_feature_names_out())
    scans = cohort.imaging
    for _, patient in cohort.patients.iterrows():
        mine = m[m[PATIENT_ID] == patient[PATIENT_ID]]
        if unknown_marker:  # a draw of a marker the model never saw is ignored
            extra = pd.DataFrame({"day": [15.0], "marker": ["not_a_marker"], "value": [7.0]})
            mine = pd.concat([mine, extra.assign(qualifier=pd.NA)], ignore_index=True)
        my_scans = scans[scans[PATIENT_ID] == patient[PATIENT_ID]]
        covariates = {
            c: (patient[c] if isinstance(patient[c], str) or pd.notna(patient[c]) else None)
            for c in cohort.manifest.covariates
        }
        for day in days:
            got = est.features_at(
                day=mine["day"].to_numpy(),
                marker=mine["marker"].to_numpy(),
                value=mine["value"].to_numpy(),
                below=(mine["qualifier"] == "<").fillna(False).to_numpy(dtype=bool),
                covariates=covariates,
                landmark_day=day,
                scan_day=my_scans["day"].to_numpy(),
                scan_finding=my_scans["finding"].to_numpy(),
            )
            row = table[(table[PATIENT_ID] == patient[PATIENT_ID]) & (table[LANDMARK_DAY] == day)]
            np.testing.assert_array_equal(got, row[names].to_numpy(dtype=float)[0])
