"""Server-side sessions of signed-in staff, and counting wrong sign-ins of unknown addresses.

The cookie holds 32 random bytes; the row holds their SHA-256 (like an API token, nothing to
guess, so a fast hash is enough), found through a unique index and compared once more in
constant time. A session ends when it is revoked (sign-out, a new sign-in from the same browser,
deactivation), when it has been idle too long, or at its absolute expiry, whichever comes first.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import SignInThrottle, StaffSession, StaffUser

TOKEN_BYTES = 32
MAX_TOKEN = 100  # longer cookies are not ours; refuse them before hashing
# ``last_seen_at`` is written at most this often, so reading a page is not a write each time.
TOUCH_EVERY = timedelta(minutes=1)
# Ended sessions are kept this long (then deleted when their staff member next signs in).
KEEP_ENDED = timedelta(days=30)
# Counters of addresses without an account deleted at most per failed sign-in.
PURGE_BATCH = 100


@dataclass(frozen=True)
class Lifetime:
    """How long a session lives: ``idle`` without a request, ``absolute`` at most."""

    idle: timedelta
    absolute: timedelta


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def start(
    session: Session, staff: StaffUser, *, now: datetime, lifetime: Lifetime
) -> tuple[StaffSession, str]:
    """A new session for ``staff``; returns the row and the cookie's token (never stored)."""
    token = new_token()
    row = StaffSession(
        staff_id=staff.id,
        token_hash=hash_token(token),
        csrf_secret=new_token(),
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime.absolute,
    )
    session.add(row)
    _forget_ended(session, staff.id, now)
    session.flush()
    return row, token


def _forget_ended(session: Session, staff_id: int, now: datetime) -> None:
    cutoff = now - KEEP_ENDED
    session.execute(
        sa.delete(StaffSession).where(
            StaffSession.staff_id == staff_id,
            sa.or_(StaffSession.expires_at < cutoff, StaffSession.revoked_at < cutoff),
        )
    )


def _live(row: StaffSession, now: datetime, lifetime: Lifetime) -> bool:
    return (
        row.revoked_at is None and now < row.expires_at and now < row.last_seen_at + lifetime.idle
    )


def find(
    session: Session, token: str, *, now: datetime, lifetime: Lifetime
) -> tuple[StaffSession, StaffUser] | None:
    """The live session of this token and its active staff member, else None; notes the use."""
    if not token or len(token) > MAX_TOKEN:
        return None
    digest = hash_token(token)
    row = session.scalar(sa.select(StaffSession).where(StaffSession.token_hash == digest))
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    if not _live(row, now, lifetime):
        return None
    staff = session.get(StaffUser, row.staff_id)
    if staff is None or not staff.is_active:
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return row, staff


def by_token(session: Session, token: str) -> StaffSession | None:
    """The session of this token, live or not (to revoke it)."""
    if not token or len(token) > MAX_TOKEN:
        return None
    return session.scalar(
        sa.select(StaffSession).where(StaffSession.token_hash == hash_token(token))
    )


def by_id(session: Session, session_id: int) -> StaffSession | None:
    return session.get(StaffSession, session_id)


def revoke(session: Session, row: StaffSession, *, now: datetime, reason: str) -> bool:
    """End one session; False if it had ended already."""
    if row.revoked_at is not None:
        return False
    row.revoked_at = now
    row.revoked_reason = reason
    return True


def revoke_all(session: Session, staff_id: int, *, now: datetime, reason: str) -> int:
    """End every session of a staff member (deactivation); returns how many were open."""
    result = session.execute(
        sa.update(StaffSession)
        .where(StaffSession.staff_id == staff_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def csrf_matches(expected: str, given: str | None) -> bool:
    """The form's token against the session's, in constant time; a missing one never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


# ---------------------------------------------------------------------------- wrong passwords


@dataclass(frozen=True)
class Lockout:
    """``max_failures`` wrong sign-ins in a row lock for ``period``. A failure a whole period
    after the one before starts a new count, and so does the first one after a lock ends."""

    max_failures: int
    period: timedelta


def count_failure(
    failures: int,
    last_failed_at: datetime | None,
    locked_until: datetime | None,
    *,
    now: datetime,
    rule: Lockout,
) -> tuple[int, datetime | None]:
    """One more wrong sign-in (outside a lock): the new count, and the lock's end if it locks.

    The one rule for accounts (``StaffUser.failed_logins``) and for addresses without one, so a
    lockout says nothing about whether an address has an account.
    """
    lock_ended = locked_until is not None and now >= locked_until
    if lock_ended or last_failed_at is None or now - last_failed_at >= rule.period:
        failures = 0
    failures += 1
    return failures, (now + rule.period if failures >= rule.max_failures else None)


def _insert_ignoring_duplicates(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(SignInThrottle).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(SignInThrottle).on_conflict_do_nothing()
    raise RuntimeError(f"unsupported database {dialect}")  # pragma: no cover


def unknown_address_locked_until(
    session: Session, address_hash: str, *, now: datetime
) -> datetime | None:
    """When the lock of an address without an account ends, if it is locked now."""
    locked_until = session.scalar(
        sa.select(SignInThrottle.locked_until).where(SignInThrottle.address_hash == address_hash)
    )
    return locked_until if locked_until is not None and now < locked_until else None


def unknown_address_failed(
    session: Session, address_hash: str, *, now: datetime, rule: Lockout
) -> datetime | None:
    """Count a wrong sign-in of an address with no account; returns the lock's end if it locks.

    Keyed by a keyed hash of the address, never the address. Rows that can no longer change an
    answer are deleted on the way, so the table holds only the last lockout period's failures.
    """
    # A bounded batch, skipping rows another sign-in holds, so two never wait on each other here.
    stale = (
        sa.select(SignInThrottle.address_hash)
        .where(
            SignInThrottle.last_failed_at < now - rule.period,
            sa.or_(SignInThrottle.locked_until.is_(None), SignInThrottle.locked_until <= now),
        )
        .limit(PURGE_BATCH)
        .with_for_update(skip_locked=True)
    )
    session.execute(
        sa.delete(SignInThrottle)
        .where(SignInThrottle.address_hash.in_(stale.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    session.execute(
        _insert_ignoring_duplicates(session).values(
            address_hash=address_hash, failures=0, last_failed_at=now
        )
    )
    row = session.scalars(
        sa.select(SignInThrottle)
        .where(SignInThrottle.address_hash == address_hash)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    previous = row.last_failed_at if row.failures else None
    row.failures, row.locked_until = count_failure(
        row.failures, previous, row.locked_until, now=now, rule=rule
    )
    row.last_failed_at = now
    return row.locked_until
