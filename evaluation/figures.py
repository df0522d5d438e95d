"""Lead-time report figures: swimmer plot, lead-time distribution, sweep curves.

Built on an Agg canvas without pyplot (as :mod:`training.plots`), sized for an HTML report,
axes labelled with units. The Kaplan–Meier figure reuses ``training.plots.plot_km_by_group``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from alarms.metrics import EPISODE_LEAD, LEAD, LEAD_NEGATIVE
from alarms.series import ALARM, AlarmSeries
from alarms.surveillance import END_DAY, RECURRED, RECURRENCE_DAY
from alarms.sweep import Sweep
from cohort.vocabulary import DAY, FINDING, PATIENT_ID

SWIMMER_RECURRENCES = 30
SWIMMER_CONTROLS = 10
_ALARM_STYLE = (("^", "tab:purple", 0.22), ("v", "tab:green", -0.22))
_SCANS = {
    "no_evidence": ("o", "none", "tab:blue", "Scan: no evidence"),
    "indeterminate": ("o", "tab:orange", "tab:orange", "Scan: indeterminate"),
    "recurrence": ("X", "tab:red", "tab:red", "Scan: recurrence"),
}


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, k + 1) for k in range(ncols)]
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig, axes


# --------------------------------------------------------------------------- swimmer
def swimmer_patients(surv: pd.DataFrame) -> list[str]:
    """A spread of recurrences (by recurrence day) and recurrence-free patients (by follow-up)."""
    rec = surv[surv[RECURRED]].sort_values(RECURRENCE_DAY)
    free = surv[~surv[RECURRED]].sort_values(END_DAY)
    return [*_spread(rec, SWIMMER_RECURRENCES), *_spread(free, SWIMMER_CONTROLS)]


def _spread(frame: pd.DataFrame, k: int) -> list[str]:
    if len(frame) <= k:
        return frame[PATIENT_ID].tolist()
    pick = np.unique(np.linspace(0, len(frame) - 1, k).round().astype(int))
    return frame[PATIENT_ID].iloc[pick].tolist()


def plot_swimmer(
    surv: pd.DataFrame,
    imaging: pd.DataFrame,
    draw_days: pd.DataFrame,
    series: Sequence[AlarmSeries],
) -> Figure:
    """Per patient: follow-up, blood draws, scans by finding, recurrence, alarms of ≤ 2 rules."""
    ids = swimmer_patients(surv)
    y = {pid: i for i, pid in enumerate(ids)}
    fig, (ax,) = _figure(11.0, max(4.0, 0.24 * len(ids) + 2.2))
    s = surv.set_index(PATIENT_ID).loc[ids]
    ax.hlines(list(y.values()), 0, s[END_DAY].clip(lower=0), color="lightgrey", lw=4, zorder=1)
    d = draw_days[draw_days[PATIENT_ID].isin(y)]
    ax.scatter(
        d[DAY], d[PATIENT_ID].map(y), marker="|", s=40, color="grey", label="Blood draw", zorder=2
    )
    _scans(ax, imaging[imaging[PATIENT_ID].isin(y)], y)
    for x, (marker, color, dy) in zip(series[:2], _ALARM_STYLE, strict=False):
        a = x.frame[x.frame[ALARM] & x.frame[PATIENT_ID].isin(y)]
        a = a[a[DAY] <= a[PATIENT_ID].map(s[END_DAY])]
        ax.scatter(
            a[DAY],
            a[PATIENT_ID].map(y) + dy,
            marker=marker,
            s=28,
            color=color,
            label=f"Alarm: {x.name}",
            zorder=4,
        )
    ax.set_yticks(list(y.values()), ids, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("Days since index (curative treatment)")
    ax.set_ylabel("Patient (recurrences first, by recurrence day)")
    ax.set_title("Swimmer plot: draws, alarms and surveillance scans")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3, fontsize=8)
    return fig


def _scans(ax: Axes, imaging: pd.DataFrame, y: Mapping[str, int]) -> None:
    for finding, (marker, face, edge, label) in _SCANS.items():
        scans = imaging[imaging[FINDING] == finding]
        ax.scatter(
            scans[DAY],
            scans[PATIENT_ID].map(y),
            marker=marker,
            s=36,
            facecolors=face,
            edgecolors=edge,
            label=label,
            zorder=3,
        )


# --------------------------------------------------------------------------- lead times
def plot_lead_distribution(summaries: Mapping[str, pd.DataFrame]) -> Figure:
    """Lead time of each rule's first alarm over both ends of the recurrence interval, and of
    the alarm episode ongoing at recurrence over the confirming scan."""
    names = list(summaries)
    fig, (ax,) = _figure(10.0, max(3.5, 1.1 * len(names) + 1.8))
    pos = np.arange(len(names))
    for col, dy, color, label in (
        (LEAD, -0.26, "tab:blue", "first alarm vs confirming scan"),
        (LEAD_NEGATIVE, 0.0, "tab:orange", "first alarm vs last negative scan"),
        (EPISODE_LEAD, 0.26, "tab:green", "episode at recurrence vs confirming scan"),
    ):
        data = [summaries[n][col].dropna().to_numpy() for n in names]
        ok = [k for k, v in enumerate(data) if len(v)]
        if not ok:
            continue
        box = ax.boxplot(
            [data[k] for k in ok],
            positions=pos[ok] + dy,
            orientation="horizontal",
            widths=0.22,
            patch_artist=True,
            showfliers=True,
            flierprops={"markersize": 2},
        )
        for patch in box["boxes"]:
            patch.set(facecolor=color, alpha=0.5)
        ax.plot([], [], color=color, lw=8, alpha=0.5, label=label)
    ax.axvline(0, color="black", lw=1, ls=":")
    ax.set_yticks(pos, [_label(n, summaries[n]) for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("Lead time (days before the scan; < 0: after it)")
    ax.set_title("Lead time over imaging, detected recurrences")
    # below the axes: inside, the legend would hide the last rule's boxes
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=3, fontsize=8)
    return fig


def _label(name: str, summary: pd.DataFrame) -> str:
    n = int(summary[LEAD].notna().sum())
    short = name if len(name) <= 48 else name[:45] + "…"
    return f"{short}\n(n = {n})"


# --------------------------------------------------------------------------- sweep
def plot_sweep(sweeps: Sequence[Sweep], fixed: Mapping[str, tuple[float, float, float]]) -> Figure:
    """Sensitivity and median lead against false alarms per patient-year, one line per score.

    ``fixed``: rule name → (false alarms/py, sensitivity, median lead) of the fixed rules.
    """
    fig, (left, right) = _figure(12.5, 5.2, ncols=2)
    for sw in sweeps:
        t = sw.table
        line = left.plot(
            t["false_alarms_per_patient_year"], t["sensitivity"], marker=".", label=sw.score_name
        )[0]
        right.plot(
            t["false_alarms_per_patient_year"], t["lead_median"], marker=".", color=line.get_color()
        )
        chosen = t[t["threshold"] == sw.chosen]
        for ax, col in ((left, "sensitivity"), (right, "lead_median")):
            ax.scatter(
                chosen["false_alarms_per_patient_year"],
                chosen[col],
                marker="*",
                s=180,
                color=line.get_color(),
                edgecolors="black",
                zorder=5,
            )
    for name, (fa, sens, lead) in fixed.items():
        left.scatter([fa], [sens], marker="D", s=30, color="black", zorder=6)
        left.annotate(name, (fa, sens), fontsize=7, xytext=(4, 4), textcoords="offset points")
        right.scatter([fa], [lead], marker="D", s=30, color="black", zorder=6)
    left.set_xlabel("False alarms per patient-year")
    left.set_ylabel("Sensitivity (recurrences with an alarm in the look-back)")
    left.set_ylim(0, 1.02)
    right.set_xlabel("False alarms per patient-year")
    right.set_ylabel("Median lead over confirming scan (days)")
    left.set_title("Threshold sweep (★ chosen at target specificity, ◆ fixed rules)")
    right.set_title("Lead time against false-alarm cost")
    left.legend(loc="lower right", fontsize=8)
    return fig
