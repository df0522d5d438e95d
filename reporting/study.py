"""The study report of ``study.describe_cohort``'s result: one CSV per table, Kaplan–Meier PNGs,
one self-contained HTML (``ctcmon describe --out``)."""

from __future__ import annotations

import base64
import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.plotting import add_at_risk_counts
from matplotlib.figure import Figure

from cohort.vocabulary import EVENT, TIME
from reporting.environment import render
from study.describe import DescribeResult
from study.names import DAYS_PER_MONTH, GROUP
from study.parts import Curves

log = logging.getLogger(__name__)

TITLES = {
    "characteristics": "Patient characteristics",
    "characteristics_by_histology": "Patient characteristics by histology",
    "characteristics_by_site": "Patient characteristics by centre",
    "markers": "Serial markers",
    "survival_summary": "Survival: median with 95% CI (days)",
    "survival_rates": "Survival rates at landmark years (95% CI, number at risk)",
    "logrank": "Log-rank tests",
    "ctc_groups": "CTC groups (pre-operative vs ~1 month)",
    "ctc_cox": "Time-dependent Cox model: current CTC positivity",
    "response": "Best overall response",
    "response_rates": "Objective response and disease control rates (exact 95% CI)",
    "safety": "Patients with a CTCAE grade ≥ 3 event (exact 95% CI)",
    "ccr": "Clinical complete response",
    "eligibility": "Eligibility by patient",
    "eligibility_criteria": "Eligibility by criterion",
    "schedule_adherence": "Imaging schedule adherence",
}
# Long tables go to CSV only; the HTML would drown in them.
CSV_ONLY = {"km", "best_response", "eligibility_detail"}


def km_figure(curves: Curves, path: Path) -> Path:
    """KM curves (months) with CIs, a risk table and the log-rank p-value, saved as PNG."""
    # A bare Figure, not pyplot: no global figure state, no GUI backend, nothing to close.
    n_groups = curves.data[GROUP].nunique()
    # the risk table takes ~2 lines per group below the axes: grow the figure, not squeeze the plot
    fig = Figure(figsize=(9, 5.0 + 0.55 * n_groups))
    ax = fig.subplots()
    fitters = []
    for level, sub in curves.data.groupby(GROUP, sort=True):
        kmf = KaplanMeierFitter(label=str(level))
        kmf.fit(sub[TIME] / DAYS_PER_MONTH, sub[EVENT])
        kmf.plot_survival_function(ax=ax, ci_show=True)
        fitters.append(kmf)
    add_at_risk_counts(*fitters, ax=ax, fig=fig, rows_to_show=["At risk", "Events"])
    ax.legend(loc="best", framealpha=0.85)
    title = curves.title
    if curves.logrank_p is not None:
        title += f" — log-rank p = {curves.logrank_p:.3g}"
    ax.set(title=title, xlabel="Months since index", ylabel="Probability", ylim=(0, 1.02))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _table_html(table: pd.DataFrame) -> str:
    return table.to_html(index=False, na_rep="", float_format=lambda x: f"{x:.4g}", border=0)


def write_csvs(tables: dict[str, pd.DataFrame], out_dir: Path) -> list[Path]:
    """One CSV per table."""
    paths = []
    for name, table in tables.items():
        path = out_dir / f"{name}.csv"
        table.to_csv(path, index=False)
        paths.append(path)
    return paths


def write_study_report(result: DescribeResult, out_dir: str | Path) -> DescribeResult:
    """CSV files, PNG figures and ``report.html`` in ``out_dir``; returns the result naming them."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    files = write_csvs(result.tables, folder)
    figures = []
    for c in result.curves:
        png = km_figure(c, folder / f"km_{c.name}.png")
        files.append(png)
        figures.append({"title": c.title, "data": base64.b64encode(png.read_bytes()).decode()})
    sections = [
        {
            "name": k,
            "title": TITLES.get(k, k.replace("_", " ").capitalize()),
            "html": _table_html(t),
        }
        for k, t in result.tables.items()
        if k not in CSV_ONLY
    ]
    page = render(
        "study.html.j2",
        name=result.name,
        n_patients=result.n_patients,
        by=result.by,
        notes=list(result.notes),
        sections=sections,
        figures=figures,
        skipped=list(result.skipped),
    )
    report = folder / "report.html"
    report.write_text(page, encoding="utf-8")
    log.info("wrote %d files to %s", len(files) + 1, folder)
    return replace(result, files=[*files, report])
