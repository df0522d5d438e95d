"""``ctcmon report``: the model's TRIPOD+AI report (HTML, JSON, PNG) from its MLflow run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ctcmon.console import JsonOpt, TrackingOpt, emit_json, guarded, out, progress


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app``."""
    app.command(name="report")(report)


def report(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="MLflow model URI: models:/ctcmon-recurrence@champion, models:/NAME/VERSION "
            "or runs:/RUN_ID/model.",
        ),
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for model_report.html, model_report.json, PNGs.")
    ],
    tracking_uri: TrackingOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The model's report (TRIPOD+AI items) generated from its MLflow run."""
    from reporting import build_model_report

    def work() -> Any:
        with progress(f"building the report of {model}"):
            return build_model_report(model, out_dir, tracking_uri=tracking_uri)

    res = guarded(as_json, work)
    if as_json:
        emit_json({"ok": True, **res.to_dict()})
        return
    where = f", {res.registered}" if res.registered else ""
    out.print(f"model report for {res.model_name} (run {res.run_id}{where}): {res.html}")
    out.print(f"  figures: {len(res.figures)} PNG; facts: {res.json}")
    out.print("  TRIPOD+AI items: " + ", ".join(f"{n} {s}" for s, n in res.tripod.items()))
    out.print(f"  limitations: {len(res.limitations)}")
    for text in res.limitations[:3]:
        out.print(f"  - {text}", markup=False)
