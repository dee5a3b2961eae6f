"""Who may see which young people, and whose staff records they may manage: the one place.

Every page, API route, export and live stream that shows a young person's data filters with
:func:`visible_young_people` (a WHERE clause on ``young_person``, usable in any query) or asks
:func:`can_see`. The rules, least privilege first:

- **Inactive staff** see nothing.
- A **kontaktperson** sees the young people assigned to them, and while a colleague who named
  them as backup is away (``StaffUser.is_absent``: from ``absent_from`` until, not including,
  ``absent_until``), that colleague's young people too; the same rule routes handoffs to the
  backup (``storage.handoffs.assignee_for``). Both only within their own municipality.
- A **coordinator** sees every young person of their own municipality.
- An **admin** manages municipalities and staff accounts, and sees no young person's data at all:
  running the installation is not a reason to read anyone's conversations.
- An **erased** young person (``erased_at`` set) has no page: :func:`can_see` says no to
  everyone. Their row stays within :func:`visible_young_people`, so that counts stay whole; the
  lists and the inbox leave them out themselves.

Managing staff (:func:`manageable_staff`): an admin manages every account; a coordinator sets the
absence and backup of the kontaktpersoner of their own municipality, but creates, deactivates or
reactivates nobody; a kontaktperson manages no one.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from dialogs.types import Role
from storage.models import StaffUser, YoungPerson


def visible_young_people(staff: StaffUser, now: datetime) -> sa.ColumnElement[bool]:
    """A WHERE clause on ``YoungPerson``: true for exactly the young people ``staff`` may see.

    ``staff`` must be loaded in the session that runs the query, so its role and state are
    current.
    """
    if not staff.is_active or staff.municipality_id is None:
        return sa.false()
    own_municipality = YoungPerson.municipality_id == staff.municipality_id
    if staff.role is Role.COORDINATOR:
        return own_municipality
    if staff.role is Role.KONTAKTPERSON:
        away = aliased(StaffUser)
        covered_for = sa.select(away.id).where(
            away.backup_id == staff.id,
            away.municipality_id == staff.municipality_id,
            away.is_absent(now),
        )
        return sa.and_(
            own_municipality,
            sa.or_(
                YoungPerson.kontaktperson_id == staff.id,
                YoungPerson.kontaktperson_id.in_(covered_for),
            ),
        )
    return sa.false()  # admins, and any role added later until it is given a rule here


def can_see(session: Session, staff: StaffUser, young_person_id: int, now: datetime) -> bool:
    """Whether ``staff`` may see this young person now (an unknown id: no)."""
    return bool(
        session.scalar(
            sa.select(
                sa.exists().where(
                    YoungPerson.id == young_person_id,
                    YoungPerson.erased_at.is_(None),
                    visible_young_people(staff, now),
                )
            )
        )
    )


def covering_for(session: Session, staff: StaffUser, now: datetime) -> list[StaffUser]:
    """The colleagues who are away now and whose young people ``staff`` covers as their backup."""
    if not staff.is_active or staff.role is not Role.KONTAKTPERSON:
        return []
    return list(
        session.scalars(
            sa.select(StaffUser)
            .where(
                StaffUser.backup_id == staff.id,
                StaffUser.municipality_id == staff.municipality_id,
                StaffUser.is_absent(now),
            )
            .order_by(StaffUser.name, StaffUser.id)
        ).all()
    )


def manageable_staff(staff: StaffUser) -> sa.ColumnElement[bool]:
    """A WHERE clause on ``StaffUser``: the accounts ``staff`` may open and change."""
    if not staff.is_active:
        return sa.false()
    if staff.role is Role.ADMIN:
        return sa.true()
    if staff.role is Role.COORDINATOR and staff.municipality_id is not None:
        return sa.and_(
            StaffUser.municipality_id == staff.municipality_id,
            StaffUser.role == Role.KONTAKTPERSON,
        )
    return sa.false()


def can_manage(session: Session, staff: StaffUser, staff_id: int) -> bool:
    return bool(
        session.scalar(
            sa.select(sa.exists().where(StaffUser.id == staff_id, manageable_staff(staff)))
        )
    )


def can_manage_accounts(staff: StaffUser) -> bool:
    """Create, deactivate and reactivate accounts and create municipalities: admins only."""
    return staff.is_active and staff.role is Role.ADMIN
