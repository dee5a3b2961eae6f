"""Quiet hours and working days, the pure rules, across both daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialogs.timing import (
    QuietHours,
    add_working_days,
    end_of_day,
    local_moment,
    previous_working_day,
)

CPH = ZoneInfo("Europe/Copenhagen")
NIGHT = QuietHours(start=time(21), end=time(8), zone=CPH)
NIGHT_AND_WEEKENDS = QuietHours(start=time(21), end=time(8), zone=CPH, weekends=True)
DANISH = holidays.country_holidays("DK", years=range(2025, 2029))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def is_holiday(day: date) -> bool:
    return day in DANISH


@pytest.mark.parametrize(
    ("moment", "allowed"),
    [
        # A Monday in November (UTC+1): 20:59 is allowed, 21:00 is not, 08:00 is again.
        (utc(2026, 11, 23, 19, 59), utc(2026, 11, 23, 19, 59)),
        (utc(2026, 11, 23, 20, 0), utc(2026, 11, 24, 7, 0)),
        (utc(2026, 11, 24, 6, 59), utc(2026, 11, 24, 7, 0)),
        (utc(2026, 11, 24, 7, 0), utc(2026, 11, 24, 7, 0)),
        # Saturday 28 March 2026, 22:30 (UTC+1): the night holds the spring change; Sunday
        # 08:00 is already summer time (UTC+2), so 06:00 UTC.
        (utc(2026, 3, 28, 21, 30), utc(2026, 3, 29, 6, 0)),
        # Saturday 24 October 2026, 23:00 (UTC+2): the autumn change in the night; Sunday
        # 08:00 is winter time (UTC+1), so 07:00 UTC.
        (utc(2026, 10, 24, 21, 0), utc(2026, 10, 25, 7, 0)),
        # 02:30 on 25 October happens twice; both are quiet and end at the same 08:00.
        (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 7, 0)),
        (utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 7, 0)),
    ],
)
def test_quiet_nights_end_at_eight_local_time(moment: datetime, allowed: datetime) -> None:
    assert NIGHT.next_allowed(moment) == allowed
    assert NIGHT.is_quiet(moment) == (allowed != moment)


def test_quiet_weekends_wait_for_monday_morning() -> None:
    friday_evening = utc(2026, 11, 20, 20, 30)  # 21:30
    saturday_noon = utc(2026, 11, 21, 11, 0)
    monday_morning = utc(2026, 11, 23, 7, 0)  # 08:00
    assert NIGHT_AND_WEEKENDS.next_allowed(friday_evening) == monday_morning
    assert NIGHT_AND_WEEKENDS.next_allowed(saturday_noon) == monday_morning
    assert NIGHT.next_allowed(saturday_noon) == saturday_noon


def test_equal_start_and_end_mean_no_quiet_hours() -> None:
    always = QuietHours(start=time(0), end=time(0), zone=CPH)
    for hour in range(24):
        moment = utc(2026, 11, 23, hour, 15)
        assert not always.is_quiet(moment)
        assert always.next_allowed(moment) == moment


def test_a_quiet_time_inside_one_day() -> None:
    lunch = QuietHours(start=time(12), end=time(13), zone=CPH)
    assert lunch.next_allowed(utc(2026, 11, 23, 11, 30)) == utc(2026, 11, 23, 12, 0)
    assert lunch.next_allowed(utc(2026, 11, 23, 10, 30)) == utc(2026, 11, 23, 10, 30)


@given(
    st.datetimes(
        min_value=datetime(2025, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
        max_value=datetime(2028, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    st.booleans(),
)
def test_next_allowed_is_never_earlier_never_quiet_and_within_three_days(
    moment: datetime, weekends: bool
) -> None:
    rules = NIGHT_AND_WEEKENDS if weekends else NIGHT
    allowed = rules.next_allowed(moment)
    assert allowed >= moment
    assert not rules.is_quiet(allowed)
    assert allowed - moment <= timedelta(days=3)
    # Nothing in between is allowed: it is the *first* allowed minute.
    if allowed > moment:
        assert rules.is_quiet(allowed - timedelta(minutes=1))


def test_a_wall_time_in_the_spring_gap_is_where_the_clock_lands() -> None:
    assert local_moment(date(2026, 3, 29), time(2, 30), CPH) == utc(2026, 3, 29, 1, 0)
    assert local_moment(date(2026, 10, 25), time(2, 30), CPH) == utc(2026, 10, 25, 0, 30)
    assert end_of_day(date(2026, 3, 28), CPH) == utc(2026, 3, 28, 23, 0)


def test_working_days_skip_weekends_and_danish_holidays() -> None:
    # Wednesday 1 April 2026: Maundy Thursday, Good Friday and Easter Monday do not count.
    assert add_working_days(date(2026, 4, 1), 5, is_holiday) == date(2026, 4, 13)
    # Friday 18 December 2026: Christmas Day and Boxing Day (Friday, Saturday) do not count.
    assert add_working_days(date(2026, 12, 18), 5, is_holiday) == date(2026, 12, 28)
    assert add_working_days(date(2026, 11, 23), 5, is_holiday) == date(2026, 11, 30)
    assert previous_working_day(date(2026, 4, 6), is_holiday) == date(2026, 4, 1)
