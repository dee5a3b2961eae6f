"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import storage.models.base

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "municipality",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("slug", sa.String(length=60), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("default_language", sa.String(length=8), nullable=False),
        sa.Column("quiet_hours_start", sa.Time(), nullable=False),
        sa.Column("quiet_hours_end", sa.Time(), nullable=False),
        sa.Column("quiet_on_weekends", sa.Boolean(), nullable=False),
        sa.Column("office_hours_start", sa.Time(), nullable=False),
        sa.Column("office_hours_end", sa.Time(), nullable=False),
        sa.Column(
            "help_lines",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "sender_settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_municipality")),
        sa.UniqueConstraint("slug", name=op.f("uq_municipality_slug")),
    )
    op.create_table(
        "staff_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "kontaktperson", "coordinator", "admin", name="role", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("absent_from", storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("absent_until", storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("backup_id", sa.Integer(), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["backup_id"],
            ["staff_user.id"],
            name=op.f("fk_staff_user_backup_id_staff_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipality.id"],
            name=op.f("fk_staff_user_municipality_id_municipality"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_user")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_user_email")),
    )
    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_staff_user_municipality_id"), ["municipality_id"], unique=False
        )

    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=True),
        sa.Column("young_person_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipality.id"],
            name=op.f("fk_audit_event_municipality_id_municipality"),
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_user.id"], name=op.f("fk_audit_event_staff_id_staff_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index("ix_audit_actor", ["staff_id", "at"], unique=False)
        batch_op.create_index("ix_audit_subject", ["young_person_id", "at"], unique=False)

    op.create_table(
        "campaign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "scheduled",
                "running",
                "paused",
                "finished",
                "cancelled",
                name="campaignstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "audience",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "content",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("starts_at", storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cron", sa.String(length=120), nullable=True),
        sa.Column(
            "relative_schedule",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("rate_per_minute", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["staff_user.id"], name=op.f("fk_campaign_created_by_id_staff_user")
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipality.id"],
            name=op.f("fk_campaign_municipality_id_municipality"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign")),
    )
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaign_municipality_id"), ["municipality_id"], unique=False
        )

    op.create_table(
        "young_person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("first_name", sa.String(length=80), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("kontaktperson_id", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "invited",
                "active",
                "paused",
                "opted_out",
                "closed",
                name="youngpersonstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("status_reason", sa.String(length=200), nullable=True),
        sa.Column(
            "status_changed_at", storage.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("telegram_chat_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "preferred_channel",
            sa.Enum("sms", "telegram", "simulator", name="channel", native_enum=False, length=32),
            nullable=True,
        ),
        sa.Column("invite_code", sa.String(length=64), nullable=True),
        sa.Column(
            "invite_code_expires_at", storage.models.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "invite_code_used_at", storage.models.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("external_ref", sa.String(length=64), nullable=True),
        sa.Column("last_inbound_at", storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["kontaktperson_id"],
            ["staff_user.id"],
            name=op.f("fk_young_person_kontaktperson_id_staff_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipality.id"],
            name=op.f("fk_young_person_municipality_id_municipality"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_young_person")),
        sa.UniqueConstraint("invite_code", name=op.f("uq_young_person_invite_code")),
        sa.UniqueConstraint(
            "municipality_id", "phone", name=op.f("uq_young_person_municipality_id_phone")
        ),
        sa.UniqueConstraint("telegram_chat_id", name=op.f("uq_young_person_telegram_chat_id")),
    )
    with op.batch_alter_table("young_person", schema=None) as batch_op:
        batch_op.create_index(
            "ix_young_person_kontaktperson", ["kontaktperson_id", "status"], unique=False
        )

    op.create_table(
        "consent_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("young_person_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "consent_given",
                "consent_withdrawn",
                "opted_out",
                "opted_in",
                name="consentkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "source",
            sa.Enum(
                "young_person",
                "staff",
                "provider",
                "import",
                name="consentsource",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "channel",
            sa.Enum("sms", "telegram", "simulator", name="channel", native_enum=False, length=32),
            nullable=True,
        ),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("created_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_user.id"], name=op.f("fk_consent_event_staff_id_staff_user")
        ),
        sa.ForeignKeyConstraint(
            ["young_person_id"],
            ["young_person.id"],
            name=op.f("fk_consent_event_young_person_id_young_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_event")),
    )
    with op.batch_alter_table("consent_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_event_young_person_id"), ["young_person_id"], unique=False
        )

    op.create_table(
        "conversation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("young_person_id", sa.Integer(), nullable=False),
        sa.Column(
            "holder",
            sa.Enum(
                "bot", "waiting_for_human", "human", name="holder", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("held_by_id", sa.Integer(), nullable=True),
        sa.Column("dialog", sa.String(length=64), nullable=True),
        sa.Column("step", sa.String(length=64), nullable=True),
        sa.Column(
            "variables",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("misses", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_inbound_at", storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "last_outbound_at", storage.models.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("updated_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["held_by_id"],
            ["staff_user.id"],
            name=op.f("fk_conversation_held_by_id_staff_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["young_person_id"],
            ["young_person.id"],
            name=op.f("fk_conversation_young_person_id_young_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation")),
        sa.UniqueConstraint("young_person_id", name=op.f("uq_conversation_young_person_id")),
    )
    op.create_table(
        "goal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("young_person_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "planned",
                "under_way",
                "needs_help",
                "done",
                "dropped",
                name="goalstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["young_person_id"],
            ["young_person.id"],
            name=op.f("fk_goal_young_person_id_young_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_goal")),
    )
    with op.batch_alter_table("goal", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_goal_young_person_id"), ["young_person_id"], unique=False
        )

    op.create_table(
        "meeting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("young_person_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=True),
        sa.Column("link", sa.String(length=500), nullable=True),
        sa.Column("with_whom", sa.String(length=200), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("purpose", sa.String(length=200), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "planned",
                "confirmed",
                "declined",
                "new_time_wanted",
                "attended",
                "no_show",
                "cancelled",
                name="meetingstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "status_changed_at", storage.models.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_user.id"],
            name=op.f("fk_meeting_staff_id_staff_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["young_person_id"],
            ["young_person.id"],
            name=op.f("fk_meeting_young_person_id_young_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting")),
    )
    with op.batch_alter_table("meeting", schema=None) as batch_op:
        batch_op.create_index(
            "ix_meeting_person_time", ["young_person_id", "starts_at"], unique=False
        )

    op.create_table(
        "message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("young_person_id", sa.Integer(), nullable=False),
        sa.Column(
            "direction",
            sa.Enum("inbound", "outbound", name="direction", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column(
            "channel",
            sa.Enum("sms", "telegram", "simulator", name="channel", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column(
            "author",
            sa.Enum("young_person", "bot", "staff", name="author", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "received",
                "queued",
                "sending",
                "sent",
                "delivered",
                "undelivered",
                "failed",
                "unknown",
                name="deliverystatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("error_code", sa.String(length=16), nullable=True),
        sa.Column("segments", sa.Integer(), nullable=True),
        sa.Column("created_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "status_changed_at", storage.models.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_user.id"], name=op.f("fk_message_staff_id_staff_user")
        ),
        sa.ForeignKeyConstraint(
            ["young_person_id"],
            ["young_person.id"],
            name=op.f("fk_message_young_person_id_young_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
        sa.UniqueConstraint("channel", "provider_id", name=op.f("uq_message_channel_provider_id")),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index("ix_message_thread", ["young_person_id", "created_at"], unique=False)

    op.create_table(
        "young_person_tag",
        sa.Column("young_person_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["young_person_id"],
            ["young_person.id"],
            name=op.f("fk_young_person_tag_young_person_id_young_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("young_person_id", "tag", name=op.f("pk_young_person_tag")),
    )
    with op.batch_alter_table("young_person_tag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_young_person_tag_tag"), ["tag"], unique=False)

    op.create_table(
        "campaign_recipient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("run_key", sa.String(length=40), nullable=False),
        sa.Column("young_person_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "sent",
                "delivered",
                "replied",
                "failed",
                "skipped",
                name="recipientstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("skip_reason", sa.String(length=40), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.id"],
            name=op.f("fk_campaign_recipient_campaign_id_campaign"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["message.id"],
            name=op.f("fk_campaign_recipient_message_id_message"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["young_person_id"],
            ["young_person.id"],
            name=op.f("fk_campaign_recipient_young_person_id_young_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_recipient")),
        sa.UniqueConstraint(
            "campaign_id",
            "run_key",
            "young_person_id",
            name=op.f("uq_campaign_recipient_campaign_id_run_key_young_person_id"),
        ),
    )
    with op.batch_alter_table("campaign_recipient", schema=None) as batch_op:
        batch_op.create_index(
            "ix_campaign_recipient_status", ["campaign_id", "status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_campaign_recipient_young_person_id"), ["young_person_id"], unique=False
        )

    op.create_table(
        "dream",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("young_person_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "category",
            sa.Enum(
                "education",
                "job",
                "leisure",
                "housing",
                "health",
                "network",
                "other",
                name="dreamcategory",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("captured_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "captured_via",
            sa.Enum(
                "dialog", "staff", "import", name="capturesource", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column(
            "channel",
            sa.Enum("sms", "telegram", "simulator", name="channel", native_enum=False, length=32),
            nullable=True,
        ),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["message.id"],
            name=op.f("fk_dream_message_id_message"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_user.id"], name=op.f("fk_dream_staff_id_staff_user")
        ),
        sa.ForeignKeyConstraint(
            ["young_person_id"],
            ["young_person.id"],
            name=op.f("fk_dream_young_person_id_young_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dream")),
    )
    with op.batch_alter_table("dream", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dream_young_person_id"), ["young_person_id"], unique=False
        )

    op.create_table(
        "handoff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("young_person_id", sa.Integer(), nullable=False),
        sa.Column(
            "reason",
            sa.Enum(
                "asked",
                "not_understood",
                "declined_meeting",
                "crisis",
                "campaign_reply",
                "cannot_reach",
                "needs_help",
                name="handoffreason",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "priority",
            sa.Enum("urgent", "normal", name="handoffpriority", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "pending",
                "snoozed",
                "resolved",
                name="handoffstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("snoozed_until", storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("trigger_message_id", sa.Integer(), nullable=True),
        sa.Column("opened_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "first_human_answer_at", storage.models.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("resolved_at", storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["assignee_id"],
            ["staff_user.id"],
            name=op.f("fk_handoff_assignee_id_staff_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"], ["staff_user.id"], name=op.f("fk_handoff_resolved_by_id_staff_user")
        ),
        sa.ForeignKeyConstraint(
            ["trigger_message_id"],
            ["message.id"],
            name=op.f("fk_handoff_trigger_message_id_message"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["young_person_id"],
            ["young_person.id"],
            name=op.f("fk_handoff_young_person_id_young_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff")),
    )
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.create_index(
            "ix_handoff_assignee_open",
            ["assignee_id", "status", "priority", "opened_at"],
            unique=False,
        )
        batch_op.create_index("ix_handoff_queue", ["status", "priority", "opened_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_handoff_young_person_id"), ["young_person_id"], unique=False
        )

    op.create_table(
        "outbox_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum("sms", "telegram", "simulator", name="channel", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "sending",
                "sent",
                "unknown",
                "failed",
                "cancelled",
                name="outboxstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("not_before", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("claimed_by", sa.String(length=80), nullable=True),
        sa.Column("claimed_at", storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["message.id"],
            name=op.f("fk_outbox_entry_message_id_message"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_entry")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbox_entry_message_id")),
    )
    with op.batch_alter_table("outbox_entry", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["status", "not_before"], unique=False)

    op.create_table(
        "sub_goal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("goal_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "planned",
                "under_way",
                "needs_help",
                "done",
                "dropped",
                name="goalstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("completed_at", storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["goal_id"], ["goal.id"], name=op.f("fk_sub_goal_goal_id_goal"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sub_goal")),
    )
    with op.batch_alter_table("sub_goal", schema=None) as batch_op:
        batch_op.create_index("ix_sub_goal_due", ["status", "due_date"], unique=False)
        batch_op.create_index(batch_op.f("ix_sub_goal_goal_id"), ["goal_id"], unique=False)

    op.create_table(
        "scheduled_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("due_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "claimed",
                "done",
                "cancelled",
                "expired",
                "failed",
                name="scheduledstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=True),
        sa.Column("young_person_id", sa.Integer(), nullable=True),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("sub_goal_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=80), nullable=True),
        sa.Column("claimed_at", storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=200), nullable=True),
        sa.Column("created_at", storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.id"],
            name=op.f("fk_scheduled_item_campaign_id_campaign"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting.id"],
            name=op.f("fk_scheduled_item_meeting_id_meeting"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipality.id"],
            name=op.f("fk_scheduled_item_municipality_id_municipality"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sub_goal_id"],
            ["sub_goal.id"],
            name=op.f("fk_scheduled_item_sub_goal_id_sub_goal"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["young_person_id"],
            ["young_person.id"],
            name=op.f("fk_scheduled_item_young_person_id_young_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_item")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_scheduled_item_idempotency_key")),
    )
    with op.batch_alter_table("scheduled_item", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scheduled_item_campaign_id"), ["campaign_id"], unique=False
        )
        batch_op.create_index("ix_scheduled_item_due", ["status", "due_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_scheduled_item_meeting_id"), ["meeting_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_scheduled_item_sub_goal_id"), ["sub_goal_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_scheduled_item_young_person_id"), ["young_person_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("scheduled_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scheduled_item_young_person_id"))
        batch_op.drop_index(batch_op.f("ix_scheduled_item_sub_goal_id"))
        batch_op.drop_index(batch_op.f("ix_scheduled_item_meeting_id"))
        batch_op.drop_index("ix_scheduled_item_due")
        batch_op.drop_index(batch_op.f("ix_scheduled_item_campaign_id"))

    op.drop_table("scheduled_item")
    with op.batch_alter_table("sub_goal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sub_goal_goal_id"))
        batch_op.drop_index("ix_sub_goal_due")

    op.drop_table("sub_goal")
    with op.batch_alter_table("outbox_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due")

    op.drop_table("outbox_entry")
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_handoff_young_person_id"))
        batch_op.drop_index("ix_handoff_queue")
        batch_op.drop_index("ix_handoff_assignee_open")

    op.drop_table("handoff")
    with op.batch_alter_table("dream", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dream_young_person_id"))

    op.drop_table("dream")
    with op.batch_alter_table("campaign_recipient", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_recipient_young_person_id"))
        batch_op.drop_index("ix_campaign_recipient_status")

    op.drop_table("campaign_recipient")
    with op.batch_alter_table("young_person_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_young_person_tag_tag"))

    op.drop_table("young_person_tag")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_thread")

    op.drop_table("message")
    with op.batch_alter_table("meeting", schema=None) as batch_op:
        batch_op.drop_index("ix_meeting_person_time")

    op.drop_table("meeting")
    with op.batch_alter_table("goal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_goal_young_person_id"))

    op.drop_table("goal")
    op.drop_table("conversation")
    with op.batch_alter_table("consent_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_event_young_person_id"))

    op.drop_table("consent_event")
    with op.batch_alter_table("young_person", schema=None) as batch_op:
        batch_op.drop_index("ix_young_person_kontaktperson")

    op.drop_table("young_person")
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_municipality_id"))

    op.drop_table("campaign")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_subject")
        batch_op.drop_index("ix_audit_actor")

    op.drop_table("audit_event")
    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_user_municipality_id"))

    op.drop_table("staff_user")
    op.drop_table("municipality")
