"""Simulated landmark-style data from a known Weibull proportional-hazards model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from cohort.vocabulary import (
    EVENT,
    EVENT_FULL,
    LANDMARK_DAY,
    PATIENT_ID,
    RESIDUAL_TIME,
    RESIDUAL_TIME_FULL,
)

SHAPE, SCALE = 1.3, 900.0


def cumulative_baseline_hazard(t: float) -> float:
    return float((t / SCALE) ** SHAPE)


def simulate(
    n: int = 2000,
    *,
    beta: float = 0.8,
    seed: int = 1,
    horizon: float = 365.0,
    censor: tuple[float, float] | None = (100.0, 1500.0),
    landmark: float = 0.0,
) -> pd.DataFrame:
    """One landmark's rows: true risk ``risk`` at ``horizon`` and linear predictor ``lp``.

    Event times T follow a Weibull PH model, H(t | x) = (t/900)^1.3 · exp(0.8 x), so
    ``risk = 1 - exp(-H0(h) exp(lp))`` is perfectly calibrated. Censoring is uniform on
    ``censor`` (None: no censoring). ``residual_time``/``event`` are truncated at the horizon;
    ``residual_time_full``/``event_full`` are not.
    """
    rng = np.random.default_rng(seed)
    lp = beta * rng.normal(size=n)
    t_event = SCALE * (-np.log(rng.uniform(size=n)) / np.exp(lp)) ** (1 / SHAPE)
    t_censor = rng.uniform(*censor, size=n) if censor else np.full(n, np.inf)
    time = np.minimum(t_event, t_censor)
    event = t_event <= t_censor
    return pd.DataFrame(
        {
            PATIENT_ID: [f"p{i}" for i in range(n)],
            LANDMARK_DAY: landmark,
            RESIDUAL_TIME: np.minimum(time, horizon),
            EVENT: (event & (time <= horizon)).astype(int),
            RESIDUAL_TIME_FULL: time,
            EVENT_FULL: event.astype(int),
            "lp": lp,
            "risk": 1 - np.exp(-cumulative_baseline_hazard(horizon) * np.exp(lp)),
        }
    ).assign(surv=lambda d: 1 - d["risk"])


@pytest.fixture
def simulated() -> Callable[..., pd.DataFrame]:
    """Factory fixture: ``simulated(n=..., seed=..., censor=...)``."""
    return simulate


@pytest.fixture(scope="session")
def calibrated() -> pd.DataFrame:
    """2,000 patients, ~30% with an event within 365 days, true risk in column ``risk``."""
    return simulate()
