"""The ``ctcmon`` command line. Thin: parse options, call the packages, print a summary."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from ctcmon import __version__
from ctcmon.console import emit_json, fail, guarded, out, progress

app = typer.Typer(
    name="ctcmon",
    help="Recurrence monitoring after curative treatment of liver cancer from serial blood markers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON result.")]
CohortArg = Annotated[
    Path, typer.Argument(help="Cohort folder (data contract: CSV/Parquet + cohort.toml).")
]


def parse_days(text: str | None, what: str) -> list[float] | None:
    """``"90,180,365"`` → [90.0, 180.0, 365.0]; a clear error naming the bad item otherwise."""
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError(f"{what}: expected comma-separated days, got {text!r}")
    values = []
    for item in items:
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"{what}: {item!r} is not a number of days (in {text!r})") from None
        if value < 0:
            raise ValueError(f"{what}: days must be >= 0, got {item!r}")
        values.append(value)
    return values


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
    payload = _as_dict(summary)
    if as_json:
        emit_json({"ok": True, **payload})
        return
    out.print(f"wrote {patients} simulated patients to {out_dir}")
    for key in ("n_measurement_rows", "n_imaging_rows", "n_recurrences", "recurrence_2y_fraction"):
        if key in payload:
            out.print(f"  {key.replace('n_', '', 1).replace('_', ' ')}: {payload[key]}")


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
        _write_table_atomically(table, out_file)
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


def _write_table_atomically(table: Any, path: Path) -> None:
    """Write to a temp file beside ``path`` then rename: never a half-written table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if path.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _as_dict(obj: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(obj) and not isinstance(obj, type):
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(obj).items()}
    if isinstance(obj, dict):
        return obj
    fail(f"unexpected result type {type(obj).__name__}")


def main() -> None:
    """Entry point: a bug shows a one-line internal error (CTCMON_DEBUG=1 for the traceback)."""
    import os
    import sys

    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:
        if os.environ.get("CTCMON_DEBUG"):
            raise
        sys.stderr.write(
            f"internal error (a bug in ctcmon, please report it): "
            f"{type(exc).__name__}: {exc}\nrerun with CTCMON_DEBUG=1 for the traceback\n"
        )
        sys.exit(70)
