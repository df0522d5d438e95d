"""Why a patient's risk is what it is: the few features that move it most.

Effects are on each model's risk score (a log hazard ratio for the Cox-type models):

- ``cox``, ``baseline``, ``rsf``, ``gbsa``: risk(x) − risk(x with feature j set to its
  ``reference`` value), one feature at a time, in one batched predict. For the linear models
  this is exactly coefficient × (x_j − reference_j) on the model's scale (standardisation
  and imputation included); for the forests it is an honest local sensitivity, not SHAP.
- ``xgb_cox``, ``xgb_aft``: exact tree SHAP values from XGBoost (``pred_contribs``), relative
  to the training population; ``reference`` is not used by them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from models.base import SurvivalModel


def _check_row(row: Any, what: str) -> pd.DataFrame:
    if isinstance(row, pd.Series):
        row = row.to_frame().T
    elif isinstance(row, Mapping):
        row = pd.DataFrame([dict(row)])
    if not isinstance(row, pd.DataFrame):
        raise TypeError(
            f"{what} must be a one-row DataFrame, a Series or a dict, got {type(row)!r}"
        )
    if len(row) != 1:
        raise ValueError(f"{what} must hold exactly one row, got {len(row)}")
    return row.infer_objects()


def _select(row: pd.DataFrame, names: list[str], what: str) -> pd.DataFrame:
    missing = [c for c in names if c not in row.columns]
    if missing:
        raise ValueError(f"{what} lacks the model's features {missing}")
    return row[names].astype(float)


def drivers(
    model: SurvivalModel, X_row: Any, reference: Any, *, top: int = 3
) -> list[dict[str, Any]]:
    """The ``top`` features with the largest effect on this row's risk, largest first.

    Each item is ``{"feature", "value", "effect"}`` with effect ``"raises"`` or ``"lowers"``
    (versus ``reference``); ``value`` is the row's value, None when missing. Features with
    no effect are left out, so fewer than ``top`` items may come back.
    """
    if not isinstance(model, SurvivalModel):
        raise TypeError(f"model must be a fitted ctcmon SurvivalModel, got {type(model)!r}")
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be an integer >= 1, got {top!r}")
    names = [str(c) for c in getattr(model, "feature_names_in_", [])]
    row = _select(_check_row(X_row, "X_row"), names, "X_row")
    ref = _select(_check_row(reference, "reference"), names, "reference")
    return drivers_matrix(model, row.to_numpy(), ref.to_numpy(), top=top)


def drivers_matrix(
    model: SurvivalModel, x: np.ndarray, reference: np.ndarray, *, top: int = 3
) -> list[dict[str, Any]]:
    """``drivers`` for one-row float matrices in the model's ``feature_names_in_`` order."""
    return top_effects(model, x, model.contributions_matrix(x, reference), top=top)


def top_effects(
    model: SurvivalModel, x: np.ndarray, effects: np.ndarray, *, top: int = 3
) -> list[dict[str, Any]]:
    """The ``top`` largest of ``effects`` (from ``model.contributions_matrix`` on row ``x``)."""
    names = [str(c) for c in model.feature_names_in_]
    return _top_effects(names, np.asarray(x, dtype=float)[0], effects, top)


def _top_effects(
    names: list[str], values: np.ndarray, effects: np.ndarray, top: int
) -> list[dict[str, Any]]:
    order = np.argsort(-np.abs(np.nan_to_num(effects, nan=0.0)), kind="stable")
    chosen = [j for j in order if np.isfinite(effects[j]) and effects[j] != 0][:top]
    return [
        {
            "feature": names[j],
            "value": None if math.isnan(values[j]) else float(values[j]),
            "effect": "raises" if effects[j] > 0 else "lowers",
        }
        for j in chosen
    ]
