"""Every route of the app, for every role: nothing outside what the role may see or change.

The walk reads the routes from the app itself, so a new page, API route or export is walked the
day it is added; a path parameter the walk does not know fails the test until it is taught here.
Staff and young people come from ``tests/staff_world.py``: two municipalities, two kontaktpersoner
in one of them, a coordinator in each and an admin. Every page is asked for as each of them, and
every young-person route for every young person:

- a young person outside the role's view answers 401, 403 or 404 (or sends to the sign-in), and
  no answer, whatever the route, carries the name of a young person the role may not see;
- a POST about a young person outside the view changes nothing in the database;
- signed out, every route but the public ones (the home page, health, metrics, sign-in, the
  provider webhooks, which check their own signatures) sends to the sign-in or answers 401.

The live stream's scoping is read event by event in ``tests/test_live.py``; here it must refuse
the signed-out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy.orm import Session

from bot.campaigns import Spec
from bot.runtime import Runtime
from bot.web.app import create_app
from storage import plans, tokens
from storage.db import Database
from storage.models import (
    AuditEvent,
    Base,
    CannedReply,
    ImportDraft,
    StaffSession,
    StaffUser,
    YoungPerson,
)
from tests.conftest import make_settings
from tests.staff_world import PEOPLE, STAFF, World, build_world, csrf_token, sign_in

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SIGNED_OUT = "signed out"
ROLES = [SIGNED_OUT, *STAFF]
NAMES = {key: key.capitalize() for key in PEOPLE}
SEES: dict[str, set[str]] = {
    SIGNED_OUT: set(),
    "ada": set(),
    "carsten": {"mads", "sara", "emil"},
    "karin": {"mads"},
    "ali": {"sara"},
    "olga": {"freja"},
    "ole": {"freja"},
}
PUBLIC = {"/", "/healthz", "/readyz", "/metrics", "/sign-in"}
STREAMS = {"/live"}
# Tables a refused request may still write to: who tried is worth keeping.
LOGS = {AuditEvent.__tablename__, StaffSession.__tablename__, "sign_in_throttle", "api_token"}
PERSON_PARAMS = {"young_person_id", "person_id"}
OWNED = {"goal_id", "sub_goal_id", "meeting_id"}
REFUSED = {401, 403, 404, 405}
# Signing out ends the walk's own session; it is tested in tests/test_auth.py.
SKIPPED = {"/sign-out"}
COORDINATORS = {"aarhus": frozenset({"carsten"}), "odense": frozenset({"olga"})}
KONTAKTPERSONER = {"aarhus": frozenset({"karin", "ali"}), "odense": frozenset({"ole"})}


@dataclass
class Site:
    app: Any
    runtime: Runtime
    world: World
    clients: dict[str, TestClient]
    tokens: dict[str, str]
    campaigns: dict[str, int]
    owned: dict[str, dict[str, int]]  # young person -> goal_id, sub_goal_id, meeting_id
    canned: dict[str, int]  # municipality -> a canned reply


@dataclass(frozen=True)
class Case:
    """One way to fill a route's path: the values, and who may reach what it names (None: the
    route names nothing in particular, the role decides)."""

    values: dict[str, Any]
    allowed: frozenset[str] | None


def _plan(session: Session, person: YoungPerson) -> dict[str, int]:
    goal = plans.add_goal(session, person, title="Mål", now=NOW)
    sub_goal = plans.add_sub_goal(session, goal, title="Skridt", now=NOW)
    meeting = plans.create_meeting(
        session, person, starts_at=NOW + timedelta(days=3), now=NOW, place="Torvet"
    )
    session.flush()
    return {"goal_id": goal.id, "sub_goal_id": sub_goal.id, "meeting_id": meeting.id}


@pytest.fixture
def site(database: Database) -> Iterator[Site]:
    runtime = Runtime(settings=make_settings(), database=database)
    with database.session() as session:
        world = build_world(session)
        issued = {
            who: tokens.issue(
                session, session.get_one(StaffUser, world.staff[who]), name="walk", now=NOW
            )[1]
            for who in STAFF
        }
        owned = {
            name: _plan(session, session.get_one(YoungPerson, person_id))
            for name, person_id in world.people.items()
        }
        canned = {}
        for place, place_id in world.places.items():
            reply = CannedReply(municipality_id=place_id, title="Hej", text="Hej, det er mig.")
            session.add(reply)
            session.flush()
            canned[place] = reply.id
    campaigns = {
        place: runtime.campaigns.create(
            Spec(municipality_id=place_id, name=f"Walk {place}", template={"da": "Hej"})
        )
        for place, place_id in world.places.items()
    }
    app = create_app(runtime)
    clients: dict[str, TestClient] = {}
    with TestClient(app) as anonymous:
        clients[SIGNED_OUT] = anonymous
        for who in STAFF:
            client = TestClient(app)
            client.__enter__()
            response = sign_in(client, who)
            assert response.status_code == 303, (who, response.status_code)
            clients[who] = client
        try:
            yield Site(app, runtime, world, clients, issued, campaigns, owned, canned)
        finally:
            for who in STAFF:
                clients[who].__exit__(None, None, None)


def _routes(app: Any) -> list[tuple[str, str]]:
    """Every method and path of the app (the provider webhooks are left out of its schema)."""
    return [
        (method.upper(), path)
        for path, methods in app.openapi()["paths"].items()
        for method in sorted(methods)
    ]


def _params(path: str) -> list[str]:
    return re.findall(r"{(\w+)(?::\w+)?}", path)


def _fill(path: str, values: dict[str, Any]) -> str:
    return re.sub(r"{(\w+)(?::\w+)?}", lambda m: str(values[m.group(1)]), path)


def _seeing(*names: str) -> frozenset[str]:
    return frozenset(who for who in ROLES if all(name in SEES[who] for name in names))


def _cases(site: Site, path: str) -> list[Case]:
    params = _params(path)
    person = next((p for p in params if p in PERSON_PARAMS), None)
    owned = [p for p in params if p in OWNED]
    known = {person, *owned}
    cases: list[Case] = []
    if person is not None:
        for name, person_id in site.world.people.items():
            mine = site.owned[name]
            seeing = _seeing(name)
            if path.startswith("/data-protection"):  # erasure: the coordinators only
                seeing -= _not_for(path)
            cases.append(Case({person: person_id} | {p: mine[p] for p in owned}, seeing))
            for other in PEOPLE if owned else ():
                if other != name:  # someone else's goal or meeting under this young person
                    theirs = site.owned[other]
                    values = {person: person_id} | {p: theirs[p] for p in owned}
                    cases.append(Case(values, frozenset()))  # never, for anyone
    elif "staff_id" in params:
        known.add("staff_id")
        cases.append(Case({"staff_id": site.world.staff["ali"]}, frozenset({"ada", "carsten"})))
        cases.append(Case({"staff_id": site.world.staff["ole"]}, frozenset({"ada", "olga"})))
    elif "campaign_id" in params:
        known.add("campaign_id")
        for place, campaign in site.campaigns.items():
            cases.append(Case({"campaign_id": campaign}, COORDINATORS[place]))
    elif "reply_id" in params:
        known.add("reply_id")
        for place, reply in site.canned.items():
            cases.append(Case({"reply_id": reply}, COORDINATORS[place] | KONTAKTPERSONER[place]))
    elif "key" in params:
        # A municipality's own dialog text: always the reader's own municipality's.
        known |= {"language", "key"}
        cases.append(Case({"language": "ar", "key": "dreams.dream.text"}, None))
    elif "draft_id" in params:
        # An uploaded import: only the coordinator who uploaded it.
        known.add("draft_id")
        for place, coordinators in COORDINATORS.items():
            cases.append(Case({"draft_id": _import_draft(site, place)}, coordinators))
    else:
        cases.append(Case({}, None))
    unknown = set(params) - known
    assert not unknown, f"the walk does not know {sorted(unknown)} in {path}: teach it"
    return cases


def _import_draft(site: Site, place: str) -> int:
    """An import uploaded by the municipality's coordinator (a header row only: no names)."""
    (coordinator,) = COORDINATORS[place]
    with site.runtime.database.session() as session:
        draft = ImportDraft(
            municipality_id=site.world.places[place],
            staff_id=site.world.staff[coordinator],
            filename="unge.csv",
            content=b"fornavn;f\xc3\xb8dselsdato;telefon;kontaktperson\n",
        )
        session.add(draft)
        session.flush()
        return draft.id


