"""``ctcmon train``: cross-validated training and evaluation of each model, tracked in MLflow."""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import time as clock
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from joblib import cpu_count
from threadpoolctl import threadpool_limits

from alarms.operating_point import DEFAULT_LOOKBACK_DAYS, Target
from alarms.surveillance import END_DAY, course_table
from cohort.cohort import Cohort
from cohort.endpoints import derive_endpoint
from cohort.records import PatientHistory, history_from_cohort
from cohort.vocabulary import DATE, EVENT, LANDMARK_DAY, PATIENT_ID
from features.landmark import (
    LandmarkFeatures,
    LandmarkInput,
    build_landmark_table,
    default_landmarks,
    draw_points,
)
from models import MODEL_NAMES
from models.pipeline import DEFAULT_HORIZONS
from tracking import locations, registry
from training import mlflow_runs
from training.cv import folds_from_file, patient_folds
from training.day_bands import served_calibration, served_calibration_metrics
from training.evaluate import (
    VARIANT_SEPARATOR,
    CVResult,
    cross_validate,
    fit_pipeline,
    operating_point_metrics,
)
from training.fold_features import FoldColumns, fold_columns
from training.progress import Progress, quiet
from training.run_figures import cohort_figures, model_figures, rendered
from training.stacking import STACK, stack_groups, stack_pipeline, stacked_cv

matplotlib.use("Agg")
log = logging.getLogger(__name__)

FIT_ON = ("draws", "landmarks")
# "summary": the hand-made statistics of the last draws; "mixed": plus the mixed-model
# summaries of each marker (features.mixed), refitted inside every CV fold; "blup": the
# mixed model's BLUP current value and slope of each marker alone, with the covariates (what
# two-stage landmarking feeds its Cox model; no hand-made statistic); "-no-ctc": without any
# CTC marker (the ablation trial teams ask for: what does CTC add?); "-no-scans": without the
# scans' readings (the blood alone: does it see recurrence before imaging?)
FEATURE_SETS = (
    "summary",
    "mixed",
    "blup",
    "summary-no-ctc",
    "mixed-no-ctc",
    "blup-no-ctc",
    "summary-no-scans",
    "mixed-no-scans",
    "blup-no-scans",
)
BLUP_STATS = ("mm_level", "mm_slope")
CTC_PREFIX = "ctc"  # CTC markers' codes: ctc_total and its subtypes


@dataclass
class TrainConfig:
    """Everything that defines a training run; logged verbatim as MLflow params."""

    # "stack": per band of days, weights over the other models' out-of-fold risks
    models: list[str] = field(default_factory=lambda: [*MODEL_NAMES, STACK])
    horizon_days: float = 365.0
    landmarks: list[float] | None = None
    # Landmarks used for fitting only (a landmark supermodel); metrics come from `landmarks`.
    train_landmarks: list[float] | None = None
    folds: int = 5
    folds_file: Path | None = None
    seed: int = 0
    n_boot: int = 50
    specificity: float = 0.9
    select_by: str = "auc"
    serving_horizons: tuple[float, ...] = DEFAULT_HORIZONS
    # "draws": fit on every post-index draw day of each patient (the moments the service
    # scores); "landmarks": fit on the landmark rows (`landmarks` + `train_landmarks`)
    fit_on: str = "draws"
    # the alarm rule's target: a patient-level specificity, or else a false-alarm rate
    false_alarms_per_year: float | None = None
    lookback_days: float = DEFAULT_LOOKBACK_DAYS
    # one feature set, or several separated by commas: each model then runs once per set,
    # named <model>/<set> (the marker-free baseline once)
    features: str = "summary"
    # the analysis's pre-specified markers and covariates (None: all the manifest declares),
    # e.g. R's two-stage reference on pbcseq: bili, albumin, protime, chol; age, edema
    markers: list[str] | None = None
    covariates: list[str] | None = None


@dataclass
class TrainResult:
    results: list[CVResult]
    run_ids: dict[str, str]
    champion: dict[str, Any] | None
    tracking_uri: str
    experiment: str
    n_rows: int
    landmarks: list[float]


