"""The rule kernel and the OpenAPI patterns that state its rules agree, both ways."""

from __future__ import annotations

import math
import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cohort.rules import (
    DATE_JSON_SCHEMA,
    FIRST_YEAR,
    LAST_YEAR,
    PATIENT_ID_PATTERN,
    is_level,
    iso_date,
    routable_id,
    within,
)


@given(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
    | st.sampled_from([" ", "\u00a0", "p/1", "a\\b", "p\x00"])
)
def test_the_patient_id_pattern_is_the_routable_rule_of_a_non_blank_id(text: str) -> None:
    assert bool(re.search(PATIENT_ID_PATTERN, text)) == (
        routable_id(text) and text.strip() != ""
    ), repr(text)


@given(st.dates(min_value=date(1000, 1, 1), max_value=date(9999, 12, 31)))
def test_the_date_pattern_accepts_exactly_the_years_the_contract_reads(when: date) -> None:
    text = when.isoformat()
    assert bool(re.search(DATE_JSON_SCHEMA["pattern"], text)) == (iso_date(text) is not None)


def test_the_years_span_less_than_what_pandas_can_subtract() -> None:
    # differences of datetime64[ns] overflow beyond about 292 years
    assert (LAST_YEAR - FIRST_YEAR) < 292
    assert iso_date(f"{LAST_YEAR}-12-31") and iso_date(f"{FIRST_YEAR}-01-01")
    assert iso_date(f"{LAST_YEAR + 1}-01-01") is None


@pytest.mark.parametrize(
    ("value", "bounds", "ok"),
    [
        (18.0, (18.0, 110.0), True),
        (110.0, (18.0, 110.0), True),
        (17.99, (18.0, 110.0), False),
        (-5.0, (18.0, 110.0), False),
        (math.nan, (18.0, 110.0), True),  # missing: the covariate's missing-value handling
        (-5.0, None, True),  # no declared range
    ],
)
def test_a_number_is_within_its_declared_range(
    value: float, bounds: tuple[float, float] | None, ok: bool
) -> None:
    assert within(value, bounds) is ok


@pytest.mark.parametrize(
    ("text", "levels", "ok"),
    [
        ("F", ["F", "M"], True),
        ("X", ["F", "M"], False),
        ("f", ["F", "M"], False),
        ("", ["F"], True),
        ("X", None, True),
    ],
)
def test_a_category_is_one_of_its_declared_levels(
    text: str, levels: list[str] | None, ok: bool
) -> None:
    assert is_level(text, levels) is ok


def test_the_blanks_a_cell_loses_are_exactly_what_pydantic_trims_natively() -> None:
    """``clean_text`` (every reader: CSV columns, patient records, forms) and the records that
    trim in pydantic itself (measurements, scans) remove the same characters, on every code
    point: what the contract accepts is what is stored, whichever way a value came."""
    import pandas as pd
    from pydantic import BaseModel, ConfigDict

    from cohort.rules import BLANKS, clean_column, clean_text

    class Trimmed(BaseModel):
        model_config = ConfigDict(str_strip_whitespace=True)
        text: str

    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    natively = {c for c in points if Trimmed(text=f"x{c}").text == "x"}
    assert natively == set(BLANKS)
    assert {c for c in points if clean_text(f"{c}x{c}") == "x"} == natively
    assert "\x1c" not in natively and "\u00a0" in natively and " " in natively
    column = pd.Series([" a ", "\u3000b\t", "c\x1c"])
    assert clean_column(column).tolist() == [clean_text(v) for v in column] == ["a", "b", "c\x1c"]
