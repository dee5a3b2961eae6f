"""Personal API tokens of staff members: only a hash is kept, the token itself is shown once."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.models.base import Base, utcnow
from storage.models.tenants import StaffUser


class ApiToken(Base):
    """A bearer token that acts as its staff member. Revoked, never deleted: audit refers to it."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="CASCADE"), index=True
    )
    # What the staff member calls it, e.g. "reporting script".
    name: Mapped[str] = mapped_column(sa.String(120))
    # SHA-256 of the token, hex; a token is found by its hash, never compared in plain text.
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    staff: Mapped[StaffUser] = relationship()
