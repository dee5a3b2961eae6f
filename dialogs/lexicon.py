"""The words a language uses for yes, no, stop, dates and crisis: data, loaded by the runtime.

Each language keeps its lists in ``locales/<lang>/lexicon.json`` next to its translations; this
module only describes their shape, so the core stays free of I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DateWords:
    today: tuple[str, ...] = ()
    tomorrow: tuple[str, ...] = ()
    day_after_tomorrow: tuple[str, ...] = ()
    # Monday first; each weekday with its spellings and abbreviations.
    weekdays: tuple[tuple[str, ...], ...] = ()
    next_week: tuple[str, ...] = ()
    # Words before a number of days or weeks ("om 3 dage"), and the unit words themselves.
    in_: tuple[str, ...] = ()
    days: tuple[str, ...] = ()
    weeks: tuple[str, ...] = ()
    numbers: dict[str, int] = field(default_factory=dict)
    time_words: tuple[str, ...] = ()
    # Words after the hour ("2 بجے") and after "N days" ("3 gün sonra") in languages that
    # put them there.
    time_after: tuple[str, ...] = ()
    later: tuple[str, ...] = ()
    morning: tuple[str, ...] = ()
    afternoon: tuple[str, ...] = ()
    evening: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lexicon:
    language: str
    name: str
    intents: dict[str, tuple[str, ...]]
    commands: dict[str, tuple[str, ...]]
    crisis: tuple[str, ...]
    crisis_exceptions: tuple[str, ...]
    dates: DateWords
    dream_categories: dict[str, tuple[str, ...]]
    sensitive_words: tuple[str, ...]
    right_to_left: bool = False

    @classmethod
    def from_dict(cls, language: str, data: dict[str, Any]) -> Lexicon:
        dates: dict[str, Any] = dict(data.get("dates", {}))

        def words(key: str) -> tuple[str, ...]:
            return tuple(str(w) for w in dates.get(key, ()))

        date_words = DateWords(
            today=words("today"),
            tomorrow=words("tomorrow"),
            day_after_tomorrow=words("day_after_tomorrow"),
            weekdays=tuple(tuple(str(w) for w in day) for day in dates.get("weekdays", ())),
            next_week=words("next_week"),
            in_=words("in_"),
            days=words("days"),
            weeks=words("weeks"),
            numbers={str(k): int(v) for k, v in dates.get("numbers", {}).items()},
            time_words=words("time_words"),
            time_after=words("time_after"),
            later=words("later"),
            morning=words("morning"),
            afternoon=words("afternoon"),
            evening=words("evening"),
        )
        return cls(
            language=language,
            name=str(data["name"]),
            intents={k: tuple(v) for k, v in data.get("intents", {}).items()},
            commands={k: tuple(v) for k, v in data.get("commands", {}).items()},
            crisis=tuple(data.get("crisis", [])),
            crisis_exceptions=tuple(data.get("crisis_exceptions", [])),
            dates=date_words,
            dream_categories={k: tuple(v) for k, v in data.get("dream_categories", {}).items()},
            sensitive_words=tuple(data.get("sensitive_words", [])),
            right_to_left=bool(data.get("right_to_left", False)),
        )
