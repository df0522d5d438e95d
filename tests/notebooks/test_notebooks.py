"""The notebooks in ``notebooks/`` run end to end on a small cohort and show their key outputs.

Each notebook is executed with nbclient in a kernel of this very interpreter (a kernel spec
made on the fly in a temporary ``JUPYTER_PATH``, so a user's or the system's ``python3``
kernel can never stand in for the venv). Its ``WORKDIR`` parameter is pointed at a pytest
temporary folder, the way papermill injects parameters: a cell after the one tagged
``parameters``. Every notebook must keep its outputs cleared in the repository.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
KERNEL = "python3"
CELL_TIMEOUT = 300  # seconds; the slowest cell trains a few models on a small cohort
# files a notebook would leave in the repository if it fell back on a working-directory default
STRAY = ("mlflow.db", "mlruns", "mlartifacts", "ctcmon.db", "ctcmon-demo")

# Per notebook, text its outputs must contain (the tables and figures it exists to show).
EXPECTED: dict[str, list[str]] = {
    "01_cohort_overview.ipynb": ["characteristics", "chisq", "ctc_persistence", "image/png"],
    "02_compare_models.ipynb": ["auc", "harrell_c", "baseline", "champion", "image/png"],
    "03_lead_time.ipynb": ["ctc_total>=2", "sensitivity", "lead", "image/png"],
    "04_service_client.ipynb": ["risk_band", "assessment", "bring_imaging_forward|keep_schedule"],
}


def notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


@pytest.fixture(scope="module")
def venv_kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A ``python3`` kernel spec pointing at ``sys.executable``, found first on JUPYTER_PATH."""
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python 3 ({sys.executable})",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(root))
        # jupyter_core's own paths, not the legacy ~/.jupyter ones, and no migration warning
        mp.setenv("JUPYTER_PLATFORM_DIRS", "1")
        # runtime files (connection files) in the temporary folder, not the user's home
        mp.setenv("JUPYTER_RUNTIME_DIR", str(root / "runtime"))
        # nothing the notebooks start may read the caller's MLflow or service settings
        for name in ("MLFLOW_TRACKING_URI", "CTCMON_DATABASE_URL", "CTCMON_MODEL_URI"):
            mp.delenv(name, raising=False)
        yield


def with_workdir(nb: nbformat.NotebookNode, workdir: Path) -> nbformat.NotebookNode:
    """The notebook with ``WORKDIR`` overridden in a cell right after its parameters cell."""
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"expected one cell tagged 'parameters', found {len(tagged)}"
    injected = nbformat.v4.new_code_cell(f"WORKDIR = {str(workdir)!r}")
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(tagged[0] + 1, injected)
    return nb


def output_text(nb: nbformat.NotebookNode) -> str:
    """Everything the executed notebook shows: streams, results (text/html) and mime types."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            for mime, data in out.get("data", {}).items():
                parts.append(mime)
                if mime.startswith("text/"):
                    parts.append(data if isinstance(data, str) else "".join(data))
    return "\n".join(parts)


def test_the_python3_kernel_is_this_interpreter(venv_kernel: None) -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    assert KernelSpecManager().get_kernel_spec(KERNEL).argv[0] == sys.executable


def test_there_is_a_notebook_for_each_analysis() -> None:
    assert sorted(p.name for p in notebook_paths()) == sorted(EXPECTED)


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_the_committed_notebook_has_no_outputs_and_a_python3_kernel(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == KERNEL
    dirty = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.outputs or c.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: clear the outputs of cells {dirty}"


@pytest.mark.slow
@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_the_notebook_runs_without_errors_and_shows_its_results(
    path: Path, tmp_path: Path, venv_kernel: None
) -> None:
    repo = NOTEBOOKS.parent
    before = {name for name in STRAY if (repo / name).exists()}
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    nb = with_workdir(nbformat.read(path, as_version=4), tmp_path / "work")
    client = nbclient.NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(run_dir)}},
    )
    client.execute()  # raises CellExecutionError, with the failing cell's traceback
    shown = output_text(nb)
    for expected in EXPECTED[path.name]:
        assert any(alt in shown for alt in expected.split("|")), (
            f"{path.name}: no output shows {expected!r}"
        )
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert {name for name in STRAY if (repo / name).exists()} == before, (
        f"{path.name} wrote into the repository"
    )