def _not_for(path: str) -> frozenset[str]:
    """Roles that may not use a route that names nothing in particular."""
    if path.startswith("/admin"):
        return frozenset({"karin", "ali", "ole"})
    if path.startswith(("/api/", "/campaigns")):
        return frozenset({"karin", "ali", "ole", "ada"})
    if path.startswith(("/young-people", "/inbox", "/canned-replies")):
        return frozenset({"ada"})
    if path.startswith("/data-protection"):
        return frozenset({"karin", "ali", "ole", "ada"})
    if path.startswith(("/texts", "/import")):
        return frozenset({"karin", "ali", "ole", "ada"})
    if path.startswith("/results"):
        return frozenset({"karin", "ali", "ole", "ada"})
    return frozenset()


def _snapshot(database: Database) -> dict[str, list[str]]:
    """Every row of every table but the logs, to compare before and after a refused POST."""
    seen: dict[str, list[str]] = {}
    with database.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            if table.name in LOGS:
                continue
            seen[table.name] = sorted(
                repr(tuple(row)) for row in connection.execute(sa.select(table))
            )
    return seen


def _ask(site: Site, who: str, method: str, path: str) -> Response:
    client = site.clients[who]
    headers: dict[str, str] = {}
    if path.startswith("/api/"):
        if who != SIGNED_OUT:
            headers["Authorization"] = f"Bearer {site.tokens[who]}"
        client = site.clients[SIGNED_OUT]  # the API takes the token, not the cookie
        if method == "GET":
            return client.get(path, headers=headers, follow_redirects=False)
        return client.request(method, path, headers=headers, json={}, follow_redirects=False)
    if method == "GET":
        return client.get(path, follow_redirects=False)
    data = {"csrf_token": csrf_token(client.get("/staff").text)} if who != SIGNED_OUT else {}
    return client.request(method, path, data=data, follow_redirects=False)


