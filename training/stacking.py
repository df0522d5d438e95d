"""The ``stack`` model's cross-validation: per band of days since index, non-negative weights
summing to 1 over the other models' out-of-fold risks, chosen by an IPCW Brier score.

What is nested and what is not (the README says the same):

- **Nested:** the stack's out-of-fold risk for a row of fold k is Σ_j w_kj r_j, with weights
  w_k fitted on the rows of the *other* folds only (their labels, their censoring
  distribution); fold k's labels never enter its own weights (a test alters them and checks).
- **Not nested:** each base model's out-of-fold risk r_j for a row of fold m ≠ k comes from
  the base model fitted without fold m, i.e. *with* fold k's patients. So fold k's labels
  reach w_k through the base models' fits on the other folds' rows. A fully nested inner
  cross-validation (refitting every base model K − 1 times inside each outer fold) would
  multiply training time by about K and was not run (the issue's 3-minute budget).

The weights minimise the Brier score at the horizon with inverse probability of censoring
weights (Graf et al. 1999): a row with an event by the horizon counts 1/G(T−) with outcome 1,
a row followed past the horizon 1/G(h) with outcome 0, a row censored before it 0; G is the
Kaplan–Meier of the censoring of the rows the weights are fitted on, per band. The
packaged stack carries weights fitted on every row's out-of-fold risks.
"""

from __future__ import annotations

import logging
import time as clock
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from alarms.operating_point import DEFAULT_LOOKBACK_DAYS, Target
from cohort.cohort import Cohort
from cohort.vocabulary import (
    EVENT_FULL,
    FOLD,
    LANDMARK_DAY,
    PATIENT_ID,
    RESIDUAL_TIME_FULL,
)
from models.base import SurvivalModel
from models.pipeline import DEFAULT_HORIZONS, RiskPipeline
from models.stack import WEIGHT_TOLERANCE, StackModel
from tracking.vocabulary import STACK_PACKAGED
from training.day_bands import DAY_BANDS
from training.evaluate import (
    OOF_RISK,
    OOF_SURV,
    VARIANT_SEPARATOR,
    CVResult,
    _fold_metrics,
    _ibs_grid,
    _pooled_metrics,
    fold_models_within_limit,
    package_pipeline,
)

log = logging.getLogger(__name__)

STACK = "stack"
# The bands of days since index the served risk is calibrated in (training.evaluate)
BAND_NAMES: tuple[str, ...] = tuple(name for name, _, _ in DAY_BANDS)
BAND_EDGES: tuple[float, ...] = tuple(hi for _, _, hi in DAY_BANDS[:-1])
# fewer events among a band's rows: the band takes the weights fitted on every band's rows
MIN_BAND_EVENTS = 20
POOLED = "pooled"
PACKAGED = STACK_PACKAGED


def band_index(days: Any) -> np.ndarray:
    """Each day's band (``StackModel``'s rule: (−∞, e₀], (e₀, e₁], …)."""
    return np.searchsorted(np.asarray(BAND_EDGES), np.asarray(days, dtype=float), side="left")


