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
