"""Model names (as users type them in ``--models``) and the factory that builds them."""

from __future__ import annotations

from typing import Any

from models.base import SurvivalModel
from models.cox import BaselineModel, CoxModel
from models.trees import GradientBoostingModel, RandomSurvivalForestModel
from models.xgb import XGBAFTModel, XGBCoxModel

_MODELS: dict[str, type[SurvivalModel]] = {
    cls.model_name: cls
    for cls in (
        CoxModel,
        RandomSurvivalForestModel,
        GradientBoostingModel,
        XGBCoxModel,
        XGBAFTModel,
        BaselineModel,
    )
}
MODEL_NAMES: tuple[str, ...] = tuple(_MODELS)


def make_model(name: str, **params: Any) -> SurvivalModel:
    """A new, unfitted model by name; ``params`` go to its keyword-only ``__init__``."""
    if not isinstance(name, str):
        raise TypeError(f"model name must be a str, got {name!r}")
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}")
    return _MODELS[name](**params)
