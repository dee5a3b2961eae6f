"""Conversations, the messages in them, and handoffs to a human."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from dialogs.types import (
    Author,
    Channel,
    DeliveryStatus,
    Direction,
    HandoffPriority,
    HandoffReason,
    HandoffStatus,
    Holder,
    InboundStatus,
)
from storage.models.base import Base, enum_column, utcnow


class Conversation(Base):
    """One per young person: who holds it and where the dialog stands (durable, never in memory)."""

    __tablename__ = "conversation"

    id: Mapped[int] = mapped_column(primary_key=True)
    young_person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("young_person.id", ondelete="CASCADE"), unique=True
    )
    holder: Mapped[Holder] = mapped_column(enum_column(Holder), default=Holder.BOT)
    held_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="SET NULL")
    )
    dialog: Mapped[str | None] = mapped_column(sa.String(64))
    step: Mapped[str | None] = mapped_column(sa.String(64))
    variables: Mapped[dict[str, Any]] = mapped_column(default=dict)
    misses: Mapped[int] = mapped_column(default=0)
    # Bumped on every change, so two writers cannot both move the dialog on.
    version: Mapped[int] = mapped_column(default=1)
    last_inbound_at: Mapped[datetime | None]
    last_outbound_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declared form


class Message(Base):
    __tablename__ = "message"
    __table_args__ = (
        sa.UniqueConstraint("channel", "provider_id"),
        sa.Index("ix_message_thread", "young_person_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # None for a sender Stifinder does not know (an unknown number, an unbound Telegram chat).
    young_person_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("young_person.id", ondelete="CASCADE")
    )
    # The other party's phone number or chat id, kept only when there is no young person.
    address: Mapped[str | None] = mapped_column(sa.String(40))
    direction: Mapped[Direction] = mapped_column(enum_column(Direction))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    author: Mapped[Author] = mapped_column(enum_column(Author))
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id"))
    # Masked for CPR numbers before it is stored; emptied by retention.
    text: Mapped[str | None] = mapped_column(sa.Text())
    provider_id: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[DeliveryStatus] = mapped_column(enum_column(DeliveryStatus))
    error_code: Mapped[str | None] = mapped_column(sa.String(16))
    segments: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    status_changed_at: Mapped[datetime | None]
    # Set when retention or erasure removed the text; the row stays for the counts.
    redacted_at: Mapped[datetime | None]


class Handoff(Base):
    __tablename__ = "handoff"
    __table_args__ = (
        sa.Index("ix_handoff_assignee_open", "assignee_id", "status", "priority", "opened_at"),
        sa.Index("ix_handoff_queue", "status", "priority", "opened_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    young_person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("young_person.id", ondelete="CASCADE"), index=True
    )
    reason: Mapped[HandoffReason] = mapped_column(enum_column(HandoffReason))
    priority: Mapped[HandoffPriority] = mapped_column(
        enum_column(HandoffPriority), default=HandoffPriority.NORMAL
    )
    status: Mapped[HandoffStatus] = mapped_column(
        enum_column(HandoffStatus), default=HandoffStatus.OPEN
    )
    snoozed_until: Mapped[datetime | None]
    assignee_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="SET NULL")
    )
    trigger_message_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("message.id", ondelete="SET NULL")
    )
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_human_answer_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id"))
    # What the kontaktperson should know, e.g. the new time a young person proposed.
    note: Mapped[str | None] = mapped_column(sa.Text())


class InboundEvent(Base):
    """A webhook or polled update exactly as received (CPR numbers masked), stored before the
    provider gets its 2xx. Processing happens after, from these rows, so nothing is lost."""

    __tablename__ = "inbound_event"
    __table_args__ = (
        # Redelivered updates share the key: stored and processed once.
        sa.UniqueConstraint("channel", "dedupe_key"),
        sa.Index("ix_inbound_event_pending", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    dedupe_key: Mapped[str] = mapped_column(sa.String(120))
    payload: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[InboundStatus] = mapped_column(
        enum_column(InboundStatus), default=InboundStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.String(200))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]
