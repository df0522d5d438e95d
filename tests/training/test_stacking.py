"""The stack's weights: a proper score on out-of-fold risks, fold k's weights blind to fold k."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cohort.vocabulary import (
    EVENT,
    EVENT_FULL,
    FOLD,
    LANDMARK_DAY,
    PATIENT_ID,
    RESIDUAL_TIME,
    RESIDUAL_TIME_FULL,
)
from training.evaluate import OOF_RISK, OOF_SURV, CVResult, _ibs_grid
from training.metrics import brier
from training.stacking import (
    BAND_NAMES,
    MIN_BAND_EVENTS,
    POOLED,
    brier_targets,
    packaged_weights,
    simplex_weights,
    stack_groups,
    stacked_cv,
)

HORIZON = 365.0
LANDMARKS = (30.0, 120.0, 300.0, 500.0, 900.0)


def _bases(seed: int = 0, n_patients: int = 240) -> list[CVResult]:
    """Two models' out-of-fold rows on one simulated landmark table (3 folds)."""
    rng = np.random.default_rng(seed)
    ids = np.repeat([f"p{i}" for i in range(n_patients)], len(LANDMARKS))
    day = np.tile(LANDMARKS, n_patients)
    frailty = np.repeat(rng.gamma(2.0, 0.5, n_patients), len(LANDMARKS))
    t = rng.exponential(700 / frailty)
    c = rng.uniform(100, 1500, len(t))
    oof = pd.DataFrame(
        {
            PATIENT_ID: ids,
            LANDMARK_DAY: day,
            RESIDUAL_TIME_FULL: np.minimum(t, c),
            EVENT_FULL: (t <= c).astype(int),
            FOLD: np.repeat(rng.integers(1, 4, n_patients), len(LANDMARKS)),
        }
    )
    oof[RESIDUAL_TIME] = np.minimum(oof[RESIDUAL_TIME_FULL], HORIZON)
    oof[EVENT] = oof[EVENT_FULL] * (oof[RESIDUAL_TIME_FULL] <= HORIZON)
    grid = _ibs_grid(HORIZON)
    out = []
    for name, noise in (("good", 0.2), ("noisy", 1.5)):
        rate = frailty * np.exp(rng.normal(0, noise, len(t))) / 700
        risk = 1 - np.exp(-rate * HORIZON)
        frame = oof.assign(**{OOF_RISK: risk, OOF_SURV: 1 - risk})
        draws = frame[[PATIENT_ID, LANDMARK_DAY, OOF_RISK, FOLD]].copy()
        out.append(
            CVResult(
                name,
                HORIZON,
                frame,
                {},
                pd.DataFrame(),
                [],
                {},
                pd.DataFrame(),
                1.0,
                {},
                oof_draws=draws,
                oof_surv_grid=np.exp(-rate[:, None] * grid[None, :]),
            )
        )
    return out


def test_simplex_weights_are_non_negative_sum_to_one_and_find_a_true_mixture() -> None:
    rng = np.random.default_rng(1)
    risks = rng.uniform(0, 1, (500, 3))
    y = risks @ np.array([0.7, 0.0, 0.3])
    beta = simplex_weights(risks, y, np.ones(500))
    assert (beta >= 0).all() and beta.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(beta, [0.7, 0.0, 0.3], atol=1e-4)


def test_simplex_weights_never_go_negative_when_least_squares_would() -> None:
    rng = np.random.default_rng(2)
    risks = rng.uniform(0, 1, (400, 2))
    y = 1.5 * risks[:, 0] - 0.5 * risks[:, 1]  # unconstrained solution (1.5, -0.5)
    beta = simplex_weights(risks, y, np.ones(400))
    np.testing.assert_allclose(beta, [1.0, 0.0], atol=1e-6)


