"""The coordinators' results: what happened with a municipality's young people in a period.

Pure aggregates, read in a handful of queries; nothing here names a young person. The young
people counted are those the reader may see (``storage.access.visible_young_people``: a
coordinator's own municipality), optionally only those whose kontaktperson is now a given staff
member. A period is whole local days, ``first`` to ``last`` (both included), in the
municipality's time zone: from ``first`` at midnight to the midnight after ``last``.

Each figure, and the timestamp that puts it in the period:

- **reached**: young people who were sent a message by the bot or by staff (outbound, author bot
  or staff, not failed or undelivered); by ``message.sent_at``.
- **replied**: young people who wrote a message; by ``message.created_at`` (when it arrived).
- **weeks**: reached and replied per week (Monday to Sunday, cut to the period at its edges).
- **dreams**: dreams and wishes gathered, per category, and the young people they came from;
  by ``dream.captured_at``.
- **meetings**: meetings that start in the period (``meeting.starts_at``), not cancelled, and
  those of them whose status is now confirmed (by the young person, not yet marked attended or
  not), attended, or no-show.
- **sub-goals done**: status done, by ``sub_goal.completed_at``. **Overdue**: neither done nor
  dropped, with a due date in the period that is before today.
- **handoffs**: opened in the period (``handoff.opened_at``), of them urgent and answered by a
  human; the median and 90th percentile (nearest rank) of the time from opening to the first
  human answer, as ``storage.handoffs.answer_times`` reads them.
- **KUI deadlines** (young people who dropped out at 15–17, ``kui_case``): contact deadlines
  (``contact_due_at``) and offer deadlines (``offer_due_at``) falling in the period. A deadline
  is the end of a day (the next local midnight), so it belongs to the day it ends: it counts in
  ``(start, end]``. It is met when contact (an offer) came by the deadline: the time recorded
  on the case, or, until the worker records it, the evidence it would find (a delivered staff
  message or an attended meeting for contact, a new goal for an offer). Not met, it is missed
  once the deadline has passed and pending before. A case closed before its deadline without
  contact (an offer), because the young person went back to education or work, no longer
  counts for that deadline.
- **opt-outs**: young people with a consent event in the period (``consent_event.created_at``):
  opted out, opted back in, consent withdrawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import QueryableAttribute, Session

from dialogs.timing import local_moment
from dialogs.types import (
    Author,
    ConsentKind,
    DeliveryStatus,
    Direction,
    DreamCategory,
    GoalStatus,
    HandoffPriority,
    MeetingStatus,
    Role,
)
from storage import handoffs
from storage.access import visible_young_people
from storage.models import (
    ConsentEvent,
    Dream,
    Goal,
    Handoff,
    KuiCase,
    Meeting,
    Message,
    StaffUser,
    SubGoal,
    YoungPerson,
)

# The young people counted (a SELECT of their ids), and a column or mapped attribute.
People = sa.Select[Any]
Column = sa.ColumnElement[Any] | QueryableAttribute[Any]
# A leap year at most: a leader group's yearly report, and a bounded weekly chart.
MAX_DAYS = 366
NOT_DELIVERED = (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED)
FROM_STAFF_OR_BOT = (Author.BOT, Author.STAFF)


@dataclass(frozen=True)
class Period:
    """Whole local days ``first`` to ``last``, as the UTC instants ``[start, end)``."""

    first: date
    last: date
    start: datetime
    end: datetime

    @classmethod
    def of(cls, first: date, last: date, zone: ZoneInfo) -> Period:
        if last < first:
            raise ValueError("the period ends before it begins")
        if (last - first).days + 1 > MAX_DAYS:
            raise ValueError(f"a period is at most {MAX_DAYS} days")
        return cls(
            first=first,
            last=last,
            start=local_moment(first, time(0), zone),
            end=local_moment(last + timedelta(days=1), time(0), zone),
        )

    @classmethod
    def last_days(cls, now: datetime, zone: ZoneInfo, days: int = 30) -> Period:
        """The ``days`` local days up to and including today."""
        today = now.astimezone(zone).date()
        return cls.of(today - timedelta(days=days - 1), today, zone)

    def weeks(self, zone: ZoneInfo) -> list[tuple[date, date, datetime]]:
        """(first day, last day, start instant) of each week (Monday to Sunday) in the period,
        the first and last cut to the period."""
        found = []
        first = self.first
        while first <= self.last:
            sunday = first + timedelta(days=6 - first.weekday())
            last = min(sunday, self.last)
            found.append((first, last, local_moment(first, time(0), zone)))
            first = last + timedelta(days=1)
        return found


@dataclass(frozen=True)
class Week:
    first: date
    last: date
    reached: int
    replied: int


@dataclass(frozen=True)
class Reach:
    reached: int
    replied: int
    weeks: list[Week]


@dataclass(frozen=True)
class Dreams:
    total: int
    young_people: int
    # Every category, in the order of ``DreamCategory``, zero where none were gathered.
    by_category: dict[DreamCategory, int]


@dataclass(frozen=True)
class Meetings:
    total: int
    confirmed: int
    attended: int
    no_show: int


@dataclass(frozen=True)
class SubGoals:
    done: int
    overdue: int


@dataclass(frozen=True)
class Handoffs:
    opened: int
    urgent: int
    times: handoffs.AnswerTimes


@dataclass(frozen=True)
class Deadlines:
    due: int
    met: int
    missed: int
    pending: int


@dataclass(frozen=True)
class Kui:
    contact: Deadlines
    offer: Deadlines


@dataclass(frozen=True)
class OptOuts:
    opted_out: int
    opted_in: int
    consent_withdrawn: int


@dataclass(frozen=True)
class Results:
    period: Period
    kontaktperson_id: int | None
    reach: Reach
    dreams: Dreams
    meetings: Meetings
    sub_goals: SubGoals
    handoffs: Handoffs
    kui: Kui
    opt_outs: OptOuts


def kontaktpersoner(session: Session, municipality_id: int) -> list[StaffUser]:
    """The municipality's kontaktpersoner, deactivated ones too (their young people's history
    stays theirs), by name."""
    return list(
        session.scalars(
            sa.select(StaffUser)
            .where(
                StaffUser.municipality_id == municipality_id,
                StaffUser.role == Role.KONTAKTPERSON,
            )
            .order_by(StaffUser.name, StaffUser.id)
        )
    )


def gather(
    session: Session,
    viewer: StaffUser,
    *,
    period: Period,
    kontaktperson_id: int | None = None,
    now: datetime,
) -> Results:
    """Every figure for the young people ``viewer`` may see now (see the module's docstring)."""
    people = sa.select(YoungPerson.id).where(visible_young_people(viewer, now))
    if kontaktperson_id is not None:
        people = people.where(YoungPerson.kontaktperson_id == kontaktperson_id)
    zone = ZoneInfo(viewer.municipality.timezone if viewer.municipality else "UTC")
    today = now.astimezone(zone).date()
    return Results(
        period=period,
        kontaktperson_id=kontaktperson_id,
        reach=_reach(session, people, period, zone),
        dreams=_dreams(session, people, period),
        meetings=_meetings(session, people, period),
        sub_goals=_sub_goals(session, people, period, today),
        handoffs=_handoffs(session, people, period),
        kui=_kui(session, people, period, now),
        opt_outs=_opt_outs(session, people, period),
    )


def _within(column: Column, period: Period) -> sa.ColumnElement[bool]:
    return sa.and_(column >= period.start, column < period.end)


def _ends_within(column: Column, period: Period) -> sa.ColumnElement[bool]:
    """A deadline is the end of its day (the next local midnight): it belongs to that day."""
    return sa.and_(column > period.start, column <= period.end)


def _count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.count(sa.case((condition, 1)))


def _count_people_if(condition: sa.ColumnElement[bool], person: Column) -> sa.ColumnElement[int]:
    return sa.func.count(sa.distinct(sa.case((condition, person))))


def _reach(session: Session, people: People, period: Period, zone: ZoneInfo) -> Reach:
    sent = sa.and_(
        Message.direction == Direction.OUTBOUND,
        Message.author.in_(FROM_STAFF_OR_BOT),
        Message.status.not_in(NOT_DELIVERED),
        _within(Message.sent_at, period),
    )
    wrote = sa.and_(
        Message.direction == Direction.INBOUND,
        Message.author == Author.YOUNG_PERSON,
        _within(Message.created_at, period),
    )
    in_scope = Message.young_person_id.in_(people.scalar_subquery())
    reached, replied = session.execute(
        sa.select(
            _count_people_if(sent, Message.young_person_id),
            _count_people_if(wrote, Message.young_person_id),
        ).where(in_scope, sa.or_(sent, wrote))
    ).one()
    weeks = period.weeks(zone)
    per_week: dict[tuple[str, int], int] = {}
    for kind, condition, moment in (
        ("reached", sent, Message.sent_at),
        ("replied", wrote, Message.created_at),
    ):
        # Each week's number, by the week's local start; the last case catches the final week.
        week = (
            sa.case(
                *[(moment < start, index) for index, (_, _, start) in enumerate(weeks[1:])],
                else_=len(weeks) - 1,
            )
            if len(weeks) > 1
            else sa.literal(0)
        ).label("week")
        for index, count in session.execute(
            sa.select(week, sa.func.count(sa.distinct(Message.young_person_id)))
            .where(in_scope, condition)
            .group_by(week)
        ):
            per_week[(kind, int(index))] = int(count)
    return Reach(
        reached=int(reached),
        replied=int(replied),
        weeks=[
            Week(first, last, per_week.get(("reached", i), 0), per_week.get(("replied", i), 0))
            for i, (first, last, _) in enumerate(weeks)
        ],
    )


def _dreams(session: Session, people: People, period: Period) -> Dreams:
    rows = session.execute(
        sa.select(
            Dream.category,
            sa.func.count(),
        )
        .where(
            Dream.young_person_id.in_(people.scalar_subquery()), _within(Dream.captured_at, period)
        )
        .group_by(Dream.category)
    ).all()
    counted = {DreamCategory(category): int(count) for category, count in rows}
    young_people = session.scalar(
        sa.select(sa.func.count(sa.distinct(Dream.young_person_id))).where(
            Dream.young_person_id.in_(people.scalar_subquery()),
            _within(Dream.captured_at, period),
        )
    )
    return Dreams(
        total=sum(counted.values()),
        young_people=int(young_people or 0),
        by_category={category: counted.get(category, 0) for category in DreamCategory},
    )


def _meetings(session: Session, people: People, period: Period) -> Meetings:
    total, confirmed, attended, no_show = session.execute(
        sa.select(
            sa.func.count(),
            _count_if(Meeting.status == MeetingStatus.CONFIRMED),
            _count_if(Meeting.status == MeetingStatus.ATTENDED),
            _count_if(Meeting.status == MeetingStatus.NO_SHOW),
        ).where(
            Meeting.young_person_id.in_(people.scalar_subquery()),
            _within(Meeting.starts_at, period),
            Meeting.status != MeetingStatus.CANCELLED,
        )
    ).one()
    return Meetings(int(total), int(confirmed), int(attended), int(no_show))


def _sub_goals(session: Session, people: People, period: Period, today: date) -> SubGoals:
    done, overdue = session.execute(
        sa.select(
            _count_if(
                sa.and_(SubGoal.status == GoalStatus.DONE, _within(SubGoal.completed_at, period))
            ),
            _count_if(
                sa.and_(
                    SubGoal.status.not_in((GoalStatus.DONE, GoalStatus.DROPPED)),
                    SubGoal.due_date >= period.first,
                    SubGoal.due_date <= period.last,
                    SubGoal.due_date < today,
                )
            ),
        )
        .join(Goal, Goal.id == SubGoal.goal_id)
        .where(Goal.young_person_id.in_(people.scalar_subquery()))
    ).one()
    return SubGoals(int(done), int(overdue))


def _handoffs(session: Session, people: People, period: Period) -> Handoffs:
    rows = session.execute(
        sa.select(Handoff.opened_at, Handoff.first_human_answer_at, Handoff.priority).where(
            Handoff.young_person_id.in_(people.scalar_subquery()),
            _within(Handoff.opened_at, period),
        )
    ).all()
    waits = sorted(answered - opened for opened, answered, _ in rows if answered is not None)
    times = handoffs.AnswerTimes(
        opened=len(rows),
        answered=len(waits),
        # The same nearest-rank percentiles as ``handoffs.answer_times``, for any set of people.
        median=handoffs.percentile(waits, 50),
        p90=handoffs.percentile(waits, 90),
    )
    urgent = sum(1 for _, _, priority in rows if priority is HandoffPriority.URGENT)
    return Handoffs(opened=len(rows), urgent=urgent, times=times)


def _kui(session: Session, people: People, period: Period, now: datetime) -> Kui:
    staff_message = (
        sa.select(Message.id)
        .where(
            Message.young_person_id == KuiCase.young_person_id,
            Message.direction == Direction.OUTBOUND,
            Message.author == Author.STAFF,
            Message.status.not_in(NOT_DELIVERED),
            Message.created_at >= KuiCase.dropped_out_at,
            Message.created_at <= KuiCase.contact_due_at,
        )
        .exists()
    )
    attended = (
        sa.select(Meeting.id)
        .where(
            Meeting.young_person_id == KuiCase.young_person_id,
            Meeting.status == MeetingStatus.ATTENDED,
            Meeting.starts_at >= KuiCase.dropped_out_at,
            Meeting.starts_at <= KuiCase.contact_due_at,
            Meeting.starts_at <= now,
        )
        .exists()
    )
    new_goal = (
        sa.select(Goal.id)
        .where(
            Goal.young_person_id == KuiCase.young_person_id,
            Goal.created_at >= KuiCase.dropped_out_at,
            Goal.created_at <= KuiCase.offer_due_at,
        )
        .exists()
    )
    contact = _deadline(
        KuiCase.contact_due_at, KuiCase.contacted_at, sa.or_(staff_message, attended), period, now
    )
    offer = _deadline(KuiCase.offer_due_at, KuiCase.offered_at, new_goal, period, now)
    row = session.execute(
        sa.select(*contact, *offer).where(
            KuiCase.young_person_id.in_(people.scalar_subquery()),
            sa.or_(
                _ends_within(KuiCase.contact_due_at, period),
                _ends_within(KuiCase.offer_due_at, period),
            ),
        )
    ).one()
    numbers = [int(value) for value in row]
    return Kui(contact=Deadlines(*numbers[:4]), offer=Deadlines(*numbers[4:]))


def _deadline(
    due_at: Column,
    recorded: Column,
    evidence: sa.ColumnElement[bool],
    period: Period,
    now: datetime,
) -> list[sa.ColumnElement[int]]:
    """(due, met, missed, pending) of one kind of deadline, as aggregate columns."""
    met = sa.or_(
        sa.and_(recorded.is_not(None), recorded <= due_at),
        sa.and_(recorded.is_(None), evidence),
    )
    counts = sa.and_(
        _ends_within(due_at, period),
        sa.or_(met, KuiCase.closed_at.is_(None), KuiCase.closed_at >= due_at),
    )
    return [
        _count_if(counts),
        _count_if(sa.and_(counts, met)),
        _count_if(sa.and_(counts, sa.not_(met), due_at <= now)),
        _count_if(sa.and_(counts, sa.not_(met), due_at > now)),
    ]


def _opt_outs(session: Session, people: People, period: Period) -> OptOuts:
    person = ConsentEvent.young_person_id
    opted_out, opted_in, withdrawn = session.execute(
        sa.select(
            _count_people_if(ConsentEvent.kind == ConsentKind.OPTED_OUT, person),
            _count_people_if(ConsentEvent.kind == ConsentKind.OPTED_IN, person),
            _count_people_if(ConsentEvent.kind == ConsentKind.CONSENT_WITHDRAWN, person),
        ).where(person.in_(people.scalar_subquery()), _within(ConsentEvent.created_at, period))
    ).one()
    return OptOuts(int(opted_out), int(opted_in), int(withdrawn))
