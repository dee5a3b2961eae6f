"""Staff alerts: what a staff member should act on, shown in the inbox and on /staff (never sent
to a young person). One alert per staff member and key, however often it is raised."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialogs.types import AlertKind, Role
from storage.models import StaffAlert, StaffUser, YoungPerson


def coordinator_ids(session: Session, municipality_id: int) -> list[int]:
    """The municipality's active coordinators."""
    return list(
        session.scalars(
            sa.select(StaffUser.id)
            .where(
                StaffUser.municipality_id == municipality_id,
                StaffUser.role == Role.COORDINATOR,
                StaffUser.is_active.is_(True),
            )
            .order_by(StaffUser.id)
        ).all()
    )


def raise_alerts(
    session: Session,
    *,
    kind: AlertKind,
    key: str,
    staff_ids: Iterable[int],
    person: YoungPerson,
    due_at: datetime | None,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> list[int]:
    """One alert per staff member, keyed ``{key}:{staff_id}``; returns whom it was raised for
    (an alert raised before is not raised again)."""
    raised: list[int] = []
    for staff_id in _unique(staff_ids):
        alert_key = f"{key}:{staff_id}"
        exists = session.scalar(sa.select(StaffAlert.id).where(StaffAlert.key == alert_key))
        if exists is not None:
            continue
        try:
            with session.begin_nested():
                session.add(
                    StaffAlert(
                        key=alert_key,
                        kind=kind,
                        municipality_id=person.municipality_id,
                        staff_id=staff_id,
                        young_person_id=person.id,
                        due_at=due_at,
                        details=dict(details or {}),
                        created_at=now,
                    )
                )
        except sa.exc.IntegrityError:
            continue  # another process raised it first
        raised.append(staff_id)
    return raised


def _unique(ids: Iterable[int]) -> Sequence[int]:
    return list(dict.fromkeys(ids))
