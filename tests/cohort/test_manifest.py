from __future__ import annotations

import pytest

from cohort.errors import CohortError
from cohort.manifest import ScheduleSpec, parse_manifest


def minimal(**extra: object) -> dict[str, object]:
    return {"name": "x", "time_zero": "resection", "markers": {"afp": {"unit": "ng/mL"}}, **extra}


def test_the_default_imaging_schedule_is_3_monthly_then_6_monthly() -> None:
    schedule = parse_manifest(minimal()).imaging_schedule()
    assert schedule.days_until(1100) == [90, 180, 270, 360, 450, 540, 630, 720, 900, 1080]


@pytest.mark.parametrize(
    ("day", "expected"), [(0, 90), (90, 180), (719.5, 720), (720, 900), (1000, 1080)]
)
def test_next_scan_after_a_day_follows_the_schedule(day: float, expected: float) -> None:
    assert ScheduleSpec().next_after(day) == expected


def test_a_schedule_without_continuation_ends() -> None:
    assert ScheduleSpec(schedule_days=[90, 180], then_every_days=None).next_after(180) is None


def test_unknown_keys_are_refused_so_typos_cannot_change_an_analysis() -> None:
    with pytest.raises(CohortError, match="endpont"):
        parse_manifest(minimal(endpont="rfs"))


def test_a_manifest_needs_at_least_one_marker() -> None:
    with pytest.raises(CohortError, match="declare at least one marker"):
        parse_manifest({"name": "x", "time_zero": "t", "markers": {}})


def test_schedules_must_increase_and_factors_be_positive() -> None:
    with pytest.raises(CohortError, match="strictly increasing"):
        parse_manifest(minimal(imaging={"schedule_days": [180, 90]}))
    with pytest.raises(CohortError, match="conversion factors must be > 0"):
        parse_manifest(minimal(markers={"afp": {"unit": "ng/mL", "conversions": {"IU/mL": 0}}}))


def test_plausible_ranges_and_levels_are_optional_and_read_from_toml_values() -> None:
    m = parse_manifest(
        minimal(
            covariates={"age": "numeric", "stage": "categorical"},
            covariate_ranges={"age": [18, 110]},
            covariate_levels={"stage": [1, 2, "3"]},  # TOML integers are the cells' text
        )
    )
    assert m.covariate_ranges == {"age": (18.0, 110.0)}
    assert m.covariate_levels == {"stage": ["1", "2", "3"]}
    assert parse_manifest(minimal()).covariate_ranges == {}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"covariate_ranges": {"sex": [0, 1]}}, "'sex' is declared categorical"),
        ({"covariate_ranges": {"mvi": [0, 1]}}, "'mvi' is declared binary"),
        ({"covariate_ranges": {"weight": [0, 1]}}, "'weight' is not declared under"),
        ({"covariate_ranges": {"age": [110, 18]}}, "min <= max"),
        ({"covariate_ranges": {"age": [18, float("inf")]}}, "finite"),
        ({"covariate_ranges": {"age": [18]}}, "covariate_ranges.age"),
        ({"covariate_levels": {"age": ["1"]}}, "'age' is declared numeric"),
        ({"covariate_levels": {"sex": []}}, "distinct, non-blank"),
        ({"covariate_levels": {"sex": ["F", "F"]}}, "distinct, non-blank"),
        ({"covariate_levels": {"sex": ["F", " "]}}, "distinct, non-blank"),
        ({"covariate_levels": {"sex": ["F", "M "]}}, "blanks around them"),
    ],
)
def test_a_range_or_levels_of_the_wrong_covariate_or_shape_is_refused(
    extra: dict[str, object], message: str
) -> None:
    covariates = {"age": "numeric", "sex": "categorical", "mvi": "binary"}
    with pytest.raises(CohortError, match=message):
        parse_manifest(minimal(covariates=covariates, **extra))


def test_a_manifest_pickled_before_the_ranges_existed_unpickles_with_none() -> None:
    """A model packaged before ``covariate_ranges`` existed carries a manifest without it."""
    m = parse_manifest(minimal(covariates={"age": "numeric"}))
    state = m.__getstate__()
    state["__dict__"] = {
        k: v
        for k, v in state["__dict__"].items()
        if k not in ("covariate_ranges", "covariate_levels")
    }
    old = type(m).__new__(type(m))
    old.__setstate__(state)
    assert old.covariate_ranges == {} and old.covariate_levels == {}
    assert old == m
