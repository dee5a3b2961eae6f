"""The handoff inbox's data: what needs attention, a young person's thread, notes, canned replies,
and the status rules of a handoff.

Everything here that lists or reads young people is scoped through
:func:`storage.access.visible_young_people`; nothing else decides who sees what.

Status of a handoff (``Handoff.status``):

- **open**: someone must answer. A **snoozed** handoff whose ``snoozed_until`` has passed counts
  as open again (:func:`effective_status`), without anyone writing the row.
- **pending**: answered; waiting for the young person.
- **snoozed** until a time: put aside.
- **resolved**: done.

When the young person writes (:func:`reopen_on_inbound`, called from the conversation turn), a
pending or snoozed handoff opens again, and while a human holds the conversation (the bot is
silent), a resolved one reopens too: its message would otherwise reach no one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from dialogs import texts
from dialogs.types import (
    Author,
    DeliveryStatus,
    Direction,
    HandoffPriority,
    HandoffReason,
    HandoffStatus,
    Holder,
    YoungPersonStatus,
)
from storage import access, audit
from storage.models import (
    CannedReply,
    Conversation,
    Handoff,
    Message,
    StaffNote,
    StaffUser,
    YoungPerson,
)

SNIPPET = 90
FAILED = (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED)
# The "resolved" filter shows what was resolved lately, not all history.
RESOLVED_WINDOW = timedelta(days=30)
LIST_LIMIT = 500


class View(StrEnum):
    """The inbox's filters."""

    ATTENTION = "attention"  # open handoffs (urgent first) and failed deliveries
    OPEN = "open"
    PENDING = "pending"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class Kind(StrEnum):
    URGENT = "urgent"
    HANDOFF = "handoff"
    FAILED = "failed"


@dataclass(frozen=True)
class Row:
    """One line of the inbox."""

    young_person_id: int
    first_name: str
    kind: Kind
    reason: HandoffReason | None
    status: HandoffStatus | None
    waiting_since: datetime
    assignee: str | None
    snippet: str | None
    snippet_author: Author | None
    error_code: str | None
    snoozed_until: datetime | None
    handoff_id: int | None


def effective_status(handoff: Handoff, now: datetime) -> HandoffStatus:
    """A snooze that has run out is open again."""
    if (
        handoff.status is HandoffStatus.SNOOZED
        and handoff.snoozed_until is not None
        and handoff.snoozed_until <= now
    ):
        return HandoffStatus.OPEN
    return handoff.status


def _is_open_in_sql(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        Handoff.status == HandoffStatus.OPEN,
        sa.and_(Handoff.status == HandoffStatus.SNOOZED, Handoff.snoozed_until <= now),
    )


def _filter(view: View, now: datetime) -> sa.ColumnElement[bool]:
    match view:
        case View.ATTENTION | View.OPEN:
            return _is_open_in_sql(now)
        case View.PENDING:
            return Handoff.status == HandoffStatus.PENDING
        case View.SNOOZED:
            return sa.and_(
                Handoff.status == HandoffStatus.SNOOZED,
                sa.or_(Handoff.snoozed_until.is_(None), Handoff.snoozed_until > now),
            )
        case View.RESOLVED:
            return sa.and_(
                Handoff.status == HandoffStatus.RESOLVED,
                Handoff.resolved_at >= now - RESOLVED_WINDOW,
            )


def _last_messages(session: Session, ids: Sequence[int]) -> dict[int, Message]:
    if not ids:
        return {}
    ranked = (
        sa.select(
            Message.id,
            sa.func.row_number()
            .over(
                partition_by=Message.young_person_id,
                order_by=(Message.created_at.desc(), Message.id.desc()),
            )
            .label("rank"),
        )
        .where(Message.young_person_id.in_(ids))
        .subquery()
    )
    rows = session.scalars(
        sa.select(Message).join(ranked, ranked.c.id == Message.id).where(ranked.c.rank == 1)
    )
    return {m.young_person_id: m for m in rows if m.young_person_id is not None}


