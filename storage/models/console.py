"""The coordinator console's own tables: uploaded imports awaiting confirmation, and a
municipality's own wording of the dialogs' texts."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, utcnow


class ImportDraft(Base):
    """An uploaded CSV or Excel file between its preview and the coordinator's confirmation.

    Nothing from it reaches the young people's tables until it is confirmed; the draft is then
    deleted, as is any draft older than an hour.
    """

    __tablename__ = "import_draft"

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(
        sa.ForeignKey("municipality.id", ondelete="CASCADE"), index=True
    )
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_user.id", ondelete="RESTRICT"))
    filename: Mapped[str] = mapped_column(sa.String(200))
    content: Mapped[bytes] = mapped_column(sa.LargeBinary())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DialogTextOverride(Base):
    """A municipality's own wording of one dialog text (by its Danish source) in one language.

    ``reviewed_at`` stays empty until a native speaker has read the text.
    """

    __tablename__ = "dialog_text_override"
    __table_args__ = (sa.UniqueConstraint("municipality_id", "language", "source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(
        sa.ForeignKey("municipality.id", ondelete="CASCADE"), index=True
    )
    language: Mapped[str] = mapped_column(sa.String(8))
    source: Mapped[str] = mapped_column(sa.Text())
    text: Mapped[str] = mapped_column(sa.Text())
    updated_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="RESTRICT")
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    reviewed_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="RESTRICT")
    )
    reviewed_at: Mapped[datetime | None]
