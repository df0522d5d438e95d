"""Penalised Cox models: ``cox`` on every feature, ``baseline`` on static covariates only."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sksurv.linear_model import CoxnetSurvivalAnalysis

from cohort.vocabulary import AFP
from models.base import FloatArray, ProportionalHazardsModel, make_preprocessor, to_surv
from models.breslow import martingale_residuals

logger = logging.getLogger(__name__)

# "ctc" covers every CTC code (ctc_total, ctc_mesenchymal, ...): features are <marker>_<stat>.
DEFAULT_MARKER_PREFIXES: tuple[str, ...] = ("ctc", AFP)


AUTO = "auto"
# alpha="auto": AUTO_SCALE / sqrt(events). Shrinkage then fades as information grows, like
# a coefficient's standard error. Chosen on out-of-fold results: on pbcseq (5-y landmark,
# ~60 events) it gives alpha ~0.06 (AUC 0.78, calibration slope ~1.0, where 0.01 overfits:
# slope 0.45); on a 3,000-patient simulated cohort (~10,000 event rows) ~0.005-0.01.
AUTO_SCALE = 0.5


# alpha="cv": chosen inside each fit by an inner cross-validation grouped by patient (the
# ``groups`` given to ``fit``), over CV_STEPS alphas from alpha_max down to
# alpha_max · CV_MIN_RATIO, by the cross-validated partial log-likelihood of Verweij & van
# Houwelingen (1993), Σ_k ℓ(β₋ₖ) − ℓ₋ₖ(β₋ₖ) (glmnet's ``grouped=TRUE`` deviance): each inner
# fold's coefficients scored on what the held-out patients add to the partial likelihood of
# all the fit's rows. One warm-started Coxnet path per inner fold gives every alpha at once.
# The optimum was alpha_max/10 to /250 on pbcseq and the simulated cohorts (the more events,
# the lower); should it fall on the grid's last point, the grid is searched again a decade
# lower (CV_EXTEND_RATIO). The inner paths stop at a looser tolerance than the final fit
# (CV_TOL): the score needs the coefficients to a few digits, and on 3,000 simulated patients
# (24,000 rows) this cut the inner CV from 18 to 4 s with the same alpha chosen.
CV = "cv"
CV_FOLDS = 5
CV_STEPS = 13
CV_MIN_RATIO = 1e-3
CV_EXTEND_RATIO = 1e-4
CV_TOL = 1e-5


def resolve_alpha(alpha: float | str, n_events: int) -> float:
    """The penalty to use: ``alpha`` itself, or the events-scaled one for ``"auto"``."""
    if alpha == AUTO:
        return AUTO_SCALE / np.sqrt(max(n_events, 1))
    return float(alpha)


# Warm starts: coordinate descent from β = 0 straight at a small alpha crawls (3.5 s on a
# 26k-row simulated fold); walking down a short geometric path from alpha_max, each fit
# starting from the previous one's coefficients (glmnet's strategy), reaches the same
# optimum, to a slightly lower objective, in 0.5 s. The model keeps the last fit only.
PATH_STEPS = 10


def penalty_path(
    design: FloatArray, event: np.ndarray, time: FloatArray, alpha: float, l1_ratio: float
) -> FloatArray:
    """Decreasing alphas from alpha_max (where every coefficient is 0) down to ``alpha``.

    alpha_max = max_j |x_jᵀ r| / (n · l1_ratio), r the martingale residuals at β = 0: the
    gradient of Coxnet's mean negative log partial likelihood, as glmnet computes it. Past
    that point the path is just ``[alpha]``.
    """
    residuals = martingale_residuals(np.zeros(len(design)), time, event)
    alpha_max = float(np.abs(design.T @ residuals).max()) / (len(design) * l1_ratio)
    if not alpha_max > alpha:
        return np.array([alpha])
    return np.geomspace(alpha_max, alpha, PATH_STEPS)


def _check_penalty(alpha: float | str, l1_ratio: float) -> None:
    if alpha in (AUTO, CV):
        pass
    elif not (isinstance(alpha, int | float) and alpha > 0):
        raise ValueError(f"alpha must be a number > 0, 'auto' or 'cv', got {alpha!r}")
    if not (isinstance(l1_ratio, int | float) and 0 < l1_ratio <= 1):
        raise ValueError(f"l1_ratio must be in (0, 1], got {l1_ratio!r}")


class CoxModel(ProportionalHazardsModel):
    """Elastic-net Cox (scikit-survival Coxnet) on standardised, median-imputed features.

    Coxnet's objective is the mean negative log partial likelihood + alpha·(l1_ratio·|β|₁ +
    (1 − l1_ratio)/2·|β|²₂), on standardised features. ``alpha="cv"`` (the default) chooses
    the penalty inside ``fit`` by an inner cross-validation grouped by the ``groups`` given to
    ``fit`` (the patients: a landmark or draw-day table has many rows per patient, and rows
    of one patient on both sides of an inner split would reward overfitting); training
    passes each fold's training patients only, so the outer held-out patients never enter
    the choice. Without ``groups`` every row is its own group. ``"auto"`` is the older
    fixed rule AUTO_SCALE/√events; a number fixes alpha. ``alpha_`` is the penalty used,
    ``cv_alphas_``/``cv_scores_`` the inner grid and its scores (``"cv"`` only).
    """

    model_name = "cox"

    def __init__(
        self,
        *,
        alpha: float | str = CV,
        l1_ratio: float = 0.5,
        max_iter: int = 100_000,
        cv_folds: int = CV_FOLDS,
        random_state: int = 0,
    ):
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.max_iter = max_iter
        self.cv_folds = cv_folds
        self.random_state = random_state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle a model packaged before the inner CV: its parameters at their defaults
        (its ``alpha`` is its own, e.g. ``"auto"``), so ``get_params`` and ``clone`` work."""
        super().__setstate__({"cv_folds": CV_FOLDS, "random_state": 0, **state})

    def _fit_margin(self, X: FloatArray, event: np.ndarray, time: FloatArray) -> None:
        _check_penalty(self.alpha, self.l1_ratio)
        with warnings.catch_warnings(record=True) as caught:
            # Coxnet warns when it stops at max_iter: log it instead of failing the run.
            warnings.simplefilter("always", ConvergenceWarning)
            preprocess = Pipeline(make_preprocessor(scale=True)).fit(X)
            design = preprocess.transform(X)
            if self.alpha == CV:
                self.alpha_ = self._alpha_by_inner_cv(design, event, time)
            else:
                self.alpha_ = resolve_alpha(self.alpha, int(np.sum(event)))
            coxnet = self._fit_coxnet(preprocess, design, event, time)
        for w in caught:
            if issubclass(w.category, ConvergenceWarning):
                logger.warning("cox (alpha=%s): %s", self.alpha, w.message)
            elif "all coefficients are zero" not in str(w.message):  # the inner grid's top
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if not np.isfinite(coxnet.coef_).all():
            raise ValueError(f"Cox fit diverged (alpha={self.alpha!r}); try a larger alpha")

    def tuned_params(self) -> dict[str, float]:
        """The penalty the fit used (chosen by inner CV with ``alpha="cv"``)."""
        return {"alpha": float(self.alpha_)} if hasattr(self, "alpha_") else {}

    def _alpha_by_inner_cv(self, design: FloatArray, event: np.ndarray, time: FloatArray) -> float:
        """The inner grid's alpha of the highest cross-validated partial log-likelihood, on
        the ``design`` standardised on all the fit's rows (as glmnet's ``cv.glmnet``)."""
        groups = self._groups if self._groups is not None else np.arange(len(design))
        splits = inner_splits(groups, event, int(self.cv_folds), int(self.random_state))
        l1 = float(self.l1_ratio)
        top = penalty_path(design, event, time, np.finfo(float).tiny, l1)[0]
        for ratio in (CV_MIN_RATIO, CV_EXTEND_RATIO):
            steps = 1 + round((CV_STEPS - 1) * np.log(ratio) / np.log(CV_MIN_RATIO))
            self.cv_alphas_ = np.geomspace(top, top * ratio, steps)
            self.cv_scores_ = cv_partial_likelihood(
                design, event, time, splits, self.cv_alphas_, l1, self.max_iter
            )
            finite = np.isfinite(self.cv_scores_)
            if not finite.any() or np.nanargmax(self.cv_scores_) < finite.nonzero()[0][-1]:
                break  # the optimum is inside the grid (or nothing was fitted)
        if not np.isfinite(self.cv_scores_).any():
            fallback = resolve_alpha(AUTO, int(np.sum(event)))
            logger.warning("cox: no inner-CV fit succeeded; alpha %g (the 'auto' rule)", fallback)
            return fallback
        best = int(np.nanargmax(self.cv_scores_))
        logger.info(
            "cox: alpha %g chosen by %d-fold inner CV over %d patients (grid %g..%g)",
            self.cv_alphas_[best],
            len(splits),
            len(np.unique(groups)),
            self.cv_alphas_[0],
            self.cv_alphas_[-1],
        )
        return float(self.cv_alphas_[best])

    def _fit_coxnet(
        self, preprocess: Pipeline, design: FloatArray, event: np.ndarray, time: FloatArray
    ) -> Any:
        """Fit on the ``design`` that the fitted ``preprocess`` made of the rows; when the
        path overflows (tiny or separable data), raise alpha tenfold, twice."""
        y = to_surv(event, time)
        for attempt in range(3):
            coxnet = CoxnetSurvivalAnalysis(
                alphas=penalty_path(design, event, time, self.alpha_, float(self.l1_ratio)),
                l1_ratio=float(self.l1_ratio),
                max_iter=self.max_iter,
            )
            try:
                coxnet.fit(design, y)
            except ArithmeticError as exc:
                if attempt == 2:
                    raise ValueError(
                        f"Cox fit diverged even at alpha={self.alpha_:g}: {exc}"
                    ) from exc
                logger.warning(
                    "cox overflowed at alpha=%g; retrying at %g", self.alpha_, self.alpha_ * 10
                )
                self.alpha_ *= 10
                continue
            self.pipeline_ = Pipeline([*preprocess.steps, ("coxnet", coxnet)])
            return coxnet
        raise AssertionError("unreachable")

    def _margin(self, X: FloatArray) -> FloatArray:
        return linear_margin(self.pipeline_, X)

    @property
    def coef_(self) -> FloatArray:
        """Coefficients on the standardised, imputed design (then the missing indicators)."""
        return np.asarray(self.pipeline_[-1].coef_[:, -1], dtype=float)


