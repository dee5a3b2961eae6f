"""Reading young people for the staff pages: the list a staff member may see, and one person's
page (profile, dreams, plan, meetings with their reminders, consent history, access log).

Pure reads. Who may see whom is ``storage.access`` alone: the list is filtered with
``visible_young_people`` and nothing here decides access on its own. Writing (the plan, meetings)
goes through ``storage.plans``; the audit events of a read are the caller's to record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialogs.types import ScheduledStatus, YoungPersonStatus
from storage import access
from storage.campaigns import Audience
from storage.models import (
    AuditEvent,
    ConsentEvent,
    Dream,
    Goal,
    Meeting,
    ScheduledItem,
    StaffUser,
    SubGoal,
    YoungPerson,
    YoungPersonTag,
)

MAX_LIST = 500
MAX_SEARCH = 80
ACCESS_LOG_ON_PAGE = 50


@dataclass(frozen=True)
class Row:
    """One line of the list."""

    id: int
    first_name: str
    birth_date_iso: str
    status: YoungPersonStatus
    kontaktperson: str | None
    language: str
    kontaktperson_id: int | None = None


@dataclass(frozen=True)
class Listing:
    rows: list[Row]
    total: int  # how many matched, of which at most MAX_LIST are in ``rows``


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def visible_tags(session: Session, staff: StaffUser, now: datetime) -> list[str]:
    """The tags of the young people ``staff`` may see, as stored."""
    return list(
        session.scalars(
            sa.select(YoungPersonTag.tag)
            .join(YoungPerson, YoungPerson.id == YoungPersonTag.young_person_id)
            .where(access.visible_young_people(staff, now))
            .distinct()
            .order_by(YoungPersonTag.tag)
        )
    )


def visible_list(
    session: Session,
    staff: StaffUser,
    now: datetime,
    *,
    search: str = "",
    status: YoungPersonStatus | None = None,
    audience: Audience | None = None,
    today: date | None = None,
) -> Listing:
    """The young people ``staff`` may see, by first name, optionally searched and filtered.

    ``audience`` filters as a campaign would (age on ``today``, status, tags, kontaktperson,
    channel, days since the young person last wrote), but also shows opted-out and closed young
    people; it narrows what ``staff`` may see and never widens it."""
    conditions: list[sa.ColumnElement[bool]] = [
        access.visible_young_people(staff, now),
        YoungPerson.erased_at.is_(None),
    ]
    if audience is not None:
        if staff.municipality_id is None:
            conditions.append(sa.false())
        else:
            conditions += audience.conditions(
                staff.municipality_id,
                today=today or now.date(),
                now=now,
                reachable_only=False,
            )
    search = search.strip()[:MAX_SEARCH]
    if search:
        conditions.append(
            sa.func.lower(YoungPerson.first_name).like(_like_pattern(search), escape="\\")
        )
    if status is not None:
        conditions.append(YoungPerson.status == status)
    total = session.scalar(sa.select(sa.func.count()).select_from(YoungPerson).where(*conditions))
    result = session.execute(
        sa.select(YoungPerson, StaffUser.name)
        .outerjoin(StaffUser, StaffUser.id == YoungPerson.kontaktperson_id)
        .where(*conditions)
        .order_by(sa.func.lower(YoungPerson.first_name), YoungPerson.id)
        .limit(MAX_LIST)
    ).all()
    rows = [
        Row(
            id=person.id,
            first_name=person.first_name,
            birth_date_iso=person.birth_date.isoformat(),
            status=person.status,
            kontaktperson=name,
            language=person.language,
            kontaktperson_id=person.kontaktperson_id,
        )
        for person, name in result
    ]
    return Listing(rows=rows, total=int(total or 0))


@dataclass
class SubGoalView:
    sub_goal: SubGoal
    reminders: list[ScheduledItem] = field(default_factory=list)


@dataclass
class GoalView:
    goal: Goal
    sub_goals: list[SubGoalView] = field(default_factory=list)


@dataclass
class MeetingView:
    meeting: Meeting
    reminders: list[ScheduledItem] = field(default_factory=list)


@dataclass
class LogLine:
    event: AuditEvent
    staff_name: str | None


@dataclass
class Profile:
    person: YoungPerson
    dreams: list[Dream]
    goals: list[GoalView]
    meetings: list[MeetingView]
    consent: list[ConsentEvent]
    access_log: list[LogLine]
    access_log_total: int


def _pending(session: Session, *conditions: sa.ColumnElement[bool]) -> list[ScheduledItem]:
    return list(
        session.scalars(
            sa.select(ScheduledItem)
            .where(ScheduledItem.status == ScheduledStatus.PENDING, *conditions)
            .order_by(ScheduledItem.due_at, ScheduledItem.id)
        )
    )


def staff_names(session: Session, ids: Sequence[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(
        session.execute(
            sa.select(StaffUser.id, StaffUser.name).where(StaffUser.id.in_(wanted))
        ).all()
    )


def goal_count(session: Session, young_person_id: int) -> int:
    return int(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Goal)
            .where(Goal.young_person_id == young_person_id)
        )
        or 0
    )


def profile(session: Session, person: YoungPerson) -> Profile:
    """Everything the young person's page shows (the caller has checked access)."""
    dreams = list(
        session.scalars(
            sa.select(Dream)
            .where(Dream.young_person_id == person.id)
            .order_by(Dream.captured_at.desc(), Dream.id.desc())
        )
    )
    goals = list(
        session.scalars(
            sa.select(Goal)
            .where(Goal.young_person_id == person.id)
            .order_by(Goal.position, Goal.created_at, Goal.id)
        )
    )
    sub_goal_ids = [s.id for g in goals for s in g.sub_goals]
    sub_reminders: dict[int, list[ScheduledItem]] = {}
    if sub_goal_ids:
        for item in _pending(session, ScheduledItem.sub_goal_id.in_(sub_goal_ids)):
            assert item.sub_goal_id is not None
            sub_reminders.setdefault(item.sub_goal_id, []).append(item)
    goal_views = [
        GoalView(
            goal=g,
            sub_goals=[
                SubGoalView(s, sub_reminders.get(s.id, []))
                for s in sorted(g.sub_goals, key=lambda s: (s.position, s.created_at, s.id))
            ],
        )
        for g in goals
    ]
    meetings = list(
        session.scalars(
            sa.select(Meeting)
            .where(Meeting.young_person_id == person.id)
            .order_by(Meeting.starts_at.desc(), Meeting.id.desc())
        )
    )
    meeting_reminders: dict[int, list[ScheduledItem]] = {}
    if meetings:
        for item in _pending(session, ScheduledItem.meeting_id.in_([m.id for m in meetings])):
            assert item.meeting_id is not None
            meeting_reminders.setdefault(item.meeting_id, []).append(item)
    consent = list(
        session.scalars(
            sa.select(ConsentEvent)
            .where(ConsentEvent.young_person_id == person.id)
            .order_by(ConsentEvent.created_at.desc(), ConsentEvent.id.desc())
        )
    )
    about = AuditEvent.young_person_id == person.id
    log_total = session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(about))
    events = list(
        session.scalars(
            sa.select(AuditEvent)
            .where(about)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(ACCESS_LOG_ON_PAGE)
        )
    )
    names = staff_names(session, [e.staff_id for e in events])
    return Profile(
        person=person,
        dreams=dreams,
        goals=goal_views,
        meetings=[MeetingView(m, meeting_reminders.get(m.id, [])) for m in meetings],
        consent=consent,
        access_log=[
            LogLine(e, names.get(e.staff_id) if e.staff_id is not None else None) for e in events
        ],
        access_log_total=int(log_total or 0),
    )
