"""Reading and writing what a conversation turn needs, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

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


def lock_many(session: Session, young_person_ids: Collection[int]) -> dict[int, Conversation]:
    """:func:`lock` for many young people at once: three statements instead of three each.

    The rows are locked in one order (by young person), so two workers locking overlapping sets
    wait for each other instead of deadlocking. Missing conversations are created first, and a
    row another process creates at the same moment is simply read.
    """
    if not young_person_ids:
        return {}
    dialect = session.get_bind().dialect.name
    query = (
        sa.select(Conversation)
        .where(Conversation.young_person_id.in_(sorted(young_person_ids)))
        .order_by(Conversation.young_person_id)
    )
    if dialect == "postgresql":
        query = query.with_for_update()
    found = {c.young_person_id: c for c in session.scalars(query)}
    missing = sorted(set(young_person_ids) - found.keys())
    if missing:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            insert(Conversation).on_conflict_do_nothing(index_elements=["young_person_id"]),
            [{"young_person_id": person, "version": 1} for person in missing],
        )
        again = query.where(Conversation.young_person_id.in_(missing))
        found.update(
            (c.young_person_id, c)
            for c in session.scalars(again.execution_options(populate_existing=True))
        )
    return found


# What a turn changes in a conversation (see save_many).
STATE = ("holder", "held_by_id", "dialog", "step", "variables", "misses", "last_outbound_at")


def save_many(session: Session, conversations: Sequence[Conversation], now: datetime) -> int:
    """Write the state of many conversations after their turns with one ``executemany`` UPDATE.

    The ORM writes a versioned row with an UPDATE of its own each time; here every row is still
    guarded by its version (a row another process moved on fails the whole batch with
    ``StaleDataError``, as the ORM would), but the rows go together. The objects are left as if
    the ORM had written them. Returns how many were written.
    """
    changed = list(conversations)  # a turn always moves its conversation on
    if len(changed) < 2:
        return 0  # the ORM's own flush is as good for one
    table = cast(sa.Table, Conversation.__table__)
    statement = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("b_id"), table.c.version == sa.bindparam("b_version"))
        .values(
            {key: sa.bindparam(f"b_{key}") for key in STATE}
            | {"version": sa.bindparam("b_next"), "updated_at": sa.bindparam("b_now")}
        )
    )
    rows = [
        {f"b_{key}": getattr(conversation, key) for key in STATE}
        | {
            "b_id": conversation.id,
            "b_version": conversation.version,
            "b_next": conversation.version + 1,
            "b_now": now,
        }
        for conversation in changed
    ]
    with session.no_autoflush:
        result = session.connection().execute(statement, rows)
    if result.rowcount != len(rows):
        raise StaleDataError(
            f"{len(rows) - result.rowcount} of {len(rows)} conversations changed under us"
        )
    for conversation in changed:
        for key in STATE:
            set_committed_value(conversation, key, getattr(conversation, key))
        set_committed_value(conversation, "version", conversation.version + 1)
        set_committed_value(conversation, "updated_at", now)
    return len(changed)


def next_meetings(
    session: Session, young_person_ids: Collection[int], now: datetime
) -> dict[int, Meeting]:
    """Each young person's next coming meeting (those who have one)."""
    meetings = session.scalars(
        sa.select(Meeting)
        .where(
            Meeting.young_person_id.in_(young_person_ids),
            Meeting.starts_at > now,
            Meeting.status.in_(COMING_MEETING),
        )
        .order_by(Meeting.starts_at.desc(), Meeting.id.desc())
    ).all()
    # Latest first, so the earliest of each young person is written last and stays.
    return {meeting.young_person_id: meeting for meeting in meetings}


def open_goals_of(
    session: Session, young_person_ids: Collection[int]
) -> dict[int, list[tuple[Goal, SubGoal | None]]]:
    """Each open goal of each young person with its next open sub-goal (earliest due date
    first), in two statements."""
    goals = session.scalars(
        sa.select(Goal)
        .where(Goal.young_person_id.in_(young_person_ids), Goal.status.in_(OPEN_GOAL))
        .order_by(Goal.position, Goal.id)
        .options(selectinload(Goal.sub_goals))
    ).all()
    result: dict[int, list[tuple[Goal, SubGoal | None]]] = {}
    for goal in goals:
        open_steps = [s for s in goal.sub_goals if s.status in OPEN_GOAL]
        open_steps.sort(key=lambda s: (s.due_date is None, s.due_date, s.position))
        result.setdefault(goal.young_person_id, []).append(
            (goal, open_steps[0] if open_steps else None)
        )
    return result


def cancel_scheduled(
    session: Session,
    young_person_id: int | Collection[int],
    *,
    now: datetime,
    reason: str,
    kind: str | None = None,
) -> int:
    """Cancel what is pending for one young person, or for several at once."""
    people = [young_person_id] if isinstance(young_person_id, int) else list(young_person_id)
    if not people:
        return 0
    query = sa.update(ScheduledItem).where(
        ScheduledItem.young_person_id.in_(people),
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
