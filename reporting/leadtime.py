"""The lead-time report of ``evaluation.run_leadtime``'s result, and its MLflow run.

``publish_leadtime`` writes the report (when asked) and logs the analysis beside the model's
training run (when a model was analysed); it returns a new result naming both.

Files written to ``out_dir``:

- ``leadtime.json`` — every figure of the result (``LeadtimeResult.to_dict``);
- ``report.html`` — for a steering committee: key findings, design and definitions, the
  rules side by side with 95% CIs, the paired comparison, the truth check, the figures;
- ``swimmer.png``, ``lead_distribution.png``, ``sweep.png``, ``km_<k>.png``;
- ``lead_times.csv`` (one row per rule and recurrence) and ``sweep.csv``.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from alarms.metrics import (
    EPISODE_LEAD,
    EPISODE_START_DAY,
    FIRST_ALARM_DAY,
    LEAD,
    LEAD_NEGATIVE,
)
from alarms.surveillance import LAST_NEGATIVE_DAY, RECURRED, RECURRENCE_DAY
from cohort.vocabulary import EVENT, PATIENT_ID, TIME
from evaluation.figures import plot_lead_distribution, plot_sweep, plot_swimmer
from evaluation.hazard import landmark_groups
from evaluation.mlflow_log import log_leadtime_run, not_logged_note
from evaluation.results import LeadtimeResult, RuleResult
from reporting.environment import render
from training.plots import plot_km_by_group
from training.progress import Progress

log = logging.getLogger(__name__)

DPI = 110
JSON_FILE = "leadtime.json"
HTML_FILE = "report.html"


def publish_leadtime(
    result: LeadtimeResult, out_dir: str | Path | None = None, progress: Progress | None = None
) -> LeadtimeResult:
    """The report in ``out_dir`` (if given) and, when a model was analysed, a new run in its
    MLflow experiment holding the report's files; returns the result naming both."""
    if out_dir is not None:
        if progress is not None:
            progress("writing the report", 0.95)
        result = write_report(result, Path(out_dir))
    if result.model is None:
        return result
    if result.files:
        run_id = log_leadtime_run(result, result.files.values())
    else:  # no report asked for: the run still holds one, written to a temporary folder
        with tempfile.TemporaryDirectory() as tmp:
            run_id = log_leadtime_run(result, write_report(result, Path(tmp)).files.values())
    if run_id is None:
        return replace(result, notes=(*result.notes, not_logged_note(result)))
    result = replace(result, mlflow_run_id=run_id)
    if result.files:  # record the run id in the JSON beside the report
        write_json(result, Path(result.files["json"]))
    return result


