"""Per-landmark stacking: a weighted mix of several models' survival curves, by band of days.

``StackModel`` holds fitted base models and, for each band of days since index (the row's
``landmark_day``), non-negative weights summing to 1 over them. Its survival curve is the
mixture Σ_k w_bk S_k(t | x): a proper survival curve (in [0, 1], non-increasing), and its
risk at the horizon is the same mixture of the base models' risks, which is what the
weights were chosen on (``training.stacking``: an IPCW Brier score at the horizon on
out-of-fold predictions). Weights summing to 1, not at most 1: without an intercept a sum
below 1 would only shrink every risk towards 0.

A stack of one model is that model. Bases whose weight is 0 in every band are dropped at
packaging (they cost the service time and change nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
from sklearn.base import clone

from cohort.vocabulary import LANDMARK_DAY
from models.base import SurvivalModel, survival_by_kind

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

WEIGHT_TOLERANCE = 1e-6  # a solver's weights sum to 1 within this; below it a weight is 0


def check_weights(weights: Any, n_bands: int, n_models: int) -> FloatArray:
    """``weights`` as an (n_bands, n_models) array of non-negative rows summing to 1."""
    w = np.asarray(weights, dtype=float)
    if w.shape != (n_bands, n_models):
        raise ValueError(
            f"weights must have one row per band ({n_bands}) and one column per base model "
            f"({n_models}), got shape {w.shape}"
        )
    if not np.isfinite(w).all() or (w < -WEIGHT_TOLERANCE).any():
        raise ValueError(f"weights must be finite and >= 0, got {w.round(4).tolist()}")
    sums = w.sum(axis=1)
    if np.abs(sums - 1.0).max() > WEIGHT_TOLERANCE * 100:
        raise ValueError(f"each band's weights must sum to 1, got sums {sums.round(4).tolist()}")
    w = np.clip(w, 0.0, None)
    return np.asarray(w / w.sum(axis=1, keepdims=True), dtype=float)


class StackModel(SurvivalModel):
    """Non-negative weights per band of days since index over several survival models.

    ``models``: (name, model) pairs; ``band_edges``: the upper edges (days, increasing) of
    every band but the last, a row at day d falling in the first band whose edge is ≥ d
    (bands (−∞, e₀], (e₀, e₁], …, (e_last, ∞)); ``weights``: one row per band, one column per
    model, each row ≥ 0 summing to 1; ``horizon_days``: the horizon whose risk ``predict``
    returns (the risk score, higher = worse). Rows without a ``landmark_day`` feature all
    take the first band's weights.

    ``fit`` refits clones of the base models on ``X`` and keeps the weights (they are chosen
    outside, on out-of-fold predictions); ``of_fitted`` wraps models already fitted.
    """

    model_name = "stack"

    def __init__(
        self,
        *,
        models: Sequence[tuple[str, SurvivalModel]] = (),
        band_edges: Sequence[float] = (),
        weights: Sequence[Sequence[float]] = (),
        horizon_days: float = 365.0,
    ):
        self.models = models
        self.band_edges = band_edges
        self.weights = weights
        self.horizon_days = horizon_days

    @classmethod
    def of_fitted(
        cls,
        models: Sequence[tuple[str, SurvivalModel]],
        band_edges: Sequence[float],
        weights: Any,
        horizon_days: float,
    ) -> StackModel:
        """A fitted stack of already fitted models (sharing one feature list)."""
        stack = cls(
            models=list(models),
            band_edges=list(band_edges),
            weights=np.asarray(weights, dtype=float).tolist(),
            horizon_days=horizon_days,
        )
        stack._check_params()
        fitted = [m for _, m in stack.models]
        names = [list(getattr(m, "feature_names_in_", [])) for m in fitted]
        if any(n != names[0] for n in names):
            raise ValueError("the stacked models must be fitted on the same feature columns")
        stack.feature_names_in_ = np.asarray(names[0], dtype=object)
        stack.n_features_in_ = len(names[0])
        stack.max_time_ = float(max(m.max_time_ for m in fitted))
        stack._set_fitted(fitted)
        return stack

    def _check_params(self) -> None:
        if not self.models:
            raise ValueError("a stack needs at least one base model, got none")
        bad = [m for m in self.models if not (isinstance(m, tuple) and len(m) == 2)]
        if bad or not all(isinstance(m, SurvivalModel) for _, m in self.models):
            raise TypeError(f"models must be (name, SurvivalModel) pairs, got {self.models!r}")
        edges = np.asarray(self.band_edges, dtype=float)
        if edges.ndim != 1 or not np.isfinite(edges).all() or (np.diff(edges) <= 0).any():
            raise ValueError(f"band_edges must be increasing finite days, got {self.band_edges!r}")
        self.weights_ = check_weights(self.weights, len(edges) + 1, len(self.models))
        if not self.horizon_days > 0:
            raise ValueError(f"horizon_days must be > 0, got {self.horizon_days!r}")

    def _set_fitted(self, fitted: list[SurvivalModel]) -> None:
        used = self.weights_.max(axis=0) > WEIGHT_TOLERANCE
        self.names_ = [name for (name, _), u in zip(self.models, used, strict=True) if u]
        self.models_ = [m for m, u in zip(fitted, used, strict=True) if u]
        self.weights_ = check_weights(self.weights_[:, used], self.weights_.shape[0], sum(used))
        names = list(self.feature_names_in_)
        self.day_column_ = names.index(LANDMARK_DAY) if LANDMARK_DAY in names else None

    def _fit(self, X: FloatArray, event: np.ndarray, time: FloatArray) -> None:
        self._check_params()
        frame = pd.DataFrame(X, columns=list(self.feature_names_in_))
        y = np.empty(len(time), dtype=[("event", bool), ("time", float)])
        y["event"], y["time"] = event, time
        self._set_fitted([clone(m).fit(frame, y, groups=self._groups) for _, m in self.models])

    def bands_of(self, X: FloatArray) -> np.ndarray:
        """Each row's band index (by its ``landmark_day``; 0 without one)."""
        if self.day_column_ is None:
            return np.zeros(len(X), dtype=int)
        day = np.nan_to_num(X[:, self.day_column_], nan=0.0)
        return np.searchsorted(np.asarray(self.band_edges, dtype=float), day, side="left")

    def _mixture(self, X: FloatArray, times: Any) -> FloatArray:
        w = self.weights_[self.bands_of(X)]  # (n, k)
        out = np.zeros((len(X), len(np.atleast_1d(times))))
        for j, model in enumerate(self.models_):
            rows = w[:, j] > 0
            if rows.any():
                out[rows] += w[rows, j, None] * model.predict_survival_matrix(X[rows], times)
        return out

    @classmethod
    def _survival_of_each(
        cls, models: Sequence[SurvivalModel], X: FloatArray, times: list[FloatArray]
    ) -> list[FloatArray]:
        """Each stack's mixture, every base model of every stack asked in one
        ``survival_by_kind`` call (the risk interval's five fold stacks: their XGBoost
        boosters on one input, their forests walked together).

        Unlike ``_mixture`` a base model is asked for every row once any row gives it a
        weight (a weight of 0 adds 0): meant for the interval's one row, not for batches.
        """
        stacks = cast(list[StackModel], list(models))
        weights = [s.weights_[s.bands_of(X)] for s in stacks]  # each (n, k)
        used = [(i, j) for i, w in enumerate(weights) for j in np.flatnonzero(w.max(axis=0) > 0)]
        survival = survival_by_kind(
            [stacks[i].models_[j] for i, j in used], X, [times[i] for i, _ in used]
        )
        out = [np.zeros((len(X), len(t))) for t in times]
        for (i, j), s in zip(used, survival, strict=True):
            out[i] += weights[i][:, j, None] * s
        return out

    def _risk(self, X: FloatArray) -> FloatArray:
        return 1.0 - self._mixture(X, [self.horizon_days])[:, 0]

    def answers(self, times: Any) -> bool:
        return all(m.answers(times) for m in self.models_)

    def _survival(self, X: FloatArray, times: FloatArray) -> FloatArray:
        return self._mixture(X, times)

    def lead_model(self, x: FloatArray) -> SurvivalModel:
        """The model with the largest weight in the band of the one-row ``x``."""
        return self.models_[int(np.argmax(self.weights_[self.bands_of(x)[0]]))]

    def contributions_matrix(self, x: FloatArray, ref: FloatArray) -> FloatArray:
        """The explanation of the model with the largest weight in this row's band, on its own
        scale (tree SHAP for the XGBoost models, one-at-a-time effects otherwise).

        Not the stack's own one-at-a-time effects: those cost every base model a pass over a
        batch of one row per feature (about 35 ms for five models on 75 features, against a
        15 ms budget per assessment), and the leading model carries most of the weight.
        """
        x = self._check_matrix(x)
        return self.lead_model(x).contributions_matrix(x, self._check_matrix(ref))

    def survival_and_contributions(
        self, x: FloatArray, ref: FloatArray, times: Any
    ) -> tuple[FloatArray, FloatArray]:
        """The mixture's survival (one row per base model) and the leading model's effects,
        the leading model's survival and effects in one pass, the others' by kind
        (``survival_by_kind``)."""
        x, ref = self._check_matrix(x), self._check_matrix(ref)
        w = self.weights_[self.bands_of(x)[0]]
        lead = int(np.argmax(w))
        held = np.minimum(np.atleast_1d(np.asarray(times, dtype=float)), self.max_time_)
        surv, effects = self.models_[lead].survival_and_contributions(x, ref, held)
        surv = w[lead] * surv
        others = [j for j in range(len(self.models_)) if j != lead and w[j] > 0]
        answers = survival_by_kind([self.models_[j] for j in others], x, [held] * len(others))
        for j, answer in zip(others, answers, strict=True):
            surv = surv + w[j] * answer
        return np.clip(surv, 0.0, 1.0), effects

    def weight_table(self, band_names: Sequence[str]) -> pd.DataFrame:
        """One row per band (named by ``band_names``), one column per base model kept."""
        return pd.DataFrame(
            self.weights_, index=pd.Index(list(band_names), name="band"), columns=self.names_
        )
