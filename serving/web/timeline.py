"""The patient's timeline as a plotly figure spec (plain dicts, drawn in the browser).

One date axis from the index date, shared by every panel: imaging exams with their finding
on top, then one panel per marker with a clinical cut-off (log scale when its values span
orders of magnitude, the cut-off as a line, values below the detection limit drawn open at
the limit), and at the bottom the risk at one year from each assessment actually issued,
with the alarm threshold. The next scheduled scan is a dashed line across all panels.

The spec is built here rather than with plotly's Python objects: building them is slower
than the whole page budget, and the browser only needs the JSON.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

from cohort.manifest import Manifest

RISK_KEY = "365"
FINDING_STYLE = {  # finding -> (symbol, colour, label)
    "recurrence": ("x", "#b00020", "recurrence"),
    "indeterminate": ("diamond", "#a15c00", "indeterminate"),
    "no_evidence": ("circle", "#2e7d32", "no evidence"),
}
ALARM_COLOUR = "#b00020"
LINE_COLOUR = "#1f4e79"
GREY = "#555555"
LOG_SPAN = 20.0  # a marker whose values span more than this factor is drawn on a log axis


def chart_markers(manifest: Manifest | None, measured: set[str]) -> list[str]:
    """The markers drawn: those measured with a clinical cut-off (else every measured one)."""
    if manifest is None:
        return sorted(measured)
    with_cutoff = [m for m, s in manifest.markers.items() if m in measured and s.positive_at]
    return with_cutoff or [m for m in manifest.markers if m in measured]


def figure(
    record: dict[str, Any], assessments: list[dict[str, Any]], manifest: Manifest | None
) -> dict[str, Any]:
    """The figure spec for ``record`` (``service.read_patient``) and its assessments."""
    index = date.fromisoformat(record["patient"]["index_date"])
    series = _series(record["draws"])
    markers = chart_markers(manifest, set(series))
    rows = ["imaging", *markers, "risk"]
    heights = {"imaging": 0.5, "risk": 1.4, **{m: 1.0 for m in markers}}
    domains = _domains(rows, heights)
    layout: dict[str, Any] = {
        "height": 170 + 150 * len(markers) + 120,
        "margin": {"l": 70, "r": 150, "t": 20, "b": 40},
        "showlegend": False,
        "hovermode": "closest",
        "font": {"family": "system-ui, sans-serif", "size": 13, "color": "#1a1a1a"},
        "plot_bgcolor": "#ffffff",
        "paper_bgcolor": "#ffffff",
        "xaxis": {
            "type": "date",
            "range": _x_range(index, record, assessments),
            "anchor": f"y{len(rows)}",
            "showgrid": True,
            "gridcolor": "#e6e6e6",
            "title": {"text": f"date (index {index.isoformat()})"},
        },
        "shapes": [],
        "annotations": [],
    }
    traces: list[dict[str, Any]] = []
    for i, row in enumerate(rows, start=1):
        axis = {"domain": domains[row], "anchor": "x", "gridcolor": "#e6e6e6", "zeroline": False}
        layout[f"yaxis{i if i > 1 else ''}"] = axis
        yref = f"y{i if i > 1 else ''}"
        if row == "imaging":
            _imaging(traces, axis, record["imaging"], yref)
        elif row == "risk":
            _risk(traces, layout, axis, assessments, yref)
        else:
            spec = manifest.markers.get(row) if manifest else None
            _marker(traces, layout, axis, row, series[row], spec, yref)
    _verticals(layout, index, assessments)
    return {"data": traces, "layout": layout}


def _series(draws: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for d in draws:
        for m in d["measurements"]:
            out.setdefault(m["marker"], []).append({"date": d["date"], **m})
    return out


def _domains(rows: list[str], heights: dict[str, float]) -> dict[str, list[float]]:
    """Vertical extent of each panel, top to bottom, with a gap between panels."""
    gap = 0.03
    total = sum(heights[r] for r in rows)
    usable = 1.0 - gap * (len(rows) - 1)
    top, out = 1.0, {}
    for r in rows:
        h = usable * heights[r] / total
        out[r] = [round(max(top - h, 0.0), 4), round(top, 4)]
        top -= h + gap
    return out


def _x_range(index: date, record: dict[str, Any], assessments: list[dict[str, Any]]) -> list[str]:
    dates = [index]
    dates += [date.fromisoformat(d["date"]) for d in record["draws"]]
    dates += [date.fromisoformat(i["date"]) for i in record["imaging"]]
    nxt = _next_scan(assessments)
    if nxt:
        dates.append(date.fromisoformat(nxt))
    lo, hi = min(dates), max(dates)
    pad = timedelta(days=max(14, (hi - lo).days // 30))
    return [(lo - pad).isoformat(), (hi + pad).isoformat()]


def _next_scan(assessments: list[dict[str, Any]]) -> str | None:
    if not assessments:
        return None
    return (assessments[-1].get("imaging") or {}).get("next_imaging_date")


def _imaging(traces: list, axis: dict, imaging: list[dict[str, Any]], yref: str) -> None:
    axis.update({"range": [-1, 1], "showticklabels": False, "showgrid": False, "fixedrange": True})
    axis["title"] = {"text": "scans", "standoff": 4}
    style = [FINDING_STYLE.get(i["finding"], ("square", GREY, i["finding"])) for i in imaging]
    traces.append(
        {
            "type": "scatter",
            "mode": "markers+text",
            "x": [i["date"] for i in imaging],
            "y": [0] * len(imaging),
            "yaxis": yref,
            "text": [f"{i['modality']}" for i in imaging],
            "textposition": "top center",
            "textfont": {"size": 11, "color": GREY},
            "marker": {
                "symbol": [s[0] for s in style],
                "color": [s[1] for s in style],
                "size": 12,
                "line": {"width": 2, "color": [s[1] for s in style]},
            },
            "customdata": [s[2] for s in style],
            "hovertemplate": "%{x|%Y-%m-%d} %{text}: %{customdata}<extra></extra>",
            "name": "imaging",
        }
    )


def _marker(
    traces: list,
    layout: dict,
    axis: dict,
    marker: str,
    points: list[dict[str, Any]],
    spec: Any,
    yref: str,
) -> None:
    unit = spec.unit if spec else (points[0]["canonical_unit"] if points else "")
    label = (spec.label if spec and spec.label else marker).replace("alpha-fetoprotein", "AFP")
    values = [p["canonical_value"] for p in points]
    below = [p["qualifier"] == "<" for p in points]
    cutoff = spec.positive_at if spec else None
    positive = [v for v in values if v > 0]
    span = [*positive, *([cutoff] if cutoff else [])]
    log = len(positive) == len(values) and bool(span) and max(span) / min(span) >= LOG_SPAN
    axis["type"] = "log" if log else "linear"
    top = max([*values, *([cutoff] if cutoff else []), 1e-9])
    # headroom above the cut-off line, so it never sits on the panel's edge
    if log:
        axis["dtick"] = 1  # one tick a decade: 1, 10, 100 (more are unreadable when stacked)
        axis["range"] = [math.log10(min(positive)) - 0.15, math.log10(top) + 0.15]
    else:
        axis["range"] = [0, top * 1.15]
    axis["title"] = {"text": f"{label}<br>({unit})", "standoff": 4}
    hover = [
        f"< {v:g} {unit} (below the detection limit)" if b else f"{v:g} {unit}"
        for v, b in zip(values, below, strict=True)
    ]
    traces.append(
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": [p["date"] for p in points],
            "y": values,
            "yaxis": yref,
            "line": {"color": LINE_COLOUR, "width": 2},
            "marker": {
                "size": 8,
                "color": LINE_COLOUR,
                "symbol": ["triangle-down-open" if b else "circle" for b in below],
            },
            "customdata": hover,
            "hovertemplate": "%{x|%Y-%m-%d}: %{customdata}<extra>" + label + "</extra>",
            "name": label,
        }
    )
    if cutoff:
        _hline(layout, yref, cutoff, f"cut-off {cutoff:g}", ALARM_COLOUR, log=log)


def _risk(
    traces: list, layout: dict, axis: dict, assessments: list[dict[str, Any]], yref: str
) -> None:
    axis.update({"rangemode": "tozero", "tickformat": ".0%"})
    axis["title"] = {"text": "1-year risk of<br>recurrence", "standoff": 4}
    points = [a for a in assessments if RISK_KEY in (a.get("risk") or {})]
    risks = [a["risk"][RISK_KEY] for a in points]
    axis["range"] = [0, max([*risks, *(a["alarm_threshold"] for a in points), 0.1]) * 1.15]
    traces.append(
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": [a["as_of"] for a in points],
            "y": risks,
            "yaxis": yref,
            "line": {"color": GREY, "width": 2},
            "marker": {
                "size": 10,
                "color": [ALARM_COLOUR if a["alarm"] else LINE_COLOUR for a in points],
                "symbol": ["diamond" if a["alarm"] else "circle" for a in points],
            },
            "customdata": [
                f"{a['risk_band']}{', ALARM' if a['alarm'] else ''}; model "
                f"{a['model']['name']} v{a['model'].get('version') or '?'}"
                for a in points
            ],
            "hovertemplate": "%{x|%Y-%m-%d}: %{y:.1%} (%{customdata})<extra>assessment</extra>",
            "name": "risk at 1 year",
        }
    )
    if points:
        threshold = points[-1]["alarm_threshold"]
        _hline(layout, yref, threshold, f"alarm {threshold:.0%}", ALARM_COLOUR)


def _hline(layout: dict, yref: str, y: float, text: str, colour: str, log: bool = False) -> None:
    """A dashed horizontal line across a panel, labelled in the right margin. (Plotly puts
    shapes in data units but annotations in log10 units on a log axis.)"""
    layout["shapes"].append(
        {
            "type": "line",
            "xref": "x domain",
            "x0": 0,
            "x1": 1,
            "yref": yref,
            "y0": y,
            "y1": y,
            "line": {"color": colour, "width": 1.5, "dash": "dash"},
        }
    )
    layout["annotations"].append(
        {
            "xref": "x domain",
            "x": 1.01,
            "xanchor": "left",
            "yref": yref,
            "y": math.log10(y) if log else y,
            "text": text,
            "showarrow": False,
            "font": {"color": colour, "size": 12},
        }
    )


def _verticals(layout: dict, index: date, assessments: list[dict[str, Any]]) -> None:
    lines = [(index.isoformat(), "index (surgery)", GREY, "dot")]
    nxt = _next_scan(assessments)
    if nxt:
        lines.append((nxt, "next scan", "#6a1b9a", "dash"))
    for when, text, colour, dash in lines:
        layout["shapes"].append(
            {
                "type": "line",
                "xref": "x",
                "x0": when,
                "x1": when,
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "line": {"color": colour, "width": 1.5, "dash": dash},
            }
        )
        layout["annotations"].append(
            {
                "xref": "x",
                "x": when,
                "yref": "paper",
                "y": 1.0,
                "yanchor": "bottom",
                "text": text,
                "showarrow": False,
                "font": {"color": colour, "size": 12},
            }
        )
