"""A municipality's quiet hours, and where proactive messages wait for them to end."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from dialogs.timing import QuietHours
from storage.models import Municipality


def quiet_hours(place: Municipality) -> QuietHours:
    return QuietHours(
        start=place.quiet_hours_start,
        end=place.quiet_hours_end,
        zone=ZoneInfo(place.timezone),
        weekends=place.quiet_on_weekends,
    )