def _waiting_since(session: Session, handoffs: Sequence[Handoff]) -> dict[int, datetime]:
    """Since when each young person has waited for a human: the handoff's opening, or, when a
    staff member has answered since, the young person's first message after that answer (the
    answer itself if they have not written since)."""
    ids = [h.young_person_id for h in handoffs]
    if not ids:
        return {}
    last_staff = (
        sa.select(Message.young_person_id, sa.func.max(Message.created_at).label("at"))
        .where(Message.young_person_id.in_(ids), Message.author == Author.STAFF)
        .group_by(Message.young_person_id)
        .subquery()
    )
    answered: dict[int, datetime] = {
        person: at
        for person, at in session.execute(sa.select(last_staff)).all()
        if person is not None
    }
    first_after: dict[int, datetime] = {
        person: at
        for person, at in session.execute(
            sa.select(Message.young_person_id, sa.func.min(Message.created_at))
            .join(
                last_staff,
                sa.and_(
                    last_staff.c.young_person_id == Message.young_person_id,
                    Message.created_at > last_staff.c.at,
                ),
            )
            .where(Message.direction == Direction.INBOUND)
            .group_by(Message.young_person_id)
        ).all()
        if person is not None
    }
    since: dict[int, datetime] = {}
    for handoff in handoffs:
        person = handoff.young_person_id
        last_answer = answered.get(person)
        if last_answer is None or last_answer < handoff.opened_at:
            since[person] = handoff.opened_at
        else:
            since[person] = first_after.get(person, last_answer)
    return since


def needs_attention(
    session: Session, staff: StaffUser, now: datetime, view: View = View.ATTENTION
) -> list[Row]:
    """The inbox of ``staff``: urgent handoffs first, then the rest by waiting time (oldest
    first), then (in the attention view) young people whose last message did not arrive."""
    visible = sa.and_(access.visible_young_people(staff, now), YoungPerson.erased_at.is_(None))
    assignee = aliased(StaffUser)
    # One handoff per young person: the newest of those in the view.
    found = session.execute(
        sa.select(Handoff, YoungPerson.first_name, assignee.name)
        .join(YoungPerson, YoungPerson.id == Handoff.young_person_id)
        .outerjoin(assignee, assignee.id == Handoff.assignee_id)
        .where(visible, _filter(view, now))
        .order_by(Handoff.opened_at.desc(), Handoff.id.desc())
        .limit(LIST_LIMIT)
    ).all()
    seen: set[int] = set()
    handoffs: list[tuple[Handoff, str, str | None]] = []
    for found_handoff, found_name, found_assignee in found:
        if found_handoff.young_person_id not in seen:
            seen.add(found_handoff.young_person_id)
            handoffs.append((found_handoff, found_name, found_assignee))
    failed: list[tuple[Message, str, str | None]] = []
    if view is View.ATTENTION:
        failed = _failed_deliveries(session, visible, exclude=seen)
    ids = [h.young_person_id for h, _, _ in handoffs] + [
        m.young_person_id for m, _, _ in failed if m.young_person_id is not None
    ]
    last = _last_messages(session, ids)
    since = _waiting_since(session, [h for h, _, _ in handoffs])
    rows: list[Row] = []
    for handoff, first_name, assignee_name in handoffs:
        message = last.get(handoff.young_person_id)
        urgent = handoff.priority is HandoffPriority.URGENT
        rows.append(
            Row(
                young_person_id=handoff.young_person_id,
                first_name=first_name,
                kind=Kind.URGENT if urgent else Kind.HANDOFF,
                reason=handoff.reason,
                status=effective_status(handoff, now),
                waiting_since=since[handoff.young_person_id],
                assignee=assignee_name,
                snippet=_snippet(message),
                snippet_author=_author(message),
                error_code=message.error_code if message and message.status in FAILED else None,
                snoozed_until=handoff.snoozed_until,
                handoff_id=handoff.id,
            )
        )
    if view is View.RESOLVED:
        rows.sort(key=lambda r: r.waiting_since, reverse=True)
    else:
        # Urgent before the rest (not only a crisis: any urgent handoff), then the longest wait.
        rows.sort(key=lambda r: (r.kind is not Kind.URGENT, r.waiting_since))
    failed_rows = [
        Row(
            young_person_id=message.young_person_id,
            first_name=first_name,
            kind=Kind.FAILED,
            reason=None,
            status=None,
            waiting_since=message.status_changed_at or message.created_at,
            assignee=kontaktperson,
            snippet=_snippet(last.get(message.young_person_id)),
            snippet_author=_author(last.get(message.young_person_id)),
            error_code=message.error_code,
            snoozed_until=None,
            handoff_id=None,
        )
        for message, first_name, kontaktperson in failed
        if message.young_person_id is not None
    ]
    failed_rows.sort(key=lambda r: r.waiting_since)
    return rows + failed_rows


