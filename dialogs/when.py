"""Dates and times in words: "i morgen kl 14", "på tirsdag", "om en uge", "24/12 kl. 9.30".

Relative words come from the language's :class:`~dialogs.lexicon.DateWords`; the reading is done
in the municipality's time zone, given as the time zone of ``now``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from dialogs.lexicon import DateWords
from dialogs.understand import normalise

_CLOCK = re.compile(r"(?<!\d)([01]?\d|2[0-3])[:.](\d{2})(?!\d)")
_DAY_MONTH = re.compile(r"(?<![\d:.])(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{2,4}))?(?![\d:])")


@dataclass(frozen=True)
class When:
    day: date
    at: time | None

    def to_datetime(self, now: datetime) -> datetime:
        """The moment in ``now``'s time zone (9:00 when no time was said)."""
        return datetime.combine(self.day, self.at or time(9, 0), tzinfo=now.tzinfo)


def _words(text: str) -> str:
    return f" {text} "


def _has(message: str, phrases: tuple[str, ...]) -> str | None:
    # Longest first, so "i overmorgen" wins over "morgen".
    for phrase in sorted(phrases, key=len, reverse=True):
        normal = normalise(phrase)
        if normal and f" {normal} " in _words(message):
            return normal
    return None


def _number(token: str, words: DateWords) -> int | None:
    if token.isdigit():
        return int(token)
    normal_numbers = {normalise(k): v for k, v in words.numbers.items()}
    return normal_numbers.get(token)


def _relative_span(message: str, words: DateWords) -> timedelta | None:
    """ "om 3 dage" (a word, a number, a unit) or "3 gün sonra" (a number, a unit, a word)."""
    tokens = message.split()
    in_words = {normalise(w) for w in words.in_}
    later_words = {normalise(w) for w in words.later}
    units = {normalise(w): timedelta(days=1) for w in words.days}
    units |= {normalise(w): timedelta(weeks=1) for w in words.weeks}
    for i in range(len(tokens) - 1):
        count = _number(tokens[i], words)
        unit = units.get(tokens[i + 1])
        if count is None or unit is None:
            continue
        before = tokens[i - 1] if i > 0 else None
        after = tokens[i + 2] if i + 2 < len(tokens) else None
        if before in in_words or after in later_words:
            return unit * count
    return None


def _day(raw: str, message: str, today: date, words: DateWords) -> date | None:
    explicit = _DAY_MONTH.search(raw)
    if explicit:
        day, month = int(explicit.group(1)), int(explicit.group(2))
        year = explicit.group(3)
        full_year = today.year if year is None else int(year) + (2000 if len(year) == 2 else 0)
        try:
            found = date(full_year, month, day)
        except ValueError:
            return None
        # "24/1" said in December means next January.
        if year is None and found < today:
            found = date(full_year + 1, month, day)
        return found
    if _has(message, words.day_after_tomorrow):
        return today + timedelta(days=2)
    if _has(message, words.tomorrow):
        return today + timedelta(days=1)
    if _has(message, words.today):
        return today
    span = _relative_span(message, words)
    if span is not None:
        return today + span
    if _has(message, words.next_week):
        return today + timedelta(days=7)
    # The longest spelling wins: Farsi "یک شنبه" (Sunday) contains "شنبه" (Saturday).
    weekdays = [
        (len(hit), index)
        for index, spellings in enumerate(words.weekdays)
        if (hit := _has(message, spellings))
    ]
    if weekdays:
        index = max(weekdays)[1]
        ahead = (index - today.weekday()) % 7 or 7
        return today + timedelta(days=ahead)
    return None


def _time(raw: str, message: str, words: DateWords) -> time | None:
    clock = _CLOCK.search(raw)
    if clock:
        return time(int(clock.group(1)), int(clock.group(2)))
    tokens = message.split()
    after_words = {normalise(w) for w in words.time_after}
    for i, token in enumerate(tokens[1:], start=1):
        if token in after_words and tokens[i - 1].isdigit() and int(tokens[i - 1]) <= 23:
            return time(int(tokens[i - 1]), 0)
    time_words = {normalise(w) for w in words.time_words}
    for i, token in enumerate(tokens[:-1]):
        if token in time_words and tokens[i + 1].isdigit():
            hour = int(tokens[i + 1])
            minute = 0
            if i + 2 < len(tokens) and tokens[i + 2].isdigit() and len(tokens[i + 2]) == 2:
                minute = int(tokens[i + 2])
            if 0 <= hour <= 23 and 0 <= minute <= 59:
                return time(hour, minute)
    if _has(message, words.morning):
        return time(9, 0)
    if _has(message, words.afternoon):
        return time(13, 0)
    if _has(message, words.evening):
        return time(18, 0)
    return None


def parse_when(text: str, now: datetime, words: DateWords) -> When | None:
    """Read a day (and perhaps a time) from the text; None if there is no day in it.

    A time alone ("kl 14") means today if it is still ahead, else tomorrow.
    """
    message = normalise(text)
    # Keep the separators in "14.30" and "24/12" that normalising removes.
    raw = text.casefold()
    today = now.date()
    at = _time(raw, message, words)
    without_clock = _CLOCK.sub(" ", raw)
    day = _day(without_clock, message, today, words)
    if day is None:
        if at is None:
            return None
        day = today if at > now.timetz().replace(tzinfo=None) else today + timedelta(days=1)
    return When(day=day, at=at)
