"""Synthetic landmark-style survival data with a known linear log hazard, and fitted models."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sksurv.util import Surv

from cohort.vocabulary import LANDMARK_DAY
from models import MODEL_NAMES, SurvivalModel, make_model

# True log hazard ratio per feature; landmark_day and sex_M carry no signal.
TRUE_LOG_HR = {
    LANDMARK_DAY: 0.0,
    "age": 0.4,
    "microvascular_invasion": 0.9,
    "sex_M": 0.0,
    "ctc_total_last": 0.8,
    "afp_log_slope": 0.5,
}
MARKER_COLUMNS = ["ctc_total_last", "afp_log_slope"]
COVARIATE_COLUMNS = [c for c in TRUE_LOG_HR if c not in MARKER_COLUMNS]
BASE_HAZARD_PER_DAY = 1 / 900

# Smaller ensembles and one thread keep the suite fast on a busy machine; the defaults are
# exercised by the benchmark (see the report), not by unit tests.
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "rsf": {"n_estimators": 40, "n_jobs": 1},
    "gbsa": {"n_estimators": 100},
    "xgb_cox": {"nthread": 1},
    "xgb_aft": {"nthread": 1},
}


def simulate(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Exponential event times with the log hazard above, uniform censoring to 1,500 days."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            LANDMARK_DAY: rng.choice([0.0, 90.0, 180.0, 365.0], n),
            "age": rng.normal(0, 1, n),
            "microvascular_invasion": rng.binomial(1, 0.4, n).astype(float),
            "sex_M": rng.binomial(1, 0.7, n).astype(float),
            "ctc_total_last": rng.normal(0, 1, n),
            "afp_log_slope": rng.normal(0, 1, n),
        }
    )
    log_hr = X.to_numpy() @ np.array(list(TRUE_LOG_HR.values()))
    event_time = rng.exponential(1 / (BASE_HAZARD_PER_DAY * np.exp(log_hr)))
    censor_time = rng.uniform(30, 1500, n)
    time = np.ceil(np.minimum(event_time, censor_time))
    return X, Surv.from_arrays(event=event_time <= censor_time, time=time)


@dataclass(frozen=True)
class Truth:
    """What the simulation knows: effects, column roles, and a way to draw more data."""

    log_hr: dict[str, float]
    markers: list[str]
    covariates: list[str]
    simulate: Callable[[int, int], tuple[pd.DataFrame, np.ndarray]]


@pytest.fixture(scope="session")
def truth() -> Truth:
    return Truth(TRUE_LOG_HR, MARKER_COLUMNS, COVARIATE_COLUMNS, simulate)


@pytest.fixture(scope="session")
def train() -> tuple[pd.DataFrame, np.ndarray]:
    return simulate(400, seed=1)


@pytest.fixture(scope="session")
def test_data() -> tuple[pd.DataFrame, np.ndarray]:
    return simulate(1000, seed=2)


@pytest.fixture(scope="session")
def new_model() -> Callable[[str], SurvivalModel]:
    """A fresh, test-sized model by name."""
    return lambda name: make_model(name, **FAST_PARAMS.get(name, {}))


@pytest.fixture(scope="session")
def fitted(
    train: tuple[pd.DataFrame, np.ndarray], new_model: Callable[[str], SurvivalModel]
) -> dict[str, SurvivalModel]:
    """Every model fitted once on the training data (read-only for the tests)."""
    X, y = train
    return {name: new_model(name).fit(X, y) for name in MODEL_NAMES}
