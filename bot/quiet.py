"""A municipality's quiet hours, and where proactive messages wait for them to end."""

from __future__ import annotations

from datetime import time
from functools import lru_cache
from zoneinfo import ZoneInfo

from dialogs.timing import QuietHours
from storage.models import Municipality


def quiet_hours(place: Municipality) -> QuietHours:
    return _quiet_hours(
        place.quiet_hours_start, place.quiet_hours_end, place.timezone, place.quiet_on_weekends
    )


@lru_cache(maxsize=256)
def _quiet_hours(start: time, end: time, zone: str, weekends: bool) -> QuietHours:
    # Asked for every proactive message; the settings of a municipality rarely change.
    return QuietHours(start=start, end=end, zone=ZoneInfo(zone), weekends=weekends)