def brier_targets(time: Any, event: Any, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """Outcome by the horizon and its IPCW weight, per row (censoring KM of these rows)."""
    t, e = np.asarray(time, dtype=float), np.asarray(event).astype(bool)
    times, inverse = np.unique(t, return_inverse=True)
    at_risk = len(t) - np.r_[0, np.cumsum(np.bincount(inverse))[:-1]]
    censored = np.bincount(inverse, weights=~e, minlength=len(times))
    g_after = np.cumprod(1.0 - censored / at_risk)  # G(t) at each unique time
    g_before = np.r_[1.0, g_after[:-1]][inverse]  # G(T−) per row
    g_h = g_after[np.searchsorted(times, horizon, side="right") - 1] if times[0] <= horizon else 1
    case, control = e & (t <= horizon), t > horizon
    w = np.zeros(len(t))
    w[case] = 1.0 / np.maximum(g_before[case], 1e-12)
    w[control] = 1.0 / max(float(g_h), 1e-12)
    return case.astype(float), w


def simplex_weights(risks: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """β ≥ 0, Σβ = 1 minimising Σ wᵢ (yᵢ − Σⱼ βⱼ rᵢⱼ)² (a small QP, solved by SLSQP)."""
    k = risks.shape[1]
    if k == 1:
        return np.ones(1)
    scale = max(float(w.sum()), 1e-12)
    q = (risks * w[:, None]).T @ risks / scale
    c = (risks * w[:, None]).T @ y / scale
    found = minimize(
        lambda b: float(b @ q @ b - 2 * c @ b),
        np.full(k, 1.0 / k),
        jac=lambda b: 2 * q @ b - 2 * c,
        bounds=[(0.0, 1.0)] * k,
        constraints=[{"type": "eq", "fun": lambda b: b.sum() - 1.0, "jac": lambda b: np.ones(k)}],
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 500},
    )
    beta = np.where(found.x > WEIGHT_TOLERANCE, found.x, 0.0)
    return np.asarray(beta / beta.sum(), dtype=float)


def band_weights(
    risks: np.ndarray, day: Any, time: Any, event: Any, horizon: float
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Weights per band (rows: ``BAND_NAMES``) from these rows' risks and outcomes."""
    bands = band_index(day)
    y, w = np.zeros(len(bands)), np.zeros(len(bands))
    for b in np.unique(bands):
        at = bands == b
        y[at], w[at] = brier_targets(np.asarray(time)[at], np.asarray(event)[at], horizon)
    pooled = simplex_weights(risks, y, w)
    out, info = np.empty((len(BAND_NAMES), risks.shape[1])), []
    for b, name in enumerate(BAND_NAMES):
        at = bands == b
        n_events = int(y[at].sum())
        own = n_events >= MIN_BAND_EVENTS
        out[b] = simplex_weights(risks[at], y[at], w[at]) if own else pooled
        info.append({"band": name, "n_rows": int(at.sum()), "n_events": n_events})
        info[-1]["weights_from"] = "band" if own else POOLED
    return out, info


@dataclass(frozen=True)
class _Stacked:
    """Base models' out-of-fold columns side by side, checked to be the same rows."""

    names: list[str]
    risks: np.ndarray  # (n_rows, n_models) at the horizon
    grids: list[np.ndarray]  # each (n_rows, n_grid): survival on the IBS grid
    draws: np.ndarray | None  # (n_draws, n_models), at every replayed draw


def _side_by_side(bases: Sequence[CVResult]) -> _Stacked:
    first = bases[0]
    for b in bases[1:]:
        if not b.oof.index.equals(first.oof.index) or not b.oof[FOLD].equals(first.oof[FOLD]):
            raise ValueError(f"models {first.name!r} and {b.name!r} were scored on other rows")
    if any(b.oof_surv_grid is None for b in bases):
        raise ValueError("a stacked model's out-of-fold survival on the IBS grid is missing")
    draws = None
    if all(b.oof_draws is not None for b in bases):
        draws = np.column_stack([b.oof_draws[OOF_RISK] for b in bases])  # type: ignore[index]
    return _Stacked(
        [b.name for b in bases],
        np.column_stack([b.oof[OOF_RISK] for b in bases]),
        [b.oof_surv_grid for b in bases],  # type: ignore[misc]
        draws,
    )


def stacked_cv(
    name: str, bases: Sequence[CVResult], *, n_boot: int = 50, seed: int = 0
) -> CVResult:
    """The stack's out-of-fold risks (fold k: weights fitted without fold k) and metrics."""
    if not bases:
        raise ValueError("the stack combines the other models: name at least one in --models")
    started = clock.perf_counter()
    horizon = bases[0].horizon_days
    side = _side_by_side(bases)
    oof = bases[0].oof.drop(columns=[OOF_RISK, OOF_SURV]).copy()
    fold = oof[FOLD].to_numpy()
    bands = band_index(oof[LANDMARK_DAY])
    risk, surv = np.full(len(oof), np.nan), np.full(side.grids[0].shape, np.nan)
    tables, by_fold = [], {}
    for k in np.unique(fold):
        fit = fold != k
        w, info = _weights(side.risks[fit], oof[fit], horizon)
        by_fold[k] = w
        tables.append(_weight_rows(w, info, side.names, str(k)))
        rows = fold == k
        wk = w[bands[rows]]
        risk[rows] = (wk * side.risks[rows]).sum(axis=1)
        surv[rows] = sum(wk[:, j, None] * g[rows] for j, g in enumerate(side.grids))
    final, info = _weights(side.risks, oof, horizon)
    tables.insert(0, _weight_rows(final, info, side.names, "all"))
    oof[OOF_RISK], oof[OOF_SURV] = risk, 1.0 - risk
    metrics, by_landmark, calib, dcurve, notes = _pooled_metrics(
        oof, surv, _ibs_grid(horizon), horizon, n_boot, seed
    )
    seconds = clock.perf_counter() - started
    metrics["fit_seconds"] = sum(b.fit_seconds for b in bases) + seconds
    fold_metrics = [
        {"fold": k, **_fold_metrics(oof[fold == k], oof[fold != k], horizon)}
        for k in np.unique(fold)
    ]
    notes.append(
        "stack: fold k's weights fitted on the other folds' out-of-fold risks; those risks "
        "come from base models that saw fold k (not a fully nested CV)"
    )
    return CVResult(
        name,
        horizon,
        oof,
        metrics,
        by_landmark,
        fold_metrics,
        calib,
        dcurve,
        metrics["fit_seconds"],
        {"base_models": ",".join(side.names), "bands": ",".join(BAND_NAMES)}
        | {"band_edges_days": ",".join(f"{e:g}" for e in BAND_EDGES), "objective": OBJECTIVE},
        notes=notes,
        oof_draws=_stacked_draws(bases[0].oof_draws, side.draws, by_fold),
        stack_weights=pd.concat(tables, ignore_index=True),
        patient_folds=bases[0].patient_folds,
    )


OBJECTIVE = "ipcw_brier_at_horizon; weights >= 0 summing to 1 per band"


def _weights(
    risks: np.ndarray, rows: pd.DataFrame, horizon: float
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    return band_weights(
        risks, rows[LANDMARK_DAY], rows[RESIDUAL_TIME_FULL], rows[EVENT_FULL], horizon
    )


def without_fold(fold: str) -> str:
    """The weights table's ``fitted_on`` of the weights fitted without ``fold``."""
    return f"all but fold {fold}"


def _weight_rows(
    w: np.ndarray, info: list[dict[str, Any]], names: list[str], fold: str
) -> pd.DataFrame:
    table = pd.DataFrame(info)
    table.insert(0, "fitted_on", PACKAGED if fold == "all" else without_fold(fold))
    return pd.concat([table, pd.DataFrame(w.round(6), columns=names)], axis=1)


def _stacked_draws(
    frame: pd.DataFrame | None, draws: np.ndarray | None, by_fold: dict[Any, np.ndarray]
) -> pd.DataFrame | None:
    """The stack's risk at every replayed draw, fold k's draws with fold k's weights."""
    if frame is None or draws is None:
        return None
    out = frame[[PATIENT_ID, LANDMARK_DAY, FOLD]].copy()
    risk = np.full(len(out), np.nan)
    bands = band_index(out[LANDMARK_DAY])
    for k, w in by_fold.items():
        rows = (out[FOLD] == k).to_numpy()
        risk[rows] = (w[bands[rows]] * draws[rows]).sum(axis=1)
    out.insert(2, OOF_RISK, risk)
    return out


def packaged_weights(result: CVResult) -> pd.DataFrame:
    """The packaged weights (fitted on every fold's rows): one row per band, with its rows,
    events and whether its own rows or every band's chose them; one column per model."""
    table = result.stack_weights
    if table is None:
        raise ValueError(f"{result.name!r} is not a stack: it has no weights")
    final = table[table["fitted_on"] == PACKAGED].drop(columns="fitted_on")
    return final.reset_index(drop=True)


def base_names(result: CVResult) -> list[str]:
    """The models a stack combines, in its weights' column order."""
    return str(result.params["base_models"]).split(",")


def stack_pipeline(
    cohort: Cohort,
    result: CVResult,
    bases: Sequence[CVResult],
    *,
    seed: int = 0,
    horizons: Sequence[float] = DEFAULT_HORIZONS,
    target: Target | None = None,
    specificity: float = 0.9,
    lookback_days: float = DEFAULT_LOOKBACK_DAYS,
) -> RiskPipeline:
    """The packaged stack: the base models refitted on every patient, the final weights."""
    fitted = [b.pipeline for b in bases]
    if any(p is None for p in fitted):
        raise ValueError("refit the stacked models before packaging the stack")
    first = fitted[0]
    assert first is not None
    model = StackModel.of_fitted(
        [(b.name, p.model) for b, p in zip(bases, fitted, strict=True) if p is not None],
        BAND_EDGES,
        packaged_weights(result)[base_names(result)].to_numpy(dtype=float),
        result.horizon_days,
    )
    return package_pipeline(
        cohort,
        first.featurizer,
        result,
        model,
        reference=first.reference,
        seed=seed,
        horizons=horizons,
        specificity=specificity,
        target=target,
        rows=first.rows,
        lookback_days=lookback_days,
        interval_models=fold_stacks(result, bases),
        model_folds=[f["fold"] for f in bases[0].fold_metrics],
        fold_mixed=bases[0].fold_mixed,
    )


def fold_stacks(result: CVResult, bases: Sequence[CVResult]) -> list[SurvivalModel]:
    """The stack's fold models, for its risks' grouped-jackknife interval: fold k's stack
    mixes the base models fitted without fold k with the weights fitted without fold k
    (both already made by the cross-validation), so the interval sees the weights'
    variation between folds as well as the base models'. None (noted) if a base model
    carries no fold models."""
    table = result.stack_weights
    assert table is not None
    names = base_names(result)
    lacking = [b.name for b in bases if len(b.fold_models) != len(b.fold_metrics)]
    if lacking:
        result.notes.append(
            f"risk intervals: {', '.join(lacking)} carried no fold models, so the stack's "
            "assessments come without an interval"
        )
        return []
    stacks: list[SurvivalModel] = []
    for i, fold in enumerate(f["fold"] for f in bases[0].fold_metrics):
        weights = table[table["fitted_on"] == without_fold(str(fold))][names]
        members = []
        for b in bases:
            if str(b.fold_metrics[i]["fold"]) != str(fold):
                raise ValueError(f"models {bases[0].name!r} and {b.name!r} ran other folds")
            members.append((b.name, b.fold_models[i]))
        stacks.append(
            StackModel.of_fitted(
                members, BAND_EDGES, weights.to_numpy(dtype=float), result.horizon_days
            )
        )
    return fold_models_within_limit(result, stacks)


def stack_groups(models: Sequence[str], feature_sets: Sequence[str]) -> dict[str, list[str]]:
    """Each stack's run name and the runs it combines: one stack per feature set.

    With one feature set: ``stack`` over every other model. In an ablation: ``stack/<set>``
    over that set's runs; the marker-free ``baseline`` (run once, on the first set's
    featuriser) enters the first set's stack only.
    """
    bases = [m for m in models if m != STACK]
    if STACK not in models:
        return {}
    if not bases:
        raise ValueError(
            "the stack combines the other models in --models: name at least one besides 'stack'"
        )
    if len(feature_sets) == 1:
        return {STACK: bases}
    out = {}
    for i, f in enumerate(feature_sets):
        names = [f"{m}{VARIANT_SEPARATOR}{f}" for m in bases if m != "baseline"]
        if "baseline" in bases and i == 0:
            names.append("baseline")
        if names:
            out[f"{STACK}{VARIANT_SEPARATOR}{f}"] = names
    return out