def inner_splits(
    groups: np.ndarray, event: np.ndarray, n_folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, held-out) row positions of an inner CV grouped by ``groups``: every row of a
    group on one side. Folds without an event on both sides are dropped (no partial
    likelihood to fit or score)."""
    if not (isinstance(n_folds, int) and n_folds >= 2):
        raise ValueError(f"cv_folds must be an int >= 2, got {n_folds!r}")
    labels = pd.factorize(np.asarray(groups))[0]
    n_groups = int(labels.max()) + 1
    if n_groups < 2:
        raise ValueError("an inner cross-validation needs at least two groups (patients)")
    splitter = GroupKFold(n_splits=min(n_folds, n_groups), shuffle=True, random_state=seed)
    return [
        (train, test)
        for train, test in splitter.split(labels, groups=labels)
        if event[train].any() and event[test].any()
    ]


def cv_partial_likelihood(
    design: FloatArray,
    event: np.ndarray,
    time: FloatArray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    alphas: FloatArray,
    l1_ratio: float,
    max_iter: int,
) -> FloatArray:
    """Σ over inner folds of ℓ(β₋ₖ) − ℓ₋ₖ(β₋ₖ) per alpha (higher is better); NaN where a
    fold's path did not reach that alpha (it overflowed)."""
    total = np.zeros(len(alphas))
    for train, _ in splits:
        coefs = _path_coefficients(
            design[train], event[train], time[train], alphas, l1_ratio, max_iter
        )
        reached = coefs.shape[1]
        eta = design @ coefs  # (rows, alphas reached)
        total[:reached] += partial_log_likelihoods(eta, time, event) - partial_log_likelihoods(
            eta[train], time[train], event[train]
        )
        total[reached:] = np.nan
    return total


