"""Mixed-model marker summaries: the fit against statsmodels, the BLUPs against their
textbook formula, no look-ahead, one patient = the cohort, and packaging."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cohort.cohort import Cohort
from cohort.vocabulary import DAY, LANDMARK_DAY, MARKER, PATIENT_ID, QUALIFIER, VALUE
from features import LandmarkFeatures, LandmarkInput
from features.mixed import (
    DAYS_PER_YEAR,
    MIXED_STATS,
    MarkerLME,
    fit_lme,
    fixed_design,
    transformed,
)

TRUE_BETA = np.array([2.0, 0.4, 3.0])
TRUE_D = np.array([[0.8, 0.2], [0.2, 0.3]])
TRUE_SIGMA2 = 0.25


def lme_draws(n_patients: int, seed: int) -> pd.DataFrame:
    """Draws from the model itself: ~8 post-index draws per patient over up to 4 years."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_patients):
        days = np.sort(rng.uniform(0, 1460, size=rng.integers(1, 15)))
        u = rng.multivariate_normal([0, 0], TRUE_D)
        x = fixed_design(days)
        y = x @ TRUE_BETA + u[0] + u[1] * x[:, 1] + rng.normal(0, np.sqrt(TRUE_SIGMA2), len(days))
        rows += [(f"q{i:03d}", d, float(np.expm1(v))) for d, v in zip(days, y, strict=True)]
    return pd.DataFrame(rows, columns=[PATIENT_ID, DAY, VALUE])


@pytest.fixture(scope="module")
def draws() -> pd.DataFrame:
    return lme_draws(150, seed=3)


# ---------------------------------------------------------------- the fit


