"""Report templates are files shipped as package data, rendered by one environment."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest

from reporting.environment import render

ROOT = Path(__file__).resolve().parents[2]


def test_every_report_template_is_declared_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["reporting"]
    folder = ROOT / "reporting"
    files = [p.relative_to(folder).as_posix() for p in (folder / "templates").iterdir()]
    assert files, "no templates found"
    assert [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)] == []


def test_a_missing_value_in_a_template_fails_loudly_rather_than_rendering_blank() -> None:
    import jinja2

    with pytest.raises(jinja2.UndefinedError, match="name"):
        render(
            "study.html.j2", n_patients=3, by=None, notes=[], sections=[], figures=[], skipped=[]
        )
