"""The people most tests meet: Aarhus Kommune, Karin the kontaktperson, Mads who is 17."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from dialogs.types import Role
from storage.models import Municipality, StaffUser, YoungPerson


def kontaktperson(place: Municipality, name: str = "Karin Kontakt", **fields: object) -> StaffUser:
    email = name.split()[0].lower() + "@x.dk"
    return StaffUser(
        name=name,
        email=email,
        role=Role.KONTAKTPERSON,
        password_hash="x",
        municipality=place,
        **fields,
    )


def add_mads(session: Session, **fields: object) -> YoungPerson:
    """Mads, with Karin as his kontaktperson, in Aarhus Kommune; ``fields`` override."""
    place = Municipality(name="Aarhus Kommune", slug="aarhus")
    values: dict[str, object] = {
        "municipality": place,
        "first_name": "Mads",
        "birth_date": date(2009, 3, 1),
        "kontaktperson": kontaktperson(place),
    }
    values.update(fields)
    person = YoungPerson(**values)
    session.add(person)
    session.flush()
    return person
