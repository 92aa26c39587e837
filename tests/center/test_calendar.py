"""Working days: weekends and holidays skipped, counts bounded."""

from __future__ import annotations

from datetime import date

import pytest

from posgw.center.calendar import WorkingCalendar
from posgw.center.config import parse_center_config
from posgw.protocols.config_error import ConfigError

FRIDAY = date(2026, 12, 4)


def test_working_days_skip_the_weekend() -> None:
    calendar = WorkingCalendar.of()
    assert calendar.add_working_days(FRIDAY, 1) == date(2026, 12, 7)  # Monday
    assert calendar.add_working_days(FRIDAY, 5) == date(2026, 12, 11)
    assert calendar.add_working_days(date(2026, 12, 5), 0) == date(2026, 12, 7)
    assert calendar.add_working_days(FRIDAY, 0) == FRIDAY


def test_holidays_are_skipped_too() -> None:
    calendar = WorkingCalendar.of(holidays=[date(2026, 12, 7)])
    assert calendar.add_working_days(FRIDAY, 1) == date(2026, 12, 8)
    assert calendar.working_days_between(FRIDAY, date(2026, 12, 11)) == 4


def test_fifteen_working_days_over_new_year() -> None:
    calendar = WorkingCalendar.of(holidays=[date(2027, 1, 1)])
    assert calendar.add_working_days(date(2026, 12, 18), 15) == date(2027, 1, 11)


def test_a_calendar_without_working_days_fails_instead_of_looping() -> None:
    with pytest.raises(ValueError, match="working days"):
        WorkingCalendar.of(weekend=range(7)).add_working_days(FRIDAY, 1)


def test_the_config_reads_holidays_and_weekend() -> None:
    config = parse_center_config({"calendar": {"holidays": ["2027-01-01"],
                                               "weekend": ["fri", "sat"]}})
    assert config.calendar.holidays == frozenset({date(2027, 1, 1)})
    assert config.calendar.weekend == frozenset({4, 5})
    assert parse_center_config({}).calendar == WorkingCalendar.of()


@pytest.mark.parametrize(("table", "reason"), [
    ({"holidays": ["1 January"]}, "YYYY-MM-DD"),
    ({"weekend": ["saturday"]}, "mon"),
    ({"weekend": list(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))}, "working day"),
])
def test_bad_calendars_are_refused_with_the_key(table: dict[str, list[str]],
                                                reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        parse_center_config({"calendar": table})
