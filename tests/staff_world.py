"""Staff of two municipalities for the sign-in, access and admin tests, and a browser that signs in.

Aarhus: Karin and Ali (kontaktpersoner), Carsten (coordinator); Odense: Ole (kontaktperson),
Olga (coordinator); Ada the admin belongs to no municipality. Young people: Mads (Karin's), Sara
(Ali's), Emil (nobody's yet) in Aarhus, and Freja (Ole's) in Odense. Everyone's password is
``PASSWORD``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy.orm import Session

from bot.passwords import hash_password
from bot.runtime import Runtime
from bot.settings import Settings
from bot.web.app import create_app
from dialogs.types import Role
from storage.db import Database
from storage.models import Municipality, StaffUser, YoungPerson
from tests.conftest import make_settings

PASSWORD = "en lang og hemmelig sætning"
PASSWORD_HASH = hash_password(PASSWORD)  # once: argon2 is slow on purpose

STAFF: dict[str, tuple[str, Role, str | None]] = {
    "ada": ("Ada Admin", Role.ADMIN, None),
    "carsten": ("Carsten Koordinator", Role.COORDINATOR, "aarhus"),
    "karin": ("Karin Kontakt", Role.KONTAKTPERSON, "aarhus"),
    "ali": ("Ali Mentor", Role.KONTAKTPERSON, "aarhus"),
    "olga": ("Olga Koordinator", Role.COORDINATOR, "odense"),
    "ole": ("Ole Kontakt", Role.KONTAKTPERSON, "odense"),
}
PEOPLE: dict[str, tuple[str, str | None]] = {
    "mads": ("aarhus", "karin"),
    "sara": ("aarhus", "ali"),
    "emil": ("aarhus", None),
    "freja": ("odense", "ole"),
}


def email(who: str) -> str:
    return f"{who}@kommune.dk"


@dataclass
class World:
    places: dict[str, int]
    staff: dict[str, int]
    people: dict[str, int]


def build_world(session: Session) -> World:
    places = {
        "aarhus": Municipality(name="Aarhus Kommune", slug="aarhus"),
        "odense": Municipality(name="Odense Kommune", slug="odense"),
    }
    session.add_all(places.values())
    staff = {
        key: StaffUser(
            name=name,
            email=email(key),
            role=role,
            password_hash=PASSWORD_HASH,
            municipality=places[place] if place else None,
        )
        for key, (name, role, place) in STAFF.items()
    }
    session.add_all(staff.values())
    people = {
        key: YoungPerson(
            municipality=places[place],
            first_name=key.capitalize(),
            birth_date=date(2008, 5, 1),
            kontaktperson=staff[kp] if kp else None,
        )
        for key, (place, kp) in PEOPLE.items()
    }
    session.add_all(people.values())
    session.flush()
    return World(
        places={k: v.id for k, v in places.items()},
        staff={k: v.id for k, v in staff.items()},
        people={k: v.id for k, v in people.items()},
    )


_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(page: str) -> str:
    found = _TOKEN.search(page)
    assert found is not None, "no csrf_token in the page"
    return found.group(1)


def sign_in(
    client: TestClient,
    who_or_email: str,
    password: str = PASSWORD,
    *,
    next_path: str | None = None,
    **headers: str,
) -> Response:
    """Fill in and send the sign-in form as a browser would; the redirect is not followed."""
    address = who_or_email if "@" in who_or_email else email(who_or_email)
    form = client.get("/sign-in", headers=headers)
    data = {"email": address, "password": password, "csrf_token": csrf_token(form.text)}
    if next_path is not None:
        data["next"] = next_path
    return client.post("/sign-in", data=data, headers=headers, follow_redirects=False)


def post_form(client: TestClient, page: str, action: str, **data: Any) -> Response:
    """Open ``page``, then post ``data`` to ``action`` with the page's CSRF token."""
    token = csrf_token(client.get(page).text)
    return client.post(action, data={"csrf_token": token, **data}, follow_redirects=False)


@dataclass
class StaffSite:
    """The app over a :class:`World`, for tests that sign staff in through a ``TestClient``."""

    app: FastAPI
    runtime: Runtime
    world: World

    def browser(self, who: str | None = None) -> TestClient:
        """A client of its own, signed in as ``who`` (or not signed in)."""
        client = TestClient(self.app)
        if who is not None:
            assert sign_in(client, who).status_code == 303
        return client


Site = TypeVar("Site", bound=StaffSite)


@contextmanager
def staff_site(
    database: Database,
    kind: type[Site],
    *,
    settings: Settings | None = None,
    prepare: Callable[[Session, World], object] | None = None,
) -> Iterator[Site]:
    """Build the world (and whatever ``prepare`` adds in the same transaction), then serve the
    app with its lifespan running."""
    runtime = Runtime(settings=settings or make_settings(), database=database)
    with database.session() as session:
        world = build_world(session)
        if prepare is not None:
            prepare(session, world)
    app = create_app(runtime)
    with TestClient(app):
        yield kind(app, runtime, world)