def partial_log_likelihoods(eta: FloatArray, time: FloatArray, event: np.ndarray) -> FloatArray:
    """Cox log partial likelihood (Breslow ties) of each column of linear predictors ``eta``:
    ``-cox_negative_log_likelihood`` of every column at once (one sort for all of them)."""
    order = np.argsort(time, kind="stable")
    t, e, ordered = time[order], np.asarray(event, dtype=bool)[order], eta[order]
    offset = ordered.max(axis=0)
    # reverse cumulative log-sum-exp: log Σ_{time_k ≥ t_i} exp(η_k − offset), per column
    log_risk = np.logaddexp.accumulate((ordered - offset)[::-1], axis=0)[::-1]
    event_times, deaths = np.unique(t[e], return_counts=True)
    first_at_risk = np.searchsorted(t, event_times, side="left")
    return np.asarray(
        (ordered[e] - offset).sum(axis=0) - deaths @ log_risk[first_at_risk], dtype=float
    )


def _path_coefficients(
    design: FloatArray,
    event: np.ndarray,
    time: FloatArray,
    alphas: FloatArray,
    l1_ratio: float,
    max_iter: int,
) -> FloatArray:
    """Coxnet coefficients along ``alphas`` (columns); a path that overflows at small alphas
    is cut there (its later columns are missing).

    The path is fitted alpha after alpha, each from the last, so the first ``k`` alphas'
    coefficients do not depend on the alphas after them: a path that overflows overflows
    with every longer one too. The longest path that does not is found by bisection (four
    fits of a 13-alpha grid instead of up to thirteen, each failing fit running to its
    overflow: 30 of the 45 s `ctcmon train --models cox` took on 300 patients, measured).
    """
    y = to_surv(event, time)

    def path(end: int) -> FloatArray | None:
        try:
            fit = CoxnetSurvivalAnalysis(
                alphas=alphas[:end], l1_ratio=l1_ratio, max_iter=max_iter, tol=CV_TOL
            ).fit(design, y)
        except ArithmeticError:
            return None
        coef = np.asarray(fit.coef_, dtype=float)
        return coef if np.isfinite(coef).all() else None

    best = path(len(alphas))
    if best is not None:
        return best
    ok, bad = 0, len(alphas)  # the longest path known to fit, the shortest known not to
    best = np.zeros((design.shape[1], 0))
    while bad - ok > 1:
        mid = (ok + bad) // 2
        coef = path(mid)
        if coef is None:
            bad = mid
        else:
            ok, best = mid, coef
    return best


