"""Known-answer tests of the metric wrappers and landmark scoring."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from lifelines.utils import concordance_index
from sklearn.metrics import roc_auc_score
from sksurv.metrics import (
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
)
from sksurv.util import Surv

from alarms.metrics import interval, resample_index
from cohort.vocabulary import (
    EVENT,
    EVENT_FULL,
    LANDMARK_DAY,
    PATIENT_ID,
    RESIDUAL_TIME,
    RESIDUAL_TIME_FULL,
)
from training.metrics import (
    bootstrap_landmark_auc,
    brier,
    harrell_c,
    integrated_brier,
    landmark_metrics,
    residual_outcome,
    time_auc,
    uno_c,
)

Simulate = Callable[..., pd.DataFrame]


def full(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return frame[RESIDUAL_TIME_FULL].to_numpy(), frame[EVENT_FULL].to_numpy()


# --------------------------------------------------------------------------- concordance
def test_harrell_c_on_five_subjects_equals_the_hand_count_of_concordant_pairs() -> None:
    time = [1, 2, 3, 4, 5]
    event = [1, 0, 1, 1, 0]
    risk = [0.9, 0.95, 0.7, 0.2, 0.2]
    # comparable pairs (i has the event, t_i < t_j): (1,2) (1,3) (1,4) (1,5) (3,4) (3,5) (4,5)
    # concordant (risk_i > risk_j): (1,3) (1,4) (1,5) (3,4) (3,5) = 5; tied (4,5) = 0.5; (1,2) discordant
    assert harrell_c(time, event, risk) == pytest.approx(5.5 / 7)


def test_harrell_c_agrees_with_lifelines_given_the_negated_risk(simulated: Simulate) -> None:
    data = simulated(n=300, seed=4)
    time, event = full(data)
    ours = harrell_c(time, event, data["lp"])
    # lifelines scores a predicted *time* (higher = later event): the opposite sign of a risk
    assert ours == pytest.approx(concordance_index(time, -data["lp"], event))
    assert ours == pytest.approx(1 - concordance_index(time, data["lp"], event))


def tied_survival_data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer days (tied times) and risks tied exactly or within sksurv's 1e-8 tolerance."""
    rng = np.random.default_rng(seed)
    time = rng.integers(1, 200, size=n).astype(float)
    event = rng.uniform(size=n) < 0.4
    nudge = rng.choice([0.0, 5e-9, 1e-8, 1.5e-8, -1e-8], size=n)
    return time, event, np.round(rng.normal(size=n), 1) + nudge


@pytest.mark.parametrize("seed", range(6))
def test_harrell_c_is_bit_for_bit_scikit_survivals_on_tied_times_and_risks(seed: int) -> None:
    time, event, risk = tied_survival_data(seed, n=50 + 700 * seed)
    expected = concordance_index_censored(event, time, risk)[0]
    assert harrell_c(time, event.astype(int), risk) == expected


@pytest.mark.parametrize(("seed", "tau"), [(0, None), (1, 120.0), (2, 30.0), (3, None)])
def test_uno_c_is_bit_for_bit_scikit_survivals_on_tied_times_and_risks(
    seed: int, tau: float | None
) -> None:
    time, event, risk = tied_survival_data(seed, n=1500)
    train_time, train_event, _ = tied_survival_data(seed + 100, n=1000)
    train_time[0], train_event[0] = 250.0, False  # follow-up beyond every test time
    expected = concordance_index_ipcw(
        Surv.from_arrays(train_event, train_time), Surv.from_arrays(event, time), risk, tau=tau
    )[0]
    ours = uno_c(time, event.astype(int), risk, train=(train_time, train_event), tau=tau)
    assert ours == expected


def test_harrell_c_needs_two_observations() -> None:
    with pytest.raises(ValueError, match="needs at least two observations, got 1"):
        harrell_c([5.0], [1], [0.3])


def test_uno_c_equals_harrell_c_without_censoring(simulated: Simulate) -> None:
    data = simulated(n=300, seed=5, censor=None)
    time, event = full(data)
    assert event.all()
    assert uno_c(time, event, data["lp"]) == pytest.approx(harrell_c(time, event, data["lp"]))


def test_uno_c_with_tau_ignores_events_after_tau() -> None:
    time = np.array([1.0, 2.0, 3.0, 10.0, 11.0])
    event = np.array([1, 1, 1, 1, 0])
    good = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    bad_late = good.copy()
    bad_late[[3, 4]] = [1.0, 2.0]  # mis-orders only the pair (10, 11), which is after tau
    assert uno_c(time, event, bad_late, tau=5.0) == pytest.approx(uno_c(time, event, good, tau=5.0))
    assert uno_c(time, event, bad_late) < uno_c(time, event, good)


