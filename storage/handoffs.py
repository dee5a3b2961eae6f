"""Opening handoffs: one open handoff per young person, routed to whoever answers now."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialogs.types import HandoffPriority, HandoffReason, HandoffStatus
from storage import audit
from storage.models import Handoff, YoungPerson


def assignee_for(person: YoungPerson, now: datetime) -> int | None:
    """The kontaktperson, or their named backup while they are away."""
    staff = person.kontaktperson
    if staff is None:
        return None
    if staff.is_absent(now) and staff.backup is not None and staff.backup.is_active:
        return staff.backup.id
    return staff.id


def open_handoff(
    session: Session,
    person: YoungPerson,
    *,
    reason: HandoffReason,
    priority: HandoffPriority,
    now: datetime,
    note: str | None = None,
    trigger_message_id: int | None = None,
    actor: str = "bot",
) -> Handoff:
    """Open a handoff, or add to the one already open (a crisis makes it urgent and reopens it)."""
    existing = session.scalar(
        sa.select(Handoff)
        .where(Handoff.young_person_id == person.id, Handoff.status != HandoffStatus.RESOLVED)
        .order_by(Handoff.opened_at.desc())
        .limit(1)
    )
    if existing is not None:
        if priority is HandoffPriority.URGENT:
            existing.priority = HandoffPriority.URGENT
            existing.reason = reason
            existing.status = HandoffStatus.OPEN
            existing.snoozed_until = None
        if note:
            existing.note = "\n".join(filter(None, [existing.note, note]))
        return existing
    handoff = Handoff(
        young_person_id=person.id,
        reason=reason,
        priority=priority,
        assignee_id=assignee_for(person, now),
        trigger_message_id=trigger_message_id,
        opened_at=now,
        note=note,
    )
    session.add(handoff)
    audit.record(
        session,
        actor=actor,
        action="handoff.opened",
        municipality_id=person.municipality_id,
        young_person_id=person.id,
        details={"reason": reason.value, "priority": priority.value},
    )
    return handoff
