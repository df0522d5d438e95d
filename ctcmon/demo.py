"""``ctcmon demo``: the whole job on a simulated cohort, start to finish."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.progress import Progress, quiet

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    workdir: Path
    cohort_dir: Path
    tracking_uri: str
    steps: dict[str, float] = field(default_factory=dict)  # step -> seconds
    summary: dict[str, Any] = field(default_factory=dict)


def _timed(result: DemoResult, step: str, fn: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    value = fn()
    result.steps[step] = round(time.perf_counter() - start, 2)
    log.info("demo step %s took %.1f s", step, result.steps[step])
    return value


CHAMPION_URI = "models:/ctcmon-recurrence@champion"
EXPERIMENT = "ctcmon-demo"
DEMO_SITE = "demo"
STORE_FILE = "ctcmon.db"  # the service store, beside the demo's MLflow store
# the clinic's "today" in the simulated calendar: the day by which this share of the
# patients had been operated on (about a third of them are then still in follow-up)
CUT_QUANTILE = 0.6
# the clinic's list: this many of the patients in follow-up that day. Each draw's assessment
# is issued by the champion through the service (a random survival forest with its fold
# models takes tens of ms a draw), so the whole cohort would take minutes
CLINIC_PATIENTS = 100
# the clinic's patients are new to the model, as a clinic's are: simulated by the same
# process with the next seed, never trained on. (Loading the training patients would show
# in-sample risks, and intervals inflated by the one fold model that never saw each one.)
CLINIC_FOLDER = "clinic-cohort"
CLINIC_SIMULATED = 400  # about a third of them are in follow-up on the clinic day


def run_demo(
    workdir: Path, n_patients: int = 1000, seed: int = 7, say: Progress | None = None
) -> DemoResult:
    """simulate → validate → describe → train (registry) → lead time → model report."""
    from cohort.load import load_cohort
    from cohort.summary import summarize
    from reporting.study import write_study_report
    from study.describe import describe_cohort
    from training.train import TrainConfig, train

    note: Progress = say or quiet

    def train_progress(description: str, fraction: float | None = None) -> None:
        note(description, None if fraction is None else 0.2 + 0.6 * fraction)

    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    cohort_dir = workdir / "cohort"
    uri = f"sqlite:///{(workdir / 'mlflow.db').as_posix()}"
    result = DemoResult(workdir, cohort_dir, uri)
    note(f"simulating {n_patients} patients", 0.02)
    _timed(result, "simulate", lambda: _simulate_anew(cohort_dir, n_patients, seed))
    note("validating the cohort", 0.08)
    cohort = _timed(result, "validate", lambda: load_cohort(cohort_dir))
    result.summary["cohort"] = summarize(cohort)
    note("describing the study", 0.12)
    described = _timed(
        result,
        "describe",
        lambda: write_study_report(describe_cohort(cohort), workdir / "describe"),
    )
    result.summary["describe_dir"] = str(workdir / "describe")
    result.summary["describe_files"] = [str(p) for p in getattr(described, "files", [])]
    note("training all models (patient-grouped 5-fold CV)", 0.2)
    trained = _timed(
        result,
        "train",
        lambda: train(
            cohort,
            TrainConfig(seed=seed),
            tracking_uri=uri,
            experiment=EXPERIMENT,
            register=True,
            progress=train_progress,
        ),
    )
    result.summary["champion"] = trained.champion
    result.summary["models"] = {r.name: r.metrics for r in trained.results}
    note("lead time over imaging", 0.82)
    _timed(result, "leadtime", lambda: _leadtime(result, cohort, uri))
    note("model report", 0.9)
    _timed(result, "report", lambda: _report(result, uri))
    note("loading the patients into the service store", 0.93)
    _timed(result, "store", lambda: _store(result, _clinic_cohort(workdir, seed), uri))
    return result


def _leadtime(result: DemoResult, cohort: Any, uri: str) -> None:
    from evaluation import run_leadtime
    from reporting.leadtime import publish_leadtime

    out = result.workdir / "leadtime"
    lt = run_leadtime(cohort, model_uri=CHAMPION_URI, n_boot=200, tracking_uri=uri)
    publish_leadtime(lt, out)
    result.summary["leadtime_dir"] = str(out)
    keys = (
        "sensitivity",
        "specificity",
        "lead_median",
        "lead_median_ci",
        "episode_lead_median",
        "false_alarms_per_patient_year",
    )
    result.summary["leadtime"] = {
        r.name: {k: r.metrics.get(k) for k in keys} for r in lt.rules if r.variant_of is None
    }


def _report(result: DemoResult, uri: str) -> None:
    from reporting import build_model_report

    out = result.workdir / "model-report"
    build_model_report(CHAMPION_URI, out, tracking_uri=uri)
    result.summary["model_report"] = str(out / "model_report.html")


def _clinic_cohort(workdir: Path, seed: int) -> Any:
    """New patients for the clinic (``CLINIC_FOLDER``): the next seed of the simulator."""
    from cohort.load import load_cohort

    folder = workdir / CLINIC_FOLDER
    _simulate_anew(folder, CLINIC_SIMULATED, seed + 1)
    return load_cohort(folder)


def _simulate_anew(folder: Path, n_patients: int, seed: int) -> Any:
    """A simulated cohort in ``folder``, replacing only a previous simulation there."""
    from cohort.simulate import simulate_cohort

    if folder.exists():
        _remove_previous_simulation(folder)
    return simulate_cohort(folder, n_patients=n_patients, seed=seed)


def _store(result: DemoResult, cohort: Any, uri: str) -> None:
    """A clinic's patients, as known on a clinic day, in the service store with a key.

    Dates move so that the clinic day is yesterday: the worklist then reads as today's.
    """
    import dataclasses
    import random

    from serving.auth import Principal, create_key
    from serving.model import ModelHolder
    from serving.seed import clinic_day, in_follow_up, load_cohort_patients
    from serving.store import Store

    db = result.workdir / STORE_FILE
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)  # the demo's own store, made again each run
    store = Store(f"sqlite:///{db.as_posix()}")
    try:
        store.migrate()
        holder = ModelHolder(CHAMPION_URI, uri)
        holder.refresh()
        assert holder.current is not None  # refresh raises when it cannot load
        key_id, token = create_key(store, "clinician", DEMO_SITE, label="ctcmon demo")
        cut, shift = clinic_day(cohort, CUT_QUANTILE)
        followed = in_follow_up(cohort, cut)
        rng = random.Random(len(followed))
        clinic = set(rng.sample(followed, min(CLINIC_PATIENTS, len(followed))))
        patients = cohort.patients[cohort.patients["patient_id"].isin(clinic)]
        loaded = load_cohort_patients(
            store,
            holder.current,
            Principal(key_id, "clinician", DEMO_SITE),
            dataclasses.replace(cohort, patients=patients),
            until=cut,
            shift_days=shift,
        )
    finally:
        store.dispose()
    result.summary["store"] = {
        "database_url": f"sqlite:///{db.as_posix()}",
        "site": DEMO_SITE,
        "clinician_key": token,
        "patients": loaded.patients,
        "draws": loaded.draws,
        "assessments": loaded.assessments,
        "scans": loaded.scans,
        "cohort_dir": str(result.workdir / CLINIC_FOLDER),
    }


def _remove_previous_simulation(cohort_dir: Path) -> None:
    """Only a folder that is recognisably a previous simulation is replaced."""
    import shutil

    if not (cohort_dir / "truth.csv").is_file():
        raise FileExistsError(
            f"{cohort_dir} exists and is not a simulated cohort; choose another --workdir"
        )
    shutil.rmtree(cohort_dir)