@pytest.mark.slow
def test_the_fit_matches_statsmodels_mixedlm_maximum_likelihood(draws: pd.DataFrame) -> None:
    from statsmodels.regression.mixed_linear_model import MixedLM

    ours = fit_lme(draws[PATIENT_ID].to_numpy(), draws[DAY].to_numpy(), draws[VALUE].to_numpy())
    x = fixed_design(draws[DAY].to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' own convergence chatter
        theirs = MixedLM(
            transformed(draws[VALUE].to_numpy()), x, groups=draws[PATIENT_ID], exog_re=x[:, :2]
        ).fit(reml=False)
    assert ours.converged
    np.testing.assert_allclose(ours.beta, theirs.fe_params, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(ours.cov_re, np.asarray(theirs.cov_re), rtol=5e-3, atol=2e-3)
    assert ours.sigma2 == pytest.approx(theirs.scale, rel=2e-3)
    assert ours.loglik == pytest.approx(theirs.llf, abs=0.01)


def test_the_fit_recovers_the_parameters_it_was_simulated_with() -> None:
    big = lme_draws(800, seed=4)
    lme = fit_lme(big[PATIENT_ID].to_numpy(), big[DAY].to_numpy(), big[VALUE].to_numpy())
    np.testing.assert_allclose(lme.beta[:2], TRUE_BETA[:2], atol=0.1)
    np.testing.assert_allclose(lme.cov_re, TRUE_D, atol=0.1)
    assert lme.sigma2 == pytest.approx(TRUE_SIGMA2, rel=0.1)
    assert (lme.n_patients, lme.n_draws) == (800, len(big))


@pytest.mark.parametrize(
    ("groups", "day", "value", "match"),
    [
        ([], [], [], "no post-index draw"),
        (["a"], [1.0, 2.0], [1.0], "equal lengths"),
        (["a", "b"], [-5.0, 2.0], [1.0, 1.0], "post-index days >= 0, got \\[-5"),
    ],
)
def test_bad_fit_data_is_refused_naming_what_is_wrong(
    groups: list[Any], day: list[float], value: list[float], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        fit_lme(np.array(groups), np.array(day), np.array(value))


# ---------------------------------------------------------------- the features


LME = MarkerLME(
    beta=(1.0, 0.5, 2.0),
    cov_re=((0.6, 0.1), (0.1, 0.2)),
    sigma2=0.3,
    n_patients=0,
    n_draws=0,
    iterations=0,
    converged=True,
    loglik=0.0,
)


def textbook(days: np.ndarray, values: np.ndarray, s: float) -> dict[str, float]:
    """b̂ = D Zᵀ (Z D Zᵀ + σ² I)⁻¹ (y − Xβ), written out with full matrices."""
    beta, cov, s2 = np.array(LME.beta), np.array(LME.cov_re), LME.sigma2

    def blup(d: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = fixed_design(d)
        z = x[:, :2]
        v_inv = np.linalg.inv(z @ cov @ z.T + s2 * np.eye(len(d)))
        return cov @ z.T @ v_inv @ (transformed(v) - x @ beta), cov - cov @ z.T @ v_inv @ z @ cov

    b, _ = blup(days, values)
    prev, c_prev = blup(days[:-1], values[:-1])
    t_s, t_last = s / DAYS_PER_YEAR, days[-1] / DAYS_PER_YEAR
    z_last = np.array([1.0, t_last])
    expected = fixed_design(days[-1:])[0] @ beta + z_last @ prev
    return {
        "mm_level": float(fixed_design(np.array([s]))[0] @ beta + b[0] + b[1] * t_s),
        "mm_slope": float(beta[1] + b[1]),
        "mm_peb": float(
            (transformed(values[-1:])[0] - expected) / np.sqrt(z_last @ c_prev @ z_last + s2)
        ),
        "mm_n": float(len(days)),
    }


def with_lme(cohort: Cohort, lme: MarkerLME = LME) -> LandmarkFeatures:
    est = LandmarkFeatures.from_manifest(cohort.manifest, mixed=True)
    est.fit(LandmarkInput.from_cohort(cohort, [0.0]))
    est.mixed_ = dict.fromkeys(est.markers_, lme)
    return est


def at(est: LandmarkFeatures, cohort: Cohort, pairs: list[tuple[str, float]]) -> pd.DataFrame:
    points = pd.DataFrame(pairs, columns=[PATIENT_ID, LANDMARK_DAY])
    return est.transform(LandmarkInput.from_cohort(cohort, points))


AFP = [("p1", -10, "afp", 900.0), ("p1", 20, "afp", 60.0), ("p1", 95, "afp", 8.0)]
AFP += [("p1", 200, "afp", 30.0), ("p1", 380, "afp", 150.0), ("p1", 500, "afp", 5000.0)]
PATIENTS = [{PATIENT_ID: p, "age": 60.0, "sex": "F", "mvi": 0} for p in ("p1", "p2", "p3")]
OUTCOMES = [{PATIENT_ID: p, "followup": 900} for p in ("p1", "p2", "p3")]


@pytest.fixture(scope="module")
def history(cohort_factory: Callable[..., Cohort]) -> Cohort:
    below = [("p2", 40, "afp", 2.0, "<"), ("p2", 70, "afp", 3.0)]
    return cohort_factory(PATIENTS, [*AFP, *below], OUTCOMES)


@pytest.mark.parametrize("s", [95.0, 200.0, 450.0])
def test_the_features_are_the_textbook_blup_from_the_draws_up_to_the_landmark(
    history: Cohort, s: float
) -> None:
    got = at(with_lme(history), history, [("p1", s)]).iloc[0]
    seen = np.array([(d, v) for _, d, _, v in AFP if 0 <= d <= s])
    for stat, value in textbook(seen[:, 0], seen[:, 1], s).items():
        assert got[f"afp_{stat}"] == pytest.approx(value, rel=1e-9, abs=1e-12), stat


def test_without_a_draw_the_level_is_the_population_s_and_the_deviation_undefined(
    history: Cohort,
) -> None:
    got = at(with_lme(history), history, [("p3", 365.0)]).iloc[0]
    expected = LME.beta[0] + LME.beta[1] * 365.0 / DAYS_PER_YEAR + LME.beta[2] * np.exp(-36.5)
    assert got["afp_mm_level"] == pytest.approx(expected)
    assert got["afp_mm_slope"] == LME.beta[1]
    assert got["afp_mm_n"] == 0.0
    assert np.isnan(got["afp_mm_peb"]) and np.isnan(got["afp_mm_below"])


def test_the_pre_operative_draw_is_not_in_the_model_but_stays_its_own_feature(
    history: Cohort,
) -> None:
    got = at(with_lme(history), history, [("p1", 30.0)]).iloc[0]
    assert got["afp_mm_n"] == 1.0  # day 20 only; the day -10 draw is not a post-index draw
    assert got["afp_pre"] == 900.0


def test_a_value_below_the_detection_limit_is_flagged_at_the_limit(history: Cohort) -> None:
    got = at(with_lme(history), history, [("p2", 40.0), ("p2", 70.0)])
    assert got["afp_mm_below"].tolist() == [1.0, 0.0]
    one = textbook(np.array([40.0]), np.array([2.0]), 40.0)  # the limit, 2, as the value
    assert got["afp_mm_level"].iloc[0] == pytest.approx(one["mm_level"])


def test_a_rising_newest_value_deviates_upwards_from_the_patient_s_own_prediction(
    history: Cohort,
) -> None:
    got = at(with_lme(history), history, [("p1", 200.0), ("p1", 500.0)])
    assert got["afp_mm_peb"].iloc[1] > 2.0 > got["afp_mm_peb"].iloc[0]


# ---------------------------------------------------------------- no look-ahead

_DRAW = st.tuples(
    st.sampled_from(["p1", "p2", "p3"]),
    st.integers(-60, 600),
    st.sampled_from(["ctc_total", "afp"]),
    st.one_of(st.integers(0, 50), st.floats(0, 5000, allow_nan=False)),
    st.sampled_from([pd.NA, "<"]),
)


def _frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[PATIENT_ID, DAY, MARKER, VALUE, QUALIFIER]).astype(
        {DAY: float, VALUE: float}
    )


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(draws=st.lists(_DRAW, max_size=40), s=st.integers(0, 600), data=st.data())
def test_deleting_everything_after_the_landmark_leaves_the_mixed_features_unchanged(
    history: Cohort, draws: list[tuple[Any, ...]], s: int, data: st.DataObject
) -> None:
    est = with_lme(history)
    points = pd.DataFrame({PATIENT_ID: ["p1", "p2", "p3"], LANDMARK_DAY: float(s)})
    past = [d for d in draws if d[1] <= s]
    future = [(p, s + 1 + abs(d), m, data.draw(st.floats(0, 1e4)), q) for p, d, m, _, q in draws]
    names = ["patient_id", "landmark_day", *est.mixed_names()]
    seen_then = est.transform(LandmarkInput(history.patients, _frame(past), points))[names]
    for rows in (draws, past + future):
        got = est.transform(LandmarkInput(history.patients, _frame(rows), points))[names]
        pd.testing.assert_frame_equal(got, seen_then)


# ---------------------------------------------------------------- the estimator


@pytest.fixture(scope="module")
def simulated() -> Cohort:
    import tempfile
    from pathlib import Path

    from cohort.load import load_cohort
    from cohort.simulate import simulate_cohort

    folder = Path(tempfile.mkdtemp(prefix="mixed-")) / "cohort"
    simulate_cohort(folder, n_patients=60, seed=7)
    return load_cohort(folder)


def test_fit_uses_only_the_patients_of_the_points(simulated: Cohort) -> None:
    ids = simulated.patients[PATIENT_ID].to_numpy()
    some = pd.DataFrame({PATIENT_ID: ids[:30], LANDMARK_DAY: 90.0})
    est = LandmarkFeatures.from_manifest(simulated.manifest, mixed=True)
    est.fit(LandmarkInput.from_cohort(simulated, some))
    m = simulated.measurements
    others = m[PATIENT_ID].isin(ids[30:])
    scrambled = m.assign(**{VALUE: np.where(others, m[VALUE] * 50 + 7, m[VALUE])})
    again = LandmarkFeatures.from_manifest(simulated.manifest, mixed=True)
    again.fit(LandmarkInput(simulated.patients, scrambled, some))
    assert again.mixed_ == est.mixed_
    assert est.mixed_["afp"] is not None and est.mixed_["afp"].n_patients <= 30
    other_half = some.assign(**{PATIENT_ID: ids[30:60]})
    changed = LandmarkFeatures.from_manifest(simulated.manifest, mixed=True)
    changed.fit(LandmarkInput(simulated.patients, scrambled, other_half))
    assert changed.mixed_["afp"] != est.mixed_["afp"]


def test_features_at_for_one_patient_equals_the_cohort_transform_bit_for_bit(
    simulated: Cohort,
) -> None:
    est = LandmarkFeatures.from_manifest(simulated.manifest, mixed=True).fit(
        LandmarkInput.from_cohort(simulated, [0.0])
    )
    days = [0.0, 45.0, 365.0, 1000.0]
    table = est.transform(LandmarkInput.from_cohort(simulated, days))
    names = list(est.get_feature_names_out())
    assert set(est.mixed_names()) <= set(names)
    m, scans = simulated.measurements, simulated.imaging
    for _, patient in simulated.patients.iterrows():
        mine = m[m[PATIENT_ID] == patient[PATIENT_ID]]
        my_scans = scans[scans[PATIENT_ID] == patient[PATIENT_ID]]
        covariates = {
            c: (patient[c] if isinstance(patient[c], str) or pd.notna(patient[c]) else None)
            for c in simulated.manifest.covariates
        }
        for day in days:
            got = est.features_at(
                day=mine[DAY].to_numpy(),
                marker=mine[MARKER].to_numpy(),
                value=mine[VALUE].to_numpy(),
                below=(mine[QUALIFIER] == "<").to_numpy(),
                covariates=covariates,
                landmark_day=day,
                scan_day=my_scans[DAY].to_numpy(),
                scan_finding=my_scans["finding"].to_numpy(),
            )
            row = table[(table[PATIENT_ID] == patient[PATIENT_ID]) & (table[LANDMARK_DAY] == day)]
            np.testing.assert_array_equal(got, row[names].to_numpy(dtype=float)[0])


def test_several_fits_side_by_side_give_each_fit_s_own_numbers(simulated: Cohort) -> None:
    """``mixed_at_each``: exact, each fits' ``mixed_at`` to the last bit; side by side (the
    risk interval's fold models), the same to rounding, at landmarks with no post-operative
    draw yet, one, two and many."""
    ids = simulated.patients[PATIENT_ID].to_numpy()
    fits = []
    for part in (ids[:30], ids[30:], ids[::2]):
        est = LandmarkFeatures.from_manifest(simulated.manifest, mixed=True)
        est.fit(
            LandmarkInput.from_cohort(
                simulated, pd.DataFrame({PATIENT_ID: part, LANDMARK_DAY: 0.0})
            )
        )
        fits.append(est.mixed_)
    assert fits[0] != fits[1]
    m = simulated.measurements
    n_post = {0: 0, 1: 0, 2: 0, 3: 0}
    for pid in ids[:12]:
        mine = m[m[PATIENT_ID] == pid]
        args = {
            "day": mine[DAY].to_numpy(),
            "marker": mine[MARKER].to_numpy(),
            "value": mine[VALUE].to_numpy(),
            "below": (mine[QUALIFIER] == "<").to_numpy(),
        }
        draw_days = np.sort(mine[DAY].unique())
        post = draw_days[draw_days >= 0]
        for k, day in enumerate([0.0, *post[:2], float(draw_days.max())]):
            n_post[min(k, 3)] += 1
            exact = est.mixed_at_each(fits, landmark_day=day, **args)
            quick = est.mixed_at_each(fits, landmark_day=day, exact=False, **args)
            for f, lmes in enumerate(fits):
                own = est.mixed_at(lmes, landmark_day=day, **args)
                assert {k2: exact[f][k2] for k2 in own} == pytest.approx(
                    own, nan_ok=True, rel=0, abs=0
                )
                assert {k2: quick[f][k2] for k2 in own} == pytest.approx(
                    own, nan_ok=True, rel=1e-9, abs=1e-9
                )
    assert min(n_post.values()) >= 10


def test_the_fitted_models_travel_with_the_pickled_featurizer(simulated: Cohort) -> None:
    est = LandmarkFeatures.from_manifest(simulated.manifest, mixed=True).fit(
        LandmarkInput.from_cohort(simulated, [0.0])
    )
    back = pickle.loads(pickle.dumps(est))
    assert back.mixed_ == est.mixed_ and back.mixed_["afp"] is not None
    X = LandmarkInput.from_cohort(simulated, [365.0])
    pd.testing.assert_frame_equal(back.transform(X), est.transform(X))


def test_a_featurizer_pickled_before_the_stage_loads_without_it(simulated: Cohort) -> None:
    est = LandmarkFeatures.from_manifest(simulated.manifest).fit(
        LandmarkInput.from_cohort(simulated, [0.0])
    )
    state = dict(est.__getstate__())  # a copy: it may be the object's own __dict__
    del state["mixed"], state["mixed_"]
    old = LandmarkFeatures.__new__(LandmarkFeatures)
    old.__setstate__(state)
    X = LandmarkInput.from_cohort(simulated, [365.0])
    pd.testing.assert_frame_equal(old.transform(X), est.transform(X))
    assert old.get_params()["mixed"] is False


def test_without_the_stage_there_are_no_mixed_columns(simulated: Cohort) -> None:
    est = LandmarkFeatures.from_manifest(simulated.manifest).fit(
        LandmarkInput.from_cohort(simulated, [0.0])
    )
    assert est.mixed_names() == []
    assert not any(s in n for n in est.get_feature_names_out() for s in MIXED_STATS)


def test_a_marker_with_too_few_patients_gets_undefined_columns_not_an_error(
    cohort_factory: Callable[..., Cohort],
) -> None:
    cohort = cohort_factory(PATIENTS, AFP, OUTCOMES)  # afp: one patient; ctc_total: none
    est = LandmarkFeatures.from_manifest(cohort.manifest, mixed=True)
    got = est.fit_transform(LandmarkInput.from_cohort(cohort, [200.0]))
    assert est.mixed_ == {"ctc_total": None, "afp": None}
    assert got[est.mixed_names()].isna().all().all()


def test_mixed_must_be_a_bool(history: Cohort) -> None:
    with pytest.raises(TypeError, match="mixed must be True or False, got 'yes'"):
        LandmarkFeatures(mixed="yes").fit(LandmarkInput.from_cohort(history, [0.0]))  # type: ignore[arg-type]


def test_marker_stats_keeps_only_those_statistics_with_the_same_values(simulated: Cohort) -> None:
    points = LandmarkInput.from_cohort(simulated, [90.0, 365.0])
    full = LandmarkFeatures.from_manifest(simulated.manifest, mixed=True).fit(points)
    blup = LandmarkFeatures.from_manifest(
        simulated.manifest, mixed=True, marker_stats=("mm_level", "mm_slope")
    ).fit(points)
    names = list(blup.get_feature_names_out())
    per_marker = [n for n in names if n.endswith(("_mm_level", "_mm_slope"))]
    assert per_marker == [f"{m}_{s}" for m in full.markers_ for s in ("mm_level", "mm_slope")]
    assert [n for n in names if n.startswith(tuple(full.markers_))] == per_marker
    assert "age" in names and "landmark_day" in names
    pd.testing.assert_frame_equal(
        blup.transform(points), full.transform(points)[blup.transform(points).columns]
    )
    # the service's one-patient path gives the same columns
    pid = simulated.patients[PATIENT_ID].iloc[0]
    mine = simulated.measurements[simulated.measurements[PATIENT_ID] == pid]
    got = blup.features_at(
        day=mine[DAY].to_numpy(),
        marker=mine[MARKER].to_numpy(),
        value=mine[VALUE].to_numpy(),
        below=(mine[QUALIFIER] == "<").to_numpy(),
        covariates={c: simulated.patients.iloc[0][c] for c in simulated.manifest.covariates},
        landmark_day=365.0,
    )
    assert len(got) == len(names)


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        (
            {"marker_stats": ("mm_level", "bogus")},
            ValueError,
            r"unknown marker statistic\(s\) \['bogus'\]",
        ),
        ({"marker_stats": ("mm_level",), "mixed": False}, ValueError, r"\['mm_level'\]"),
        ({"marker_stats": "mm_level"}, TypeError, "marker_stats must be a non-empty tuple"),
    ],
)
def test_bad_marker_stats_are_refused(
    history: Cohort, params: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        LandmarkFeatures(**{"mixed": True, **params}).fit(LandmarkInput.from_cohort(history, [0.0]))