def _failed_deliveries(
    session: Session, visible: sa.ColumnElement[bool], *, exclude: set[int]
) -> list[tuple[Message, str, str | None]]:
    """Young people whose newest outgoing message failed (a later message clears it)."""
    later = aliased(Message)
    kontaktperson = aliased(StaffUser)
    newer_exists = (
        sa.select(later.id)
        .where(
            later.young_person_id == Message.young_person_id,
            later.direction == Direction.OUTBOUND,
            sa.or_(
                later.created_at > Message.created_at,
                sa.and_(later.created_at == Message.created_at, later.id > Message.id),
            ),
        )
        .exists()
    )
    rows = session.execute(
        sa.select(Message, YoungPerson.first_name, kontaktperson.name)
        .join(YoungPerson, YoungPerson.id == Message.young_person_id)
        .outerjoin(kontaktperson, kontaktperson.id == YoungPerson.kontaktperson_id)
        .where(
            visible,
            Message.direction == Direction.OUTBOUND,
            Message.status.in_(FAILED),
            ~newer_exists,
            YoungPerson.status.not_in((YoungPersonStatus.OPTED_OUT, YoungPersonStatus.CLOSED)),
        )
        .order_by(Message.created_at, Message.id)
        .limit(LIST_LIMIT)
    ).all()
    return [
        (message, first_name, name)
        for message, first_name, name in rows
        if message.young_person_id not in exclude
    ]


def _author(message: Message | None) -> Author | None:
    return message.author if message is not None else None


def _snippet(message: Message | None) -> str | None:
    if message is None or not message.text:
        return None
    return texts.shorten(" ".join(message.text.split()), SNIPPET)


# ---------------------------------------------------------------------------- one conversation


def unresolved(session: Session, young_person_id: int) -> list[Handoff]:
    """The young person's handoffs that are not resolved, newest first."""
    return list(
        session.scalars(
            sa.select(Handoff)
            .where(
                Handoff.young_person_id == young_person_id,
                Handoff.status != HandoffStatus.RESOLVED,
            )
            .order_by(Handoff.opened_at.desc(), Handoff.id.desc())
        )
    )


def latest_resolved(session: Session, young_person_id: int) -> Handoff | None:
    return session.scalar(
        sa.select(Handoff)
        .where(
            Handoff.young_person_id == young_person_id,
            Handoff.status == HandoffStatus.RESOLVED,
        )
        .order_by(Handoff.resolved_at.desc(), Handoff.id.desc())
        .limit(1)
    )


def thread(session: Session, young_person_id: int, limit: int = 500) -> list[Message]:
    """The young person's messages, oldest first (the newest ``limit`` of them)."""
    newest = list(
        session.scalars(
            sa.select(Message)
            .where(Message.young_person_id == young_person_id)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(limit)
        )
    )
    return newest[::-1]


def notes(session: Session, young_person_id: int) -> list[tuple[StaffNote, str]]:
    """The private notes on a young person with their authors' names, newest first."""
    return [
        (note, name)
        for note, name in session.execute(
            sa.select(StaffNote, StaffUser.name)
            .join(StaffUser, StaffUser.id == StaffNote.author_id)
            .where(StaffNote.young_person_id == young_person_id)
            .order_by(StaffNote.created_at.desc(), StaffNote.id.desc())
        ).all()
    ]


def add_note(
    session: Session, *, young_person: YoungPerson, author: StaffUser, text: str, now: datetime
) -> StaffNote:
    """A private note. It is stored and audited, and never reaches the young person."""
    note = StaffNote(
        young_person_id=young_person.id, author_id=author.id, text=text, created_at=now
    )
    session.add(note)
    session.flush()
    audit.by_staff(
        session,
        author,
        "inbox.note_added",
        young_person,
        details={"note_id": note.id},
    )
    return note


