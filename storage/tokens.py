"""Personal API tokens: issued once in plain text, kept only as a SHA-256 hash.

A token is 32 random bytes (``secrets.token_urlsafe``), so a fast hash is enough: there is nothing
to guess. It is found by its hash through a unique index, never by comparing plain texts, and the
stored hash is compared once more in constant time. Revoked tokens and tokens of deactivated staff
are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialogs.i18n import N_
from storage import audit
from storage.models import ApiToken, StaffUser

TOKEN_BYTES = 32
MAX_NAME = 120
MAX_TOKEN = 200  # longer bearer strings are not ours; refuse them before hashing
# ``last_used_at`` is written at most this often, so reading with a token is not a write each time.
TOUCH_EVERY = timedelta(minutes=1)


class TokenError(ValueError):
    """A token that cannot be issued or revoked; ``message`` is a Danish source text."""

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message.format(**params))
        self.message = message
        self.params = params


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue(
    session: Session,
    staff: StaffUser,
    *,
    name: str,
    now: datetime,
    actor: str = "cli",
) -> tuple[ApiToken, str]:
    """A new token for ``staff``; returns the row and the plain token, which is never stored."""
    name = name.strip()
    if not name:
        raise TokenError(N_("Giv nøglen et navn."))
    if len(name) > MAX_NAME:
        raise TokenError(N_("Nøglens navn må højst være {n} tegn."), n=MAX_NAME)
    if not staff.is_active:
        raise TokenError(N_("Brugeren {email} er deaktiveret."), email=staff.email)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = ApiToken(staff_id=staff.id, name=name, token_hash=hash_token(token), created_at=now)
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="api_token.issued",
        municipality_id=staff.municipality_id,
        details={"staff_id": staff.id, "token_id": row.id, "name": name},
    )
    return row, token


def authenticate(session: Session, token: str, *, now: datetime) -> StaffUser | None:
    """The active staff member whose unrevoked token this is, else None; notes the use."""
    if not token or len(token) > MAX_TOKEN:
        return None
    digest = hash_token(token)
    row = session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == digest))
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    if row.revoked_at is not None:
        return None
    staff = session.get(StaffUser, row.staff_id)
    if staff is None or not staff.is_active:
        return None
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        row.last_used_at = now
    return staff


def revoke(session: Session, token_id: int, *, now: datetime, actor: str = "cli") -> ApiToken:
    """Revoke a token at once; a token revoked before is an error, so is an unknown one."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise TokenError(N_("Der findes ingen nøgle nr. {id}."), id=token_id)
    if row.revoked_at is not None:
        raise TokenError(N_("Nøgle nr. {id} er allerede tilbagekaldt."), id=token_id)
    row.revoked_at = now
    staff = session.get_one(StaffUser, row.staff_id)
    audit.record(
        session,
        actor=actor,
        action="api_token.revoked",
        municipality_id=staff.municipality_id,
        details={"staff_id": staff.id, "token_id": row.id},
    )
    return row
