"""Time rules of the field, as pure functions: quiet hours and Danish working days.

Everything here takes aware datetimes and answers in UTC. Local wall time is found with the
municipality's zone, so the daylight-saving changes (last Sunday of March: 02:00 → 03:00, last
Sunday of October: 03:00 → 02:00) fall out of ``zoneinfo`` rather than out of hand-written offsets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SATURDAY = 5


def local_moment(day: date, at: time, zone: ZoneInfo) -> datetime:
    """``day`` at wall time ``at`` in ``zone``, in UTC.

    A wall time that does not exist (inside the spring gap) is read as the moment the clocks jump
    to; a wall time that happens twice (the autumn hour) is its first occurrence.
    """
    naive = datetime.combine(day, at)
    candidate = naive.replace(tzinfo=zone, fold=0)
    moment = candidate.astimezone(UTC)
    landed = moment.astimezone(zone)
    if landed.replace(tzinfo=None) != naive:
        # In the gap: the clocks jump on the hour, so the gap ends at the hour we landed in.
        moment = landed.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    return moment


@dataclass(frozen=True)
class QuietHours:
    """The hours (and optionally weekends) when nothing proactive goes out.

    ``start`` and ``end`` are local wall times; ``start`` after ``end`` means the quiet time runs
    over midnight (the default, 21:00–08:00). Equal times mean no quiet hours at all.
    """

    start: time
    end: time
    zone: ZoneInfo
    weekends: bool = False

    def _quiet_at_wall(self, wall: datetime) -> bool:
        if self.weekends and wall.weekday() >= SATURDAY:
            return True
        now = wall.time()
        if self.start == self.end:
            return False
        if self.start > self.end:
            return now >= self.start or now < self.end
        return self.start <= now < self.end

    def is_quiet(self, moment: datetime) -> bool:
        return self._quiet_at_wall(moment.astimezone(self.zone))

    def next_allowed(self, moment: datetime) -> datetime:
        """``moment`` itself if sending is allowed then, else the first allowed minute after it."""
        wall = moment.astimezone(self.zone)
        if not self._quiet_at_wall(wall):
            return moment.astimezone(UTC)
        day = wall.date()
        # The quiet time that holds now ends at ``end`` today or tomorrow.
        if self.start == self.end or wall.time() >= self.end:
            day += timedelta(days=1)
        if self.weekends:
            while day.weekday() >= SATURDAY:
                day += timedelta(days=1)
        candidate = local_moment(day, self.end, self.zone)
        if self._quiet_at_wall(candidate.astimezone(self.zone)):
            # Only reachable with weekends and no nightly quiet: the week starts at midnight.
            return local_moment(day, time(0), self.zone)
        return candidate


HolidayCheck = Callable[[date], bool]


def is_working_day(day: date, is_holiday: HolidayCheck) -> bool:
    return day.weekday() < SATURDAY and not is_holiday(day)


def add_working_days(start: date, count: int, is_holiday: HolidayCheck) -> date:
    """The ``count``-th working day after ``start`` (``start`` itself is not counted)."""
    day = start
    left = count
    while left > 0:
        day += timedelta(days=1)
        if is_working_day(day, is_holiday):
            left -= 1
    return day


def previous_working_day(day: date, is_holiday: HolidayCheck) -> date:
    day -= timedelta(days=1)
    while not is_working_day(day, is_holiday):
        day -= timedelta(days=1)
    return day


def end_of_day(day: date, zone: ZoneInfo) -> datetime:
    """The last moment of ``day`` in ``zone`` (the next day's midnight), in UTC."""
    return local_moment(day + timedelta(days=1), time(0), zone)
