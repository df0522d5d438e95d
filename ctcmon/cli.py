"""The ``ctcmon`` command line. Thin: parse options, call the packages, print a summary."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ctcmon import __version__, cmd_demo, cmd_leadtime, cmd_report, cmd_serve, cmd_train
from ctcmon.console import (
    CohortArg,
    JsonOpt,
    as_dict,
    emit_json,
    guarded,
    out,
    parse_days,
    progress,
    report_bug,
    write_table_atomically,
)

app = typer.Typer(
    name="ctcmon",
    help="Recurrence monitoring after curative treatment of liver cancer from serial blood markers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main_callback(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # MLflow narrates its own steps at INFO (creating tables, inferring the signature); a
    # newcomer's output is ctcmon's progress and summary, MLflow's warnings still show. MLflow
    # sets its logger's level when first imported (and in training's worker processes), from
    # this variable; an explicit setting by the user wins.
    mlflow_level = "INFO" if verbose else "WARNING"
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", mlflow_level)
    logging.getLogger("mlflow").setLevel(os.environ["MLFLOW_LOGGING_LEVEL"].upper())


@app.command()
def version() -> None:
    """Print the ctcmon version."""
    out.print(__version__)


@app.command()
def simulate(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the synthetic cohort to.")],
    patients: Annotated[
        int, typer.Option("--patients", "-n", min=1, help="Number of patients.")
    ] = 500,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Random seed (same seed, same bytes).")
    ] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Write a synthetic post-resection HCC cohort in the data contract, plus truth.csv."""
    from cohort.simulate import simulate_cohort

    def work() -> Any:
        with progress(f"simulating {patients} patients"):
            return simulate_cohort(out_dir, n_patients=patients, seed=seed)

    summary = guarded(as_json, work)
    if as_json:
        emit_json({"ok": True, **as_dict(summary)})
        return
    first, *rest = summary.lines()
    out.print(first)
    for line in rest:
        out.print(f"  {line}")


@app.command()
def validate(cohort_dir: CohortArg, as_json: JsonOpt = False) -> None:
    """Check a cohort against the data contract: exit 0 with a summary, or 2 listing every problem."""
    from cohort.load import load_cohort
    from cohort.summary import summarize

    def work() -> dict[str, Any]:
        with progress(f"validating {cohort_dir}"):
            return summarize(load_cohort(cohort_dir))

    summary = guarded(as_json, work)
    if as_json:
        emit_json({"ok": True, **summary})
        return
    _print_cohort_summary(summary, cohort_dir)


def _print_cohort_summary(s: dict[str, Any], cohort_dir: Path) -> None:
    out.print(f"cohort {s['name']!r} at {cohort_dir} is valid")
    out.print(
        f"  patients: {s['patients']} in {len(s['sites'])} site(s) "
        f"({', '.join(f'{k}: {v}' for k, v in s['sites'].items())})"
    )
    out.print(
        f"  draws: {s['draws']} (median {s['draws_per_patient_median']:g} per patient, "
        f"{s['pre_index_draws']} before index); measurement rows: {s['measurement_rows']}"
    )
    out.print("  markers: " + ", ".join(f"{k} ({v})" for k, v in s["markers"].items()))
    out.print(f"  imaging exams: {s['imaging_exams']}")
    ev = s["events"]
    out.print(
        f"  events: RFS {ev['rfs']}, PFS {ev['pfs']}, OS {ev['os']} "
        f"(primary endpoint: {s['endpoint'].upper()})"
    )
    fu = s["median_followup_days"]
    out.print(
        f"  median follow-up (reverse Kaplan–Meier): "
        f"{'not reached' if fu is None else f'{fu:.0f} days'}"
    )


@app.command()
def features(
    cohort_dir: CohortArg,
    out_file: Annotated[Path, typer.Argument(help="Output table: .parquet or .csv.")],
    landmarks: Annotated[
        str | None,
        typer.Option(help="Landmark days, e.g. 90,180,365 (default: each scheduled draw day)."),
    ] = None,
    horizon: Annotated[
        float | None,
        typer.Option("--horizon", min=1, help="Horizon in days for residual time and event."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the landmark feature table (one row per patient at risk per landmark)."""
    from cohort.load import load_cohort
    from features.landmark import build_landmark_table

    def work() -> dict[str, Any]:
        if out_file.suffix not in (".parquet", ".csv"):
            raise ValueError(f"OUT_FILE must end in .parquet or .csv, got {out_file.name!r}")
        days = parse_days(landmarks, "--landmarks")
        with progress("building landmark features"):
            cohort = load_cohort(cohort_dir)
            table = build_landmark_table(cohort, landmarks=days, horizon_days=horizon)
        write_table_atomically(table, out_file)
        return {
            "rows": len(table),
            "columns": len(table.columns),
            "out_file": str(out_file),
            "landmarks": sorted(float(x) for x in table["landmark_day"].unique()),
        }

    res = guarded(as_json, work)
    if as_json:
        emit_json({"ok": True, **res})
        return
    out.print(
        f"wrote {res['rows']} rows × {res['columns']} columns to {res['out_file']} "
        f"({len(res['landmarks'])} landmarks)"
    )


@app.command()
def describe(
    cohort_dir: CohortArg,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Patients column to compare groups by (default: the manifest's [study] arm).",
        ),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for CSV, PNG and report.html (default: none written)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Study analytics: characteristics, RFS/PFS/OS, response, safety, cCR and eligibility."""
    from cohort.load import load_cohort
    from reporting.study import write_study_report
    from study.describe import describe_cohort

    def work() -> Any:
        cohort = load_cohort(cohort_dir)
        with progress("describing the cohort"):
            result = describe_cohort(cohort, by=by)
            return result if out_dir is None else write_study_report(result, out_dir)

    res = guarded(as_json, work)
    if as_json:
        emit_json({"ok": True, **res.to_dict()})
        return
    out.print(res.summary())


# Commands that live in their own modules (``register(app)`` each), kept apart so each
# capability's CLI sits next to nothing else's. A module that fails to import stops the CLI.
for _module in (cmd_train, cmd_demo, cmd_leadtime, cmd_serve, cmd_report):
    _module.register(app)


def main() -> None:
    """Entry point: a bug shows a one-line internal error (CTCMON_DEBUG=1 for the traceback)."""
    import os

    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:
        if os.environ.get("CTCMON_DEBUG"):
            raise
        report_bug(exc)
