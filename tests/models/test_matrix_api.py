"""The matrix-level calls the service makes give what the frame-level API gives."""

from __future__ import annotations

import numpy as np
import pytest

from models.registry import MODEL_NAMES

TIMES = [30.0, 180.0, 365.0, 730.0, 1e6]  # the last one is past follow-up: held flat


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_survival_and_contributions_in_one_call_equal_the_separate_calls(name, fitted, test_data):
    model = fitted[name]
    X = test_data[0]
    row, reference = X.iloc[[3]], X.iloc[[0]]
    x, ref = row.to_numpy(dtype=float), reference.to_numpy(dtype=float)
    surv, effects = model.survival_and_contributions(x, ref, TIMES)
    np.testing.assert_allclose(surv, model.predict_survival(row, TIMES), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(effects, model.contributions(row, reference), rtol=1e-12, atol=1e-15)
    assert effects.shape == (X.shape[1],)


@pytest.mark.parametrize("name", ["cox", "xgb_aft"])
def test_a_matrix_of_the_wrong_width_is_refused(name, fitted, test_data):
    x = test_data[0].to_numpy(dtype=float)[:1, :-1]
    with pytest.raises(ValueError, match=r"columns \(feature_names_in_\), got shape \(1, "):
        fitted[name].predict_survival_matrix(x, [365.0])
