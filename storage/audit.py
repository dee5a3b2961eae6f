"""Writing the audit trail: every read and change of a young person's data leaves an event."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from storage.models import AuditEvent


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
