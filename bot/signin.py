"""Checking a staff member's e-mail and password: argon2, a lockout, and the same cost either way.

- The password is verified with argon2 (``bot.passwords``) and rehashed when the parameters have
  moved on. An address with no account is verified against a dummy hash, so it costs the same as
  a wrong password and the answer's timing does not tell whether the address exists.
- ``max_failures`` wrong passwords in a row close sign-in for ``period``; during it even the right
  password is refused. Addresses with no account are counted the same way (``sign_in_throttle``),
  so the lockout does not tell either.
- A deactivated account is told so only when the password was right.
- Every sign-in, failure, lockout and refusal is an audit event. A failure with no account keeps
  neither the address nor anything derived from it in the audit trail.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.passwords import hash_password, needs_rehash, verify_password
from storage import audit
from storage.models import StaffUser
from storage.staff_sessions import (
    Lockout,
    count_failure,
    unknown_address_failed,
    unknown_address_locked_until,
)

MAX_EMAIL = 254
MAX_PASSWORD = 1024  # argon2 takes any length; a megabyte of "password" is not one


class Outcome(StrEnum):
    SIGNED_IN = "signed_in"
    WRONG = "wrong"  # unknown address or wrong password: the same answer
    LOCKED = "locked"
    INACTIVE = "inactive"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    staff: StaffUser | None = None
    locked_until: datetime | None = None


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A hash of a password nobody knows, made with the current parameters."""
    return hash_password(secrets.token_urlsafe(32))


def address_key(secret_key: str, email: str) -> str:
    """A keyed hash of an address, so the throttle table holds no address."""
    return hmac.new(secret_key.encode(), email.encode("utf-8"), hashlib.sha256).hexdigest()


def normalise_email(email: str) -> str:
    return email.strip().lower()[:MAX_EMAIL]


def check(
    session: Session,
    *,
    email: str,
    password: str,
    now: datetime,
    rule: Lockout,
    secret_key: str,
) -> Result:
    """Check one sign-in; writes counters and audit events in ``session`` (commit them even when
    the answer is no)."""
    email = normalise_email(email)
    password = password[:MAX_PASSWORD]
    staff = (
        session.scalars(
            sa.select(StaffUser).where(StaffUser.email == email).with_for_update()
        ).one_or_none()
        if email
        else None
    )
    if staff is None:
        return _unknown(session, email, password, now=now, rule=rule, secret_key=secret_key)

    actor = f"staff:{staff.id}"
    locked = staff.locked_until is not None and now < staff.locked_until
    right = verify_password(staff.password_hash, password)
    if locked:
        audit.record(
            session,
            actor=actor,
            action="staff.sign_in_refused",
            staff_id=staff.id,
            municipality_id=staff.municipality_id,
            reason="locked",
        )
        return Result(Outcome.LOCKED, locked_until=staff.locked_until)
    if not right:
        staff.failed_logins, staff.locked_until = count_failure(
            staff.failed_logins,
            staff.last_failed_login_at,
            staff.locked_until,
            now=now,
            rule=rule,
        )
        staff.last_failed_login_at = now
        audit.record(
            session,
            actor=actor,
            action="staff.sign_in_failed",
            staff_id=staff.id,
            municipality_id=staff.municipality_id,
            details={"failures": staff.failed_logins},
        )
        if staff.locked_until is None:
            return Result(Outcome.WRONG)
        audit.record(
            session,
            actor=actor,
            action="staff.locked_out",
            staff_id=staff.id,
            municipality_id=staff.municipality_id,
            details={"until": staff.locked_until.isoformat()},
        )
        return Result(Outcome.LOCKED, locked_until=staff.locked_until)
    if not staff.is_active:
        audit.record(
            session,
            actor=actor,
            action="staff.sign_in_refused",
            staff_id=staff.id,
            municipality_id=staff.municipality_id,
            reason="inactive",
        )
        return Result(Outcome.INACTIVE)
    if needs_rehash(staff.password_hash):
        staff.password_hash = hash_password(password)
    staff.failed_logins, staff.locked_until, staff.last_failed_login_at = 0, None, None
    staff.last_login_at = now
    audit.record(
        session,
        actor=actor,
        action="staff.signed_in",
        staff_id=staff.id,
        municipality_id=staff.municipality_id,
    )
    return Result(Outcome.SIGNED_IN, staff=staff)


def _unknown(
    session: Session,
    email: str,
    password: str,
    *,
    now: datetime,
    rule: Lockout,
    secret_key: str,
) -> Result:
    verify_password(dummy_hash(), password)  # the cost of a real check, for nothing
    key = address_key(secret_key, email)
    locked_until = unknown_address_locked_until(session, key, now=now)
    if locked_until is not None:
        audit.record(
            session, actor="web", action="staff.sign_in_refused", reason="locked", details={}
        )
        return Result(Outcome.LOCKED, locked_until=locked_until)
    locked_until = unknown_address_failed(session, key, now=now, rule=rule)
    audit.record(session, actor="web", action="staff.sign_in_failed", details={"account": False})
    if locked_until is None:
        return Result(Outcome.WRONG)
    audit.record(session, actor="web", action="staff.locked_out", details={"account": False})
    return Result(Outcome.LOCKED, locked_until=locked_until)
