"""Errors raised by ctcmon's data layer; every message names what is wrong and where."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import pandas as pd

from cohort.vocabulary import PATIENT_ID


@dataclass(frozen=True, order=True)
class Problem:
    """One contract violation: which file, which row (spreadsheet row: the header is row 1),
    which column, and for a row-level problem the row's patient."""

    file: str
    row: int | None
    column: str | None
    reason: str
    patient_id: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column:
            where += f", column {self.column!r}"
        if self.patient_id and self.column != PATIENT_ID:  # else the reason quotes it already
            return f"{where}: {self.reason} (patient {self.patient_id!r})"
        return f"{where}: {self.reason}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "row": self.row,
            "column": self.column,
            "reason": self.reason,
            "patient_id": self.patient_id,
        }


def row_patient(frame: pd.DataFrame, index: Hashable) -> str | None:
    """The ``patient_id`` of a row of a contract file, when it has a usable one."""
    if PATIENT_ID not in frame.columns or index not in frame.index:
        return None
    value = frame.at[index, PATIENT_ID]
    return value if isinstance(value, str) and value.strip() else None


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
