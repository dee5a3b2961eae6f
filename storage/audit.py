"""Writing the audit trail: every read and change of a young person's data leaves an event."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from storage.models import AuditEvent, StaffUser, YoungPerson


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    staff_id: int | None = None,
    municipality_id: int | None = None,
    young_person_id: int | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        actor=actor,
        action=action,
        staff_id=staff_id,
        municipality_id=municipality_id,
        young_person_id=young_person_id,
        reason=reason,
        details=details or {},
    )
    session.add(event)
    return event


def by_staff(
    session: Session,
    staff: StaffUser,
    action: str,
    young_person: YoungPerson,
    *,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """What a staff member did with a young person's data, in that young person's municipality."""
    return record(
        session,
        actor=f"staff:{staff.id}",
        action=action,
        staff_id=staff.id,
        municipality_id=young_person.municipality_id,
        young_person_id=young_person.id,
        details=details,
    )
