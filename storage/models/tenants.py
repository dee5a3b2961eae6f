"""The tenant (a municipality) and its staff."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.hybrid import hybrid_method
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dialogs.types import Role
from storage.models.base import Base, JSONType, enum_column, utcnow

DEFAULT_HELP_LINES: list[dict[str, str]] = [
    {"name": "Alarm", "number": "112"},
    {"name": "Livslinien", "number": "70 201 201"},
    {"name": "BørneTelefonen", "number": "116 111"},
    {"name": "Lev Uden Vold", "number": "1888"},
]


class Municipality(Base):
    __tablename__ = "municipality"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    slug: Mapped[str] = mapped_column(sa.String(60), unique=True)
    timezone: Mapped[str] = mapped_column(sa.String(64), default="Europe/Copenhagen")
    default_language: Mapped[str] = mapped_column(sa.String(8), default="da")
    quiet_hours_start: Mapped[time] = mapped_column(sa.Time(), default=time(21, 0))
    quiet_hours_end: Mapped[time] = mapped_column(sa.Time(), default=time(8, 0))
    quiet_on_weekends: Mapped[bool] = mapped_column(default=False)
    office_hours_start: Mapped[time] = mapped_column(sa.Time(), default=time(9, 0))
    office_hours_end: Mapped[time] = mapped_column(sa.Time(), default=time(15, 0))
    # Each entry: {"name": ..., "number": ...}; shown at once on signs of crisis.
    help_lines: Mapped[list[dict[str, str]]] = mapped_column(
        JSONType,
        default=lambda: [dict(line) for line in DEFAULT_HELP_LINES],
    )
    # Meeting reminders, in minutes before the meeting.
    reminder_offsets_minutes: Mapped[list[int]] = mapped_column(
        JSONType, default=lambda: [24 * 60, 120]
    )
    # Nudges after this many days without a reply; after the last one, a person takes over.
    silence_follow_up_days: Mapped[list[int]] = mapped_column(JSONType, default=lambda: [3, 7, 14])
    # Sub-goal check-ins, in days before the due date (0: on the day).
    sub_goal_check_in_days: Mapped[list[int]] = mapped_column(JSONType, default=lambda: [3, 0])
    # Per-channel sender settings, e.g. {"sms": {"from": "+45..."}, "telegram": {"bot": "..."}}.
    sender_settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # A handoff must get a human answer within this many minutes, else the coordinator is alerted.
    handoff_answer_minutes: Mapped[int] = mapped_column(default=60, server_default="60")
    # Data protection: after this many months without any message, a young person's message
    # texts are removed ("anonymise": the rows and their counts stay) every night.
    retention_months: Mapped[int] = mapped_column(default=24, server_default="24")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    staff: Mapped[list[StaffUser]] = relationship(back_populates="municipality")


class StaffUser(Base):
    """A kontaktperson, coordinator or admin. Deactivated, never deleted: audit keeps the name."""

    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    # An operator-level admin may belong to no municipality.
    municipality_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("municipality.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(120))
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    role: Mapped[Role] = mapped_column(enum_column(Role))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    language: Mapped[str] = mapped_column(sa.String(8), default="da")
    is_active: Mapped[bool] = mapped_column(default=True)
    absent_from: Mapped[datetime | None]
    absent_until: Mapped[datetime | None]
    backup_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="SET NULL")
    )
    # Wrong passwords in a row; a failure longer ago than the lockout period starts a new count.
    failed_logins: Mapped[int] = mapped_column(default=0)
    last_failed_login_at: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    municipality: Mapped[Municipality | None] = relationship(back_populates="staff")
    backup: Mapped[StaffUser | None] = relationship(remote_side=[id])

    @hybrid_method
    def is_absent(self, at: datetime) -> bool:
        """Away at ``at``: from ``absent_from`` until (not including) ``absent_until``, which may
        be open. The same rule in SQL (``StaffUser.is_absent(now)``) decides who covers."""
        if self.absent_from is None:
            return False
        return self.absent_from <= at and (self.absent_until is None or at < self.absent_until)

    # mypy binds the hybrid inside the class body, so it cannot see ``inplace`` here; the
    # class-level ``StaffUser.is_absent(at)`` is still typed (a SQL expression of bool).
    @is_absent.inplace.expression  # type: ignore[attr-defined, untyped-decorator]
    @classmethod
    def _is_absent_in_sql(cls, at: datetime) -> sa.ColumnElement[bool]:
        return sa.and_(
            cls.absent_from.is_not(None),
            cls.absent_from <= at,
            sa.or_(cls.absent_until.is_(None), cls.absent_until > at),
        )
