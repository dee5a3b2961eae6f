"""Dates, times and working days for the reader: Babel's locale data, the municipality's zone."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from babel.dates import format_date, format_skeleton, format_time

from bot.i18n import translate
from dialogs.i18n import N_

# CLDR puts narrow and no-break spaces in times ("3:00\u202fPM"); one of them turns a whole SMS
# into UCS-2, at less than half the characters per segment.
_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " ", "\u2009": " "})


def _plain(text: str) -> str:
    return text.translate(_SPACES)


def format_moment(moment: datetime, language: str, zone: ZoneInfo) -> str:
    """E.g. "tirsdag den 24. november kl. 14.00" in Danish, in the municipality's time zone."""
    local = moment.astimezone(zone)
    return _moment(local.date(), local.time().replace(second=0, microsecond=0), language)


@lru_cache(maxsize=4096)
def _moment(day: date, at: time, language: str) -> str:
    # Babel builds its patterns anew on every call; a burst of reminders asks for a few days and
    # times over and over.
    return _plain(
        translate(
            language,
            N_("{weekday} den {date} kl. {time}"),
            weekday=format_date(day, "EEEE", locale=language),
            date=format_skeleton("MMMMd", day, locale=language),
            time=format_time(at, "short", locale=language),
        )
    )


@lru_cache(maxsize=8)
def _danish_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("DK", years=year)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _danish_holidays(day.year)


def next_working_day(day: date) -> date:
    day += timedelta(days=1)
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def handoff_eta(now: datetime, language: str, *, office_start: time, office_end: time) -> str:
    """Roughly when a human answers: within today's office hours, or on the next working day."""
    today = now.date()
    if is_working_day(today) and now.time() < office_end:
        if now.time() < office_start:
            start = _plain(format_time(office_start, "short", locale=language))
            return translate(language, N_("i dag efter kl. {time}"), time=start)
        end = _plain(format_time(office_end, "short", locale=language))
        return translate(language, N_("i dag inden kl. {time}"), time=end)
    following = next_working_day(today)
    if following == today + timedelta(days=1):
        return translate(language, N_("i morgen i løbet af dagen"))
    weekday = format_date(following, "EEEE", locale=language)
    return translate(language, N_("på {weekday} i løbet af dagen"), weekday=weekday)
