"""The inbox's own tables: private staff notes and a municipality's canned replies."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, JSONType, utcnow


class StaffNote(Base):
    """A private note about a young person, written by staff. Never sent to the young person."""

    __tablename__ = "staff_note"
    __table_args__ = (sa.Index("ix_staff_note_thread", "young_person_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    young_person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("young_person.id", ondelete="CASCADE")
    )
    # Staff are deactivated, never deleted, so the author is always known.
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_user.id", ondelete="RESTRICT"))
    text: Mapped[str] = mapped_column(sa.Text())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CannedReply(Base):
    """A ready-made reply a kontaktperson can put in the reply box and edit before sending.

    ``text`` is the Danish (default) text; ``translations`` maps a language code to the same
    reply in that language, used when the young person writes in it.
    """

    __tablename__ = "canned_reply"

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(
        sa.ForeignKey("municipality.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(sa.String(120))
    text: Mapped[str] = mapped_column(sa.Text())
    translations: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="SET NULL")
    )
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
