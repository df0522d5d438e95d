"""``build_model_report``: the model's TRIPOD+AI report from its MLflow run, as HTML + JSON + PNG."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from reporting.collect import collect_facts
from reporting.facts import ReportFacts
from reporting.limitations import limitations
from reporting.render import render_html
from reporting.resolve import check_model_uri, tracking_at
from reporting.tripod import checklist
from tracking.locations import resolve_tracking_uri

log = logging.getLogger(__name__)

HTML_FILE: Final = "model_report.html"
JSON_FILE: Final = "model_report.json"


@dataclass
class ReportResult:
    """Where the report went and the headline of what it says."""

    model_uri: str
    run_id: str
    model_name: str
    html: Path
    json: Path
    figures: dict[str, Path] = field(default_factory=dict)
    registered: str | None = None  # "name version N"
    limitations: list[str] = field(default_factory=list)
    tripod: dict[str, int] = field(default_factory=dict)  # status -> number of items

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_uri": self.model_uri,
            "run_id": self.run_id,
            "model": self.model_name,
            "registered": self.registered,
            "html": str(self.html),
            "json": str(self.json),
            "figures": {k: str(v) for k, v in self.figures.items()},
            "limitations": list(self.limitations),
            "tripod": dict(self.tripod),
        }


def build_model_report(
    model_uri: str, out_dir: str | Path, *, tracking_uri: str | None = None
) -> ReportResult:
    """Write ``model_report.html``, ``model_report.json`` and the figures to ``out_dir``.

    ``model_uri``: ``models:/name@alias``, ``models:/name/version`` or ``runs:/<id>/model``;
    ``tracking_uri``: else ``MLFLOW_TRACKING_URI``, else ``./mlflow.db``.
    """
    model_uri = check_model_uri(model_uri)
    out = _check_out_dir(out_dir)
    uri = resolve_tracking_uri(tracking_uri)
    with tracking_at(uri):
        facts = collect_facts(model_uri, uri)
    facts.limitations = limitations(facts)
    facts.tripod = checklist(facts)
    return _write(facts, out)


def _check_out_dir(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a folder, got the file {str(out)!r}")
    return out


def _write(facts: ReportFacts, out: Path) -> ReportResult:
    out.mkdir(parents=True, exist_ok=True)
    figures = {}
    for stem, data in facts.figures.items():
        figures[stem] = out / f"{stem}.png"
        figures[stem].write_bytes(data)
    html, js = out / HTML_FILE, out / JSON_FILE
    html.write_text(render_html(facts), encoding="utf-8")
    js.write_text(json.dumps(facts.to_dict(), indent=2, allow_nan=False), encoding="utf-8")
    log.info("model report for run %s written to %s", facts.model["run_id"], out)
    m = facts.model
    counts: dict[str, int] = {}
    for row in facts.tripod:
        counts[str(row["status"])] = counts.get(str(row["status"]), 0) + 1
    return ReportResult(
        model_uri=str(m["model_uri"]),
        run_id=str(m["run_id"]),
        model_name=str(m["name"]),
        html=html,
        json=js,
        figures=figures,
        registered=f"{m['registered_name']} version {m['version']}"
        if m.get("registered_name")
        else None,
        limitations=list(facts.limitations),
        tripod=counts,
    )
