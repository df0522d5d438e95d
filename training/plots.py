"""Report figures: AUC by landmark, calibration, decision curve, Kaplan–Meier by group.

Figures are built with :class:`matplotlib.figure.Figure` on an Agg canvas, never through
pyplot's figure manager, so nothing is shown, nothing leaks between calls and no global
backend is switched. Each function returns the Figure; ``fig.savefig(path, dpi=...)`` writes it.
Sizes suit an HTML report (about 800 px wide at the default 100 dpi).
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.plotting import add_at_risk_counts
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cohort.vocabulary import EVENT, LANDMARK_DAY, RESIDUAL_TIME

FIGSIZE = (8.0, 5.0)
Curves = pd.DataFrame | Mapping[str, pd.DataFrame]


def _figure(figsize: tuple[float, float] = FIGSIZE) -> tuple[Figure, Axes]:
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.grid(alpha=0.3)
    return fig, ax


def png_bytes(fig: Figure) -> bytes:
    """The figure as the PNG that ``fig.savefig("name.png")`` (and ``mlflow.log_figure``) write."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _as_mapping(curves: Curves, default: str) -> Mapping[str, pd.DataFrame]:
    return {default: curves} if isinstance(curves, pd.DataFrame) else curves


def _check_columns(frame: pd.DataFrame, needed: set[str], what: str) -> None:
    missing = needed - set(frame.columns)
    if missing:
        raise ValueError(f"{what} lacks column(s) {sorted(missing)}; has {list(frame.columns)}")


# --------------------------------------------------------------------------- AUC by landmark
def plot_auc_by_landmark(curves: Curves, *, horizon_days: float | None = None) -> Figure:
    """Time-dependent AUC against landmark, one line per model.

    ``curves``: a frame (or ``{model name: frame}``) with ``landmark_day`` and ``auc`` — e.g.
    ``landmark_metrics(...)["by_landmark"]`` — and optionally ``auc_low`` / ``auc_high`` for a band.
    """
    fig, ax = _figure()
    bottom = 0.4
    for name, frame in _as_mapping(curves, "model").items():
        _check_columns(frame, {LANDMARK_DAY, "auc"}, f"curve {name!r}")
        f = frame.sort_values(LANDMARK_DAY)
        line = ax.plot(f[LANDMARK_DAY], f["auc"], marker="o", label=name)[0]
        low = f["auc"]
        if {"auc_low", "auc_high"} <= set(f.columns):
            ax.fill_between(
                f[LANDMARK_DAY], f["auc_low"], f["auc_high"], color=line.get_color(), alpha=0.2
            )
            low = f["auc_low"]
        bottom = min(bottom, float(np.nanmin(low, initial=1.0)) - 0.05)
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("Landmark (days since index)")
    window = f" within {horizon_days:g} days" if horizon_days is not None else ""
    ax.set_ylabel(f"Time-dependent AUC (event{window})")
    ax.set_ylim(max(bottom, 0.0), 1.0)
    ax.set_title("Discrimination by landmark")
    ax.legend(loc="lower left")
    return fig


# --------------------------------------------------------------------------- calibration
def plot_calibration(
    grouped: pd.DataFrame,
    smooth: pd.DataFrame | None = None,
    *,
    horizon_days: float | None = None,
) -> Figure:
    """Observed vs predicted risk: groups with 95% CI (``calibration_table``), the smooth
    curve (``smooth_calibration``) when given, and the line of perfect calibration."""
    _check_columns(grouped, {"predicted", "observed", "observed_low", "observed_high"}, "grouped")
    fig, ax = _figure((6.0, 6.0))
    top = float(np.nanmax([grouped["predicted"].max(), grouped["observed_high"].max(), 0.1]))
    lim = min(1.0, 1.05 * top)
    ax.plot(
        [0, lim], [0, lim], color="grey", linestyle="--", linewidth=1, label="Perfect calibration"
    )
    err = [
        grouped["observed"] - grouped["observed_low"],
        grouped["observed_high"] - grouped["observed"],
    ]
    ax.errorbar(
        grouped["predicted"],
        grouped["observed"],
        yerr=err,
        fmt="o",
        capsize=3,
        label="Groups (KM, 95% CI)",
    )
    if smooth is not None:
        _check_columns(smooth, {"predicted", "observed"}, "smooth")
        s = smooth.sort_values("predicted")
        ax.plot(s["predicted"], s["observed"], linewidth=2, label="Smooth (Cox, spline)")
    window = f" within {horizon_days:g} days" if horizon_days is not None else ""
    ax.set_xlabel(f"Predicted risk{window} (probability)")
    ax.set_ylabel(f"Observed risk{window} (Kaplan–Meier)")
    ax.set_xlim(0, lim)
    ax.set_ylim(0, lim)
    ax.set_title("Calibration")
    ax.legend(loc="upper left")
    return fig


# --------------------------------------------------------------------------- decision curve
def plot_decision_curve(curves: Curves) -> Figure:
    """Net benefit against threshold probability; ``curves`` from ``net_benefit`` (one frame
    or ``{model name: frame}``). Treat-all and treat-none come from the first frame."""
    models = _as_mapping(curves, "model")
    fig, ax = _figure()
    first = next(iter(models.values()))
    _check_columns(first, {"threshold", "net_benefit", "treat_all", "treat_none"}, "curve")
    ax.plot(first["threshold"], first["treat_all"], color="grey", linewidth=1, label="Treat all")
    ax.plot(first["threshold"], first["treat_none"], color="black", linewidth=1, label="Treat none")
    for name, frame in models.items():
        _check_columns(frame, {"threshold", "net_benefit"}, f"curve {name!r}")
        ax.plot(frame["threshold"], frame["net_benefit"], linewidth=2, label=name)
    top = max(float(f["net_benefit"].max()) for f in models.values())
    ax.set_ylim(-0.05, max(0.05, 1.1 * max(top, float(first["treat_all"].max()))))
    ax.set_xlim(0, float(first["threshold"].max()))
    ax.set_xlabel("Threshold probability")
    ax.set_ylabel("Net benefit (true positives per patient)")
    ax.set_title("Decision curve")
    ax.legend(loc="upper right")
    return fig


# --------------------------------------------------------------------------- Kaplan–Meier
def plot_km_by_group(
    table: pd.DataFrame,
    group_col: str,
    *,
    time_col: str = RESIDUAL_TIME,
    event_col: str = EVENT,
    xlabel: str = "Days since landmark",
    title: str | None = None,
) -> Figure:
    """Kaplan–Meier curves (95% CI) per level of ``group_col`` with a number-at-risk table."""
    _check_columns(table, {group_col, time_col, event_col}, "table")
    fig, ax = _figure((8.0, 6.0))
    fitters = []
    for level, rows in table.groupby(group_col, sort=True):
        kmf = KaplanMeierFitter(label=f"{group_col} = {level}")
        kmf.fit(rows[time_col].to_numpy(float), rows[event_col].to_numpy(int))
        kmf.plot_survival_function(ax=ax, ci_show=True)
        fitters.append(kmf)
    add_at_risk_counts(*fitters, ax=ax, fig=fig, rows_to_show=["At risk"])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Event-free probability")
    ax.set_ylim(0, 1.02)
    ax.set_title(title or f"Kaplan–Meier by {group_col}")
    return fig
