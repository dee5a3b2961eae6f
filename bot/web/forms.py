"""Reading what people type into forms: dates and times as a date field sends them or as they
are written by hand."""

from __future__ import annotations

import re
from datetime import date, time

TIME = re.compile(r"^(\d{1,2})[:.](\d{2})$")


def parse_day(value: str) -> date | None:
    """2026-12-24 (a date field), or 24-12-2026, 24.12.2026, 24/12/2026; None if none of these."""
    value = value.strip()
    day: date | None = None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        parts = value.replace(".", "-").replace("/", "-").split("-")
        if len(parts) == 3 and all(p.isdigit() for p in parts) and len(parts[2]) == 4:
            try:
                day = date(int(parts[2]), int(parts[1]), int(parts[0]))
            except ValueError:
                day = None
    return day if day is not None and 2000 <= day.year <= 2200 else None


def parse_time(value: str) -> time | None:
    found = TIME.match(value.strip())
    if found is None:
        return None
    hour, minute = int(found.group(1)), int(found.group(2))
    return time(hour, minute) if hour < 24 and minute < 60 else None
