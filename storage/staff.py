"""Staff accounts: created with a hashed password, deactivated but never deleted."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialogs.i18n import N_
from dialogs.types import Role
from storage import audit
from storage.models import Municipality, StaffUser

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class StaffError(ValueError):
    """A staff account that cannot be created; ``message`` is a Danish source text."""

    def __init__(self, message: str, **params: str) -> None:
        super().__init__(message.format(**params))
        self.message = message
        self.params = params


def find_by_email(session: Session, email: str) -> StaffUser | None:
    return session.scalar(sa.select(StaffUser).where(StaffUser.email == email.strip().lower()))


def add_staff(
    session: Session,
    *,
    name: str,
    email: str,
    role: Role,
    password_hash: str,
    municipality: Municipality | None,
    language: str = "da",
    actor: str = "cli",
) -> StaffUser:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise StaffError(N_("E-mailadressen {email} ser ikke rigtig ud."), email=email)
    if not name.strip():
        raise StaffError(N_("Skriv et navn."))
    if role is not Role.ADMIN and municipality is None:
        raise StaffError(N_("En kontaktperson eller koordinator skal høre til en kommune."))
    if find_by_email(session, email) is not None:
        raise StaffError(N_("Der findes allerede en bruger med {email}."), email=email)
    user = StaffUser(
        name=name.strip(),
        email=email,
        role=role,
        password_hash=password_hash,
        municipality=municipality,
        language=language,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="staff.created",
        municipality_id=municipality.id if municipality else None,
        details={"staff_id": user.id, "role": role.value},
    )
    return user


def municipality_by_slug(session: Session, slug: str) -> Municipality | None:
    return session.scalar(sa.select(Municipality).where(Municipality.slug == slug))
