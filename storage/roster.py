"""Who is a young person's kontaktperson: assigning one young person, or many at once.

Only an active kontaktperson of the young person's own municipality can be chosen. Every young
person whose kontaktperson changes gets an audit event of their own (``young_person.assigned``,
with the ids before and after). A handoff still waiting for a human follows the change: it is
assigned to the new kontaktperson (or their backup while they are away), who gets the inbox
alert and the e-mail that the first assignee got (``storage.handoffs``). Nothing is committed:
the caller's transaction holds all of it, so a refused bulk change writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialogs.i18n import N_
from dialogs.types import AlertKind, HandoffStatus, Role
from storage import audit, handoffs, schedule
from storage.models import Handoff, StaffUser, YoungPerson


class AssignRefused(Exception):  # noqa: N818 - an answer to show, not a fault
    """The change cannot be made; ``message`` is a Danish source text with ``params``."""

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


NOT_A_KONTAKTPERSON = N_("Vælg en aktiv kontaktperson fra din kommune.")
NOBODY_CHOSEN = N_("Vælg mindst én ung.")


def kontaktpersoner(session: Session, municipality_id: int) -> list[StaffUser]:
    """The municipality's active kontaktpersoner, by name."""
    return list(
        session.scalars(
            sa.select(StaffUser)
            .where(
                StaffUser.municipality_id == municipality_id,
                StaffUser.role == Role.KONTAKTPERSON,
                StaffUser.is_active.is_(True),
            )
            .order_by(sa.func.lower(StaffUser.name), StaffUser.id)
        )
    )


def _kontaktperson(session: Session, municipality_id: int, staff_id: int) -> StaffUser:
    staff = session.get(StaffUser, staff_id)
    if (
        staff is None
        or staff.municipality_id != municipality_id
        or staff.role is not Role.KONTAKTPERSON
        or not staff.is_active
    ):
        raise AssignRefused(NOT_A_KONTAKTPERSON)
    return staff


def assign(
    session: Session,
    person: YoungPerson,
    kontaktperson_id: int,
    *,
    actor: StaffUser,
    now: datetime,
) -> bool:
    """Make ``kontaktperson_id`` the young person's kontaktperson; False if they already were."""
    staff = _kontaktperson(session, person.municipality_id, kontaktperson_id)
    return _assign(session, person, staff, actor=actor, now=now, bulk=False)


def assign_many(
    session: Session,
    people: Sequence[YoungPerson],
    kontaktperson_id: int,
    *,
    municipality_id: int,
    actor: StaffUser,
    now: datetime,
) -> int:
    """Assign every one of ``people`` (all of ``municipality_id``); how many changed."""
    if not people:
        raise AssignRefused(NOBODY_CHOSEN)
    staff = _kontaktperson(session, municipality_id, kontaktperson_id)
    if any(person.municipality_id != municipality_id for person in people):
        raise AssignRefused(NOT_A_KONTAKTPERSON)
    return sum(
        _assign(session, person, staff, actor=actor, now=now, bulk=len(people) > 1)
        for person in people
    )


def _assign(
    session: Session,
    person: YoungPerson,
    staff: StaffUser,
    *,
    actor: StaffUser,
    now: datetime,
    bulk: bool,
) -> bool:
    before = person.kontaktperson_id
    if before == staff.id:
        return False
    person.kontaktperson = staff
    person.kontaktperson_id = staff.id
    moved = _move_handoffs(session, person, now)
    audit.by_staff(
        session,
        actor,
        "young_person.assigned",
        person,
        details={
            "kontaktperson_id": staff.id,
            "before": before,
            "bulk": bulk,
            "handoffs": moved,
        },
    )
    return True


def _move_handoffs(session: Session, person: YoungPerson, now: datetime) -> list[int]:
    """Give the unresolved handoffs to whoever answers for the young person now."""
    waiting = session.scalars(
        sa.select(Handoff).where(
            Handoff.young_person_id == person.id, Handoff.status != HandoffStatus.RESOLVED
        )
    ).all()
    assignee = handoffs.assignee_for(person, now)
    moved: list[int] = []
    for handoff in waiting:
        if handoff.assignee_id == assignee or assignee is None:
            continue
        handoff.assignee_id = assignee
        moved.append(handoff.id)
        if handoff.first_human_answer_at is not None:
            continue  # someone answers already; the new kontaktperson sees it in the inbox
        handoffs.raise_alert(
            session,
            kind=AlertKind.HANDOFF_OPENED,
            key=f"handoff_opened:{handoff.id}",
            handoff=handoff,
            person=person,
            staff_ids=[assignee],
            now=now,
        )
        schedule.schedule(
            session,
            kind=handoffs.NOTIFY,
            key=f"{handoffs.NOTIFY}:{handoff.id}:to:{assignee}",
            due_at=now,
            now=now,
            municipality_id=person.municipality_id,
            young_person_id=person.id,
            payload={"handoff_id": handoff.id, "staff_ids": [assignee], "urgent": False},
        )
    return moved
