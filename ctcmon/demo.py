"""``ctcmon demo``: the whole job on a simulated cohort, start to finish."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Say = Callable[[str, float | None], None]


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


def run_demo(
    workdir: Path, n_patients: int = 1000, seed: int = 7, say: Say | None = None
) -> DemoResult:
    """simulate → validate → describe → train all models with the registry."""
    from cohort.load import load_cohort
    from cohort.simulate import simulate_cohort
    from cohort.summary import summarize
    from study.describe import describe_cohort
    from training.train import TrainConfig, train

    note = say or (lambda _d, _f=None: None)
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    cohort_dir = workdir / "cohort"
    uri = f"sqlite:///{(workdir / 'mlflow.db').as_posix()}"
    result = DemoResult(workdir, cohort_dir, uri)
    note(f"simulating {n_patients} patients", 0.02)
    if cohort_dir.exists():
        _remove_previous_simulation(cohort_dir)
    _timed(
        result, "simulate", lambda: simulate_cohort(cohort_dir, n_patients=n_patients, seed=seed)
    )
    note("validating the cohort", 0.08)
    cohort = _timed(result, "validate", lambda: load_cohort(cohort_dir))
    result.summary["cohort"] = summarize(cohort)
    note("describing the study", 0.12)
    described = _timed(
        result, "describe", lambda: describe_cohort(cohort, out_dir=workdir / "describe")
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
            experiment="ctcmon-demo",
            register=True,
            progress=lambda d, f=None: note(d, None if f is None else 0.2 + 0.7 * f),
        ),
    )
    result.summary["champion"] = trained.champion
    result.summary["models"] = {r.name: r.metrics for r in trained.results}
    return result


def _remove_previous_simulation(cohort_dir: Path) -> None:
    """Only a folder that is recognisably a previous simulation is replaced."""
    import shutil

    if not (cohort_dir / "truth.csv").is_file():
        raise FileExistsError(
            f"{cohort_dir} exists and is not a simulated cohort; choose another --workdir"
        )
    shutil.rmtree(cohort_dir)