def write_report(result: LeadtimeResult, out_dir: Path) -> LeadtimeResult:
    """Write every report file; returns the result with ``files`` ({kind: path})."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    figures = _figures(result, out_dir, files)
    _tables(result, out_dir, files)
    files["html"] = str(out_dir / HTML_FILE)
    files["json"] = str(out_dir / JSON_FILE)
    result = replace(result, files=files)
    (out_dir / HTML_FILE).write_text(_html(result, figures), encoding="utf-8")
    write_json(result, out_dir / JSON_FILE)
    log.info("lead-time report written to %s", out_dir)
    return result


def json_payload(result: LeadtimeResult) -> dict[str, Any]:
    """The result as JSON-ready values (NaN as null)."""
    payload: dict[str, Any] = _json_safe(result.to_dict())
    return payload


def write_json(result: LeadtimeResult, path: Path) -> None:
    """``leadtime.json``."""
    text = json.dumps(json_payload(result), indent=2, allow_nan=False)
    path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- figures
def _figures(result: LeadtimeResult, out_dir: Path, files: dict[str, str]) -> list[dict[str, str]]:
    made: list[tuple[str, str, Figure]] = []
    if not result.surveillance.empty:
        imaging, draws = result.imaging, result.draw_days
        shown = [result.series[r.name] for r in _swimmer_rules(result)]
        made.append(
            (
                "swimmer",
                "Swimmer plot: follow-up, draws, scans and alarms",
                plot_swimmer(result.surveillance, imaging, draws, shown),
            )
        )
    made.append(
        (
            "lead_distribution",
            "Lead time of the first alarm over both ends of the imaging interval, and of the "
            "alarm episode ongoing at recurrence",
            plot_lead_distribution(result.summaries),
        )
    )
    if result.sweeps:
        fixed = {
            r.name: _sweep_point(r)
            for r in result.rules
            if r.variant_of is None and r.kind != "issued"
        }
        made.append(
            (
                "sweep",
                "Threshold sweep: sensitivity and median lead against false alarms",
                plot_sweep(result.sweeps, fixed),
            )
        )
    for k, r in enumerate(result.headline):
        fig = _km(result, r)
        if fig is not None:
            made.append(
                (
                    f"km_{k + 1}",
                    f"Recurrence-free by alarm status at day {result.settings['km_landmark_day']:g}: {r.name}",
                    fig,
                )
            )
    out = []
    for stem, title, fig in made:
        path = out_dir / f"{stem}.png"
        fig.savefig(path, dpi=DPI)
        files[stem] = str(path)
        out.append(
            {
                "title": title,
                "file": path.name,
                "data": base64.b64encode(path.read_bytes()).decode(),
            }
        )
    return out


def _swimmer_rules(result: LeadtimeResult) -> tuple[RuleResult, ...]:
    """The reference rule and, when there is one, the model or issued alarms beside it."""
    head = result.headline
    scored = tuple(r for r in head[1:] if r.kind != "marker")
    return (head[:1] + (scored or head[1:]))[:2]


def _sweep_point(r: RuleResult) -> tuple[float, float, float]:
    m = r.metrics
    return (_f(m["false_alarms_per_patient_year"]), _f(m["sensitivity"]), _f(m["lead_median"]))


def _f(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _km(result: LeadtimeResult, r: RuleResult) -> Figure | None:
    day = float(result.settings["km_landmark_day"])
    g = landmark_groups(result.series[r.name], result.surveillance, day)
    if g["alarmed"].nunique() < 2 or g[EVENT].sum() == 0:
        return None
    col = f"alarm by day {day:g}"
    g[col] = g["alarmed"].map({True: "yes", False: "no"})
    return plot_km_by_group(
        g,
        col,
        time_col=TIME,
        event_col=EVENT,
        xlabel=f"Days since landmark (day {day:g} after index)",
        title=f"Recurrence-free by alarm status at day {day:g}\n{r.name}",
    )


# --------------------------------------------------------------------------- tables
def _tables(result: LeadtimeResult, out_dir: Path, files: dict[str, str]) -> None:
    rows = []
    for name, s in result.summaries.items():
        d = s[s[RECURRED]]
        rows.append(
            pd.DataFrame(
                {
                    "rule": name,
                    PATIENT_ID: d[PATIENT_ID],
                    RECURRENCE_DAY: d[RECURRENCE_DAY],
                    LAST_NEGATIVE_DAY: d[LAST_NEGATIVE_DAY],
                    FIRST_ALARM_DAY: d[FIRST_ALARM_DAY],
                    LEAD: d[LEAD],
                    LEAD_NEGATIVE: d[LEAD_NEGATIVE],
                    EPISODE_START_DAY: d[EPISODE_START_DAY],
                    EPISODE_LEAD: d[EPISODE_LEAD],
                }
            )
        )
    if rows:
        pd.concat(rows).to_csv(out_dir / "lead_times.csv", index=False)
        files["lead_times"] = str(out_dir / "lead_times.csv")
    if result.sweeps:
        sweeps = pd.concat([s.table.assign(score=s.score_name) for s in result.sweeps])
        sweeps.to_csv(out_dir / "sweep.csv", index=False)
        files["sweep_csv"] = str(out_dir / "sweep.csv")


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item"):  # numpy scalars
        return _json_safe(obj.item())
    return obj


# --------------------------------------------------------------------------- HTML
def _html(result: LeadtimeResult, figures: list[dict[str, str]]) -> str:
    model_rule = next((x for x in result.rules if x.kind == "model" and x.variant_of is None), None)
    return render(
        "leadtime.html.j2",
        r=result,
        figures=figures,
        headline=result.headline,
        model_rule=model_rule,
    )
