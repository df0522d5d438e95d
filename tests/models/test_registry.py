"""Model names as users type them, and the factory."""

from __future__ import annotations

import pytest

from models import MODEL_NAMES, SurvivalModel, make_model


def test_every_name_promised_to_users_is_available():
    # shared/interfaces.md: cox, rsf, gbsa, xgb_cox, xgb_aft and baseline
    assert set(MODEL_NAMES) >= {"cox", "rsf", "gbsa", "xgb_cox", "xgb_aft", "baseline"}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_make_model_builds_an_unfitted_model_of_that_name(name):
    model = make_model(name)
    assert isinstance(model, SurvivalModel)
    assert model.model_name == name
    assert not hasattr(model, "feature_names_in_")


def test_make_model_passes_parameters_through():
    assert make_model("rsf", n_estimators=7).n_estimators == 7


def test_make_model_refuses_an_unknown_name_listing_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown model 'deepsurv'; expected one of cox, rsf"):
        make_model("deepsurv")


def test_make_model_refuses_a_name_that_is_not_a_string():
    with pytest.raises(TypeError, match="model name must be a str, got 3"):
        make_model(3)  # type: ignore[arg-type]


def test_make_model_refuses_an_unknown_parameter():
    with pytest.raises(TypeError, match="n_trees"):
        make_model("rsf", n_trees=10)


def test_hyperparameters_are_keyword_only():
    from models.cox import CoxModel

    with pytest.raises(TypeError):
        CoxModel(0.1)  # type: ignore[misc]