def check_config(config: TrainConfig) -> TrainConfig:
    unknown = [m for m in config.models if m not in (*MODEL_NAMES, STACK)]
    if unknown or not config.models:
        raise ValueError(
            f"unknown model(s) {unknown or config.models!r}; choose from {[*MODEL_NAMES, STACK]}"
        )
    if not config.horizon_days > 0:
        raise ValueError(f"--horizon must be > 0 days, got {config.horizon_days!r}")
    if config.select_by not in registry.COMPARISON_COLUMNS:
        raise ValueError(
            f"cannot select by {config.select_by!r}; choose from {list(registry.COMPARISON_COLUMNS)}"
        )
    if not 0 < config.specificity < 1:
        raise ValueError(f"specificity must be in (0, 1), got {config.specificity!r}")
    unknown_sets = [f for f in feature_sets(config) if f not in FEATURE_SETS]
    if unknown_sets or not feature_sets(config):
        raise ValueError(
            f"--features must be one or more of {list(FEATURE_SETS)} separated by commas, "
            f"got {config.features!r}"
        )
    if config.fit_on not in FIT_ON:
        raise ValueError(f"--fit-on must be one of {list(FIT_ON)}, got {config.fit_on!r}")
    alarm_target(config)  # checks the false-alarm rate
    stack_groups(config.models, feature_sets(config))  # a stack needs other models
    if not config.lookback_days > 0:
        raise ValueError(f"--lookback must be > 0 days, got {config.lookback_days!r}")
    return config


def feature_sets(config: TrainConfig) -> list[str]:
    """The feature sets of ``config.features``, in the order given, without repeats."""
    return list(dict.fromkeys(f.strip() for f in config.features.split(",") if f.strip()))


def has_mixed_stage(feature_set: str) -> bool:
    return feature_set.startswith(("mixed", "blup"))


def manifest_featurizer(cohort: Cohort, config: TrainConfig, *, mixed: bool) -> LandmarkFeatures:
    """The manifest's featuriser, restricted to ``config``'s markers and covariates."""
    est = LandmarkFeatures.from_manifest(cohort.manifest, mixed=mixed)
    for name, chosen, declared in (
        ("markers", config.markers, est.markers or {}),
        ("covariates", config.covariates, est.covariates or {}),
    ):
        if chosen is None:
            continue
        unknown = [c for c in chosen if c not in declared]
        if unknown or not chosen:
            raise ValueError(
                f"--{name}: {unknown or chosen} not among the cohort's {name} "
                f"{sorted(declared)} (cohort.toml)"
            )
        est.set_params(**{name: {c: declared[c] for c in chosen}})
    return est


def set_featurizer(
    cohort: Cohort, feature_set: str, points: pd.DataFrame, config: TrainConfig | None = None
) -> LandmarkFeatures:
    """The featuriser of one feature set, fitted on ``points`` (the training rows).

    Its columns are a subset of the full table's, with the same values: each marker's
    features (mixed models included) depend on that marker alone.
    """
    est = manifest_featurizer(cohort, config or TrainConfig(), mixed=has_mixed_stage(feature_set))
    if feature_set.startswith("blup"):
        est.set_params(marker_stats=BLUP_STATS)
    if feature_set.endswith("-no-ctc"):
        markers = {m: t for m, t in (est.markers or {}).items() if not m.startswith(CTC_PREFIX)}
        est.set_params(markers=markers)
    if feature_set.endswith("-no-scans"):
        est.set_params(imaging=False)
    return est.fit(LandmarkInput.from_cohort(cohort, points))


def alarm_target(config: TrainConfig) -> Target:
    if config.false_alarms_per_year is not None:
        return Target(patient_specificity=None, false_alarms_per_year=config.false_alarms_per_year)
    return Target(patient_specificity=config.specificity)


def evaluation_landmarks(cohort: Cohort, config: TrainConfig) -> list[float]:
    """The landmarks the models are scored at: ``config.landmarks``, else the cohort's."""
    return sorted(config.landmarks or default_landmarks(cohort))


def landmark_table(cohort: Cohort, config: TrainConfig) -> tuple[pd.DataFrame, LandmarkFeatures]:
    """The stacked table, targets truncated at the longest horizon any consumer asks for.

    Rows at the evaluation landmarks and at ``config.train_landmarks`` (fitting only).
    """
    scored_at = evaluation_landmarks(cohort, config)
    landmarks = sorted({*scored_at, *(config.train_landmarks or [])})
    train_horizon = max(config.horizon_days, *config.serving_horizons)
    mixed = any(has_mixed_stage(f) for f in feature_sets(config))
    featurizer = manifest_featurizer(cohort, config, mixed=mixed)
    table = build_landmark_table(
        cohort, landmarks, horizon_days=train_horizon, featurizer=featurizer
    )
    if table.empty:
        raise ValueError(f"no patient is at risk at landmarks {landmarks}: nothing to train on")
    if not table[LANDMARK_DAY].isin(scored_at).any():
        raise ValueError(f"no patient is at risk at the evaluation landmarks {scored_at}")
    points = table[[PATIENT_ID, LANDMARK_DAY]]
    featurizer.fit(LandmarkInput.from_cohort(cohort, points))
    return table, featurizer


