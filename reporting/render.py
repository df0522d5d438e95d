"""The self-contained HTML of a model report: jinja2, figures inlined as base64 PNG."""

from __future__ import annotations

import base64
import math
from typing import Any, Final

from reporting.environment import render
from reporting.facts import ReportFacts
from reporting.tripod import SECTIONS

# stem -> (section, caption); the run's own figures, then the generated comparison figures
FIGURES: Final = {
    "km_by_marker_status": (
        "data",
        "Recurrence-free probability from the first landmark by marker status (descriptive, all patients)",
    ),
    "auc_by_landmark": ("discrimination", "Time-dependent AUC by landmark, out-of-fold"),
    "calibration": (
        "calibration",
        "Calibration at the horizon: groups of predicted risk (Kaplan–Meier observed, 95% CI) and the smooth curve",
    ),
    "decision_curve": (
        "decision-curve",
        "Decision curve: net benefit against threshold probability",
    ),
    "compare_auc_by_landmark": (
        "comparison",
        "Time-dependent AUC by landmark, every model of the comparison",
    ),
    "compare_decision_curve": ("comparison", "Decision curves of every model of the comparison"),
}
DECISION_THRESHOLDS: Final = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
# endpoint -> (name, event definition, what is predicted)
ENDPOINTS: Final = {
    "rfs": (
        "recurrence-free survival",
        "the first of recurrence or death from any cause",
        "recurrence or death",
    ),
    "pfs": (
        "progression-free survival",
        "the first of progression or death from any cause",
        "progression or death",
    ),
    "os": ("overall survival", "death from any cause", "death"),
}
FOLD_HEADS: Final = {
    "fold": "Fold",
    "n_test_rows": "Held-out rows",
    "auc": "AUC",
    "harrell_c": "Harrell's C",
}


def render_html(facts: ReportFacts) -> str:
    """The report as one HTML document (no external files, scripts or fonts)."""
    data = facts.to_dict()
    return render(
        "model.html.j2",
        f=data,
        sections=SECTIONS,
        figures=_figures(facts),
        endpoint=ENDPOINTS.get(
            str(data["cohort"]["endpoint"]),
            (data["cohort"]["endpoint"], "see the cohort manifest", "the endpoint event"),
        ),
        decision_rows=decision_rows(
            data["tables"].get("decision_curve", []), facts.alarm.get("threshold")
        ),
        baseline=next((r for r in data["comparison"] if r["model"] == "baseline"), None),
        stats=_stat_glossary(data["predictors"]),
        fold_heads=FOLD_HEADS,
    )


def _figures(facts: ReportFacts) -> dict[str, list[dict[str, str]]]:
    """Figures by section, in the order of ``FIGURES``."""
    out: dict[str, list[dict[str, str]]] = {}
    for stem, (section, caption) in FIGURES.items():
        if stem in facts.figures:
            data = base64.b64encode(facts.figures[stem]).decode("ascii")
            out.setdefault(section, []).append({"stem": stem, "caption": caption, "data": data})
    return out


def decision_rows(curve: list[dict[str, Any]], alarm: float | None) -> list[dict[str, Any]]:
    """The decision curve at round thresholds and at the one nearest the alarm threshold."""
    if not curve:
        return []
    wanted = set(DECISION_THRESHOLDS)
    if alarm is not None and math.isfinite(alarm):
        wanted.add(min((r["threshold"] for r in curve), key=lambda t: abs(t - alarm)))
    rows = [dict(r) for r in curve if any(math.isclose(r["threshold"], t) for t in wanted)]
    for r in rows:
        r["alarm"] = alarm is not None and abs(r["threshold"] - alarm) < 0.005 + 1e-9
    return rows


def _stat_glossary(predictors: dict[str, Any]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for marker in predictors["markers"]:
        for feature in marker["features"]:
            seen.setdefault(feature["stat"], feature["meaning"])
    return list(seen.items())
