"""ctcmon's survival models behind one interface (see :mod:`models.base`)."""

from models.base import SurvivalModel
from models.explain import drivers
from models.registry import MODEL_NAMES, make_model

__all__ = ["MODEL_NAMES", "SurvivalModel", "drivers", "make_model"]