@dataclass(frozen=True)
class TrainingRows:
    """The rows of one training run: what is fitted, what is scored, what the alarm replays.

    ``table``: the landmark rows (scored at the evaluation landmarks; fitted on in
    ``fit_on="landmarks"``) then, in ``fit_on="draws"``, one row per post-index draw day of each
    patient still at risk (fitted on). ``replay``: features at every post-index draw during
    surveillance, scored out of fold to choose the alarm rule.
    """

    table: pd.DataFrame
    featurizer: LandmarkFeatures
    fit: np.ndarray
    scored: np.ndarray
    replay: pd.DataFrame
    fit_on: str = "draws"

    def describe(self) -> dict[str, str]:
        fitted = self.table[self.fit]
        return {
            "fitted": (
                f"{len(fitted):,} rows of {fitted[PATIENT_ID].nunique():,} patients: "
                + _which_rows(self)
            ),
            "scored": (
                f"{int(self.scored.sum()):,} rows at the evaluation landmarks (days "
                f"{_days(self.table.loc[self.scored, LANDMARK_DAY].unique())}), out of fold"
            ),
            "alarm": (
                f"{len(self.replay):,} post-index draws of {self.replay[PATIENT_ID].nunique():,} "
                "patients, out of fold, replayed per patient over the course"
            ),
        }


def _which_rows(rows: TrainingRows) -> str:
    if rows.fit_on == "draws":
        return "each patient's own post-index draw days while at risk (where the service scores)"
    return "the landmark rows (days " + _days(rows.table.loc[rows.fit, LANDMARK_DAY].unique()) + ")"


def training_rows(cohort: Cohort, config: TrainConfig) -> TrainingRows:
    """``landmark_table`` plus each patient's draw-day rows and the draw replay."""
    table, featurizer = landmark_table(cohort, config)
    scored = table[LANDMARK_DAY].isin(evaluation_landmarks(cohort, config)).to_numpy()
    fit = np.ones(len(table), dtype=bool)
    if config.fit_on == "draws":
        horizon = max(config.horizon_days, *config.serving_horizons)
        at_draws = build_landmark_table(
            cohort, points=draw_points(cohort), horizon_days=horizon, featurizer=featurizer
        )
        table = pd.concat([table, at_draws], ignore_index=True)
        fit = np.r_[np.zeros(len(scored), dtype=bool), np.ones(len(at_draws), dtype=bool)]
        scored = np.r_[scored, np.zeros(len(at_draws), dtype=bool)]
        if featurizer.mixed_names():
            # the packaged mixed models: fitted on every patient the model is fitted on
            everyone = LandmarkInput.from_cohort(cohort, table[[PATIENT_ID, LANDMARK_DAY]])
            featurizer.fit(everyone)
            table[featurizer.mixed_names()] = featurizer.mixed_transform(everyone).to_numpy()
    replay = replay_rows(cohort, featurizer)
    return TrainingRows(table, featurizer, fit, scored, replay, config.fit_on)


def replay_rows(cohort: Cohort, featurizer: LandmarkFeatures) -> pd.DataFrame:
    """Features at every post-index draw up to the end of surveillance (no targets)."""
    points = draw_points(cohort)
    end = course_table(cohort).set_index(PATIENT_ID)[END_DAY]
    ends = points[PATIENT_ID].astype(str).map(end).to_numpy(dtype=float)
    points = points[points[LANDMARK_DAY].to_numpy() <= ends].reset_index(drop=True)
    return featurizer.transform(LandmarkInput.from_cohort(cohort, points))


def assign_folds(cohort: Cohort, config: TrainConfig) -> pd.Series:
    if config.folds_file is not None:
        return folds_from_file(config.folds_file)
    ep = cohort.endpoint(horizon_days=None)
    return patient_folds(ep[PATIENT_ID], config.folds, events=ep[EVENT], seed=config.seed)


