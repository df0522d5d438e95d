"""Patient-grouped cross-validation of one survival model on a landmark table.

Every figure a researcher sees comes from out-of-fold (OOF) predictions: each row is
scored by a model that never saw its patient. The final model is then refitted on all
rows for packaging; its validation metrics are the OOF ones, never a resubstitution.
"""

from __future__ import annotations

import logging
import pickle
import time as clock
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sksurv.util import Surv

from alarms.operating_point import DEFAULT_LOOKBACK_DAYS, Target, choose
from alarms.series import SCORE
from alarms.surveillance import RECURRED, course_table
from cohort.cohort import Cohort
from cohort.vocabulary import (
    DAY,
    EVENT,
    EVENT_FULL,
    FOLD,
    LANDMARK_DAY,
    PATIENT_ID,
    RESIDUAL_TIME,
    RESIDUAL_TIME_FULL,
    SITE_ID,
)
from features.covariates import covariate_names
from features.landmark import LandmarkFeatures
from models import make_model
from models.base import SurvivalModel
from models.pipeline import DEFAULT_HORIZONS, AlarmPolicy, RiskPipeline, patient_key
from training.calibration import (
    calibration_slope,
    net_benefit,
    smooth_calibration,
    smooth_calibration_errors,
)
from training.cv import iter_folds
from training.fold_features import FoldColumns
from training.metrics import (
    bootstrap_landmark_auc,
    harrell_c,
    integrated_brier,
    landmark_metrics,
    uno_c,
)

log = logging.getLogger(__name__)

OOF_RISK = "oof_risk"  # predicted risk at the evaluation horizon
OOF_SURV = "oof_surv"
IBS_GRID_POINTS = 12
# Uno's C on the outcome truncated at the horizon stops just short of it: the truncation
# censors every row still followed at the horizon, so the censoring KM falls to 0 there.
UNO_TAU_FRACTION = 0.999
# Risk thresholds of the decision curve: 1% to 59%, by 1%.
DECISION_THRESHOLDS = np.round(np.arange(1, 60) / 100, 2)


@dataclass
class CVResult:
    """Out-of-fold predictions and metrics of one model, plus the refitted pipeline."""

    name: str
    horizon_days: float
    oof: pd.DataFrame
    metrics: dict[str, float]
    by_landmark: pd.DataFrame
    fold_metrics: list[dict[str, float]]
    calibration: dict[str, Any]
    decision_curve: pd.DataFrame
    fit_seconds: float
    params: dict[str, Any]
    pipeline: RiskPipeline | None = None
    notes: list[str] = field(default_factory=list)
    # risk at the horizon after every post-index draw of every patient, out of fold
    # (patient_id, landmark_day, oof_risk, fold): what the alarm's operating point is chosen on
    oof_draws: pd.DataFrame | None = None
    fold_models: list[SurvivalModel] = field(default_factory=list)
    served_calibration: pd.DataFrame | None = None  # per band of days since index
    # S(t) on the integrated Brier's grid per OOF row (what a stack of this model mixes)
    oof_surv_grid: np.ndarray | None = None
    stack_weights: pd.DataFrame | None = None  # a stack's weights per band (training.stacking)
    patient_folds: pd.Series | None = None  # patient_id -> fold: who each fold model left out
    # fold -> the featuriser's mixed-model fits refitted without that fold's patients
    # (``training.fold_features``): what fold k's model saw; empty without that stage
    fold_mixed: dict[str, dict[str, Any]] = field(default_factory=dict)


def feature_columns(featurizer: LandmarkFeatures) -> list[str]:
    return [str(c) for c in featurizer.get_feature_names_out()]


def static_columns(featurizer: LandmarkFeatures) -> list[str]:
    """Covariates (one-hot) and landmark day: what the marker-free ``baseline`` may use."""
    names = covariate_names(featurizer.covariates_, featurizer.levels_)
    return [LANDMARK_DAY, *names] if LANDMARK_DAY in feature_columns(featurizer) else names


