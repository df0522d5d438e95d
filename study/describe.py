"""``ctcmon describe``: every analysis that applies to a cohort, in one call.

The CLI calls :func:`describe_cohort`, writes the report with
``reporting.study.write_study_report`` and prints :meth:`DescribeResult.summary` (or
:meth:`DescribeResult.to_dict` as JSON).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cohort.cohort import Cohort
from cohort.vocabulary import INDEX_DATE, PATIENT_ID
from study.ccr import ccr_part
from study.characteristics import characteristics_part
from study.ctc_dynamics import ctc_part
from study.eligibility import eligibility_part
from study.options import DEFAULT_YEARS, StudyOptions, study_options
from study.parts import Curves, Part, Skipped, combine
from study.response import response_part
from study.safety import safety_part
from study.schedule import schedule_part
from study.survival import survival_part

log = logging.getLogger(__name__)

MAX_GROUPS = 20  # more levels than this is a continuous column, not a grouping


@dataclass
class DescribeResult:
    """Tables (DataFrames by name), curves to draw, files written, what was skipped and why."""

    name: str
    n_patients: int
    by: str | None
    tables: dict[str, pd.DataFrame]
    files: list[Path] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    curves: list[Curves] = field(default_factory=list, repr=False)

    def summary(self) -> str:
        """A few human lines for the CLI."""
        lines = [
            f"{self.name}: {self.n_patients} patients"
            + (f", grouped by {self.by}" if self.by else "")
        ]
        lines += self._headline()
        lines.append("tables: " + ", ".join(self.tables))
        lines += [f"skipped {s}" for s in self.skipped]
        if self.files:
            lines.append(f"wrote {len(self.files)} files to {self.files[-1].parent}")
        return "\n".join(lines)

    def _headline(self) -> list[str]:
        """Median and 2-year rate (95% CI) of each overall endpoint: the primary outcomes."""
        rates = self.tables.get("survival_rates")
        medians = self.tables.get("survival_summary")
        if rates is None or medians is None:
            return []
        out = []
        overall = medians[(medians["group"] == "Overall") & (medians["group_column"] == "")]
        for row in overall.itertuples(index=False):
            r2 = rates[
                (rates["endpoint"] == row.endpoint)
                & (rates["years"] == 2.0)
                & (rates["group_column"] == "")
            ]
            median = (
                "not reached"
                if math.isnan(float(row.median_days))  # type: ignore[arg-type]
                else (
                    f"{row.median_days:.0f} d ({_day(row.median_lower)}–{_day(row.median_upper)})"
                )
            )
            two = (
                ""
                if r2.empty
                else (
                    f"; 2-year {r2.survival.iloc[0]:.1%} "
                    f"({r2.lower.iloc[0]:.1%}–{r2.upper.iloc[0]:.1%})"
                )
            )
            out.append(f"  {row.endpoint}: {row.events}/{row.n} events, median {median}{two}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: tables as lists of records (NaN → None)."""

        def clean(v: object) -> object:
            return None if isinstance(v, float) and math.isnan(v) else v

        return {
            "name": self.name,
            "n_patients": self.n_patients,
            "by": self.by,
            "tables": {
                k: [{c: clean(v) for c, v in r.items()} for r in t.to_dict("records")]
                for k, t in self.tables.items()
            },
            "files": [str(p) for p in self.files],
            "skipped": [{"part": s.part, "reason": s.reason} for s in self.skipped],
            "notes": list(self.notes),
        }


def _check_by(cohort: Cohort, by: str | None) -> None:
    if by is None:
        return
    columns = [c for c in cohort.patients.columns if c not in (PATIENT_ID, INDEX_DATE)]
    if by not in columns:
        raise ValueError(f"--by column {by!r} is not a patients column; available: {columns}")
    n_levels = cohort.patients[by].nunique()
    if n_levels > MAX_GROUPS:
        raise ValueError(
            f"--by column {by!r} has {n_levels} distinct values (at most "
            f"{MAX_GROUPS}); group by a categorical column, e.g. one of {columns}"
        )


def _group(cohort: Cohort, opts: StudyOptions, by: str | None) -> str | None:
    """``--by`` if given, else the declared treatment arm."""
    if by is not None:
        return by
    if opts.arm and opts.arm in cohort.patients:
        return opts.arm
    return None


def analyse(cohort: Cohort, opts: StudyOptions, group: str | None) -> Part:
    """Every part of the report, each one either tables or a skipped note."""
    return combine(
        [
            characteristics_part(cohort, opts, group),
            schedule_part(cohort, opts.schedule_window_days),
            survival_part(cohort, opts, group),
            ctc_part(cohort, opts),
            response_part(cohort, group),
            safety_part(cohort, group),
            ccr_part(cohort, opts.ccr),
            eligibility_part(cohort, opts, opts.eligibility),
        ]
    )


def describe_cohort(
    cohort: Cohort,
    by: str | None = None,
    *,
    eligibility: Mapping[str, Any] | None = None,
    years: tuple[float, ...] = DEFAULT_YEARS,
) -> DescribeResult:
    """Study analytics of ``cohort`` (``reporting.study.write_study_report`` writes them).

    ``by`` groups Table 1, survival, response and safety (default: the manifest's
    ``[study] arm``); ``eligibility`` overrides the manifest's rules.
    """
    _check_by(cohort, by)
    opts = study_options(cohort.manifest, eligibility=eligibility, years=years)
    group = _group(cohort, opts, by)
    part = analyse(cohort, opts, group)
    result = DescribeResult(
        cohort.manifest.name,
        cohort.n_patients,
        group,
        part.tables,
        skipped=part.skipped,
        notes=part.notes,
        curves=part.curves,
    )
    for s in part.skipped:
        log.info("skipped %s", s)
    return result


def _day(value: object) -> str:
    """A CI bound in days; "not reached" when the KM curve never crosses it."""
    v = float(value)  # type: ignore[arg-type]
    return "not reached" if math.isnan(v) else f"{v:.0f}"
