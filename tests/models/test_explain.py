"""Drivers: the features that move one patient's risk most."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from models import MODEL_NAMES, drivers


@pytest.fixture(scope="module")
def row_and_reference(test_data):
    X = test_data[0]
    row = X.iloc[[0]].assign(ctc_total_last=3.0, afp_log_slope=-2.0, microvascular_invasion=1.0)
    return row, X.mean()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_drivers_name_features_with_their_value_and_direction(name, fitted, row_and_reference):
    row, reference = row_and_reference
    found = drivers(fitted[name], row, reference, top=3)
    assert 1 <= len(found) <= 3
    for item in found:
        assert set(item) == {"feature", "value", "effect"}
        assert item["effect"] in ("raises", "lowers")
        assert item["value"] == pytest.approx(row[item["feature"]].iloc[0])


@pytest.mark.parametrize("name", ["cox", "rsf", "gbsa", "xgb_cox", "xgb_aft"])
def test_a_very_high_ctc_count_is_a_driver_that_raises_risk(name, fitted, row_and_reference):
    row, reference = row_and_reference
    found = {d["feature"]: d["effect"] for d in drivers(fitted[name], row, reference, top=3)}
    assert found.get("ctc_total_last") == "raises"


def test_linear_effects_are_coefficient_times_distance_from_reference(fitted, row_and_reference):
    model = fitted["cox"]
    row, reference = row_and_reference
    scale = model.pipeline_.named_steps["scale"].scale_
    expected = model.coef_ / scale * (row.to_numpy()[0] - reference.to_numpy())
    effects = model.contributions(row, reference.to_frame().T)
    np.testing.assert_allclose(effects, expected, rtol=1e-9, atol=1e-12)
    ranked = [d["feature"] for d in drivers(model, row, reference, top=6)]
    nonzero = np.flatnonzero(expected)
    assert ranked == [row.columns[j] for j in nonzero[np.argsort(-np.abs(expected[nonzero]))]]


def test_baseline_drivers_never_name_a_marker(fitted, row_and_reference, truth):
    row, reference = row_and_reference
    found = drivers(fitted["baseline"], row, reference, top=6)
    assert found and not {d["feature"] for d in found} & set(truth.markers)


def test_xgboost_effects_are_shap_values_that_add_up_to_the_margin(fitted, row_and_reference):
    model = fitted["xgb_cox"]
    row, reference = row_and_reference
    effects = model.contributions(row, reference)
    full = model.booster_.predict(xgb.DMatrix(row.to_numpy()), pred_contribs=True)[0]
    np.testing.assert_allclose(effects.sum() + full[-1], model.predict(row)[0], rtol=1e-5)


def test_a_missing_value_is_reported_as_none(fitted, row_and_reference):
    row, reference = row_and_reference
    found = drivers(fitted["cox"], row.assign(ctc_total_last=np.nan), reference, top=6)
    values = {d["feature"]: d["value"] for d in found}
    # imputed to the training median, which differs from the mean: a small, named effect
    assert values["ctc_total_last"] is None


def test_drivers_accept_a_dict_row_and_a_series_reference(fitted, row_and_reference):
    row, reference = row_and_reference
    as_dict = row.iloc[0].to_dict()
    assert drivers(fitted["cox"], as_dict, reference) == drivers(fitted["cox"], row, reference)


def test_drivers_refuse_more_than_one_row(fitted, test_data):
    X = test_data[0]
    with pytest.raises(ValueError, match="X_row must hold exactly one row, got 2"):
        drivers(fitted["cox"], X.head(2), X.mean())


def test_drivers_refuse_a_reference_lacking_features(fitted, row_and_reference):
    row, reference = row_and_reference
    with pytest.raises(ValueError, match=r"reference lacks the model's features \['age'\]"):
        drivers(fitted["cox"], row, reference.drop("age"))


@pytest.mark.parametrize("top", [0, 2.5, True])
def test_drivers_refuse_a_top_that_is_not_a_positive_integer(top, fitted, row_and_reference):
    with pytest.raises(ValueError, match="top must be an integer >= 1"):
        drivers(fitted["cox"], *row_and_reference, top=top)


def test_drivers_refuse_something_that_is_not_a_model(row_and_reference):
    with pytest.raises(TypeError, match="must be a fitted ctcmon SurvivalModel"):
        drivers(object(), *row_and_reference)  # type: ignore[arg-type]


def test_drivers_refuse_a_row_that_is_not_tabular(fitted, row_and_reference):
    with pytest.raises(TypeError, match="X_row must be a one-row DataFrame"):
        drivers(fitted["cox"], [1.0, 2.0], row_and_reference[1])