def test_the_ipcw_targets_reproduce_scikit_survival_s_brier_score() -> None:
    rng = np.random.default_rng(3)
    t, c = rng.exponential(500, 800), rng.uniform(50, 1200, 800)
    time, event = np.minimum(t, c), t <= c
    risk = rng.uniform(0, 1, 800)
    y, w = brier_targets(time, event, HORIZON)
    ours = float(np.sum(w * (y - risk) ** 2) / len(y))
    assert ours == pytest.approx(brier(time, event, 1 - risk, HORIZON), rel=1e-9)


def test_fold_k_stacked_risks_do_not_move_when_fold_k_labels_change() -> None:
    before = stacked_cv("stack", _bases(), n_boot=0)
    altered = _bases()
    for base in altered:
        k = base.oof[FOLD] == 2
        base.oof.loc[k, EVENT_FULL] = 1 - base.oof.loc[k, EVENT_FULL]
        base.oof.loc[k, RESIDUAL_TIME_FULL] = base.oof.loc[k, RESIDUAL_TIME_FULL][::-1].to_numpy()
    after = stacked_cv("stack", altered, n_boot=0)
    k = (before.oof[FOLD] == 2).to_numpy()
    np.testing.assert_array_equal(before.oof[OOF_RISK][k], after.oof[OOF_RISK][k])
    draws = (before.oof_draws[FOLD] == 2).to_numpy()
    np.testing.assert_array_equal(
        before.oof_draws[OOF_RISK][draws], after.oof_draws[OOF_RISK][draws]
    )
    # the other folds' weights did see fold 2's labels (the test can fail)
    assert not np.array_equal(before.oof[OOF_RISK][~k], after.oof[OOF_RISK][~k])


def test_the_stack_weighs_the_better_model_more_and_reports_weights_per_band() -> None:
    res = stacked_cv("stack", _bases(), n_boot=0)
    final = packaged_weights(res)
    assert list(final["band"]) == list(BAND_NAMES)
    w = final[["good", "noisy"]].to_numpy()
    assert (w >= 0).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    own = final["weights_from"] == "band"
    assert own.any() and (final.loc[own, "good"] > final.loc[own, "noisy"]).all()
    # one row per band for the packaged weights and for each fold's
    assert len(res.stack_weights) == len(BAND_NAMES) * 4
    assert np.isfinite(res.metrics["brier"]) and np.isfinite(res.metrics["integrated_brier"])


def test_a_band_with_few_events_takes_the_weights_of_every_band() -> None:
    res = stacked_cv("stack", _bases(n_patients=60), n_boot=0)
    final = packaged_weights(res)
    few = final["n_events"] < MIN_BAND_EVENTS
    assert few.any()
    assert (final.loc[few, "weights_from"] == POOLED).all()
    assert (final.loc[final["band"] == "d0_30", "n_rows"] == 60).all()


def test_a_stack_of_one_model_has_that_model_s_out_of_fold_risks() -> None:
    base = _bases()[:1]
    res = stacked_cv("stack", base, n_boot=0)
    np.testing.assert_allclose(res.oof[OOF_RISK], base[0].oof[OOF_RISK])


def test_models_scored_on_other_rows_are_not_stacked() -> None:
    a, b = _bases()
    b.oof = b.oof.iloc[::-1]
    with pytest.raises(ValueError, match="scored on other rows"):
        stacked_cv("stack", [a, b], n_boot=0)


def test_one_stack_per_feature_set_over_that_set_s_runs() -> None:
    assert stack_groups(["cox", "baseline"], ["summary"]) == {}
    assert stack_groups(["cox", "baseline", "stack"], ["summary"]) == {"stack": ["cox", "baseline"]}
    assert stack_groups(["cox", "baseline", "stack"], ["summary", "mixed"]) == {
        "stack/summary": ["cox/summary", "baseline"],
        "stack/mixed": ["cox/mixed"],
    }
    with pytest.raises(ValueError, match="name at least one besides 'stack'"):
        stack_groups(["stack"], ["summary"])
