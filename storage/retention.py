"""Data protection: the retention of a municipality's conversations, and erasure on request.

**Retention** (:func:`run`): a young person is inactive when nothing has been written to or by
them for the municipality's ``retention_months``: their latest message and their last inbound
time are both older than the cutoff, and nothing waits in the outbox for them. Of an inactive
young person the words of the conversation are removed, older than the cutoff only:

- message texts (``text`` emptied, ``redacted_at`` set; the rows stay, so counts stay),
- the text fields of the stored webhooks (``Body`` of an SMS, ``text``/``caption`` of Telegram),
- private staff notes, dreams in the young person's own words and handoff notes.

Profile, plan, meetings and consent history stay until an erasure. People are read in batches
by id and their rows changed by statements with a limit, so nothing is loaded wholesale; a
second run finds nothing left to do. The audit log is never touched.

**Erasure** (:func:`erase`) removes one young person's personal data at once and keeps the row:
the first name becomes a neutral mark, the birth date keeps only its year, contact details,
reference, invitation and tags go, every text about them is emptied, and everything pending for
them is cancelled and their open handoffs resolved. Consent events (kind, source, time) stay as
the record of what was agreed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialogs.types import (
    Channel,
    HandoffStatus,
    InboundStatus,
    OutboxStatus,
    RecipientStatus,
    ScheduledStatus,
    YoungPersonStatus,
)
from storage import audit
from storage import conversations as conversation_repo
from storage.models import (
    AuditEvent,
    CampaignRecipient,
    Conversation,
    Dream,
    Goal,
    Handoff,
    InboundEvent,
    Meeting,
    Message,
    Municipality,
    OutboxEntry,
    ScheduledItem,
    StaffAlert,
    StaffNote,
    SubGoal,
    YoungPerson,
    YoungPersonTag,
)

MIN_MONTHS, MAX_MONTHS = 1, 120
PEOPLE_BATCH = 500
ROW_BATCH = 2000
ERASED_NAME = "—"  # neutral, in no language: the row is kept, the name is not
TEXT_KEYS = frozenset({"Body", "text", "caption"})
REDACTED_KEY = "redacted"
FINISHED = (InboundStatus.DONE, InboundStatus.FAILED)
WAITING = (OutboxStatus.PENDING, OutboxStatus.SENDING)


@dataclass
class RetentionCounts:
    people: int = 0
    messages: int = 0
    inbound_events: int = 0
    notes: int = 0
    dreams: int = 0
    handoff_notes: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class ErasureCounts:
    messages: int = 0
    inbound_events: int = 0
    dreams: int = 0
    goals: int = 0
    sub_goals: int = 0
    meetings: int = 0
    notes: int = 0
    handoffs: int = 0
    handoffs_resolved: int = 0
    tags: int = 0
    scheduled_cancelled: int = 0
    outbox_cancelled: int = 0
    campaign_skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def months_before(moment: datetime, months: int) -> datetime:
    """``moment`` moved back ``months`` calendar months (the 31st becomes the month's last day)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    following = date(year + (month == 12), month % 12 + 1, 1)
    last_day = (following - date.resolution).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def cutoff_for(place: Municipality, now: datetime) -> datetime:
    return months_before(now, place.retention_months)


def set_months(
    session: Session, place: Municipality, months: int, *, staff_id: int, actor: str
) -> None:
    """Change the municipality's retention period (``MIN_MONTHS``–``MAX_MONTHS``), audited."""
    if not MIN_MONTHS <= months <= MAX_MONTHS:
        raise ValueError(f"retention_months must be {MIN_MONTHS}-{MAX_MONTHS}")
    before = place.retention_months
    place.retention_months = months
    audit.record(
        session,
        actor=actor,
        action="retention.changed",
        staff_id=staff_id,
        municipality_id=place.id,
        details={"from": before, "to": months},
    )


def without_texts(payload: Any) -> Any:
    """The payload with every text field emptied, at any depth (the rest is kept)."""
    if isinstance(payload, dict):
        return {
            key: (None if key in TEXT_KEYS else without_texts(value))
            for key, value in payload.items()
        }
    if isinstance(payload, list):
        return [without_texts(value) for value in payload]
    return payload


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


# ---------------------------------------------------------------------------------- retention


def _inactive_batch(
    session: Session, place: Municipality, cutoff: datetime, after: int
) -> list[int]:
    person = YoungPerson
    recent = sa.exists().where(Message.young_person_id == person.id, Message.created_at >= cutoff)
    waiting = (
        sa.exists()
        .where(
            Message.young_person_id == person.id,
            OutboxEntry.message_id == Message.id,
            OutboxEntry.status.in_(WAITING),
        )
        .correlate(person)
    )
    return list(
        session.scalars(
            sa.select(person.id)
            .where(
                person.municipality_id == place.id,
                person.id > after,
                person.erased_at.is_(None),
                sa.func.coalesce(person.last_inbound_at, person.created_at) < cutoff,
                ~recent,
                ~waiting,
            )
            .order_by(person.id)
            .limit(PEOPLE_BATCH)
        )
    )


def _with_old_texts(session: Session, ids: Sequence[int], cutoff: datetime) -> list[int]:
    """Of ``ids``, those who still have a text older than ``cutoff`` to remove."""
    person = YoungPerson
    conditions = sa.or_(
        sa.exists().where(
            Message.young_person_id == person.id,
            Message.redacted_at.is_(None),
            Message.created_at < cutoff,
        ),
        sa.exists().where(
            StaffNote.young_person_id == person.id,
            StaffNote.text != "",
            StaffNote.created_at < cutoff,
        ),
        sa.exists().where(
            Dream.young_person_id == person.id, Dream.text != "", Dream.captured_at < cutoff
        ),
        sa.exists().where(
            Handoff.young_person_id == person.id,
            Handoff.note.is_not(None),
            Handoff.opened_at < cutoff,
        ),
    )
    return list(session.scalars(sa.select(person.id).where(person.id.in_(ids), conditions)))


def _in_chunks(step: Callable[[], int]) -> int:
    """Run ``step`` (which changes at most ``ROW_BATCH`` rows) until it changes fewer."""
    total = 0
    while True:
        changed = step()
        total += changed
        if changed < ROW_BATCH:
            return total


def _redact_messages(
    session: Session, ids: Sequence[int], now: datetime, before: datetime | None
) -> int:
    def step() -> int:
        chosen = sa.select(Message.id).where(
            Message.young_person_id.in_(ids), Message.redacted_at.is_(None)
        )
        if before is not None:
            chosen = chosen.where(Message.created_at < before)
        result = session.execute(
            sa.update(Message)
            .where(Message.id.in_(chosen.order_by(Message.id).limit(ROW_BATCH)))
            .values(text=None, address=None, redacted_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    return _in_chunks(step)


def _events_of(
    phones: Sequence[str], chats: Sequence[int], *, include_status: bool
) -> sa.ColumnElement[bool]:
    """A WHERE clause on ``InboundEvent``: the stored webhooks from these phones and chats."""
    payload = InboundEvent.payload
    found: list[sa.ColumnElement[bool]] = []
    if phones:
        found.append(
            sa.and_(InboundEvent.channel == Channel.SMS, payload["From"].as_string().in_(phones))
        )
        if include_status:  # a delivery report names the young person's phone as "To"
            found.append(
                sa.and_(InboundEvent.channel == Channel.SMS, payload["To"].as_string().in_(phones))
            )
    if chats:
        for key in ("message", "edited_message"):
            found.append(
                sa.and_(
                    InboundEvent.channel == Channel.TELEGRAM,
                    payload[(key, "chat", "id")].as_integer().in_(chats),
                )
            )
    return sa.or_(*found) if found else sa.false()


def _redact_events(
    session: Session,
    contacts: Sequence[tuple[str | None, int | None]],
    *,
    before: datetime | None,
    erase: bool,
) -> int:
    """Empty the texts (``erase``: the whole payload) of the finished webhooks from these
    (phone, Telegram chat) pairs."""
    phones = [phone for phone, _ in contacts if phone]
    chats = [chat for _, chat in contacts if chat is not None]
    if not phones and not chats:
        return 0
    total = 0
    while True:
        query = sa.select(InboundEvent.id, InboundEvent.payload).where(
            InboundEvent.status.in_(FINISHED),
            InboundEvent.payload[REDACTED_KEY].as_string().is_(None),
            _events_of(phones, chats, include_status=erase),
        )
        if before is not None:
            query = query.where(InboundEvent.received_at < before)
        rows = session.execute(query.order_by(InboundEvent.id).limit(ROW_BATCH)).all()
        if not rows:
            return total
        values = [
            {
                "id": event_id,
                "payload": {REDACTED_KEY: "erased"}
                if erase
                else {**without_texts(payload), REDACTED_KEY: "retention"},
            }
            for event_id, payload in rows
        ]
        session.execute(sa.update(InboundEvent), values)  # by primary key, row by row
        total += len(rows)
        if len(rows) < ROW_BATCH:
            return total


def run(session: Session, place: Municipality, *, now: datetime) -> RetentionCounts:
    """One retention run for ``place``: remove the old texts of its inactive young people."""
    cutoff = cutoff_for(place, now)
    counts = RetentionCounts()
    after = 0
    while True:
        batch = _inactive_batch(session, place, cutoff, after)
        if not batch:
            break
        after = batch[-1]
        ids = _with_old_texts(session, batch, cutoff)
        if not ids:
            continue
        counts.people += len(ids)
        contacts = session.execute(
            sa.select(YoungPerson.phone, YoungPerson.telegram_chat_id).where(
                YoungPerson.id.in_(ids)
            )
        ).all()
        counts.inbound_events += _redact_events(
            session, [(phone, chat) for phone, chat in contacts], before=cutoff, erase=False
        )
        counts.messages += _redact_messages(session, ids, now, cutoff)
        counts.notes += _rowcount(
            session.execute(
                sa.update(StaffNote)
                .where(
                    StaffNote.young_person_id.in_(ids),
                    StaffNote.text != "",
                    StaffNote.created_at < cutoff,
                )
                .values(text="")
                .execution_options(synchronize_session=False)
            )
        )
        counts.dreams += _rowcount(
            session.execute(
                sa.update(Dream)
                .where(Dream.young_person_id.in_(ids), Dream.text != "", Dream.captured_at < cutoff)
                .values(text="")
                .execution_options(synchronize_session=False)
            )
        )
        counts.handoff_notes += _rowcount(
            session.execute(
                sa.update(Handoff)
                .where(
                    Handoff.young_person_id.in_(ids),
                    Handoff.note.is_not(None),
                    Handoff.opened_at < cutoff,
                )
                .values(note=None)
                .execution_options(synchronize_session=False)
            )
        )
    audit.record(
        session,
        actor="worker",
        action="retention.run",
        municipality_id=place.id,
        details={
            "retention_months": place.retention_months,
            "cutoff": cutoff.isoformat(),
            **counts.as_dict(),
        },
    )
    return counts


def recent_runs(session: Session, municipality_id: int, limit: int = 10) -> list[AuditEvent]:
    """The latest retention runs and erasures of a municipality, newest first (audit events)."""
    return list(
        session.scalars(
            sa.select(AuditEvent)
            .where(
                AuditEvent.municipality_id == municipality_id,
                AuditEvent.action.in_(("retention.run", "young_person.erased")),
            )
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )


# ---------------------------------------------------------------------------------- erasure


@dataclass(frozen=True)
class Preview:
    """What an erasure of one young person would remove, counted."""

    messages: int
    dreams: int
    goals: int
    meetings: int
    notes: int
    pending: int


def _count(session: Session, model: Any, *conditions: sa.ColumnElement[bool]) -> int:
    return int(
        session.scalar(sa.select(sa.func.count()).select_from(model).where(*conditions)) or 0
    )


def preview(session: Session, person: YoungPerson) -> Preview:
    pid = person.id
    return Preview(
        messages=_count(session, Message, Message.young_person_id == pid),
        dreams=_count(session, Dream, Dream.young_person_id == pid),
        goals=_count(session, Goal, Goal.young_person_id == pid),
        meetings=_count(session, Meeting, Meeting.young_person_id == pid),
        notes=_count(session, StaffNote, StaffNote.young_person_id == pid),
        pending=_count(
            session,
            ScheduledItem,
            ScheduledItem.young_person_id == pid,
            ScheduledItem.status == ScheduledStatus.PENDING,
        )
        + _count(
            session,
            CampaignRecipient,
            CampaignRecipient.young_person_id == pid,
            CampaignRecipient.status == RecipientStatus.PENDING,
        ),
    )


class ErasureRefusedError(ValueError):
    """The young person was erased already."""


def _update(session: Session, statement: Any) -> int:
    return _rowcount(session.execute(statement.execution_options(synchronize_session=False)))


def erase(
    session: Session,
    person: YoungPerson,
    *,
    now: datetime,
    actor: str,
    staff_id: int | None,
    reason: str | None = None,
) -> ErasureCounts:
    """Remove the young person's personal data, keep the row; audited as ``young_person.erased``.

    The conversation is locked first, so a message arriving at the same moment is handled wholly
    before (and erased with the rest) or after (and finds no one).
    """
    if person.erased_at is not None:
        raise ErasureRefusedError("already erased")
    pid = person.id
    conversation_repo.lock(session, pid)
    counts = ErasureCounts()
    counts.inbound_events = _redact_events(
        session, [(person.phone, person.telegram_chat_id)], before=None, erase=True
    )
    counts.messages = _redact_messages(session, [pid], now, None)
    counts.dreams = _update(
        session, sa.update(Dream).where(Dream.young_person_id == pid).values(text="")
    )
    goal_ids = sa.select(Goal.id).where(Goal.young_person_id == pid)
    counts.goals = _update(
        session,
        sa.update(Goal).where(Goal.young_person_id == pid).values(title="", description=None),
    )
    counts.sub_goals = _update(
        session, sa.update(SubGoal).where(SubGoal.goal_id.in_(goal_ids)).values(title="")
    )
    counts.meetings = _update(
        session,
        sa.update(Meeting)
        .where(Meeting.young_person_id == pid)
        .values(place=None, link=None, with_whom=None, purpose=None),
    )
    counts.notes = _update(
        session, sa.update(StaffNote).where(StaffNote.young_person_id == pid).values(text="")
    )
    counts.handoffs = _update(
        session, sa.update(Handoff).where(Handoff.young_person_id == pid).values(note=None)
    )
    # Nobody is to answer an erased young person: their handoffs leave every inbox.
    counts.handoffs_resolved = _update(
        session,
        sa.update(Handoff)
        .where(Handoff.young_person_id == pid, Handoff.status != HandoffStatus.RESOLVED)
        .values(status=HandoffStatus.RESOLVED, resolved_at=now, resolved_by_id=staff_id),
    )
    _update(
        session,
        sa.update(Conversation)
        .where(Conversation.young_person_id == pid)
        .values(variables={}, dialog=None, step=None),
    )
    _update(
        session,
        sa.update(StaffAlert)
        .where(StaffAlert.young_person_id == pid)
        .values(details={}, seen_at=sa.func.coalesce(StaffAlert.seen_at, now)),
    )
    counts.tags = _rowcount(
        session.execute(sa.delete(YoungPersonTag).where(YoungPersonTag.young_person_id == pid))
    )
    counts.scheduled_cancelled = conversation_repo.cancel_scheduled(
        session, pid, now=now, reason="erased"
    )
    waiting = (
        sa.select(OutboxEntry.id)
        .join(Message, Message.id == OutboxEntry.message_id)
        .where(Message.young_person_id == pid, OutboxEntry.status == OutboxStatus.PENDING)
    )
    counts.outbox_cancelled = _update(
        session,
        sa.update(OutboxEntry)
        .where(OutboxEntry.id.in_(waiting))
        .values(status=OutboxStatus.CANCELLED, last_error="erased"),
    )
    counts.campaign_skipped = _update(
        session,
        sa.update(CampaignRecipient)
        .where(
            CampaignRecipient.young_person_id == pid,
            CampaignRecipient.status == RecipientStatus.PENDING,
        )
        .values(status=RecipientStatus.SKIPPED, skip_reason="erased", updated_at=now),
    )
    session.expire(person, ["tags"])
    person.first_name = ERASED_NAME
    person.birth_date = date(person.birth_date.year, 1, 1)
    person.phone = None
    person.telegram_chat_id = None
    person.telegram_blocked_at = None
    person.sms_error_code = None
    person.invite_code = None
    person.invite_code_expires_at = None
    person.invite_code_used_at = None
    person.external_ref = None
    person.status = YoungPersonStatus.CLOSED
    person.status_reason = None
    person.status_changed_at = now
    person.erased_at = now
    audit.record(
        session,
        actor=actor,
        action="young_person.erased",
        staff_id=staff_id,
        municipality_id=person.municipality_id,
        young_person_id=pid,
        reason=reason,
        details=counts.as_dict(),
    )
    session.flush()
    return counts
