"""Shared CLI plumbing: clean failures (no tracebacks for bad input), --json, progress."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from cohort.errors import CohortError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
# Piped or logged output has no terminal width and rich would cut tables to 80 columns
# ("Harre…", "xgb_a…"): tables are printed at up to this width instead (a table takes only
# the width its cells need).
PIPED_WIDTH = 400


def table_console() -> Console:
    """``out`` on a terminal; otherwise the same stream at ``PIPED_WIDTH`` columns."""
    return out if out.is_terminal else Console(file=out.file, width=PIPED_WIDTH, highlight=False)


# Option types every command shares, so a flag reads the same everywhere.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON result.")]
TrackingOpt = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else ./mlflow.db).",
    ),
]
ExperimentOpt = Annotated[str, typer.Option("--experiment", help="MLflow experiment name.")]
CohortArg = Annotated[
    Path, typer.Argument(help="Cohort folder (data contract: CSV/Parquet + cohort.toml).")
]

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1
EXIT_BUG = 70  # EX_SOFTWARE

# What a command reports as a one-line reason (exit 1; a cohort that breaks the contract
# exits 2 with every problem): ctcmon's validators raise ValueError quoting the bad value
# (CohortError is one), and a path the user gave may be missing, taken or unreadable.
# Everything else (KeyError, TypeError, AttributeError, an error inside a library) is a bug
# in ctcmon: ``main`` reports it as one, with the CTCMON_DEBUG=1 advice, exit 70.
USER_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    NotADirectoryError,
    IsADirectoryError,
)

P = ParamSpec("P")
R = TypeVar("R")


def fail(reason: str, code: int = EXIT_FAILURE) -> NoReturn:
    """One-line reason on stderr, non-zero exit."""
    # the reason is plain text: "[covariate_ranges]" in it is not markup
    err.print(f"[bold red]error:[/] {escape(reason)}", markup=True)
    raise typer.Exit(code)


def emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str, allow_nan=False) + "\n")


def report_cohort_error(exc: CohortError, as_json: bool) -> NoReturn:
    """Exit 2 with the one-line reason and the full list of problems (file, row, column, reason)."""
    if as_json:
        emit_json(
            {"ok": False, "reason": str(exc), "problems": [p.as_dict() for p in exc.problems]}
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True)
    for p in exc.problems:
        out.print(f"  {p}", markup=False)
    raise typer.Exit(EXIT_BAD_INPUT)


def guarded(as_json: bool, work: Callable[[], R]) -> R:
    """Run ``work``; a user error (``USER_ERRORS``) becomes a clean exit, anything else
    propagates to ``main`` as a bug. CTCMON_DEBUG=1 shows tracebacks."""
    try:
        return work()
    except typer.Exit:
        raise
    except CohortError as exc:
        report_cohort_error(exc, as_json)
    except USER_ERRORS as exc:
        if os.environ.get("CTCMON_DEBUG"):
            raise
        if as_json:
            emit_json({"ok": False, "reason": str(exc)})
            raise typer.Exit(EXIT_FAILURE) from None
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)


def report_bug(exc: BaseException) -> NoReturn:
    """A bug in ctcmon: what it was, and how to see where (exit 70)."""
    sys.stderr.write(
        f"internal error (a bug in ctcmon, please report it): {type(exc).__name__}: {exc}\n"
        "rerun with CTCMON_DEBUG=1 for the traceback\n"
    )
    raise SystemExit(EXIT_BUG)


@contextmanager
def progress(
    description: str, enabled: bool = True
) -> Iterator[Callable[[str, float | None], None]]:
    """A transient progress bar on stderr; yields ``update(description, fraction)``."""
    if not enabled or not err.is_terminal:

        def log_only(desc: str, fraction: float | None = None) -> None:
            logging.getLogger("ctcmon").info("%s", desc)

        yield log_only
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(description, total=1.0)

        def update(desc: str, fraction: float | None = None) -> None:
            bar.update(task, description=desc, completed=fraction if fraction is not None else None)

        yield update


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


def records(table: Any) -> list[dict[str, Any]]:
    import math

    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in table.to_dict(orient="records")
    ]


def write_table_atomically(table: Any, path: Path) -> None:
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


def as_dict(obj: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(obj) and not isinstance(obj, type):
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(obj).items()}
    if isinstance(obj, dict):
        return obj
    fail(f"unexpected result type {type(obj).__name__}")
