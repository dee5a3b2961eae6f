"""handoff note and outbox purpose

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models.base  # noqa: F401 - column types used below

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))

    with op.batch_alter_table("outbox_entry", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "purpose",
                sa.Enum(
                    "reply",
                    "proactive",
                    "crisis",
                    "opt_out",
                    "staff",
                    name="purpose",
                    native_enum=False,
                    length=32,
                ),
                nullable=False,
                # Rows queued before this revision were replies.
                server_default="reply",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_entry", schema=None) as batch_op:
        batch_op.drop_column("purpose")

    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.drop_column("note")
