"""Staff sign-in: server-side sessions, and the failures of addresses that have no account."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, utcnow


class StaffSession(Base):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is kept here, so a
    copy of the database signs nobody in. Revoked or expired, never reused."""

    __tablename__ = "staff_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="CASCADE"), index=True
    )
    # SHA-256 of the cookie's token, hex.
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # What every form of this session carries (compared in constant time); never in the cookie.
    csrf_secret: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Touched at most once a minute; the idle timeout counts from here.
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The absolute end, however busy the session is.
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # "signed_out", "signed_in_again", "deactivated".
    revoked_reason: Mapped[str | None] = mapped_column(sa.String(40))


class SignInThrottle(Base):
    """Wrong sign-ins with an e-mail address that has no account, counted like an account's own
    (``StaffUser.failed_logins``), so a lockout says nothing about whether the address exists.
    Keyed by an HMAC of the address, never the address itself; rows go once they cannot matter."""

    __tablename__ = "sign_in_throttle"

    address_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failed_at: Mapped[datetime] = mapped_column(index=True)
    locked_until: Mapped[datetime | None]
