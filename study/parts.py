"""What each analysis hands back to ``describe``: tables, curves to draw, and skipped notes."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class Skipped:
    """A part of the report that was not produced, and why (shown in the report)."""

    part: str
    reason: str

    def __str__(self) -> str:
        return f"{self.part}: {self.reason}"


@dataclass(frozen=True)
class Curves:
    """Per-patient survival data for one Kaplan–Meier figure.

    ``data`` has ``time`` (days), ``event`` and ``group`` (one level when ungrouped).
    """

    name: str
    title: str
    data: pd.DataFrame
    group_column: str | None
    logrank_p: float | None = None


@dataclass
class Part:
    """The outcome of one analysis: named tables, figures to draw, notes and skips."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    curves: list[Curves] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def absorb(self, other: Part) -> Part:
        """Add ``other``'s content to this one; same-named tables are stacked."""
        for name, table in other.tables.items():
            mine = self.tables.get(name)
            self.tables[name] = (
                table if mine is None else pd.concat([mine, table], ignore_index=True)
            )
        self.curves.extend(other.curves)
        self.skipped.extend(other.skipped)
        self.notes.extend(other.notes)
        return self


def skip(part: str, reason: str) -> Part:
    """A Part that only says it was skipped."""
    return Part(skipped=[Skipped(part, reason)])


def combine(parts: list[Part]) -> Part:
    """One Part holding every part's content, in order."""
    out = Part()
    for part in parts:
        out.absorb(part)
    return out
