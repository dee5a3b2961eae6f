"""Opening handoffs: one open handoff per young person, routed to whoever answers now.

Opening one also decides who is told (in the same transaction, so a rollback tells nobody): an
inbox alert (``staff_alert``) for the assignee at once, and two scheduled items for the worker
(``bot/notify.py``): the e-mail to the assignee now, and the coordinators' alert if nobody has
answered within the municipality's ``handoff_answer_minutes``. :func:`answer_times` reads the
time to the first human answer for the coordinators' figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialogs.types import AlertKind, HandoffPriority, HandoffReason, HandoffStatus
from storage import alerts, audit, schedule
from storage.access import visible_young_people
from storage.models import Handoff, Municipality, StaffAlert, StaffUser, YoungPerson

# Scheduled-item kinds; their handlers are in bot/notify.py.
NOTIFY = "handoff_notify"
ESCALATE = "handoff_escalate"


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
            became_urgent = existing.priority is not HandoffPriority.URGENT
            existing.priority = HandoffPriority.URGENT
            existing.reason = reason
            existing.status = HandoffStatus.OPEN
            existing.snoozed_until = None
            if became_urgent:
                audit.record(
                    session,
                    actor=actor,
                    action="handoff.made_urgent",
                    municipality_id=person.municipality_id,
                    young_person_id=person.id,
                    details={"reason": reason.value},
                )
                _tell(session, existing, person, now=now, urgent=True)
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
    session.flush()  # the id names the alert and the scheduled items
    _tell(session, handoff, person, now=now, urgent=False)
    minutes = session.scalar(
        sa.select(Municipality.handoff_answer_minutes).where(
            Municipality.id == person.municipality_id
        )
    )
    schedule.schedule(
        session,
        kind=ESCALATE,
        key=f"{ESCALATE}:{handoff.id}",
        due_at=now + timedelta(minutes=minutes if minutes is not None else 60),
        now=now,
        municipality_id=person.municipality_id,
        young_person_id=person.id,
        payload={"handoff_id": handoff.id},
    )
    return handoff


def raise_alert(
    session: Session,
    *,
    kind: AlertKind,
    key: str,
    handoff: Handoff,
    person: YoungPerson,
    staff_ids: list[int],
    now: datetime,
) -> list[int]:
    """An inbox alert about ``handoff`` for each of ``staff_ids`` (once per key and person)."""
    return alerts.raise_alerts(
        session,
        kind=kind,
        key=key,
        staff_ids=staff_ids,
        person=person,
        due_at=None,
        now=now,
        details={
            "handoff_id": handoff.id,
            "reason": handoff.reason.value,
            "priority": handoff.priority.value,
        },
    )


def _tell(
    session: Session, handoff: Handoff, person: YoungPerson, *, now: datetime, urgent: bool
) -> None:
    """The assignee's inbox alert now, and their e-mail from the worker once this commits.

    Without an assignee (no kontaktperson, or one away without a backup) the coordinators are
    told at once instead of after the answer time.
    """
    assignee = handoff.assignee_id
    staff_ids = (
        [assignee]
        if assignee is not None
        else alerts.coordinator_ids(session, person.municipality_id)
    )
    suffix = ":urgent" if urgent else ""
    raise_alert(
        session,
        kind=AlertKind.HANDOFF_OPENED,
        key=f"handoff_opened:{handoff.id}{suffix}",
        handoff=handoff,
        person=person,
        staff_ids=staff_ids,
        now=now,
    )
    schedule.schedule(
        session,
        kind=NOTIFY,
        key=f"{NOTIFY}:{handoff.id}{suffix}",
        due_at=now,
        now=now,
        municipality_id=person.municipality_id,
        young_person_id=person.id,
        payload={"handoff_id": handoff.id, "staff_ids": staff_ids, "urgent": urgent},
    )


@dataclass(frozen=True)
class HandoffAlert:
    """An inbox alert about a handoff still waiting for a human, as /staff lists it."""

    young_person_id: int
    first_name: str
    kind: AlertKind
    reason: HandoffReason
    priority: HandoffPriority
    raised_at: datetime


def waiting_alerts(session: Session, staff: StaffUser, now: datetime) -> list[HandoffAlert]:
    """``staff``'s handoff alerts whose handoff nobody has answered or resolved yet, about young
    people ``staff`` may still see (a backup's alerts go when the colleague is back), newest
    first. They need no "seen" mark: answering the handoff is what clears them.
    """
    rows = session.execute(
        sa.select(
            StaffAlert.young_person_id,
            YoungPerson.first_name,
            StaffAlert.kind,
            Handoff.reason,
            Handoff.priority,
            StaffAlert.created_at,
        )
        .join(YoungPerson, YoungPerson.id == StaffAlert.young_person_id)
        .join(Handoff, Handoff.young_person_id == StaffAlert.young_person_id)
        .where(
            StaffAlert.staff_id == staff.id,
            StaffAlert.seen_at.is_(None),
            StaffAlert.kind.in_([AlertKind.HANDOFF_OPENED, AlertKind.HANDOFF_UNANSWERED]),
            StaffAlert.created_at >= Handoff.opened_at,
            Handoff.status != HandoffStatus.RESOLVED,
            Handoff.first_human_answer_at.is_(None),
            visible_young_people(staff, now),
        )
        .order_by(StaffAlert.created_at.desc(), StaffAlert.id.desc())
    ).all()
    found: dict[int, HandoffAlert] = {}
    for person_id, first_name, kind, reason, priority, raised_at in rows:
        if person_id is not None and person_id not in found:
            found[person_id] = HandoffAlert(
                person_id, first_name, kind, reason, priority, raised_at
            )
    return list(found.values())


@dataclass(frozen=True)
class AnswerTimes:
    """Time to the first human answer of the handoffs opened in a period."""

    opened: int
    answered: int
    median: timedelta | None
    p90: timedelta | None


def answer_times(
    session: Session, *, municipality_id: int, start: datetime, end: datetime
) -> AnswerTimes:
    """Median and 90th percentile (nearest rank) of the time from opening to the first human
    answer, over the handoffs of one municipality opened in ``[start, end)``.

    Handoffs not answered (yet) are counted in ``opened`` but not in the percentiles.
    """
    rows = session.execute(
        sa.select(Handoff.opened_at, Handoff.first_human_answer_at)
        .join(YoungPerson, YoungPerson.id == Handoff.young_person_id)
        .where(
            YoungPerson.municipality_id == municipality_id,
            Handoff.opened_at >= start,
            Handoff.opened_at < end,
        )
    ).all()
    waits = sorted(answered - opened for opened, answered in rows if answered is not None)
    return AnswerTimes(
        opened=len(rows),
        answered=len(waits),
        median=percentile(waits, 50),
        p90=percentile(waits, 90),
    )


def percentile(values: list[timedelta], percent: int) -> timedelta | None:
    """Nearest rank: the smallest value with at least ``percent`` % of the values at or below."""
    if not values:
        return None
    rank = max(1, -(-percent * len(values) // 100))  # ceil without floats
    return values[rank - 1]
