"""Errors raised by ctcmon's data layer; every message names what is wrong and where."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One contract violation: which file, which data row (1-based, header excluded), which column."""

    file: str
    row: int | None
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column:
            where += f", column {self.column!r}"
        return f"{where}: {self.reason}"

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "row": self.row, "column": self.column, "reason": self.reason}


class CohortError(ValueError):
    """A cohort broke the data contract; ``problems`` lists every violation found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(
            problems, key=lambda p: (p.file, p.row or 0, p.column or "", p.reason)
        )
        n = len(self.problems)
        head = str(self.problems[0]) if n else "no problem given"
        more = f" (and {n - 1} more)" if n > 1 else ""
        super().__init__(f"cohort refused: {n} problem{'s' if n != 1 else ''}: {head}{more}")
