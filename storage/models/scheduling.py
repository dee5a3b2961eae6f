"""Time and delivery as rows: campaigns, scheduled items and the outbox.

A schedule never lives only in a scheduler's memory: every due thing is a row with a due time, a
status and an idempotency key, and workers claim rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from dialogs.types import (
    AlertKind,
    CampaignStatus,
    Channel,
    OutboxStatus,
    Purpose,
    RecipientStatus,
    ScheduledStatus,
)
from storage.models.base import Base, enum_column, utcnow


class Campaign(Base):
    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(
        sa.ForeignKey("municipality.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[CampaignStatus] = mapped_column(
        enum_column(CampaignStatus), default=CampaignStatus.DRAFT
    )
    # Filters: ages, statuses, tags, kontaktperson, channel, days since last contact.
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Either {"dialog": name} or {"template": {language: text}}.
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    starts_at: Mapped[datetime | None]
    cron: Mapped[str | None] = mapped_column(sa.String(120))
    # Relative schedules, e.g. {"anchor": "meeting", "offset_days": -3}.
    relative_schedule: Mapped[dict[str, Any] | None] = mapped_column()
    rate_per_minute: Mapped[int | None]
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CampaignRecipient(Base):
    __tablename__ = "campaign_recipient"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "run_key", "young_person_id"),
        sa.Index("ix_campaign_recipient_status", "campaign_id", "status"),
        sa.Index("ix_campaign_recipient_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaign.id", ondelete="CASCADE"))
    # One run of a recurring campaign, e.g. its due time in ISO form.
    run_key: Mapped[str] = mapped_column(sa.String(40), default="once")
    young_person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("young_person.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[RecipientStatus] = mapped_column(
        enum_column(RecipientStatus), default=RecipientStatus.PENDING
    )
    skip_reason: Mapped[str | None] = mapped_column(sa.String(40))
    # When this recipient's message may go out (a run's time, or e.g. 3 days before a meeting).
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    message_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("message.id", ondelete="SET NULL"), index=True
    )
    claimed_by: Mapped[str | None] = mapped_column(sa.String(80))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ScheduledItem(Base):
    __tablename__ = "scheduled_item"
    __table_args__ = (sa.Index("ix_scheduled_item_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # A free string so that new kinds need no migration: "meeting_reminder", "campaign_run", ...
    kind: Mapped[str] = mapped_column(sa.String(40))
    due_at: Mapped[datetime]
    status: Mapped[ScheduledStatus] = mapped_column(
        enum_column(ScheduledStatus), default=ScheduledStatus.PENDING
    )
    # The same key twice is the same item: scheduling is idempotent.
    idempotency_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    municipality_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("municipality.id", ondelete="CASCADE")
    )
    young_person_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("young_person.id", ondelete="CASCADE"), index=True
    )
    meeting_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("meeting.id", ondelete="CASCADE"), index=True
    )
    sub_goal_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("sub_goal.id", ondelete="CASCADE"), index=True
    )
    campaign_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("campaign.id", ondelete="CASCADE"), index=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(80))
    claimed_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Why an item expired, failed or was cancelled.
    outcome: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxEntry(Base):
    """One outgoing message to deliver, written in the transaction that decided to send it."""

    __tablename__ = "outbox_entry"
    __table_args__ = (sa.Index("ix_outbox_due", "status", "not_before"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        sa.ForeignKey("message.id", ondelete="CASCADE"), unique=True
    )
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    purpose: Mapped[Purpose] = mapped_column(enum_column(Purpose), default=Purpose.REPLY)
    status: Mapped[OutboxStatus] = mapped_column(
        enum_column(OutboxStatus), default=OutboxStatus.PENDING
    )
    not_before: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    # Sends whose outcome was unknown (the connection dropped after the request went out).
    unknown_outcomes: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.String(200))
    claimed_by: Mapped[str | None] = mapped_column(sa.String(80))
    claimed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StaffAlert(Base):
    """Something for a staff member to act on: an overdue sub-goal, a KUI deadline coming up."""

    __tablename__ = "staff_alert"
    __table_args__ = (sa.Index("ix_staff_alert_open", "staff_id", "seen_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The same key twice is the same alert: raising one is idempotent.
    key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    kind: Mapped[AlertKind] = mapped_column(enum_column(AlertKind))
    municipality_id: Mapped[int] = mapped_column(
        sa.ForeignKey("municipality.id", ondelete="CASCADE")
    )
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_user.id", ondelete="CASCADE"))
    young_person_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("young_person.id", ondelete="CASCADE"), index=True
    )
    # The deadline or due date the alert is about.
    due_at: Mapped[datetime | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime | None]


class KuiCase(Base):
    """A young person under 18 who dropped out: contact within 5 working days, an offer in 30."""

    __tablename__ = "kui_case"

    id: Mapped[int] = mapped_column(primary_key=True)
    young_person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("young_person.id", ondelete="CASCADE"), index=True
    )
    municipality_id: Mapped[int] = mapped_column(
        sa.ForeignKey("municipality.id", ondelete="CASCADE")
    )
    dropped_out_at: Mapped[datetime]
    contact_due_at: Mapped[datetime]
    offer_due_at: Mapped[datetime]
    contacted_at: Mapped[datetime | None]
    offered_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
