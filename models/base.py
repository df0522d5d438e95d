"""The one interface every ctcmon survival model follows, and the input checks they share.

A model is a scikit-learn estimator fitted on a feature frame ``X`` (numeric columns, NaN
allowed) and a scikit-survival outcome ``y`` (``Surv.from_arrays(event, time)``, time =
residual days from the landmark). It answers three questions:

- ``predict(X)``: a risk score, higher = worse (the scale is the model's own);
- ``predict_survival(X, times)``: absolute S(t | x), shape ``(n_samples, n_times)``;
- ``predict_risk(X, horizons)``: 1 − S(horizon | x).

Survival beyond follow-up: every model's curve is held flat after the longest residual
time seen in training (``max_time_``). No model has information past that point, and a
flat curve is the honest reading of a Kaplan–Meier-type estimate there; the parametric
AFT model would otherwise keep extrapolating its assumed distribution.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted
from sksurv.metrics import concordance_index_censored
from sksurv.util import Surv

from models.breslow import BreslowBaseline, fit_breslow, step_lookup

__all__ = [
    "MIN_TIME_DAYS",
    "ProportionalHazardsModel",
    "SurvivalModel",
    "check_groups",
    "check_survival_y",
    "check_times",
    "make_preprocessor",
    "step_lookup",
    "survival_by_kind",
    "to_surv",
]

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

# Residual times of 0 (an event on the landmark day) are moved to this many days: XGBoost's
# Cox label uses the sign for censoring (so −0 would read as an event) and the AFT model
# takes log(time).
MIN_TIME_DAYS = 1e-3


def _check_frame(X: Any) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame of numeric features, got {type(X)!r}")
    bad = [c for c in X.columns if not isinstance(c, str)]
    if bad:
        raise TypeError(f"X column names must be strings, got {bad!r}")
    not_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if not_numeric:
        raise TypeError(f"X columns must be numeric (one-hot encode categories), got {not_numeric}")
    return X


def _to_matrix(X: pd.DataFrame) -> FloatArray:
    values = X.to_numpy(dtype=float, na_value=np.nan)
    if np.isinf(values).any():
        cols = [c for c, bad in zip(X.columns, np.isinf(values).any(axis=0), strict=True) if bad]
        raise ValueError(f"X holds ±inf in columns {cols}; use NaN for a missing value")
    return values


def check_survival_y(y: Any, n_rows: int) -> tuple[np.ndarray, FloatArray]:
    """Split a scikit-survival structured array into (event: bool, time: float) after checks."""
    names = getattr(getattr(y, "dtype", None), "names", None)
    if not isinstance(y, np.ndarray) or names is None or len(names) != 2:
        raise TypeError(
            f"y must be a structured array from sksurv.util.Surv.from_arrays(event, time), "
            f"got {type(y)!r} with fields {names!r}"
        )
    event, time = y[names[0]].astype(bool), y[names[1]].astype(float)
    if len(y) != n_rows:
        raise ValueError(f"y has {len(y)} rows but X has {n_rows}")
    if not np.isfinite(time).all() or (time < 0).any():
        bad = time[~np.isfinite(time) | (time < 0)][:5]
        raise ValueError(f"y times must be finite and >= 0, got e.g. {bad.tolist()}")
    if not event.any():
        raise ValueError("y holds no event: every sample is censored, nothing to fit")
    return event, time


def check_groups(groups: Any, n_rows: int) -> np.ndarray | None:
    """``groups`` (one label per row, e.g. patient ids) as an array, or None."""
    if groups is None:
        return None
    arr = np.asarray(groups).ravel()
    if len(arr) != n_rows:
        raise ValueError(f"groups has {len(arr)} labels but X has {n_rows} rows")
    if pd.isna(pd.Series(arr)).any():
        raise ValueError("groups holds a missing label")
    return arr


def check_times(times: Any) -> FloatArray:
    """Evaluation times as a 1-D float array of finite, non-negative days."""
    arr = np.atleast_1d(np.asarray(times, dtype=float))
    if arr.ndim != 1:
        raise ValueError(f"times must be a scalar or 1-D, got shape {arr.shape}")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"times must be finite and >= 0 days, got {arr.tolist()}")
    return arr


def survival_by_kind(
    models: Sequence[SurvivalModel], matrix: Any, times: Sequence[Any]
) -> list[FloatArray]:
    """``models[i].predict_survival_matrix(matrix, times[i])`` for every model, the models
    of one kind in one ``survival_of_each`` call (one XGBoost input for every booster, the
    kept forests walked together): equal to asking each model in turn."""
    kinds: dict[Any, list[int]] = {}  # by implementation: both XGBoost models share one
    for i, model in enumerate(models):
        kinds.setdefault(type(model)._survival_of_each.__func__, []).append(i)  # type: ignore[attr-defined]
    out: list[FloatArray] = [np.empty(0)] * len(models)
    for at in kinds.values():
        kind = type(models[at[0]])
        answers = kind.survival_of_each([models[i] for i in at], matrix, [times[i] for i in at])
        for i, answer in zip(at, answers, strict=True):
            out[i] = answer
    return out


def _held_times(times: FloatArray, max_time: float) -> tuple[FloatArray, np.ndarray]:
    """``times`` held at ``max_time`` (flat beyond follow-up): their sorted unique values
    and where each time falls among them (read-only arrays).

    Remembered for the last few hundred (times, max_time) pairs: the service asks the same
    horizons of every model on every request, a stack's interval of some twenty models,
    where ``np.unique`` each time cost ~0.3 ms of the assessment (measured)."""
    key = (times.tobytes(), float(max_time))
    held = _HELD.get(key)
    if held is None:
        unique, inverse = np.unique(np.minimum(times, max_time), return_inverse=True)
        unique.flags.writeable = inverse.flags.writeable = False
        if len(_HELD) >= _HELD_SIZE:
            _HELD.clear()
        held = _HELD[key] = (unique, inverse)
    return held


_HELD: dict[tuple[bytes, float], tuple[FloatArray, np.ndarray]] = {}
_HELD_SIZE = 512


def _monotone_at(survival: FloatArray, inverse: np.ndarray) -> FloatArray:
    """Survival at the sorted unique times, clipped to [0, 1], non-increasing, at ``inverse``."""
    surv = np.clip(survival, 0.0, 1.0)
    # A guard against float round-off only: each model's curve is monotone by design.
    surv = np.minimum.accumulate(surv, axis=1)
    return np.asarray(surv[:, inverse], dtype=float)


def to_surv(event: np.ndarray, time: FloatArray) -> np.ndarray:
    """The structured ``y`` scikit-survival estimators expect."""
    return Surv.from_arrays(event=event, time=time)


def make_preprocessor(*, scale: bool) -> list[tuple[str, Any]]:
    """Median imputation with missing indicators (and standard scaling for linear models).

    ``keep_empty_features`` keeps a column that is all-NaN in training (imputed to 0), so the
    fitted column count never depends on which values happened to be missing.
    """
    steps: list[tuple[str, Any]] = [
        ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True))
    ]
    if scale:
        steps.append(("scale", StandardScaler()))
        # Marker values are heavy-tailed (AFP spans 2 to 10^5 ng/mL): a standardised value of
        # 100 overflows a Cox fit's exp(lp). Clipping at ±WINSOR_SD keeps the ordering that
        # matters clinically; the log-scale features carry the detail.
        steps.append(("winsorize", FunctionTransformer(winsorize)))
    return steps


WINSOR_SD = 5.0


def winsorize(X: FloatArray) -> FloatArray:
    """Clip standardised features to ±WINSOR_SD (module-level so fitted models pickle)."""
    return np.clip(X, -WINSOR_SD, WINSOR_SD)


class SurvivalModel(BaseEstimator, ABC):
    """Base of ctcmon's survival models: input checks here, the model in ``_fit``/``_risk``.

    Subclasses take their hyperparameters keyword-only in ``__init__`` and store them
    verbatim; they implement ``_fit(X, event, time)`` on a float matrix (NaN allowed),
    ``_risk(X)`` and ``_survival(X, times)`` for sorted unique ``times`` within follow-up.
    """

    model_name: ClassVar[str] = ""  # the name users type in --models (see registry)

    def fit(self, X: pd.DataFrame, y: np.ndarray, groups: Any = None) -> SurvivalModel:
        """Fit on ``X`` and ``y``. ``groups``: each row's patient, when a patient has several
        rows (landmarks, draw days); a model that tunes itself by an inner cross-validation
        (``cox``) splits by it, so no patient is on both sides. Other models ignore it."""
        frame = _check_frame(X)
        event, time = check_survival_y(y, len(frame))
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = len(frame.columns)
        self.max_time_ = float(time.max())
        self._groups = check_groups(groups, len(frame))
        try:
            self._fit(_to_matrix(frame), event, time)
        finally:
            self._groups = None  # only for this fit: never pickled with the model
        return self

    def tuned_params(self) -> dict[str, float]:
        """Hyperparameters the fit chose itself (e.g. ``cox``'s penalty by inner CV), for the
        run's records; empty for a model that chooses none."""
        return {}

    def predict(self, X: pd.DataFrame) -> FloatArray:
        """Risk score per row, higher = worse (a log hazard ratio for the Cox-type models)."""
        return np.asarray(self._risk(self._check_predict_input(X)), dtype=float)

    def predict_survival(self, X: pd.DataFrame, times: Any) -> FloatArray:
        """S(t | x) of shape ``(n_samples, n_times)``, in [0, 1], non-increasing in t.

        Times past ``max_time_`` get the value at ``max_time_`` (flat beyond follow-up).
        """
        return self.predict_survival_matrix(self._check_predict_input(X), times)

    def predict_survival_matrix(self, matrix: FloatArray, times: Any) -> FloatArray:
        """``predict_survival`` on a float matrix whose columns are ``feature_names_in_``.

        For callers that built the matrix themselves (the service scores one row per
        request, where checking a frame would cost more than the prediction).
        """
        matrix = self._check_matrix(matrix)
        return self._held_survival(lambda unique: self._survival(matrix, unique), times)

    def _held_survival(
        self, survival: Callable[[FloatArray], FloatArray], times: Any
    ) -> FloatArray:
        """``survival(sorted unique times)`` held flat past ``max_time_``, at ``times``."""
        unique, inverse = _held_times(check_times(times), self.max_time_)
        return _monotone_at(survival(unique), inverse)

    @classmethod
    def survival_of_each(
        cls, models: Sequence[SurvivalModel], matrix: Any, times: Sequence[Any]
    ) -> list[FloatArray]:
        """``models[i].predict_survival_matrix(matrix, times[i])`` for each of these models
        (all sharing this class's ``_survival_of_each``), the matrix checked once.

        For a few rows asked of many fitted models, the stack's fold models for its risk
        interval: ``_survival_of_each`` lets a kind answer all its models in one pass.
        """
        matrix = np.asarray(matrix, dtype=float)
        wrong = [m for m in models if getattr(m, "n_features_in_", None) != matrix.shape[-1]]
        if matrix.ndim != 2 or wrong:
            raise ValueError(
                f"expected a 2-D matrix with each fitted model's columns, got shape "
                f"{matrix.shape} for {len(wrong)} model(s) fitted on other columns or unfitted"
            )
        checked: dict[int, FloatArray] = {}  # each times object once (usually one for all)
        for t in times:
            if id(t) not in checked:
                checked[id(t)] = check_times(t)
        held = [
            _held_times(checked[id(t)], m.max_time_) for m, t in zip(models, times, strict=True)
        ]
        survival = cls._survival_of_each(models, matrix, [unique for unique, _ in held])
        return [_monotone_at(s, inverse) for s, (_, inverse) in zip(survival, held, strict=True)]

    @classmethod
    def _survival_of_each(
        cls, models: Sequence[SurvivalModel], X: FloatArray, times: list[FloatArray]
    ) -> list[FloatArray]:
        """Each model's ``_survival(X, times[i])``; overridden where a kind can do better."""
        return [m._survival(X, t) for m, t in zip(models, times, strict=True)]

    def for_times(self, times: Any) -> SurvivalModel:
        """A model answering ``predict_survival_matrix`` at these ``times`` exactly as this one
        does, possibly smaller (a fold model kept only for the risk intervals, which ask the
        serving horizons alone). This model itself unless a subclass can shed what those
        times do not need (the random survival forest: every node's whole curve)."""
        check_times(times)
        return self

    def answers(self, times: Any) -> bool:
        """Whether ``predict_survival_matrix`` answers at every one of ``times`` (a model kept
        at fixed times, ``for_times``, answers those only)."""
        check_times(times)
        return True

    def predict_risk(self, X: pd.DataFrame, horizons: Any) -> FloatArray:
        """Absolute risk of the event by each horizon, 1 − S(horizon | x)."""
        return 1.0 - self.predict_survival(X, horizons)

    def score(self, X: pd.DataFrame, y: np.ndarray) -> float:
        """Harrell's concordance index of ``predict(X)`` (what scikit-learn search maximises)."""
        event, time = check_survival_y(y, len(X))
        return float(concordance_index_censored(event, time, self.predict(X))[0])

    def contributions(self, X_row: pd.DataFrame, reference: pd.DataFrame) -> FloatArray:
        """Per-feature effect on the risk score of moving each feature from reference to x.

        Default: one-at-a-time perturbation, ``risk(x) − risk(x with feature j at reference)``
        — exact for additive (linear) models, a local approximation for trees. Boosted-tree
        models override this with their exact tree SHAP values.
        """
        if isinstance(reference, pd.Series):  # a population's summary row
            reference = reference.to_frame().T.infer_objects()
        return self.contributions_matrix(
            self._check_predict_input(X_row), self._check_predict_input(reference)
        )

    def contributions_matrix(self, x: FloatArray, ref: FloatArray) -> FloatArray:
        """``contributions`` on one-row float matrices in ``feature_names_in_`` order."""
        risk = self._risk(self._perturbed(x, ref))
        return np.asarray(risk[0] - risk[1:], dtype=float)

    def survival_and_contributions(
        self, x: FloatArray, ref: FloatArray, times: Any
    ) -> tuple[FloatArray, FloatArray]:
        """``predict_survival_matrix(x, times)`` and ``contributions_matrix(x, ref)`` together
        (one model pass where the model allows: what the service asks after every draw)."""
        return self.predict_survival_matrix(x, times), self.contributions_matrix(x, ref)

    def _perturbed(self, x: FloatArray, ref: FloatArray) -> FloatArray:
        """``x``, then one copy of ``x`` per feature with that feature set to ``ref``."""
        x, ref = self._check_matrix(x), self._check_matrix(ref)
        batch = np.repeat(x[:1], self.n_features_in_ + 1, axis=0)
        diag = np.arange(self.n_features_in_)
        batch[diag + 1, diag] = ref[0, diag]
        return batch

    def _check_predict_input(self, X: Any) -> FloatArray:
        check_is_fitted(self, "feature_names_in_")
        frame = _check_frame(X)
        expected = list(self.feature_names_in_)
        missing = [c for c in expected if c not in frame.columns]
        extra = [c for c in frame.columns if c not in set(expected)]
        if missing or extra:
            raise ValueError(
                f"X columns differ from those seen in fit: missing {missing}, unexpected {extra}"
            )
        return _to_matrix(frame[expected])

    def _check_matrix(self, matrix: Any) -> FloatArray:
        check_is_fitted(self, "feature_names_in_")
        arr = np.asarray(matrix, dtype=float)
        if arr.ndim != 2 or arr.shape[1] != self.n_features_in_:
            raise ValueError(
                f"expected a 2-D matrix with {self.n_features_in_} columns "
                f"(feature_names_in_), got shape {arr.shape}"
            )
        return arr

    @abstractmethod
    def _fit(self, X: FloatArray, event: np.ndarray, time: FloatArray) -> None: ...

    @abstractmethod
    def _risk(self, X: FloatArray) -> FloatArray: ...

    @abstractmethod
    def _survival(self, X: FloatArray, times: FloatArray) -> FloatArray: ...


class ProportionalHazardsModel(SurvivalModel):
    """A model whose score is a log hazard ratio, made absolute by a Breslow baseline.

    Subclasses implement ``_fit_margin`` and ``_margin``; the baseline cumulative hazard
    is estimated once, here, on the training margins (``baseline_``).
    """

    def _fit(self, X: FloatArray, event: np.ndarray, time: FloatArray) -> None:
        self._fit_margin(X, event, time)
        self.baseline_: BreslowBaseline = fit_breslow(self._margin(X), time, event)

    def _risk(self, X: FloatArray) -> FloatArray:
        return self._margin(X)

    def _survival(self, X: FloatArray, times: FloatArray) -> FloatArray:
        return self.baseline_.survival(self._margin(X), times)

    def survival_and_contributions(
        self, x: FloatArray, ref: FloatArray, times: Any
    ) -> tuple[FloatArray, FloatArray]:
        """One margin pass over the perturbation batch gives both: its first row is ``x``."""
        if type(self).contributions_matrix is not SurvivalModel.contributions_matrix:
            return super().survival_and_contributions(x, ref, times)  # e.g. tree SHAP
        margin = self._margin(self._perturbed(x, ref))
        surv = self._held_survival(lambda t: self.baseline_.survival(margin[:1], t), times)
        return surv, np.asarray(margin[0] - margin[1:], dtype=float)

    @abstractmethod
    def _fit_margin(self, X: FloatArray, event: np.ndarray, time: FloatArray) -> None: ...

    @abstractmethod
    def _margin(self, X: FloatArray) -> FloatArray: ...