# a run's name is the model's, or ``<model>/<feature set>`` in an ablation (training.train)
VARIANT_SEPARATOR = "/"


def build_model(name: str, featurizer: LandmarkFeatures, seed: int) -> SurvivalModel:
    """The unfitted model of run ``name`` (``cox``, or ``cox/mixed`` in an ablation)."""
    name = name.partition(VARIANT_SEPARATOR)[0]
    params: dict[str, Any] = {}
    if name == "baseline":
        params["columns"] = static_columns(featurizer)
    model = make_model(name, **params)
    if "random_state" in model.get_params():
        model.set_params(random_state=seed)
    return model


TUNED_PREFIX = "tuned_"  # a hyperparameter a model chose in its own fit, as a metric


def tuned_metrics(model: SurvivalModel) -> dict[str, float]:
    """``model.tuned_params()`` as metrics (``tuned_alpha``: cox's penalty by inner CV)."""
    return {f"{TUNED_PREFIX}{k}": float(v) for k, v in model.tuned_params().items()}


def _groups(table: pd.DataFrame) -> np.ndarray:
    return table[PATIENT_ID].astype(str).to_numpy()


def _y(table: pd.DataFrame) -> np.ndarray:
    return Surv.from_arrays(
        table[EVENT].to_numpy().astype(bool), table[RESIDUAL_TIME].to_numpy(dtype=float)
    )


def _ibs_grid(horizon: float) -> np.ndarray:
    return np.linspace(
        horizon / IBS_GRID_POINTS, horizon * (1 - 1 / IBS_GRID_POINTS), IBS_GRID_POINTS - 1
    )