def set_status(
    session: Session,
    *,
    young_person: YoungPerson,
    staff: StaffUser,
    status: HandoffStatus,
    now: datetime,
    snoozed_until: datetime | None = None,
) -> list[Handoff]:
    """Set the status of the young person's unresolved handoffs (or, to open one again, of the
    latest resolved one). Returns the handoffs changed; empty if there was none to change."""
    changed = unresolved(session, young_person.id)
    if not changed and status is not HandoffStatus.RESOLVED:
        last = latest_resolved(session, young_person.id)
        changed = [last] if last is not None else []
    for handoff in changed:
        handoff.status = status
        handoff.snoozed_until = snoozed_until if status is HandoffStatus.SNOOZED else None
        if status is HandoffStatus.RESOLVED:
            handoff.resolved_at = now
            handoff.resolved_by_id = staff.id
        else:
            handoff.resolved_at = None
            handoff.resolved_by_id = None
    if changed:
        audit.by_staff(
            session,
            staff,
            "inbox.status_changed",
            young_person,
            details={
                "status": status.value,
                "snoozed_until": snoozed_until.isoformat() if snoozed_until else None,
                "handoffs": [h.id for h in changed],
            },
        )
    return changed


def record_first_answer(session: Session, young_person_id: int, now: datetime) -> list[Handoff]:
    """A human answered: every unresolved handoff without a first answer gets this one."""
    answered = [h for h in unresolved(session, young_person_id) if h.first_human_answer_at is None]
    for handoff in answered:
        handoff.first_human_answer_at = now
    return answered


def reopen_on_inbound(
    session: Session, person: YoungPerson, conversation: Conversation, now: datetime
) -> list[Handoff]:
    """The young person wrote: pending and snoozed handoffs open again; while the bot does not
    hold the conversation (a human does, or is awaited), the latest resolved one reopens too,
    so the message reaches someone. Called in the turn's transaction, after the engine."""
    reopened = [
        h
        for h in unresolved(session, person.id)
        if h.status in (HandoffStatus.PENDING, HandoffStatus.SNOOZED)
    ]
    if (
        not reopened
        and conversation.holder is not Holder.BOT
        and person.status is not YoungPersonStatus.OPTED_OUT
        and not unresolved(session, person.id)
    ):
        last = latest_resolved(session, person.id)
        if last is not None:
            reopened = [last]
    for handoff in reopened:
        handoff.status = HandoffStatus.OPEN
        handoff.snoozed_until = None
        handoff.resolved_at = None
        handoff.resolved_by_id = None
    if reopened:
        audit.record(
            session,
            actor="young_person",
            action="inbox.reopened",
            municipality_id=person.municipality_id,
            young_person_id=person.id,
            details={"handoffs": [h.id for h in reopened]},
        )
    return reopened


# ---------------------------------------------------------------------------- canned replies


def canned_replies(
    session: Session, municipality_id: int, *, active_only: bool = True
) -> list[CannedReply]:
    query = sa.select(CannedReply).where(CannedReply.municipality_id == municipality_id)
    if active_only:
        query = query.where(CannedReply.active.is_(True))
    return list(session.scalars(query.order_by(CannedReply.title, CannedReply.id)))


def canned_reply(session: Session, municipality_id: int, reply_id: int) -> CannedReply | None:
    """One of the municipality's canned replies (another municipality's: None)."""
    return session.scalar(
        sa.select(CannedReply).where(
            CannedReply.id == reply_id, CannedReply.municipality_id == municipality_id
        )
    )


def canned_text(reply: CannedReply, language: str) -> str:
    """The reply in the young person's language when it has one, else the Danish text."""
    return reply.translations.get(language) or reply.text


def visible_person(
    session: Session, staff: StaffUser, young_person_id: int, now: datetime
) -> YoungPerson | None:
    """The young person if ``staff`` may see them now, else None (never say which)."""
    if not access.can_see(session, staff, young_person_id, now):
        return None
    return session.get(YoungPerson, young_person_id)
