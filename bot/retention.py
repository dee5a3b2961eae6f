"""The nightly retention run: once a night per municipality, at 03:00 in its own time zone.

Each night is a ``scheduled_item`` of kind ``retention_nightly`` whose idempotency key names the
municipality and the local date, so however many workers and restarts there are, a night has one
item and one worker claims it. The run (``storage.retention.run``) happens inside the item's
transaction and writes a ``retention.run`` audit event with its counts; then it schedules the
next night. ``ensure_scheduled`` makes sure every municipality has its next night: the ``serve``
and ``worker`` commands call it at start, every run calls it, and so does a change of the
retention setting.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.worker import Expired, Handler
from storage import retention, schedule
from storage.models import Municipality, ScheduledItem

log = logging.getLogger(__name__)

KIND = "retention_nightly"
AT = time(3, 0)


def key_for(municipality_id: int, day: date) -> str:
    return f"{KIND}:{municipality_id}:{day.isoformat()}"


def next_night(place: Municipality, now: datetime) -> tuple[date, datetime]:
    """The local date and UTC moment of the first 03:00 in ``place``'s zone after ``now``."""
    zone = ZoneInfo(place.timezone)
    day = now.astimezone(zone).date()
    while True:
        due = datetime.combine(day, AT, tzinfo=zone).astimezone(now.tzinfo)
        if due > now:
            return day, due
        day += timedelta(days=1)


def schedule_next(session: Session, place: Municipality, now: datetime) -> bool:
    """Schedule ``place``'s next night unless it is scheduled already; True if it was added."""
    day, due = next_night(place, now)
    return schedule.schedule(
        session,
        kind=KIND,
        key=key_for(place.id, day),
        due_at=due,
        now=now,
        municipality_id=place.id,
    )


def ensure_scheduled(session: Session, now: datetime) -> int:
    """Every municipality's next night, where it is missing; how many were added."""
    places = session.scalars(sa.select(Municipality).order_by(Municipality.id)).all()
    return sum(schedule_next(session, place, now) for place in places)


def run_night(session: Session, item: ScheduledItem, now: datetime) -> str:
    """The handler: one municipality's retention run, then its next night."""
    place = session.get(Municipality, item.municipality_id) if item.municipality_id else None
    if place is None:
        raise Expired("municipality is gone")
    counts = retention.run(session, place, now=now)
    ensure_scheduled(session, now)
    log.info(
        "retention run",
        extra={"municipality": place.id, "retention_months": place.retention_months}
        | counts.as_dict(),
    )
    return " ".join(f"{name}={value}" for name, value in counts.as_dict().items())


def handlers() -> dict[str, Handler]:
    return {KIND: run_night}
