"""Invitation codes for Telegram deep links: single use, expiring, never guessable."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from storage import audit
from storage.models import YoungPerson

VALID_FOR = timedelta(days=30)


def new_code() -> str:
    # 22 URL-safe characters: within Telegram's 64 of A-Z a-z 0-9 _ -.
    return secrets.token_urlsafe(16)


def fresh_invite_code(session: Session, young_person_id: int, *, now: datetime, actor: str) -> str:
    """The person's current code, or a new one if theirs is used, expired or missing."""
    person = session.get_one(YoungPerson, young_person_id)
    expired = person.invite_code_expires_at is not None and person.invite_code_expires_at <= now
    if person.invite_code is None or person.invite_code_used_at is not None or expired:
        person.invite_code = new_code()
        person.invite_code_used_at = None
        person.invite_code_expires_at = now + VALID_FOR
        audit.record(
            session,
            actor=actor,
            action="young_person.invitation_renewed",
            municipality_id=person.municipality_id,
            young_person_id=person.id,
        )
    return person.invite_code
