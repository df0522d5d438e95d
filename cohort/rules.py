"""The data contract's cell rules, each written once.

Two readers apply them: the per-file schemas (``cohort.schemas``, over text columns of
files and of posted records) and the quick parser of one history (``cohort.parsed``, over
the fields of records). A rule is a plain function of one cell; a column applies it once
per distinct value (``by_value``), so a cohort's dates or units cost one call each.

Text is normalised in one place, here: surrounding blanks (spaces, tabs, no-break spaces:
whatever ``str.strip`` removes) are dropped before any rule runs, by the file reader and by
the record models alike, so what the contract accepts is exactly what is stored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date
from typing import Any, Final, TypeVar

import pandas as pd

from cohort.units import KNOWN_CONVERSIONS, conversion_factor

T = TypeVar("T")

# the years a date may have: pandas stores dates and their differences as int64 nanoseconds
# (dates 1677-2262, differences within ±292 years: 1900 to 2200 overflowed, a 500 found by
# schemathesis), and nothing this product reads happened before 1900
FIRST_YEAR: Final = 1900
LAST_YEAR: Final = 2150
DATE_RULE: Final = f"not a date in ISO format YYYY-MM-DD (years {FIRST_YEAR}-{LAST_YEAR})"
VALUE_RULE: Final = "value must be a number >= 0"
COUNT_RULE: Final = "a count must be a whole number of cells (in this or another volume)"
NUMBER_RULE: Final = "not a number"
BINARY_RULE: Final = "binary covariate must be 0 or 1"
PATIENT_ID_RULE: Final = "a patient_id has no '/', '\\\\' or control characters"
BINARY_TRUE: Final = ("1", "1.0", "true", "yes", "y")
BINARY_FALSE: Final = ("0", "0.0", "false", "no", "n")

_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# ``iso_date`` for the OpenAPI document: ISO dates in the supported years
DATE_JSON_SCHEMA: Final[dict[str, Any]] = {
    "format": "date",
    "pattern": r"^(19[0-9]{2}|20[0-9]{2}|21[0-4][0-9]|2150)-[0-9]{2}-[0-9]{2}$",
}
# a plain decimal number as people write it in a spreadsheet (no "1_000", "0x1f" or "nan",
# which Python's float() would take)
NUMBER_PATTERN: Final = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"
_NUMBER = re.compile(NUMBER_PATTERN)
_UNROUTABLE = re.compile(r"[/\\\x00-\x1f\x7f]")
# the same rule for the OpenAPI document (ECMA-262 and Python regexes alike): routable
# characters, at least one of them not blank (an id of blanks is empty once trimmed)
_ROUTABLE = r"[^/\\\u0000-\u001f\u007f]"
PATIENT_ID_PATTERN: Final = rf"^{_ROUTABLE}*[^/\\\u0000-\u001f\u007f\s]{_ROUTABLE}*$"


# The blanks a text cell loses at either end: Unicode's White_Space characters, exactly what
# pydantic's ``str_strip_whitespace`` trims (Rust's ``str::trim``), so that the records that
# strip natively (``MeasurementRecord``, ``ImagingRecord``: the many rows of a history, about
# a third of its validation time saved) and every other reader and writer agree; a test
# compares the two over every code point. (Python's own ``str.strip()`` would also take the
# four information separators U+001C–U+001F, which are not White_Space.)
BLANKS: Final = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def clean_text(value: str) -> str:
    """The one normalisation of a text cell: surrounding blanks (``BLANKS``) removed."""
    return value.strip(BLANKS)


def clean_column(s: pd.Series) -> pd.Series:
    """``clean_text`` over a text column (``str.strip`` on each cell, vectorised)."""
    return s.str.strip(BLANKS)


def clean_field(value: Any) -> Any:
    """``clean_text`` for a field that may not be text (a pydantic before-validator)."""
    return clean_text(value) if isinstance(value, str) else value


def iso_date(text: str) -> date | None:
    """The date of an ISO ``YYYY-MM-DD`` cell within the supported years, else None."""
    if not _ISO.fullmatch(text):
        return None
    try:
        when = date.fromisoformat(text)
    except ValueError:
        return None
    return when if FIRST_YEAR <= when.year <= LAST_YEAR else None


def number(text: str) -> float | None:
    """A finite number written in decimal, else None."""
    if not _NUMBER.fullmatch(text):
        return None
    return finite(float(text))


def finite(value: Any) -> float | None:
    """A JSON number (not a boolean) as a finite float, else None (text, huge ints, inf)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        out = float(value)
    except OverflowError:
        return None
    return out if math.isfinite(out) else None


def is_value(value: float) -> bool:
    """A measured value: finite and not negative."""
    return math.isfinite(value) and value >= 0


def is_count_unit(unit: str) -> bool:
    """Markers in cells per volume (CTC counts) are counted, so their values are whole."""
    return unit.startswith("cells/")


def is_plausible_count(
    value: float, unit: str, canonical: str, overrides: dict[str, float] | None = None
) -> bool:
    """A value of a counted marker (canonical unit in cells per volume) is a whole number of
    cells in its unit or in another volume the marker is reported in: 1.5 cells/7.5mL is
    1 cell/5mL converted, 2.5 cells/7.5mL is no count at all. Other markers always pass."""
    if not is_count_unit(canonical):
        return True  # not a count
    to_canonical = conversion_factor(unit, canonical, overrides)
    if to_canonical is None:
        return True  # a unit the unit rule refuses
    in_canonical = value * to_canonical
    if is_whole(in_canonical):  # whole in the canonical volume (the usual case)
        return True
    volumes = {*(overrides or {})}
    volumes |= {u for (u, to) in KNOWN_CONVERSIONS if to == canonical}
    for other in volumes:
        factor = conversion_factor(other, canonical, overrides)
        if factor and is_whole(in_canonical / factor):
            return True
    return False


def is_whole(cells: float) -> bool:
    """A whole number of cells, up to float round-off of a unit conversion."""
    return math.isfinite(cells) and abs(cells - round(cells)) <= 1e-9 * max(1.0, abs(cells))


def binary(text: str) -> float | None:
    """A binary covariate cell: 1.0, 0.0, or None when it is neither."""
    low = text.lower()
    return 1.0 if low in BINARY_TRUE else 0.0 if low in BINARY_FALSE else None


def within(value: float, bounds: tuple[float, float] | None) -> bool:
    """A numeric covariate inside the manifest's plausible range (NaN, a missing cell, is
    left to the covariate's missing-value handling); no declared range: anything."""
    return bounds is None or math.isnan(value) or bounds[0] <= value <= bounds[1]


def range_rule(name: str, bounds: tuple[float, float]) -> str:
    low, high = bounds
    return f"{name} must be between {low:g} and {high:g} (cohort.toml [covariate_ranges])"


def is_level(text: str, levels: list[str] | None) -> bool:
    """A categorical covariate's cell among the manifest's levels (blank, missing, passes);
    no declared levels: anything."""
    return levels is None or text == "" or text in levels


def levels_rule(name: str, levels: list[str]) -> str:
    return f"{name} must be one of {levels} (cohort.toml [covariate_levels])"


def routable_id(text: str) -> bool:
    """An identifier that can sit in a URL path segment (``/v1/patients/{patient_id}``)."""
    return _UNROUTABLE.search(text) is None


def by_value(s: pd.Series, rule: Callable[[str], T]) -> pd.Series:
    """``rule`` applied to a text column, once per distinct cell."""
    uniques = pd.unique(s)
    return s.map(dict(zip(uniques, map(rule, uniques), strict=True)))
