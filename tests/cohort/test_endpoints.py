from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cohort.endpoints import derive_endpoint

# days since index: p1 recurs then dies, p2 progresses, p3 dies without recurrence, p4 censored
OUTCOMES = pd.DataFrame(
    {
        "patient_id": ["p1", "p2", "p3", "p4"],
        "last_followup_day": [900.0, 800.0, 300.0, 1000.0],
        "recurrence_day": [200.0, np.nan, np.nan, np.nan],
        "progression_day": [np.nan, 400.0, np.nan, np.nan],
        "death_day": [900.0, np.nan, 300.0, np.nan],
    }
)


@pytest.mark.parametrize(
    ("endpoint", "times", "events"),
    [
        ("rfs", [200, 800, 300, 1000], [1, 0, 1, 0]),
        ("pfs", [900, 400, 300, 1000], [1, 1, 1, 0]),
        ("os", [900, 800, 300, 1000], [1, 0, 1, 0]),
    ],
)
def test_endpoints_take_the_first_event_and_censor_at_last_followup(
    endpoint: str, times: list[float], events: list[int]
) -> None:
    ep = derive_endpoint(OUTCOMES, endpoint)
    assert ep["time"].tolist() == times
    assert ep["event"].tolist() == events


def test_a_horizon_censors_administratively() -> None:
    ep = derive_endpoint(OUTCOMES, "os", horizon_days=500)
    assert ep["time"].tolist() == [500, 500, 300, 500]
    assert ep["event"].tolist() == [0, 0, 1, 0]


def test_an_event_exactly_at_the_horizon_counts() -> None:
    ep = derive_endpoint(OUTCOMES, "rfs", horizon_days=200)
    assert ep.loc[0, "event"] == 1 and ep.loc[0, "time"] == 200


def test_unknown_endpoints_and_bad_horizons_are_refused() -> None:
    with pytest.raises(ValueError, match=r"endpoint must be one of .* got 'dfs'"):
        derive_endpoint(OUTCOMES, "dfs")
    with pytest.raises(ValueError, match="horizon_days must be > 0, got -1"):
        derive_endpoint(OUTCOMES, "rfs", horizon_days=-1)


def test_the_callers_frame_is_not_modified() -> None:
    before = OUTCOMES.copy()
    derive_endpoint(OUTCOMES, "rfs", horizon_days=100)
    pd.testing.assert_frame_equal(OUTCOMES, before)