def cross_validate(
    table: pd.DataFrame,
    featurizer: LandmarkFeatures,
    name: str,
    folds: pd.Series,
    *,
    horizon_days: float,
    seed: int = 0,
    n_boot: int = 50,
    on_fold: Callable[[int, dict[str, float]], None] | None = None,
    evaluate_at: Collection[float] | None = None,
    fit_rows: np.ndarray | None = None,
    scored_rows: np.ndarray | None = None,
    replay: pd.DataFrame | None = None,
    fold_columns: FoldColumns | None = None,
) -> CVResult:
    """Fit ``name`` on each training fold, score the held-out patients, pool OOF predictions.

    ``evaluate_at``: the landmarks scored (default: every landmark in ``table``). Rows at
    other landmarks are used for fitting only: a landmark supermodel fitted on a grid of
    landmarks and judged at the landmark of interest (van Houwelingen 2007). Held-out
    patients' rows are never fitted on, whatever their landmark.

    ``fit_rows``: boolean mask of the rows fitted on (default all), e.g. each patient's draw
    days, the moments the service scores. ``replay``: feature rows (``patient_id``,
    ``landmark_day``, features) at every post-index draw, without targets; each is scored by
    its patient's out-of-fold model into ``oof_draws``. ``fold_columns``: a fitted feature
    stage (the mixed-model summaries) refitted per fold; fold k's model is fitted and scored
    on the columns fitted without fold k's patients.
    """
    cols = feature_columns(featurizer)
    fit = np.ones(len(table), dtype=bool) if fit_rows is None else np.asarray(fit_rows, bool)
    draws = _replay_frame(replay, folds)
    grid = _ibs_grid(horizon_days)
    scored = (
        _scored_rows(table, evaluate_at)
        if scored_rows is None
        else np.asarray(scored_rows, dtype=bool)
    )
    at = np.cumsum(scored) - 1  # table position -> position among the scored rows
    oof = table.loc[
        scored, [PATIENT_ID, LANDMARK_DAY, RESIDUAL_TIME, EVENT, RESIDUAL_TIME_FULL, EVENT_FULL]
    ].copy()
    surv_grid = np.full((len(oof), len(grid)), np.nan)
    oof[OOF_RISK], oof[FOLD] = np.nan, 0
    fold_metrics, fit_seconds = [], 0.0
    fold_models: list[SurvivalModel] = []
    for k, train, held_out in iter_folds(table, folds):
        test = held_out[scored[held_out]]
        if not len(test):
            log.info("fold %s has no patient at the evaluation landmarks; skipped", k)
            continue
        data = table if fold_columns is None else fold_columns.table_for(table, k)
        model = build_model(name, featurizer, seed)
        start = clock.perf_counter()
        train = train[fit[train]]
        # the patients group the rows of a model's own inner CV (cox's penalty): only this
        # fold's training patients, so its held-out patients never enter that choice
        model.fit(data.iloc[train][cols], _y(table.iloc[train]), groups=_groups(table.iloc[train]))
        fit_seconds += clock.perf_counter() - start
        fold_models.append(model)
        if draws is not None:
            mine = (draws[FOLD] == k).to_numpy()
            if mine.any():
                x_draws = (
                    draws.loc[mine, cols]
                    if fold_columns is None
                    else fold_columns.replay_for(draws, k, mine)[cols]
                )
                draws.loc[mine, OOF_RISK] = model.predict_risk(x_draws, [horizon_days])[:, 0]
        x_test = data.iloc[test][cols]
        rows = oof.index[at[test]]
        oof.loc[rows, OOF_RISK] = model.predict_risk(x_test, [horizon_days])[:, 0]
        oof.loc[rows, FOLD] = k
        surv_grid[at[test]] = model.predict_survival(x_test, grid)
        fm = _fold_metrics(oof.iloc[at[test]], table.iloc[train], horizon_days)
        fm.update(tuned_metrics(model))
        fold_metrics.append({"fold": k, **fm})
        if on_fold:
            on_fold(k, fm)
    oof[OOF_SURV] = 1.0 - oof[OOF_RISK]
    metrics, by_landmark, calib, dcurve, notes = _pooled_metrics(
        oof, surv_grid, grid, horizon_days, n_boot, seed
    )
    metrics["fit_seconds"] = fit_seconds
    for key in ("auc", "harrell_c"):
        values = [f[key] for f in fold_metrics if np.isfinite(f.get(key, np.nan))]
        metrics[f"{key}_fold_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else np.nan
    params = build_model(name, featurizer, seed).get_params()
    return CVResult(
        name,
        horizon_days,
        oof,
        metrics,
        by_landmark,
        fold_metrics,
        calib,
        dcurve,
        fit_seconds,
        params,
        notes=notes,
        oof_draws=None if draws is None else draws[[PATIENT_ID, LANDMARK_DAY, OOF_RISK, FOLD]],
        fold_models=fold_models,
        oof_surv_grid=surv_grid,
        patient_folds=folds,
        fold_mixed=(
            {}
            if fold_columns is None
            else {str(k): dict(f.mixed_) for k, f in fold_columns.featurizers.items()}
        ),
    )


def _replay_frame(replay: pd.DataFrame | None, folds: pd.Series) -> pd.DataFrame | None:
    """The replay rows with their patient's fold and an empty risk column (a copy)."""
    if replay is None:
        return None
    fold_of = folds.copy()
    fold_of.index = fold_of.index.astype(str)
    out = replay.reset_index(drop=True).copy()
    out[FOLD] = out[PATIENT_ID].astype(str).map(fold_of)
    out[OOF_RISK] = np.nan
    return out


def _scored_rows(table: pd.DataFrame, evaluate_at: Collection[float] | None) -> np.ndarray:
    """Boolean mask of the rows to score: those at the evaluation landmarks (default all)."""
    if evaluate_at is None:
        return np.ones(len(table), dtype=bool)
    scored = table[LANDMARK_DAY].isin([float(x) for x in evaluate_at]).to_numpy()
    if not scored.any():
        present = sorted(float(x) for x in table[LANDMARK_DAY].unique())
        raise ValueError(
            f"no row at the evaluation landmark(s) {sorted(evaluate_at)}; "
            f"the table has landmarks {present}"
        )
    return scored


def _fold_metrics(test: pd.DataFrame, train: pd.DataFrame, horizon: float) -> dict[str, float]:
    out = {"n_test_rows": float(len(test))}
    try:
        lm = landmark_metrics(test, OOF_RISK, None, horizon, train_table=train, scores=("auc",))
        out["auc"] = lm["auc"]
        out["harrell_c"] = harrell_c(test[RESIDUAL_TIME], test[EVENT], test[OOF_RISK])
    except ValueError as exc:
        log.info("fold metrics undefined: %s", exc)
    return out


def _safe(what: str, notes: list[str], fn: Callable[[], Any], default: Any = np.nan) -> Any:
    """Run a metric; an undefined one (too few events, …) becomes NaN with a note, not a crash."""
    try:
        return fn()
    except ValueError as exc:
        notes.append(f"{what}: {exc}")
        log.warning("%s undefined: %s", what, exc)
        return default


def _pooled_metrics(
    oof: pd.DataFrame,
    surv_grid: np.ndarray,
    grid: np.ndarray,
    horizon: float,
    n_boot: int,
    seed: int,
) -> tuple[dict[str, float], pd.DataFrame, dict[str, Any], pd.DataFrame, list[str]]:
    notes: list[str] = []
    t, e, r = oof[RESIDUAL_TIME], oof[EVENT], oof[OOF_RISK]
    lm = _safe(
        "landmark AUC/Brier",
        notes,
        lambda: landmark_metrics(oof, OOF_RISK, OOF_SURV, horizon, scores=("auc", "brier")),
        None,
    )
    by_landmark = lm["by_landmark"] if lm else pd.DataFrame()
    m: dict[str, float] = {
        "harrell_c": _safe("Harrell's C", notes, lambda: harrell_c(t, e, r)),
        "uno_c": _safe("Uno's C", notes, lambda: uno_c(t, e, r, tau=horizon * UNO_TAU_FRACTION)),
        "auc": lm["auc"] if lm else np.nan,
        "brier": lm["brier"] if lm else np.nan,
        "integrated_brier": _safe(
            "integrated Brier", notes, lambda: _ibs_by_landmark(oof, surv_grid, grid)
        ),
        "n_rows": float(len(oof)),
        "n_patients": float(oof[PATIENT_ID].nunique()),
        "n_events": float(oof.groupby(PATIENT_ID)[EVENT].max().sum()),
    }
    slope = _safe(
        "calibration slope", notes, lambda: calibration_slope(oof, OOF_RISK, horizon), (np.nan,) * 3
    )
    m.update(
        calibration_slope=slope[0], calibration_slope_low=slope[1], calibration_slope_high=slope[2]
    )
    # the smooth curve behind the ICI is also the calibration figure's: fitted once, kept
    smooth = _safe("ICI", notes, lambda: smooth_calibration(oof, OOF_RISK, horizon), None)
    errors = smooth_calibration_errors(smooth) if smooth is not None else {}
    m.update({k: float(v) for k, v in errors.items()})
    m.update(_bootstrap(oof, horizon, n_boot, seed, notes))
    dcurve = _safe(
        "decision curve",
        notes,
        lambda: net_benefit(oof, OOF_RISK, horizon, DECISION_THRESHOLDS),
        pd.DataFrame(),
    )
    calib = {"slope": slope, **errors} | ({"smooth": smooth} if smooth is not None else {})
    return m, by_landmark, calib, dcurve, notes


def _ibs_by_landmark(oof: pd.DataFrame, surv_grid: np.ndarray, grid: np.ndarray) -> float:
    """Integrated Brier over (0, horizon) at each landmark, averaged weighted by n at risk."""
    values, weights = [], []
    for _, idx in oof.groupby(LANDMARK_DAY).indices.items():
        rows = oof.iloc[idx]
        if rows[RESIDUAL_TIME_FULL].max() <= grid[-1]:
            continue
        ok = grid >= rows[RESIDUAL_TIME_FULL].min()
        if ok.sum() < 2:
            continue
        try:
            values.append(
                integrated_brier(
                    rows[RESIDUAL_TIME_FULL], rows[EVENT_FULL], surv_grid[idx][:, ok], grid[ok]
                )
            )
            weights.append(len(idx))
        except ValueError as exc:
            log.info("integrated Brier undefined at one landmark: %s", exc)
    if not values:
        raise ValueError("no landmark could be scored")
    return float(np.average(values, weights=weights))


def _bootstrap(
    oof: pd.DataFrame, horizon: float, n_boot: int, seed: int, notes: list[str]
) -> dict[str, float]:
    """Patient-level cluster-bootstrap 95% CI of the landmark AUC (OOF predictions held fixed).

    Only the AUC, the selection metric: bootstrapping every metric would multiply the cost
    of ``ctcmon train``; the C-index's fold-to-fold spread is reported as ``*_fold_sd``.
    """
    if n_boot < 2:
        return {}
    ci = _safe(
        "bootstrap auc",
        notes,
        lambda: bootstrap_landmark_auc(oof, OOF_RISK, horizon, n_boot=n_boot, seed=seed),
        (np.nan,) * 3,
    )
    return {"auc_low": ci[1], "auc_high": ci[2]}


def alarm_policy(oof: pd.DataFrame, horizon: float, specificity: float = 0.9) -> AlarmPolicy:
    """Alarm threshold at the target specificity among known non-events at the horizon (OOF)."""
    controls = (oof[RESIDUAL_TIME_FULL] > horizon) & (oof[EVENT] == 0)
    risks = oof.loc[controls, OOF_RISK].to_numpy()
    if len(risks) < 10:
        risks = oof[OOF_RISK].to_numpy()
    threshold = float(np.quantile(risks, specificity))
    return AlarmPolicy(
        horizon_days=horizon,
        threshold=threshold,
        low_below=float(np.quantile(risks, 0.5)),
        target_specificity=specificity,
        expected_lead_days=expected_lead_days(oof, threshold, lookback=horizon),
    )


def expected_lead_days(
    oof: pd.DataFrame, threshold: float, lookback: float = 365.0
) -> float | None:
    """Median days from the first out-of-fold alarm (risk ≥ threshold) to the event, among
    patients with an event whose first alarm fell within ``lookback`` days before it."""
    ev = oof[oof[EVENT_FULL] == 1]
    if ev.empty:
        return None
    lead = ev[RESIDUAL_TIME_FULL]  # days from this landmark to the event
    alarmed = (ev[OOF_RISK] >= threshold) & (lead <= lookback)
    first = lead[alarmed].groupby(ev.loc[alarmed, PATIENT_ID]).max()
    return float(first.median()) if len(first) else None


def operating_point_metrics(alarm: AlarmPolicy) -> dict[str, float]:
    """The packaged alarm rule and its figures as MLflow metric keys ``alarm_<figure>``."""
    out = {"alarm_threshold": float(alarm.threshold), "alarm_confirm": float(alarm.confirm)}
    for key, value in (alarm.operating_point or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value):
            out[f"alarm_{key}"] = float(value)
    return out


def course_alarm_policy(
    cohort: Cohort,
    result: CVResult,
    target: Target,
    *,
    lookback_days: float = DEFAULT_LOOKBACK_DAYS,
    n_boot: int = 200,
    seed: int = 0,
) -> AlarmPolicy:
    """The alarm rule chosen per patient over the monitoring course, on out-of-fold risks at
    every post-index draw of the training patients (``alarms.operating_point.choose``)."""
    draws = result.oof_draws
    if draws is None or draws[OOF_RISK].isna().all():
        raise ValueError("no out-of-fold risk at the draws: cannot choose an alarm rule")
    risks = pd.DataFrame(
        {
            PATIENT_ID: draws[PATIENT_ID].astype(str),
            DAY: draws[LANDMARK_DAY].astype(float),
            SCORE: draws[OOF_RISK].astype(float),
        }
    ).dropna()
    point = choose(
        risks,
        course_table(cohort),
        target,
        lookback_days=lookback_days,
        n_boot=n_boot,
        seed=seed,
        source=(
            f"Chosen and stated on out-of-fold risks at {len(risks):,} draws of "
            f"{risks[PATIENT_ID].nunique():,} training patients ({cohort.manifest.name})."
        ),
    )
    controls = course_table(cohort)
    free = risks[PATIENT_ID].isin(controls.loc[~controls[RECURRED], PATIENT_ID])
    return AlarmPolicy(
        horizon_days=result.horizon_days,
        threshold=point.threshold,
        low_below=float(np.quantile(risks.loc[free, SCORE] if free.any() else risks[SCORE], 0.5)),
        target_specificity=target.patient_specificity,
        expected_lead_days=point.median_lead_days,
        confirm=point.confirm,
        operating_point=point.to_dict(),
    )


def fit_pipeline(
    cohort: Cohort,
    table: pd.DataFrame,
    featurizer: LandmarkFeatures,
    result: CVResult,
    *,
    seed: int = 0,
    horizons: Sequence[float] = DEFAULT_HORIZONS,
    specificity: float = 0.9,
    target: Target | None = None,
    fit_rows: np.ndarray | None = None,
    rows: dict[str, str] | None = None,
    lookback_days: float = DEFAULT_LOOKBACK_DAYS,
) -> RiskPipeline:
    """Refit the model on the fitted rows and package it with its OOF-derived alarm rule.

    With out-of-fold risks at every draw (``result.oof_draws``) the alarm rule is chosen per
    patient over the course at ``target``; without them (a table of landmarks only), per row
    at ``specificity`` as before, and the policy says so (no operating point).
    """
    cols = feature_columns(featurizer)
    fitted = table if fit_rows is None else table[np.asarray(fit_rows, dtype=bool)]
    model = clone(build_model(result.name, featurizer, seed)).fit(
        fitted[cols], _y(fitted), groups=_groups(fitted)
    )
    result.metrics.update(tuned_metrics(model))  # what the packaged model chose
    return package_pipeline(
        cohort,
        featurizer,
        result,
        model,
        # training medians; NaN for a feature never observed (perturbing to NaN = imputed)
        reference={str(c): float(v) for c, v in fitted[cols].median(numeric_only=True).items()},
        seed=seed,
        horizons=horizons,
        specificity=specificity,
        target=target,
        rows=rows,
        lookback_days=lookback_days,
        interval_models=interval_models(result, (*horizons, result.horizon_days)),
        model_folds=[f["fold"] for f in result.fold_metrics],
        fold_mixed=result.fold_mixed,
    )


def package_pipeline(
    cohort: Cohort,
    featurizer: LandmarkFeatures,
    result: CVResult,
    model: SurvivalModel,
    *,
    reference: dict[str, float],
    seed: int = 0,
    horizons: Sequence[float] = DEFAULT_HORIZONS,
    specificity: float = 0.9,
    target: Target | None = None,
    rows: dict[str, str] | None = None,
    lookback_days: float = DEFAULT_LOOKBACK_DAYS,
    interval_models: Sequence[SurvivalModel] = (),
    model_folds: Sequence[Any] = (),
    fold_mixed: Mapping[str, dict[str, Any]] | None = None,
) -> RiskPipeline:
    """A fitted model packaged with its alarm rule chosen on ``result``'s out-of-fold risks.

    ``model_folds``: the fold each of ``interval_models`` left out; with
    ``result.patient_folds`` they say which fold model serves each training patient
    (``RiskPipeline.fold_model_for``). ``fold_mixed``: fold -> the mixed-model fits that
    fold's model was trained on (``CVResult.fold_mixed``), packaged beside each fold model
    so that it is asked with the features it saw."""
    hs = tuple(sorted({*horizons, result.horizon_days}))
    if result.oof_draws is not None:
        alarm = course_alarm_policy(
            cohort,
            result,
            target or Target(patient_specificity=specificity),
            lookback_days=lookback_days,
            seed=seed,
        )
    else:
        alarm = alarm_policy(result.oof, result.horizon_days, specificity)
    return RiskPipeline(
        manifest=cohort.manifest,
        featurizer=featurizer,
        model=model,
        model_name=result.name,
        horizons=hs,
        alarm=alarm,
        reference=dict(reference),
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        cohort_digest=cohort.digest,
        metrics={k: float(v) for k, v in result.metrics.items() if np.isfinite(v)},
        interval_models=list(interval_models),
        interval_mixed=_interval_mixed(fold_mixed, model_folds, len(interval_models)),
        rows=dict(rows or {}),
        held_out=held_out_positions(
            result.patient_folds, model_folds, len(interval_models), _sites(cohort)
        ),
    )


def _interval_mixed(
    fold_mixed: Mapping[str, dict[str, Any]] | None, model_folds: Sequence[Any], n_models: int
) -> list[dict[str, Any]]:
    """The mixed-model fits of each of the ``n_models`` fold models, in their order; empty
    without that stage (or fold models that do not match the folds)."""
    if not fold_mixed or not n_models or len(model_folds) != n_models:
        return []
    if any(str(k) not in fold_mixed for k in model_folds):
        return []
    return [fold_mixed[str(k)] for k in model_folds]


def _sites(cohort: Cohort) -> dict[str, str | None]:
    """Each patient's site (None where the cohort records none)."""
    p = cohort.patients
    if SITE_ID not in p:
        return {}
    return {
        str(pid): (str(site) if isinstance(site, str) and site else None)
        for pid, site in zip(p[PATIENT_ID], p[SITE_ID], strict=True)
    }


def held_out_positions(
    patient_folds: pd.Series | None,
    model_folds: Sequence[Any],
    n_models: int,
    sites: Mapping[str, str | None],
) -> dict[str, int]:
    """``patient_key`` (site and id) of each training patient -> the position of the fold
    model fitted without them; empty without fold models (or folds that do not match)."""
    if patient_folds is None or not n_models or len(model_folds) != n_models:
        return {}
    position = {str(k): i for i, k in enumerate(model_folds)}
    return {
        patient_key(sites.get(str(pid)), str(pid)): position[str(k)]
        for pid, k in patient_folds.items()
        if str(k) in position
    }


# The fold models travel inside the packaged model for each risk's interval, kept at the
# serving horizons only (``SurvivalModel.for_times``: a forest's nodes then hold a value per
# horizon, not a curve, ~50x smaller). Above this size the package carries none and its
# assessments no interval.
INTERVAL_MODELS_MAX_BYTES = 64 * 2**20


def interval_models(result: CVResult, horizons: Sequence[float]) -> list[SurvivalModel]:
    """``result``'s fold models kept at ``horizons`` (they replace ``result.fold_models``:
    a stack of this model builds its own fold models from them), or none if too large."""
    result.fold_models = [m.for_times(sorted(set(horizons))) for m in result.fold_models]
    return fold_models_within_limit(result, result.fold_models)


def fold_models_within_limit(
    result: CVResult, models: Sequence[SurvivalModel]
) -> list[SurvivalModel]:
    """``models`` if they pickle within ``INTERVAL_MODELS_MAX_BYTES``, else none (noted)."""
    size = sum(len(pickle.dumps(m, protocol=pickle.HIGHEST_PROTOCOL)) for m in models)
    if size > INTERVAL_MODELS_MAX_BYTES:
        result.notes.append(
            f"risk intervals: the {len(models)} fold models take "
            f"{size / 2**20:.0f} MiB (limit {INTERVAL_MODELS_MAX_BYTES / 2**20:.0f} MiB); the "
            "packaged model carries none, so its assessments come without an interval"
        )
        return []
    return list(models)