def train(
    cohort: Cohort,
    config: TrainConfig,
    *,
    tracking_uri: str | None = None,
    experiment: str = locations.DEFAULT_EXPERIMENT,
    register: bool = False,
    progress: Progress | None = None,
    workers: int | None = None,
) -> TrainResult:
    """Cross-validate each model, refit it on all data, log one MLflow run each, maybe register.

    The models train side by side in ``workers`` processes (default: one per CPU, at most one
    per model; 1 trains in this process). Every MLflow write stays in this process, in the
    order of ``config.models``: an SQLite store takes one writer at a time. A model's
    results depend on ``config.seed`` only, never on the number of workers.
    """
    config = check_config(config)
    say: Progress = progress or quiet
    say("building landmark features", 0.0)
    started = clock.perf_counter()
    rows = training_rows(cohort, config)
    table = rows.table
    folds = assign_folds(cohort, config)
    log.info("training rows: %d in %.1f s", len(table), clock.perf_counter() - started)
    evaluate_at = evaluation_landmarks(cohort, config)
    per_fold = fold_columns(cohort, table, rows.featurizer, folds, rows.replay)
    log.info("features refitted per fold in %.1f s", clock.perf_counter() - started)
    jobs = [
        _ModelJob(name, cohort, table, featurizer, folds, config, evaluate_at, rows, per_fold)
        for name, featurizer in _variants(cohort, config, rows)
    ]
    stacks = stack_groups(config.models, feature_sets(config))
    n = len(jobs) + len(stacks)
    results: list[CVResult] = []
    run_ids: dict[str, str] = {}
    say(f"training {n} model(s)", 0.0)
    with _model_runs(jobs, workers) as outcomes:
        # while the workers start: open (maybe create) the store, draw the shared figures
        uri = locations.use_tracking(tracking_uri, experiment)
        scored = table[rows.scored]
        shared_figures = rendered(cohort_figures(scored, cohort, config.horizon_days))
        example = _input_example(cohort)
        params = _config_params(config, rows)
        trained = itertools.chain(outcomes, _stacks(cohort, config, stacks, results))
        for i, done in enumerate(trained):
            started = clock.perf_counter()
            figures = {**shared_figures, **done.figures}
            run_ids[done.result.name] = mlflow_runs.log_model_run(
                done.result, cohort, params, figures, example
            )
            done.seconds["mlflow"] = clock.perf_counter() - started
            log.info("%s: %s", done.result.name, _phases(done.seconds))
            results.append(done.result)
            say(f"trained {done.result.name} ({i + 1}/{n})", (i + 1) / n)
    champion = _register(results, run_ids, config.select_by) if register else None
    say("done", 1.0)
    return TrainResult(
        results,
        run_ids,
        champion,
        uri,
        experiment,
        len(table),
        sorted(float(x) for x in scored[LANDMARK_DAY].unique()),
    )


def _variants(
    cohort: Cohort, config: TrainConfig, rows: TrainingRows
) -> list[tuple[str, LandmarkFeatures]]:
    """Each (run name, featuriser): one per model, or per model and feature set."""
    sets = feature_sets(config)
    models = [m for m in config.models if m != STACK]  # the stack is built from their results
    if len(sets) == 1 and sets[0] == ("mixed" if rows.featurizer.mixed else "summary"):
        return [(name, rows.featurizer) for name in models]
    points = rows.table[[PATIENT_ID, LANDMARK_DAY]]
    by_set = {f: set_featurizer(cohort, f, points, config) for f in sets}
    out = []
    for name in models:
        # the baseline reads no marker: one run whatever the feature set
        chosen = sets[:1] if name == "baseline" or len(sets) == 1 else sets
        out += [(name if len(sets) == 1 else variant_name(name, f), by_set[f]) for f in chosen]
    return out


def variant_name(model: str, feature_set: str) -> str:
    return model if model == "baseline" else f"{model}{VARIANT_SEPARATOR}{feature_set}"


@dataclass
class _ModelJob:
    """Everything one model's cross-validation and refit needs; sent whole to a worker."""

    name: str
    cohort: Cohort
    table: pd.DataFrame
    featurizer: LandmarkFeatures
    folds: pd.Series
    config: TrainConfig
    evaluate_at: list[float] | None = None  # None: score every landmark
    rows: TrainingRows | None = None  # None: fit and score `table` at `evaluate_at`
    fold_columns: FoldColumns | None = None  # a fitted feature stage refitted per fold


@dataclass
class _Trained:
    result: CVResult
    figures: dict[str, bytes]
    seconds: dict[str, float]


