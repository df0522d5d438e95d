"""Static covariates: a categorical covariate with too many levels is refused with the fix."""

from __future__ import annotations

import pandas as pd
import pytest

from features.covariates import MAX_LEVELS, learn_levels


def test_an_identifier_declared_categorical_is_refused_with_its_level_count_and_the_fix() -> None:
    patients = pd.DataFrame({"mrn": [f"MRN{k:04d}" for k in range(120)], "sex": ["F", "M"] * 60})
    with pytest.raises(ValueError, match=r"'mrn' has 120 levels .*more than 50.*\[covariates\]"):
        learn_levels(patients, {"mrn": "categorical", "sex": "categorical"})


def test_up_to_the_limit_every_level_is_kept() -> None:
    patients = pd.DataFrame({"centre": [f"c{k:02d}" for k in range(MAX_LEVELS)]})
    assert len(learn_levels(patients, {"centre": "categorical"})["centre"]) == MAX_LEVELS