def _to_sign_in(response: Response) -> bool:
    location = response.headers.get("location", "")
    return response.status_code in (302, 303) and location.startswith("/sign-in")


def test_every_route_for_every_role_shows_and_changes_only_what_the_role_may(site: Site) -> None:
    walked = 0
    problems: list[str] = []
    for method, template in _routes(site.app):
        if template in STREAMS or template in SKIPPED:
            continue
        for case in _cases(site, template):
            path = _fill(template, case.values)
            for who in ROLES:
                public = template in PUBLIC
                refused = (who == SIGNED_OUT and not public) or (
                    who not in case.allowed if case.allowed is not None else who in _not_for(path)
                )
                if method != "GET" and not refused:
                    continue  # allowed changes are the feature tests' business
                before = _snapshot(site.runtime.database) if method != "GET" else None
                response = _ask(site, who, method, path)
                walked += 1
                where = f"{method} {path} as {who}"
                hidden = [NAMES[name] for name in PEOPLE if name not in SEES[who]]
                leaked = [name for name in hidden if re.search(rf"\b{name}\b", response.text)]
                if leaked:
                    problems.append(f"{where}: shows {leaked}")
                if refused and response.status_code not in REFUSED and not _to_sign_in(response):
                    problems.append(f"{where}: answered {response.status_code}")
                if before is not None:
                    after = _snapshot(site.runtime.database)
                    changed = sorted(t for t in after if after[t] != before[t])
                    if changed:
                        problems.append(f"{where}: changed {changed}")
    assert walked > 300, walked
    assert problems == []


def test_the_live_stream_refuses_the_signed_out(site: Site) -> None:
    routes = {template for _, template in _routes(site.app)}
    assert routes >= STREAMS
    for path in STREAMS:
        response = site.clients[SIGNED_OUT].get(path, follow_redirects=False)
        assert response.status_code == 401 or _to_sign_in(response)
