"""The stack: a mixture of fitted models' survival curves with weights per band of days."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sksurv.util import Surv

from cohort.vocabulary import LANDMARK_DAY
from models.cox import BaselineModel, CoxModel
from models.stack import StackModel, check_weights
from models.xgb import XGBCoxModel


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(4)
    n = 300
    X = pd.DataFrame(
        {
            LANDMARK_DAY: rng.choice([10.0, 100.0, 400.0, 900.0], n),
            "age": rng.normal(60, 8, n),
            "ctc_total_last": rng.poisson(2, n).astype(float),
        }
    )
    hazard = np.exp(0.4 * X["ctc_total_last"] + 0.02 * (X["age"] - 60))
    time = rng.exponential(500 / hazard)
    censor = rng.uniform(50, 1500, n)
    return X, Surv.from_arrays(time <= censor, np.minimum(time, censor))


@pytest.fixture(scope="module")
def fitted(data: tuple[pd.DataFrame, np.ndarray]) -> list[tuple[str, object]]:
    X, y = data
    return [
        ("cox", CoxModel().fit(X, y)),
        ("xgb_cox", XGBCoxModel(n_estimators=20).fit(X, y)),
        ("baseline", BaselineModel(columns=["age"]).fit(X, y)),
    ]


EDGES = [30.0, 182.625, 365.25, 730.5]
TIMES = [30.0, 180.0, 365.0, 730.0]


def test_a_stack_of_one_model_is_that_model(data, fitted) -> None:
    X, _ = data
    name, cox = fitted[0]
    stack = StackModel.of_fitted([(name, cox)], EDGES, np.ones((5, 1)), 365.0)
    np.testing.assert_allclose(stack.predict_survival(X, TIMES), cox.predict_survival(X, TIMES))
    np.testing.assert_allclose(stack.predict_risk(X, [365.0])[:, 0], stack.predict(X))


def test_each_band_mixes_the_models_with_its_own_weights(data, fitted) -> None:
    X, _ = data
    w = np.array([[1, 0, 0], [0, 1, 0], [0.5, 0.5, 0], [0.2, 0.3, 0.5], [0, 0, 1]], dtype=float)
    stack = StackModel.of_fitted(fitted, EDGES, w, 365.0)
    surv = stack.predict_survival(X, TIMES)
    each = np.stack([m.predict_survival(X, TIMES) for _, m in fitted])  # (model, row, time)
    band = np.searchsorted(EDGES, X[LANDMARK_DAY].to_numpy(), side="left")
    expected = np.einsum("rm,mrt->rt", w[band], each)
    np.testing.assert_allclose(surv, expected, atol=1e-12)
    assert ((surv >= 0) & (surv <= 1)).all() and (np.diff(surv, axis=1) <= 1e-12).all()


def test_served_survival_and_drivers_match_the_plain_predictions(data, fitted) -> None:
    X, _ = data
    w = np.array([[0.3, 0.7, 0.0]] * 5)
    stack = StackModel.of_fitted(fitted, EDGES, w, 365.0)
    x = X.iloc[:1].to_numpy()
    ref = X.median().to_numpy()[None, :]
    surv, effects = stack.survival_and_contributions(x, ref, [365.0, 180.0])
    np.testing.assert_allclose(surv, stack.predict_survival_matrix(x, [365.0, 180.0]))
    np.testing.assert_allclose(effects, stack.contributions_matrix(x, ref), atol=1e-12)
    # the drivers are those of the model with the largest weight (xgb_cox: its tree SHAP)
    assert stack.lead_model(x) is fitted[1][1]
    np.testing.assert_allclose(effects, fitted[1][1].contributions_matrix(x, ref), atol=1e-12)


def test_models_without_weight_in_any_band_are_dropped(fitted) -> None:
    w = np.array([[0.5, 0.5, 0.0]] * 5)
    stack = StackModel.of_fitted(fitted, EDGES, w, 365.0)
    assert stack.names_ == ["cox", "xgb_cox"]
    assert stack.weight_table(["a", "b", "c", "d", "e"]).shape == (5, 2)


def test_fit_refits_the_base_models_and_keeps_the_weights(data, fitted) -> None:
    X, y = data
    stack = StackModel(models=fitted[:2], band_edges=EDGES, weights=[[0.5, 0.5]] * 5)
    stack.fit(X, y)
    assert stack.models_[0] is not fitted[0][1]
    np.testing.assert_allclose(stack.weights_, 0.5)
    surv = stack.predict_survival(X, TIMES)
    expected = 0.5 * (
        fitted[0][1].predict_survival(X, TIMES) + fitted[1][1].predict_survival(X, TIMES)
    )
    np.testing.assert_allclose(surv, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([[0.5, 0.6]], "must sum to 1"),
        ([[1.2, -0.2]], "must be finite and >= 0"),
        ([[0.5, 0.5], [0.5, 0.5]], "one row per band"),
        ([[np.nan, 1.0]], "must be finite"),
    ],
)
def test_bad_weights_are_refused(weights, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_weights(weights, 1, 2)


def test_models_fitted_on_other_columns_cannot_be_stacked(data, fitted) -> None:
    X, y = data
    other = CoxModel().fit(X[["age", "ctc_total_last"]], y)
    with pytest.raises(ValueError, match="same feature columns"):
        StackModel.of_fitted([fitted[0], ("other", other)], [], [[0.5, 0.5]], 365.0)


def test_a_stack_without_models_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one base model"):
        StackModel.of_fitted([], [], np.ones((1, 0)), 365.0)


def test_unsorted_band_edges_are_refused(fitted) -> None:
    with pytest.raises(ValueError, match="band_edges must be increasing"):
        StackModel.of_fitted(fitted[:1], [100.0, 30.0], np.ones((3, 1)), 365.0)