def test_uno_c_refuses_test_events_after_the_training_follow_up_without_tau() -> None:
    with pytest.raises(
        ValueError, match=r"test events after the last training time 5\.0: pass tau"
    ):
        uno_c([1, 9], [1, 1], [2, 1], train=([1, 5], [1, 0]))


def test_uno_c_refuses_tau_beyond_the_training_follow_up() -> None:
    with pytest.raises(ValueError, match=r"tau=9 must be in \(0, 5\.0\]"):
        uno_c([1, 4], [1, 1], [2, 1], train=([1, 5], [1, 0]), tau=9)


def test_harrell_c_needs_at_least_one_event() -> None:
    with pytest.raises(ValueError, match="needs at least one event"):
        harrell_c([1, 2], [0, 0], [1, 2])


# --------------------------------------------------------------------------- AUC, Brier
def test_auc_at_a_horizon_without_censoring_equals_roc_auc_of_the_binary_outcome(
    simulated: Simulate,
) -> None:
    data = simulated(n=500, seed=6, censor=None)
    time, event = full(data)
    outcome = time <= 365
    assert time_auc(time, event, data["lp"], 365) == pytest.approx(
        roc_auc_score(outcome, data["lp"])
    )


def test_brier_without_censoring_equals_the_mean_squared_error_of_the_binary_outcome(
    simulated: Simulate,
) -> None:
    data = simulated(n=500, seed=7, censor=None)
    time, event = full(data)
    alive = (time > 365).astype(float)
    expected = np.mean((alive - data["surv"]) ** 2)
    assert brier(time, event, data["surv"], 365) == pytest.approx(expected)


def test_integrated_brier_without_censoring_is_the_trapezoid_mean_of_the_squared_errors(
    simulated: Simulate,
) -> None:
    data = simulated(n=400, seed=8, censor=None)
    time, event = full(data)
    grid = np.array([100.0, 200.0, 365.0, 500.0])
    h0 = (grid / 900.0) ** 1.3
    surv = np.exp(-np.outer(np.exp(data["lp"]), h0))
    per_time = [np.mean(((time > t).astype(float) - surv[:, j]) ** 2) for j, t in enumerate(grid)]
    expected = np.trapezoid(per_time, grid) / (grid[-1] - grid[0])
    assert integrated_brier(time, event, surv, grid) == pytest.approx(expected)


def test_censoring_weights_from_the_test_data_equal_passing_it_as_training_data(
    simulated: Simulate,
) -> None:
    data = simulated(n=400, seed=9)
    time, event = full(data)
    assert time_auc(time, event, data["lp"], 365, train=(time, event)) == time_auc(
        time, event, data["lp"], 365
    )
    assert brier(time, event, data["surv"], 365, train=(time, event)) == brier(
        time, event, data["surv"], 365
    )


def test_test_times_beyond_the_training_follow_up_are_clipped_without_changing_the_score(
    simulated: Simulate,
) -> None:
    train = simulated(n=400, seed=10, censor=(100.0, 600.0))
    test = simulated(n=400, seed=11, censor=(100.0, 1500.0))
    tr, (t, e) = full(train), full(test)
    assert t.max() > tr[0].max()
    with pytest.raises(
        ValueError, match=r"censoring survival function is zero|smaller than largest observed time"
    ):
        cumulative_dynamic_auc(
            Surv.from_arrays(tr[1], tr[0]), Surv.from_arrays(e, t), test["lp"], [365.0]
        )
    # any time between the horizon and the training maximum leaves a subject a control at 365
    moved = np.where(t > tr[0].max(), 400.0, t)
    assert time_auc(t, e, test["lp"], 365, train=tr) == time_auc(
        moved, e, test["lp"], 365, train=tr
    )
    assert brier(t, e, test["surv"], 365, train=tr) == brier(moved, e, test["surv"], 365, train=tr)


@pytest.mark.parametrize("horizon", [0.5, 1000.0])
def test_a_horizon_outside_the_follow_up_is_refused(horizon: float) -> None:
    with pytest.raises(ValueError, match=rf"horizon\(s\) \[{horizon}\] must lie in \[1\.0, 5\.0\)"):
        time_auc([1, 2, 5], [1, 0, 0], [3, 2, 1], horizon)


