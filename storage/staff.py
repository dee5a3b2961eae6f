"""Staff accounts and municipalities: created, deactivated and reactivated (never deleted),
absences and backups set; every change audited. Who may do which is ``storage.access``'s."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialogs.i18n import N_
from dialogs.types import Role
from storage import audit, staff_sessions
from storage.models import Municipality, StaffUser

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class StaffError(ValueError):
    """A change that cannot be made; ``message`` is a Danish source text, ``field`` the form
    field it is about (None: the whole form)."""

    def __init__(self, message: str, *, field: str | None = None, **params: str) -> None:
        super().__init__(message.format(**params))
        self.message = message
        self.field = field
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
    by_staff_id: int | None = None,
) -> StaffUser:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise StaffError(
            N_("E-mailadressen {email} ser ikke rigtig ud."), field="email", email=email
        )
    if not name.strip():
        raise StaffError(N_("Skriv et navn."), field="name")
    if len(name.strip()) > 120:
        raise StaffError(N_("Navnet må højst være 120 tegn."), field="name")
    if len(email) > 254:
        raise StaffError(
            N_("E-mailadressen {email} ser ikke rigtig ud."), field="email", email=email[:60]
        )
    if role is not Role.ADMIN and municipality is None:
        raise StaffError(
            N_("En kontaktperson eller koordinator skal høre til en kommune."), field="municipality"
        )
    if find_by_email(session, email) is not None:
        raise StaffError(
            N_("Der findes allerede en bruger med {email}."), field="email", email=email
        )
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
        staff_id=by_staff_id,
        municipality_id=municipality.id if municipality else None,
        details={"staff_id": user.id, "role": role.value},
    )
    return user


def municipality_by_slug(session: Session, slug: str) -> Municipality | None:
    return session.scalar(sa.select(Municipality).where(Municipality.slug == slug))


# ---------------------------------------------------------------------------- municipalities

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,58}[a-z0-9])?$")


def add_municipality(
    session: Session,
    *,
    name: str,
    slug: str,
    timezone: str,
    actor: str,
    by_staff_id: int | None = None,
) -> Municipality:
    name, slug, timezone = name.strip(), slug.strip().lower(), timezone.strip()
    if not name:
        raise StaffError(N_("Skriv kommunens navn."), field="name")
    if len(name) > 120:
        raise StaffError(N_("Navnet må højst være 120 tegn."), field="name")
    if not _SLUG.match(slug):
        raise StaffError(
            N_("Kortnavnet må kun have små bogstaver a-z, tal og bindestreger, fx aarhus."),
            field="slug",
        )
    if municipality_by_slug(session, slug) is not None:
        raise StaffError(
            N_("Der findes allerede en kommune med kortnavnet {slug}."), field="slug", slug=slug
        )
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise StaffError(
            N_("Tidszonen {zone} findes ikke; brug fx Europe/Copenhagen."),
            field="timezone",
            zone=timezone,
        ) from error
    place = Municipality(name=name, slug=slug, timezone=timezone)
    session.add(place)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="municipality.created",
        staff_id=by_staff_id,
        municipality_id=place.id,
        details={"slug": slug},
    )
    return place


# ---------------------------------------------------------------------------- account changes


def deactivate(
    session: Session, user: StaffUser, *, now: datetime, actor: str, by_staff_id: int | None
) -> None:
    """Close an account: it signs in no more, its sessions end at once, its API tokens stop."""
    if by_staff_id == user.id:
        raise StaffError(N_("Du kan ikke deaktivere dig selv."))
    if not user.is_active:
        return
    user.is_active = False
    ended = staff_sessions.revoke_all(session, user.id, now=now, reason="deactivated")
    audit.record(
        session,
        actor=actor,
        action="staff.deactivated",
        staff_id=by_staff_id,
        municipality_id=user.municipality_id,
        details={"staff_id": user.id, "sessions_ended": ended},
    )


def reactivate(session: Session, user: StaffUser, *, actor: str, by_staff_id: int | None) -> None:
    if user.is_active:
        return
    user.is_active = True
    user.failed_logins, user.locked_until, user.last_failed_login_at = 0, None, None
    audit.record(
        session,
        actor=actor,
        action="staff.reactivated",
        staff_id=by_staff_id,
        municipality_id=user.municipality_id,
        details={"staff_id": user.id},
    )


def unlock(session: Session, user: StaffUser, *, actor: str, by_staff_id: int | None) -> None:
    """Lift a lockout after wrong passwords before it ends by itself."""
    user.failed_logins, user.locked_until, user.last_failed_login_at = 0, None, None
    audit.record(
        session,
        actor=actor,
        action="staff.unlocked",
        staff_id=by_staff_id,
        municipality_id=user.municipality_id,
        details={"staff_id": user.id},
    )


def set_absence(
    session: Session,
    user: StaffUser,
    *,
    absent_from: datetime | None,
    absent_until: datetime | None,
    backup: StaffUser | None,
    actor: str,
    by_staff_id: int | None,
) -> None:
    """A kontaktperson's absence (``absent_until`` not included; None: open-ended) and backup.

    The backup is an active kontaktperson of the same municipality, never the person themselves:
    while the person is away, the backup sees their young people and gets their handoffs.
    """
    if user.role is not Role.KONTAKTPERSON:
        raise StaffError(N_("Kun kontaktpersoner har fravær og en stedfortræder."))
    if absent_until is not None and absent_from is None:
        raise StaffError(N_("Skriv hvornår fraværet begynder."), field="absent_from")
    if absent_from is not None and absent_until is not None and absent_until <= absent_from:
        raise StaffError(N_("Fraværet skal slutte efter, det begynder."), field="absent_until")
    if backup is not None:
        if backup.id == user.id:
            raise StaffError(
                N_("En kontaktperson kan ikke være sin egen stedfortræder."), field="backup"
            )
        if (
            backup.role is not Role.KONTAKTPERSON
            or backup.municipality_id != user.municipality_id
            or not backup.is_active
        ):
            raise StaffError(
                N_("Stedfortræderen skal være en aktiv kontaktperson i samme kommune."),
                field="backup",
            )
    user.absent_from, user.absent_until = absent_from, absent_until
    user.backup = backup
    audit.record(
        session,
        actor=actor,
        action="staff.absence_set",
        staff_id=by_staff_id,
        municipality_id=user.municipality_id,
        details={
            "staff_id": user.id,
            "absent_from": absent_from.isoformat() if absent_from else None,
            "absent_until": absent_until.isoformat() if absent_until else None,
            "backup_id": backup.id if backup is not None else None,
        },
    )
