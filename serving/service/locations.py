"""One mapping from a contract problem to where it sits in a request.

The contract reports problems by file, row and column (``cohort.errors.Problem``); a request
carries the same records in its own shape. :class:`Where` says, per request, where each
contract file's records sit in the body, and turns every problem into ``{loc, msg}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cohort.errors import CohortError, Problem
from serving.errors import Invalid

Loc = list[str | int]
ROW_OFFSET = 2  # problem rows are spreadsheet rows (the header is row 1)
BODY = "body"  # the file of a problem the service found, its column a dotted body path


@dataclass(frozen=True)
class Where:
    """Where the records of each contract file sit in a request.

    ``places[file]`` is ``(location, first)``: ``first`` None for a single record (its row is
    ignored), else the number of stored records listed before the body's (a problem with one
    of those points at ``stored``). ``lifted[(file, column)]`` is a column the body states
    once for all its records (a draw's date). ``outer`` maps a location in the history to
    one in another body shape (a FHIR Bundle).
    """

    places: dict[str, tuple[Loc, int | None]]
    lifted: dict[tuple[str, str], Loc] = field(default_factory=dict)
    stored: Loc = field(default_factory=lambda: [BODY])
    outer: Callable[[Loc], Loc] | None = None

    def __call__(self, p: Problem) -> Loc:
        loc = self._in_body(p)
        if self.outer is not None and loc[:1] == [BODY]:
            return self.outer(loc[1:])
        return loc

    def _in_body(self, p: Problem) -> Loc:
        if p.file == BODY:
            return [BODY, *(int(x) if x.isdigit() else x for x in (p.column or "").split("."))]
        if (p.file, p.column or "") in self.lifted:
            return list(self.lifted[(p.file, p.column or "")])
        if p.file not in self.places:
            return list(self.stored)
        loc, first = self.places[p.file]
        out = list(loc)
        if first is not None and p.row is not None:
            index = p.row - ROW_OFFSET - first
            if index < 0:
                return list(self.stored)
            out.append(index)
        return [*out, p.column] if p.column else out

    def invalid(self, exc: CohortError) -> Invalid:
        """Every problem of a contract error as ``{loc, msg}`` (duplicates merged)."""
        seen: dict[tuple[Any, ...], dict[str, Any]] = {}
        for p in exc.problems:
            loc = self(p)
            seen.setdefault((*loc, p.reason), {"loc": loc, "msg": p.reason})
        return Invalid(list(seen.values()))


def history_body(outer: Callable[[Loc], Loc] | None = None) -> Where:
    """A patient history as the body (``POST /v1/risk``)."""
    return Where(
        places={
            "patient": ([BODY, "patient"], None),
            "measurements": ([BODY, "measurements"], 0),
            "imaging": ([BODY, "imaging"], 0),
            "as_of": ([BODY, "as_of"], None),
            "next_imaging_date": ([BODY, "next_imaging_date"], None),
        },
        outer=outer,
    )
