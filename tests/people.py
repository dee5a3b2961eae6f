"""The people most tests meet: Aarhus Kommune, Karin the kontaktperson, Mads who is 17."""

from __future__ import annotations

from datetime import date, time

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


def at_any_hour(person: YoungPerson) -> YoungPerson:
    """No quiet hours in the young person's municipality, for tests on the real clock that are
    not about quiet hours: what the bot starts on its own then goes out at whatever hour they
    run (quiet hours are tested with a fixed clock in tests/test_timing.py and
    tests/test_followups.py)."""
    place = person.municipality
    place.quiet_hours_start = place.quiet_hours_end = time(0)
    return person
