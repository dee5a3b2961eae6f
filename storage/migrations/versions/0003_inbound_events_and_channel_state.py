"""inbound events and channel state

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import storage.models.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum("sms", "telegram", "simulator", name="channel", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("dedupe_key", sa.String(length=120), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "processing",
                "done",
                "failed",
                name="inboundstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("received_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("processed_at", storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_event")),
        sa.UniqueConstraint(
            "channel", "dedupe_key", name=op.f("uq_inbound_event_channel_dedupe_key")
        ),
    )
    with op.batch_alter_table("inbound_event", schema=None) as batch_op:
        batch_op.create_index("ix_inbound_event_pending", ["status", "id"], unique=False)

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address", sa.String(length=40), nullable=True))
        batch_op.alter_column("young_person_id", existing_type=sa.INTEGER(), nullable=True)

    with op.batch_alter_table("outbox_entry", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("unknown_outcomes", sa.Integer(), nullable=False, server_default="0")
        )

    with op.batch_alter_table("young_person", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "telegram_blocked_at", storage.models.base.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(sa.Column("sms_error_code", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("young_person", schema=None) as batch_op:
        batch_op.drop_column("sms_error_code")
        batch_op.drop_column("telegram_blocked_at")

    with op.batch_alter_table("outbox_entry", schema=None) as batch_op:
        batch_op.drop_column("unknown_outcomes")

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.alter_column("young_person_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_column("address")

    with op.batch_alter_table("inbound_event", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_event_pending")

    op.drop_table("inbound_event")
