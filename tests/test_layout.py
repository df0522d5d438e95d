"""The layout's rules (README, "Layout"): imports run one way; the service process stays lean."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path, env_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--config", str(cwd / "pyproject.toml"), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(env_path), "PATH": str(LINT.parent)},
        timeout=300,
    )


def test_the_packages_import_one_way_along_the_data_flow() -> None:
    proc = _lint(ROOT, ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_a_backward_import_breaks_the_contract(tmp_path: Path) -> None:
    """The same contracts, on stand-in packages where cohort imports training: it must fail."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    for name in config["root_packages"]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / "cohort" / "bad.py").write_text("import training\n")
    (tmp_path / "pyproject.toml").write_text(
        (ROOT / "pyproject.toml").read_text().split("# The one-way data flow")[1].split("\n", 1)[1]
    )
    proc = _lint(tmp_path, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "cohort.bad -> training" in proc.stdout


def test_starting_the_service_loads_no_training_plotting_or_study_code() -> None:
    code = (
        "import sys\n"
        "import ctcmon.cmd_serve, serving.app, serving.model\n"
        "from serving.app import create_app\n"
        "heavy = {'training', 'evaluation', 'reporting', 'study', 'alarms', 'matplotlib', 'lifelines'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
