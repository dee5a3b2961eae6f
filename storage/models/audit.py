"""Who read or changed a young person's data, when, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, utcnow


class AuditEvent(Base):
    """Append-only. Kept by id rather than by foreign key so that it outlives an erasure."""

    __tablename__ = "audit_event"
    __table_args__ = (
        sa.Index("ix_audit_subject", "young_person_id", "at"),
        sa.Index("ix_audit_actor", "staff_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id"))
    # "cli", "system" or "worker" when no staff member acted.
    actor: Mapped[str] = mapped_column(sa.String(40))
    action: Mapped[str] = mapped_column(sa.String(60))
    municipality_id: Mapped[int | None] = mapped_column(sa.ForeignKey("municipality.id"))
    young_person_id: Mapped[int | None] = mapped_column(sa.Integer())
    reason: Mapped[str | None] = mapped_column(sa.String(200))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
