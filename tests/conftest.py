"""Fixtures shared by every test package: small contract cohorts written to disk."""

from __future__ import annotations

import os

# before any OpenMP library loads (see ctcmon/__init__.py)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

MANIFEST = """\
name = "tiny-hcc"
time_zero = "resection"
endpoint = "rfs"
horizon_days = 730

[covariates]
age = "numeric"
sex = "categorical"
microvascular_invasion = "binary"

[markers.ctc_total]
unit = "cells/7.5mL"
positive_at = 2

[markers.afp]
unit = "ng/mL"
upper_normal = 20

[imaging]
schedule_days = [90, 180, 270, 360]
"""


def tiny_tables() -> dict[str, pd.DataFrame]:
    """Four patients: p1 recurs (rising CTC), p2 recurrence-free, p3 dies, p4 censored early."""
    patients = pd.DataFrame(
        {
            "patient_id": ["p1", "p2", "p3", "p4"],
            "site_id": ["site-a", "site-a", "site-b", "site-b"],
            "index_date": ["2024-01-10", "2024-02-01", "2024-03-01", "2024-03-15"],
            "age": ["61", "55", "", "70"],
            "sex": ["M", "F", "M", "M"],
            "microvascular_invasion": ["1", "0", "0", "1"],
        }
    )
    m = [
        ("p1", "2024-01-08", "ctc_total", "3", "cells/7.5mL", "", "d1"),
        ("p1", "2024-01-08", "afp", "2", "ng/mL", "<", "d1"),
        ("p1", "2024-02-10", "ctc_total", "2", "cells/5mL", "", "d2"),
        ("p1", "2024-02-10", "afp", "30", "IU/mL", "", "d2"),
        ("p1", "2024-04-10", "ctc_total", "6", "cells/7.5mL", "", "d3"),
        ("p2", "2024-02-01", "ctc_total", "0", "cells/7.5mL", "", ""),
        ("p2", "2024-05-01", "ctc_total", "1", "cells/7.5mL", "", ""),
        ("p2", "2024-05-01", "afp", "4", "ng/mL", "", ""),
        ("p3", "2024-04-01", "ctc_total", "1", "cells/7.5mL", "", ""),
        ("p4", "2024-03-20", "afp", "8", "ng/mL", "", ""),
    ]
    measurements = pd.DataFrame(
        m, columns=["patient_id", "date", "marker", "value", "unit", "qualifier", "draw_id"]
    )
    imaging = pd.DataFrame(
        {
            "patient_id": ["p1", "p1", "p2", "p2"],
            "date": ["2024-04-12", "2024-07-10", "2024-05-02", "2024-08-01"],
            "modality": ["MRI", "CT", "MRI", "US"],
            "finding": ["no_evidence", "recurrence", "no_evidence", "indeterminate"],
        }
    )
    outcomes = pd.DataFrame(
        {
            "patient_id": ["p1", "p2", "p3", "p4"],
            "last_followup_date": ["2024-09-01", "2025-06-01", "2024-06-01", "2024-04-01"],
            "recurrence_date": ["2024-07-10", "", "", ""],
            "death_date": ["", "", "2024-06-01", ""],
        }
    )
    return {
        "patients": patients,
        "measurements": measurements,
        "imaging": imaging,
        "outcomes": outcomes,
    }


def write_cohort(
    folder: Path, tables: dict[str, pd.DataFrame], manifest: str = MANIFEST, fmt: str = "csv"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cohort.toml").write_text(manifest, encoding="utf-8")
    for name, frame in tables.items():
        if fmt == "csv":
            frame.to_csv(folder / f"{name}.csv", index=False)
        else:
            frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


@pytest.fixture
def make_cohort(tmp_path: Path) -> Callable[..., Path]:
    """Write the tiny cohort, optionally altered: ``make_cohort(edit=fn, manifest=..., fmt=...)``."""
    counter = iter(range(1000))

    def make(
        edit: Callable[[dict[str, pd.DataFrame]], None] | None = None,
        manifest: str = MANIFEST,
        fmt: str = "csv",
    ) -> Path:
        tables = tiny_tables()
        if edit is not None:
            edit(tables)
        return write_cohort(tmp_path / f"cohort{next(counter)}", tables, manifest, fmt)

    return make


@pytest.fixture(scope="session")
def pbcseq_dir() -> Path:
    """The shipped Mayo PBC serial-lab cohort."""
    return Path(__file__).resolve().parents[1] / "cohort" / "datasets" / "pbcseq"


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A small simulated cohort, trained (cox + baseline, 3 folds) and registered in a fresh
    SQLite MLflow store: what a user has after ``ctcmon train --register``."""
    from cohort.load import load_cohort
    from cohort.simulate import simulate_cohort
    from training.train import TrainConfig, train

    root = tmp_path_factory.mktemp("trained")
    simulate_cohort(root / "cohort", n_patients=300, seed=11)
    cohort = load_cohort(root / "cohort")
    uri = f"sqlite:///{(root / 'mlflow.db').as_posix()}"
    result = train(
        cohort,
        TrainConfig(models=["cox", "baseline"], folds=3, n_boot=5, seed=3),
        tracking_uri=uri,
        experiment="test",
        register=True,
    )
    return {
        "uri": uri,
        "cohort_dir": root / "cohort",
        "cohort": cohort,
        "result": result,
        "root": root,
    }


@pytest.fixture(scope="session")
def stack_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``ctcmon train --models cox,xgb_cox,stack`` on a small simulated cohort, run as a user
    runs it (a subprocess, its output piped), then the stack registered as the champion."""
    import subprocess
    import sys
    import warnings

    import mlflow

    from cohort.simulate import simulate_cohort
    from tracking import registry
    from tracking.locations import use_tracking
    from tracking.vocabulary import Tag

    root = tmp_path_factory.mktemp("stack")
    simulate_cohort(root / "cohort", n_patients=300, seed=2)
    uri = f"sqlite:///{(root / 'mlflow.db').as_posix()}"
    args = ["train", str(root / "cohort"), "--models", "cox,xgb_cox,stack", "--folds", "3"]
    args += ["--bootstrap", "0", "--tracking-uri", uri, "--experiment", "stack"]
    ran = subprocess.run(
        [sys.executable, "-m", "ctcmon", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    use_tracking(uri, "stack")
    runs = mlflow.search_runs(experiment_names=["stack"], filter_string=Tag.MODEL.equals("stack"))
    run_id = str(runs["run_id"].iloc[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's own warnings while registering
        registry.register_champion(run_id, "brier", float(runs["metrics.brier"].iloc[0]))
    return {"uri": uri, "cohort_dir": root / "cohort", "stdout": ran.stdout, "run_id": run_id}