@contextmanager
def _model_runs(jobs: list[_ModelJob], workers: int | None) -> Iterator[Iterator[_Trained]]:
    """Each job's outcome, in the order of ``jobs``, as soon as it and those before it are done.

    With more than one worker the jobs run in a ``multiprocessing`` pool of fresh (spawned)
    processes, one model per worker, the next model starting as soon as a worker is free;
    each worker caps its BLAS/OpenMP pools at cores // workers threads (threadpoolctl) so
    that two models do not fight over the cores. The models' own thread settings
    (xgboost's ``nthread``, the forest's ``n_jobs``) are hyperparameters, logged and
    packaged, and stay as configured. A failing model raises while iterating, naming the
    model; leaving the block (early, on an error in the caller) terminates the workers.

    Not joblib: stopping its loky pool while a submitted model waits for a worker makes
    loky's manager thread raise KeyError (joblib/loky#663). The standard pool has a race of
    its own: its task thread, blocked sending a large job down a worker's full pipe, never
    returns once ``terminate`` has killed the workers, and ``terminate`` waits for it for
    ever. So the jobs travel to each worker once, when it starts (``initargs``), and the
    task queue carries only their positions, which never fill a pipe.
    """
    n = len(jobs) if workers is None else workers
    n = max(1, min(n, len(jobs), cpu_count()))
    if n == 1:
        yield map(_train_model, jobs)
        return
    log.info("training %d models in %d worker processes", len(jobs), n)
    threads = max((cpu_count()) // n, 1)
    context = multiprocessing.get_context("spawn")  # no forked copies of MLflow's threads
    with context.Pool(n, initializer=_start_worker, initargs=(threads, jobs)) as pool:
        yield pool.imap(_train_job, range(len(jobs)))


def _start_worker(threads: int, jobs: list[_ModelJob]) -> None:
    """In each worker, for its lifetime: at most ``threads`` BLAS/OpenMP threads, and the
    jobs (the cohort and its table are pickled once for all of them: they share them)."""
    global _THREAD_LIMITS, _JOBS
    _THREAD_LIMITS = threadpool_limits(threads)
    _JOBS = jobs


_THREAD_LIMITS: Any = None  # held so the limits stay in force in a worker
_JOBS: list[_ModelJob] = []  # a worker's jobs, sent once at its start


def _train_job(position: int) -> _Trained:
    """The job at ``position`` of the worker's jobs (see ``_model_runs``)."""
    return _train_model(_JOBS[position])


def _train_model(job: _ModelJob) -> _Trained:
    """Cross-validate one model, refit it on every row, render its figures (in a worker)."""
    try:
        return _cross_validate_and_refit(job)
    except Exception as exc:
        if type(exc) in (ValueError, TypeError):
            # the CLI shows these without a traceback: the message itself names the model
            raise type(exc)(f"model {job.name!r}: {exc}") from exc
        exc.add_note(f"while training model {job.name!r}")
        raise


def _cross_validate_and_refit(job: _ModelJob) -> _Trained:
    config, seconds = job.config, {}
    started = clock.perf_counter()
    result = cross_validate(
        job.table,
        job.featurizer,
        job.name,
        job.folds,
        horizon_days=config.horizon_days,
        seed=config.seed,
        n_boot=config.n_boot,
        evaluate_at=job.evaluate_at,
        fit_rows=None if job.rows is None else job.rows.fit,
        scored_rows=None if job.rows is None else job.rows.scored,
        replay=None if job.rows is None else job.rows.replay,
        fold_columns=job.fold_columns,
    )
    seconds["cv"], seconds["cv_fits"] = clock.perf_counter() - started, result.fit_seconds
    started = clock.perf_counter()
    result.pipeline = fit_pipeline(
        job.cohort,
        job.table,
        job.featurizer,
        result,
        seed=config.seed,
        horizons=config.serving_horizons,
        specificity=config.specificity,
        target=alarm_target(config),
        fit_rows=None if job.rows is None else job.rows.fit,
        rows=None if job.rows is None else job.rows.describe(),
        lookback_days=config.lookback_days,
    )
    return _finished(result, job.cohort, config, seconds, started, "refit")


def _finished(
    result: CVResult,
    cohort: Cohort,
    config: TrainConfig,
    seconds: dict[str, float],
    started: float,
    phase: str,
) -> _Trained:
    """A packaged model's alarm figures, serving time, served calibration and figures."""
    assert result.pipeline is not None
    result.metrics.update(operating_point_metrics(result.pipeline.alarm))
    result.metrics["serve_ms"] = _serve_ms(result.pipeline, cohort)
    if result.oof_draws is not None:
        endpoint = derive_endpoint(cohort.outcomes, cohort.manifest.endpoint, None)
        result.served_calibration = served_calibration(
            result.oof_draws, endpoint, config.horizon_days
        )
        result.metrics.update(served_calibration_metrics(result.served_calibration))
    seconds[phase] = clock.perf_counter() - started
    started = clock.perf_counter()
    figures = rendered(model_figures(result))
    seconds["figures"] = clock.perf_counter() - started
    return _Trained(result, figures, seconds)


def _stacks(
    cohort: Cohort, config: TrainConfig, stacks: dict[str, list[str]], results: list[CVResult]
) -> Iterator[_Trained]:
    """Each stack, built in this process once the models it combines are in ``results``."""
    for name, bases in stacks.items():
        started = clock.perf_counter()
        by_name = {r.name: r for r in results}
        members = [by_name[b] for b in bases]
        result = stacked_cv(name, members, n_boot=config.n_boot, seed=config.seed)
        result.pipeline = stack_pipeline(
            cohort,
            result,
            members,
            seed=config.seed,
            horizons=config.serving_horizons,
            target=alarm_target(config),
            specificity=config.specificity,
            lookback_days=config.lookback_days,
        )
        yield _finished(result, cohort, config, {}, started, "stack")


SERVE_TIMING_CALLS = 15


def _serve_ms(pipeline: Any, cohort: Cohort) -> float:
    """Median in-process milliseconds of one assessment (the patient with the most draws):
    what this model costs the service after every draw, so the comparison can say it."""
    example = _input_example(cohort)
    if not example:
        return float("nan")
    history = PatientHistory.model_validate(example[0])
    pipeline.assess(history)  # warm caches
    times = []
    for _ in range(SERVE_TIMING_CALLS):
        start = clock.perf_counter()
        pipeline.assess(history)
        times.append(clock.perf_counter() - start)
    return float(np.median(times) * 1000)


def _phases(seconds: dict[str, float]) -> str:
    return ", ".join(f"{phase} {value:.1f} s" for phase, value in seconds.items())


def _days(values: Iterable[float]) -> str:
    return ",".join(f"{x:g}" for x in sorted(values))


def _config_params(config: TrainConfig, rows: TrainingRows) -> dict[str, Any]:
    params = {k: v for k, v in asdict(config).items() if k != "models"}
    days = rows.table[LANDMARK_DAY]
    params["landmarks"] = _days(days[rows.scored].unique())
    landmark_rows = ~rows.fit | rows.scored if config.fit_on == "draws" else rows.fit
    params["train_landmarks"] = (
        _days(days[landmark_rows].unique()) if config.train_landmarks else None
    )
    params["n_landmark_rows"] = len(rows.table)
    params["n_fitted_rows"] = int(rows.fit.sum())
    params["n_scored_rows"] = int(rows.scored.sum())
    params["n_replayed_draws"] = len(rows.replay)
    params.update({f"rows_{k}": v for k, v in rows.describe().items()})
    return params


def _register(results: list[CVResult], run_ids: dict[str, str], metric: str) -> dict[str, Any]:
    metrics = {r.name: r.metrics for r in results}
    best = registry.best_run(run_ids, metrics, metric)
    version = registry.register_champion(run_ids[best], metric, metrics[best][metric])
    return {
        "name": locations.REGISTERED_MODEL,
        "version": version,
        "model": best,
        "run_id": run_ids[best],
        "metric": metric,
        "value": metrics[best][metric],
    }


def _input_example(cohort: Cohort) -> list[dict[str, Any]] | None:
    counts = cohort.measurements.groupby(PATIENT_ID)[DATE].nunique()
    if counts.empty:
        return None
    pid = str(counts.idxmax())
    history = history_from_cohort(cohort, pid)
    last = max(m.date for m in history.measurements if m.date)
    return [history.model_copy(update={"as_of": last}).model_dump(exclude_none=True)]


def summary_rows(results: Sequence[CVResult]) -> pd.DataFrame:
    """The comparison table printed after training (same columns as ``ctcmon compare``)."""
    rows = [
        {"model": r.name, **{c: r.metrics.get(c, np.nan) for c in registry.COMPARISON_COLUMNS}}
        for r in results
    ]
    return (
        pd.DataFrame(rows)
        .sort_values("auc", ascending=False, na_position="last")
        .reset_index(drop=True)
    )
