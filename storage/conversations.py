"""Reading and writing what a conversation turn needs, inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialogs.types import (
    GoalStatus,
    MeetingStatus,
    OutboxStatus,
    Purpose,
    ScheduledStatus,
)
from storage.models import (
    Conversation,
    Goal,
    Meeting,
    Message,
    OutboxEntry,
    ScheduledItem,
    SubGoal,
)

OPEN_GOAL = (GoalStatus.PLANNED, GoalStatus.UNDER_WAY, GoalStatus.NEEDS_HELP)
COMING_MEETING = (MeetingStatus.PLANNED, MeetingStatus.CONFIRMED, MeetingStatus.NEW_TIME_WANTED)


def lock(session: Session, young_person_id: int) -> Conversation:
    """The young person's conversation, created if missing, locked until the transaction ends.

    On PostgreSQL the row lock (``FOR UPDATE``) makes every other worker process wait, so one
    conversation is processed at a time. SQLite has one writer at a time anyway; the version
    column catches a lost update there.
    """
    query = sa.select(Conversation).where(Conversation.young_person_id == young_person_id)
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        query = query.with_for_update()
    conversation = session.scalar(query)
    if conversation is not None:
        return conversation
    try:
        with session.begin_nested():
            session.add(Conversation(young_person_id=young_person_id))
    except sa.exc.IntegrityError:
        pass  # another process created it first; read theirs below
    return session.scalars(query.execution_options(populate_existing=True)).one()


def next_meeting(session: Session, young_person_id: int, now: datetime) -> Meeting | None:
    return session.scalar(
        sa.select(Meeting)
        .where(
            Meeting.young_person_id == young_person_id,
            Meeting.starts_at > now,
            Meeting.status.in_(COMING_MEETING),
        )
        .order_by(Meeting.starts_at)
        .limit(1)
    )


def open_goals(session: Session, young_person_id: int) -> list[tuple[Goal, SubGoal | None]]:
    """Each open goal with its next open sub-goal (earliest due date first)."""
    goals = session.scalars(
        sa.select(Goal)
        .where(Goal.young_person_id == young_person_id, Goal.status.in_(OPEN_GOAL))
        .order_by(Goal.position, Goal.id)
    ).all()
    result: list[tuple[Goal, SubGoal | None]] = []
    for goal in goals:
        open_steps = [s for s in goal.sub_goals if s.status in OPEN_GOAL]
        open_steps.sort(key=lambda s: (s.due_date is None, s.due_date, s.position))
        result.append((goal, open_steps[0] if open_steps else None))
    return result


def cancel_scheduled(
    session: Session, young_person_id: int, *, now: datetime, reason: str, kind: str | None = None
) -> int:
    query = sa.update(ScheduledItem).where(
        ScheduledItem.young_person_id == young_person_id,
        ScheduledItem.status == ScheduledStatus.PENDING,
    )
    if kind is not None:
        query = query.where(ScheduledItem.kind == kind)
    result = session.execute(
        query.values(
            status=ScheduledStatus.CANCELLED, finished_at=now, outcome=reason
        ).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def cancel_outbox(session: Session, young_person_id: int, *, reason: str) -> int:
    """Withdraw every message still waiting to go out to the young person (not crisis help)."""
    waiting = (
        sa.select(OutboxEntry.id)
        .join(Message, Message.id == OutboxEntry.message_id)
        .where(
            Message.young_person_id == young_person_id,
            OutboxEntry.status == OutboxStatus.PENDING,
            OutboxEntry.purpose != Purpose.CRISIS,
        )
    )
    result = session.execute(
        sa.update(OutboxEntry)
        .where(OutboxEntry.id.in_(waiting))
        .values(status=OutboxStatus.CANCELLED, last_error=reason)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