class BaselineModel(CoxModel):
    """The bar to clear: the penalised Cox model on static covariates only, no markers.

    ``columns``: the covariates to use (training passes the manifest's covariates, one-hot
    names and ``landmark_day``). When None, every column except marker features: a column
    is a marker feature when it equals a prefix in ``marker_prefixes`` or starts with
    ``<prefix>_`` (so ``ctc_total_last`` and ``afp_log_slope`` go, ``age``, ``sex_M`` and
    ``landmark_day`` stay). The model still takes the full feature frame in ``predict``.
    """

    model_name = "baseline"

    def __init__(
        self,
        *,
        columns: Sequence[str] | None = None,
        marker_prefixes: Sequence[str] = DEFAULT_MARKER_PREFIXES,
        alpha: float | str = AUTO,
        # mostly ridge: the static covariates are few and chosen clinically, so the baseline
        # shrinks them rather than selecting (at l1_ratio 0.5 small cohorts lost them all)
        l1_ratio: float = 0.1,
        max_iter: int = 100_000,
    ):
        super().__init__(alpha=alpha, l1_ratio=l1_ratio, max_iter=max_iter)
        self.columns = columns
        self.marker_prefixes = marker_prefixes

    def _fit_margin(self, X: FloatArray, event: np.ndarray, time: FloatArray) -> None:
        self.columns_ = self._check_columns()
        names = list(self.feature_names_in_)
        self.column_index_ = np.array([names.index(c) for c in self.columns_], dtype=int)
        super()._fit_margin(X[:, self.column_index_], event, time)

    def _margin(self, X: FloatArray) -> FloatArray:
        return super()._margin(X[:, self.column_index_])

    def _check_columns(self) -> list[str]:
        names = list(self.feature_names_in_)
        if isinstance(self.marker_prefixes, str):
            raise TypeError(
                f"marker_prefixes must be a sequence of str, got {self.marker_prefixes!r}"
            )
        if self.columns is None:
            chosen = [c for c in names if not is_marker_feature(c, self.marker_prefixes)]
        elif isinstance(self.columns, str):
            raise TypeError(f"columns must be a sequence of column names, got {self.columns!r}")
        else:
            chosen = list(self.columns)
        unknown = [c for c in chosen if c not in names]
        if unknown:
            raise ValueError(f"baseline columns {unknown} are not in X (columns: {names})")
        if not chosen:
            raise ValueError(f"baseline has no covariate column to use among {names}")
        return chosen


def is_marker_feature(column: str, marker_prefixes: Sequence[str]) -> bool:
    """True when ``column`` is ``<prefix>`` or ``<prefix>_...`` for a marker prefix."""
    return any(column == p or column.startswith(f"{p}_") for p in marker_prefixes)


def linear_margin(pipeline: Pipeline, X: FloatArray) -> FloatArray:
    """``pipeline.predict(X)`` for impute → scale → winsorise → Coxnet, as plain array algebra.

    The fitted model is linear, and scikit-learn's per-step input validation cost ten times
    the arithmetic when the service scores one patient per request. The steps' own fitted
    attributes are used, so this is the same model; ``tests/models/test_cox.py`` checks it
    against ``pipeline.predict``. Any other layout falls back to ``pipeline.predict``.
    """
    steps = [step for _, step in pipeline.steps]
    if [type(s) for s in steps] != [
        SimpleImputer,
        StandardScaler,
        FunctionTransformer,
        CoxnetSurvivalAnalysis,
    ]:
        return np.asarray(pipeline.predict(X), dtype=float)
    impute, scale, clip, coxnet = steps
    missing = np.isnan(X)
    # keep_empty_features: a column missing throughout training imputes to 0
    filled = np.where(missing, np.nan_to_num(impute.statistics_, nan=0.0), X)
    if impute.indicator_ is not None:
        filled = np.hstack([filled, missing[:, impute.indicator_.features_]])
    design = clip.func((filled - scale.mean_) / scale.scale_)
    return np.asarray(design @ coxnet.coef_[:, -1] - coxnet.offset_[-1], dtype=float)