def test_a_horizon_at_the_training_maximum_is_refused() -> None:
    with pytest.raises(ValueError, match=r"must lie in \[1\.0, 3\.0\)"):
        brier([1, 2, 5], [1, 0, 0], [0.5, 0.5, 0.5], 3.0, train=([1, 3], [1, 0]))


def test_auc_without_an_event_by_the_horizon_is_refused() -> None:
    with pytest.raises(ValueError, match=r"no event by the horizon 1\.5"):
        time_auc([1, 2, 5], [0, 1, 0], [3, 2, 1], 1.5)


@pytest.mark.parametrize(
    ("time", "event", "message"),
    [
        ([1, 2], [1], r"time has 2 values but event has 1"),
        ([], [], r"no observations"),
        ([1, -2], [1, 0], r"time must be finite and >= 0"),
        ([1, np.nan], [1, 0], r"time must be finite and >= 0"),
        ([1, 2], [1, 2], r"event must be 0/1, got \[1, 2\]"),
    ],
)
def test_malformed_survival_data_are_refused(
    time: list[float], event: list[int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        harrell_c(time, event, np.ones(len(time)))


def test_predictions_of_the_wrong_length_or_non_finite_are_refused() -> None:
    with pytest.raises(ValueError, match=r"risk must have 3 rows \(1-d\), got shape \(2,\)"):
        harrell_c([1, 2, 3], [1, 0, 1], [1, 2])
    with pytest.raises(ValueError, match=r"risk has 1 non-finite value"):
        harrell_c([1, 2, 3], [1, 0, 1], [1, np.inf, 2])


def test_survival_predictions_outside_zero_one_are_refused() -> None:
    with pytest.raises(
        ValueError, match=r"surv_at must be probabilities in \[0, 1\], got range \[0\.2, 1\.5\]"
    ):
        brier([1, 2, 5], [1, 0, 0], [0.2, 1.5, 0.5], 3.0)


def test_integrated_brier_refuses_an_unsorted_grid_and_a_mismatched_matrix() -> None:
    with pytest.raises(
        ValueError, match=r"times must be >= 2 strictly increasing values, got \[2\.0, 1\.0\]"
    ):
        integrated_brier([1, 2, 5], [1, 0, 0], np.full((3, 2), 0.5), [2, 1])
    with pytest.raises(ValueError, match=r"surv has 3 columns but times has 2 values"):
        integrated_brier([1, 2, 5], [1, 0, 0], np.full((3, 3), 0.5), [1, 2])


# --------------------------------------------------------------------------- landmark scoring
def landmark_table(simulate: Simulate, sizes: tuple[int, ...] = (400, 300, 200)) -> pd.DataFrame:
    parts = [simulate(n=n, seed=20 + i, landmark=180.0 * i) for i, n in enumerate(sizes)]
    return pd.concat(parts, ignore_index=True)


def test_landmark_metrics_score_each_landmark_on_its_own_rows(simulated: Simulate) -> None:
    table = landmark_table(simulated)
    out = landmark_metrics(table, "lp", "surv", 365)
    by = out["by_landmark"]
    assert by[LANDMARK_DAY].tolist() == [0.0, 180.0, 360.0]
    assert by["n_at_risk"].tolist() == [400, 300, 200]
    for _, row in by.iterrows():
        rows = table[table[LANDMARK_DAY] == row[LANDMARK_DAY]]
        t, e = full(rows)
        assert row["auc"] == time_auc(t, e, rows["lp"], 365)
        assert row["brier"] == brier(t, e, rows["surv"], 365)
        assert row["n_events"] == int(rows[EVENT].sum())
        assert row["harrell_c"] == harrell_c(rows[RESIDUAL_TIME], rows[EVENT], rows["lp"])
        assert row["uno_c"] == uno_c(t, e, rows["lp"], tau=365)
    assert out["auc"] == pytest.approx(np.average(by["auc"], weights=[400, 300, 200]))
    assert out["auc_unweighted"] == pytest.approx(by["auc"].mean())
    assert out["brier"] == pytest.approx(np.average(by["brier"], weights=[400, 300, 200]))
    assert out["uno_c_unweighted"] == pytest.approx(by["uno_c"].mean())


def test_landmark_metrics_read_the_untruncated_follow_up_not_the_truncated_one(
    simulated: Simulate,
) -> None:
    table = landmark_table(simulated)
    untruncated = table.drop(columns=[RESIDUAL_TIME_FULL, EVENT_FULL]).assign(
        **{RESIDUAL_TIME: table[RESIDUAL_TIME_FULL], EVENT: table[EVENT_FULL]}
    )
    a = landmark_metrics(table, "lp", "surv", 365)
    b = landmark_metrics(untruncated, "lp", "surv", 365)
    pd.testing.assert_frame_equal(a["by_landmark"], b["by_landmark"])


def test_a_table_truncated_at_the_horizon_without_full_follow_up_is_refused_with_a_fix(
    simulated: Simulate,
) -> None:
    table = landmark_table(simulated).drop(columns=[RESIDUAL_TIME_FULL, EVENT_FULL])
    with pytest.raises(
        ValueError, match=r"looks truncated.*add 'residual_time_full' and 'event_full'"
    ):
        landmark_metrics(table, "lp", "surv", 365)


def test_training_rows_at_the_same_landmark_give_the_censoring_weights(simulated: Simulate) -> None:
    table = landmark_table(simulated)
    train = landmark_table(simulated, sizes=(100, 100, 100)).assign(
        **{RESIDUAL_TIME_FULL: lambda d: d[RESIDUAL_TIME_FULL] * 1.5}
    )
    by = landmark_metrics(table, "lp", "surv", 365, train_table=train)["by_landmark"]
    rows, train_rows = table[table[LANDMARK_DAY] == 180.0], train[train[LANDMARK_DAY] == 180.0]
    expected = brier(*full(rows), rows["surv"], 365, train=full(train_rows))
    assert by.loc[by[LANDMARK_DAY] == 180.0, "brier"].item() == expected
    assert expected != brier(*full(rows), rows["surv"], 365)


def test_a_landmark_without_events_gets_nan_and_a_logged_reason_not_a_crash(
    simulated: Simulate, caplog: pytest.LogCaptureFixture
) -> None:
    table = landmark_table(simulated)
    quiet = table[LANDMARK_DAY] == 180.0
    table.loc[quiet, EVENT_FULL] = 0
    with caplog.at_level(logging.INFO, logger="training.metrics"):
        out = landmark_metrics(table, "lp", None, 365)
    row = out["by_landmark"].set_index(LANDMARK_DAY).loc[180.0]
    assert np.isnan(row["auc"]) and row["reason"] == "no event within 365 days"
    assert "landmark 180.0 not scored: no event within 365 days" in caplog.text
    scored = out["by_landmark"].dropna(subset=["auc"])
    assert out["auc"] == pytest.approx(np.average(scored["auc"], weights=scored["n_at_risk"]))
    assert out["by_landmark"]["brier"].isna().all()  # no surv_at, no Brier


def test_a_landmark_whose_follow_up_ends_before_the_horizon_gets_nan(simulated: Simulate) -> None:
    table = landmark_table(simulated)
    late = table[LANDMARK_DAY] == 360.0
    table.loc[late, RESIDUAL_TIME_FULL] = np.minimum(table.loc[late, RESIDUAL_TIME_FULL], 300.0)
    by = landmark_metrics(table, "lp", "surv", 365)["by_landmark"].set_index(LANDMARK_DAY)
    assert by.loc[360.0, "reason"] == "no one followed beyond 365 days"
    assert by.loc[[0.0, 180.0], "auc"].notna().all()


def test_a_horizon_past_the_training_follow_up_gives_nan_with_sksurvs_reason(
    simulated: Simulate,
) -> None:
    table = landmark_table(simulated)
    train = table.assign(**{RESIDUAL_TIME_FULL: lambda d: np.minimum(d[RESIDUAL_TIME_FULL], 300.0)})
    by = landmark_metrics(table, "lp", "surv", 365, train_table=train)["by_landmark"]
    assert by["auc"].isna().all()
    assert by["reason"].str.contains(r"must lie in").all()


def test_risk_defaults_to_one_minus_the_predicted_survival(simulated: Simulate) -> None:
    table = landmark_table(simulated)
    a = landmark_metrics(table, None, "surv", 365)["auc"]
    b = landmark_metrics(table, table["risk"].to_numpy(), "surv", 365)["auc"]
    assert a == pytest.approx(b)


def test_landmark_metrics_refuse_missing_inputs(simulated: Simulate) -> None:
    table = landmark_table(simulated)
    with pytest.raises(ValueError, match=r"give risk, surv_at or both; got neither"):
        landmark_metrics(table, None, None, 365)
    with pytest.raises(ValueError, match=r"risk='nope' is not a column of the table"):
        landmark_metrics(table, "nope", None, 365)
    with pytest.raises(ValueError, match=r"horizon_days must be > 0, got 0"):
        landmark_metrics(table, "lp", None, 0)
    with pytest.raises(ValueError, match=r"table has no 'landmark_day' column"):
        landmark_metrics(table.drop(columns=[LANDMARK_DAY]), "lp", None, 365)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['event'\]"):
        residual_outcome(table.drop(columns=[EVENT, EVENT_FULL]))


# --------------------------------------------------------------------------- bootstrap
def resampled_auc(table: pd.DataFrame, risk: str, n_boot: int, seed: int) -> np.ndarray:
    """The AUC of each patient-cluster bootstrap sample, built as a table (the slow way)."""
    codes, ids = pd.factorize(table[PATIENT_ID].astype(str), sort=True)
    rows_of = [np.flatnonzero(codes == k) for k in range(len(ids))]
    reps = []
    for draw in resample_index(len(ids), n_boot, seed):
        parts = [
            table.iloc[rows_of[k]].assign(**{PATIENT_ID: f"{ids[k]}#{j}"})
            for j, k in enumerate(draw)
        ]
        sample = pd.concat(parts, ignore_index=True)
        reps.append(landmark_metrics(sample, risk, None, 365, scores=("auc",))["auc"])
    return np.array(reps)


def test_the_bootstrap_interval_contains_the_estimate(simulated: Simulate) -> None:
    table = landmark_table(simulated)
    estimate, low, high = bootstrap_landmark_auc(table, "risk", 365, n_boot=200, seed=1)
    assert estimate == landmark_metrics(table, "risk", None, 365)["auc"]
    assert low < estimate < high


def test_the_bootstrap_interval_narrows_as_the_number_of_patients_grows(
    simulated: Simulate,
) -> None:
    small = bootstrap_landmark_auc(landmark_table(simulated, sizes=(100,)), "risk", 365)
    large = bootstrap_landmark_auc(landmark_table(simulated, sizes=(1600,)), "risk", 365)
    # width scales as 1/sqrt(n): 16x the patients, about a quarter of the width
    assert (large[2] - large[1]) < 0.5 * (small[2] - small[1])


def test_a_bootstrap_without_two_defined_replicates_has_no_interval(simulated: Simulate) -> None:
    table = landmark_table(simulated, sizes=(3,))
    table[EVENT_FULL] = 0  # no event: the AUC of every sample is undefined
    estimate, low, high = bootstrap_landmark_auc(table, "risk", 365, n_boot=10)
    assert np.isnan(estimate) and np.isnan(low) and np.isnan(high)


def lopsided_landmark_table(simulate: Simulate) -> pd.DataFrame:
    """Three landmarks, the last with 6 patients: many samples leave it without an event."""
    table = landmark_table(simulate, sizes=(400, 300, 6))
    table["risk"] = np.round(table["risk"], 2)  # exact ties in the risk
    table[RESIDUAL_TIME_FULL] = np.ceil(table[RESIDUAL_TIME_FULL])  # tied follow-up times
    return table


@pytest.mark.parametrize("seed", [0, 1])
def test_the_fast_auc_bootstrap_equals_resampling_the_table(simulated: Simulate, seed: int) -> None:
    table = lopsided_landmark_table(simulated)
    reps = resampled_auc(table, "risk", n_boot=30, seed=seed)
    low, high = interval(reps)
    fast = bootstrap_landmark_auc(table, "risk", 365, n_boot=30, seed=seed)
    assert fast[0] == landmark_metrics(table, "risk", None, 365, scores=("auc",))["auc"]
    assert fast[1:] == pytest.approx((low, high), rel=1e-12)
    assert fast == bootstrap_landmark_auc(table, "risk", 365, n_boot=30, seed=seed)


def test_the_fast_auc_bootstrap_refuses_bad_settings(simulated: Simulate) -> None:
    with pytest.raises(ValueError, match=r"n_boot must be >= 2, got 1"):
        bootstrap_landmark_auc(landmark_table(simulated), "risk", 365, n_boot=1)
    with pytest.raises(ValueError, match=r"risk='nope' is not a column of the table"):
        bootstrap_landmark_auc(landmark_table(simulated), "nope", 365, n_boot=5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_boot": 1}, r"n_boot must be >= 2, got 1"),
        ({"groups": "site"}, r"groups='site' is not a column of the table"),
    ],
)
def test_bootstrap_refuses_bad_settings(
    simulated: Simulate, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        bootstrap_landmark_auc(landmark_table(simulated), "risk", 365, **kwargs)  # type: ignore[arg-type]
