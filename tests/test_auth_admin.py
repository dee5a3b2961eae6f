"""Managing municipalities and staff through the real app, on both databases: admins run
accounts, coordinators cover absences in their own municipality, kontaktpersoner get 403."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from dialogs.types import Role
from storage.db import Database
from storage.models import ApiToken, AuditEvent, Municipality, StaffSession, StaffUser
from storage.tokens import hash_token
from tests.staff_world import (
    StaffSite,
    csrf_token,
    email,
    post_form,
    sign_in,
    staff_site,
)

COPENHAGEN = ZoneInfo("Europe/Copenhagen")
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@dataclass
class Site(StaffSite):
    def staff(self, who: str) -> StaffUser:
        with self.runtime.database.session() as session:
            return session.get_one(StaffUser, self.world.staff[who])

    def events(self, action: str) -> list[AuditEvent]:
        with self.runtime.database.session() as session:
            return list(
                session.scalars(
                    sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
                )
            )


@pytest.fixture
def site(database: Database) -> Iterator[Site]:
    with staff_site(database, Site) as built:
        yield built


def _pages(site: Site) -> list[str]:
    ids = site.world.staff
    return [
        "/admin",
        "/admin/staff",
        f"/admin/staff?municipality={site.world.places['aarhus']}",
        "/admin/staff/new",
        f"/admin/staff/{ids['ali']}",
    ]


def _actions(site: Site) -> list[tuple[str, dict[str, str]]]:
    ids = site.world.staff
    return [
        ("/admin/municipalities", {"name": "Vejle Kommune", "slug": "vejle"}),
        ("/admin/staff", {"name": "Ny", "email": "ny@kommune.dk", "role": "kontaktperson"}),
        (f"/admin/staff/{ids['ali']}/absence", {"absent_from": "2026-12-01"}),
        (f"/admin/staff/{ids['ali']}/deactivate", {}),
        (f"/admin/staff/{ids['ali']}/reactivate", {}),
        (f"/admin/staff/{ids['ali']}/unlock", {}),
    ]


def _snapshot(site: Site) -> tuple[object, ...]:
    with site.runtime.database.session() as session:
        return (
            session.scalar(sa.select(sa.func.count()).select_from(Municipality)),
            session.scalar(sa.select(sa.func.count()).select_from(StaffUser)),
            tuple(
                session.execute(
                    sa.select(
                        StaffUser.id,
                        StaffUser.is_active,
                        StaffUser.absent_from,
                        StaffUser.backup_id,
                    ).order_by(StaffUser.id)
                ).all()
            ),
        )


# ---------------------------------------------------------------------------- who may come in


def test_kontaktpersoner_get_403_on_every_admin_page_and_action(site: Site) -> None:
    karin = site.browser("karin")
    before = _snapshot(site)
    for page in _pages(site):
        response = karin.get(page)
        assert response.status_code == 403, page
        assert "Du har ikke adgang til denne side." in response.text
    token = csrf_token(karin.get("/staff").text)
    for action, data in _actions(site):
        response = karin.post(action, data={"csrf_token": token, **data})
        assert response.status_code == 403, action
    assert _snapshot(site) == before


def test_without_signing_in_every_admin_page_and_action_goes_to_sign_in(site: Site) -> None:
    anonymous = site.browser()
    before = _snapshot(site)
    for page in _pages(site):
        response = anonymous.get(page, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/sign-in?next=")
    for action, data in _actions(site):
        response = anonymous.post(action, data=data, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/sign-in"
    assert _snapshot(site) == before


def test_every_admin_action_without_the_csrf_token_is_403_and_changes_nothing(site: Site) -> None:
    ada = site.browser("ada")
    before = _snapshot(site)
    for action, data in _actions(site):
        for token in (None, "x" * 43):
            form = dict(data) if token is None else {"csrf_token": token, **data}
            response = ada.post(action, data=form)
            assert response.status_code == 403, action
            assert "Formularen kunne ikke sendes" in response.text
    assert _snapshot(site) == before
    changes = ("municipality.created", "staff.created", "staff.absence_set", "staff.deactivated")
    assert all(site.events(action) == [] for action in changes)


def test_coordinators_manage_absences_in_their_own_municipality_only(site: Site) -> None:
    carsten = site.browser("carsten")
    ids = site.world.staff
    for page in ("/admin", "/admin/staff/new"):
        assert carsten.get(page).status_code == 403
    listing = carsten.get(f"/admin/staff?municipality={site.world.places['odense']}")
    # Whatever is asked for, a coordinator's list is their own municipality's.
    assert listing.status_code == 200
    assert "Medarbejdere i Aarhus Kommune" in listing.text
    assert "Ole Kontakt" not in listing.text and "Olga" not in listing.text
    assert f'href="/admin/staff/{ids["ali"]}"' in listing.text
    assert f'href="/admin/staff/{ids["carsten"]}"' not in listing.text
    # Another municipality's kontaktperson, and an account that is not a kontaktperson: 404.
    for other in ("ole", "carsten", "ada"):
        assert carsten.get(f"/admin/staff/{ids[other]}").status_code == 404
    page = f"/admin/staff/{ids['ali']}"
    assert "Deaktivér kontoen" not in carsten.get(page).text
    response = post_form(
        carsten,
        page,
        f"{page}/absence",
        absent_from="2026-12-21",
        absent_until="2027-01-03",
        backup=str(ids["karin"]),
    )
    assert (response.status_code, response.headers["location"]) == (303, f"{page}?done=absence")
    assert "Fravær og stedfortræder er gemt." in carsten.get(response.headers["location"]).text
    ali = site.staff("ali")
    assert ali.absent_from == datetime(2026, 12, 21, tzinfo=COPENHAGEN)
    # The last day is included: the absence ends when 4 January begins in Denmark.
    assert ali.absent_until == datetime(2027, 1, 4, tzinfo=COPENHAGEN)
    assert ali.backup_id == ids["karin"]
    [event] = site.events("staff.absence_set")
    assert (event.staff_id, event.details["staff_id"]) == (ids["carsten"], ids["ali"])
    assert event.municipality_id == site.world.places["aarhus"]
    # Account changes stay with the admins.
    response = post_form(carsten, page, f"{page}/deactivate")
    assert response.status_code == 403
    assert site.staff("ali").is_active


# ---------------------------------------------------------------------------- accounts


def test_an_admin_creates_a_kontaktperson_who_can_then_sign_in(site: Site) -> None:
    ada = site.browser("ada")
    aarhus = site.world.places["aarhus"]
    page = ada.get(f"/admin/staff/new?municipality={aarhus}")
    assert f'<option value="{aarhus}" selected>Aarhus Kommune</option>' in page.text
    response = post_form(
        ada,
        "/admin/staff/new",
        "/admin/staff",
        name="Nina Ny",
        email="Nina@Kommune.dk",
        role="kontaktperson",
        municipality=str(aarhus),
        language="da",
        password="et langt nyt kodeord",
    )
    assert response.status_code == 303
    found = re.fullmatch(r"/admin/staff/(\d+)\?done=created", response.headers["location"])
    assert found is not None
    with site.runtime.database.session() as session:
        nina = session.get_one(StaffUser, int(found.group(1)))
        assert (nina.email, nina.role, nina.municipality_id) == (
            "nina@kommune.dk",
            Role.KONTAKTPERSON,
            aarhus,
        )
        assert nina.password_hash.startswith("$argon2id$")
    [event] = site.events("staff.created")
    assert event.staff_id == site.world.staff["ada"]
    nina_browser = site.browser()
    assert sign_in(nina_browser, "nina@kommune.dk", "et langt nyt kodeord").status_code == 303


def test_mistakes_in_the_new_staff_form_are_shown_by_their_fields(site: Site) -> None:
    ada = site.browser("ada")
    before = _snapshot(site)
    response = post_form(
        ada,
        "/admin/staff/new",
        "/admin/staff",
        name="Karin To",
        email=email("karin"),
        role="kontaktperson",
        municipality=str(site.world.places["aarhus"]),
        password="et langt nyt kodeord",
    )
    assert response.status_code == 400
    assert f"Der findes allerede en bruger med {email('karin')}." in response.text
    assert 'id="email-error"' in response.text
    assert re.search(r'id="email"[^>]*aria-describedby="email-hint email-error"', response.text)
    assert re.search(r'id="email"[^>]*aria-invalid="true"', response.text)
    assert 'href="#email"' in response.text  # the summary leads to the field
    short = post_form(
        ada,
        "/admin/staff/new",
        "/admin/staff",
        name="X",
        email="x@kommune.dk",
        role="nobody",
        password="kort",
    )
    assert short.status_code == 400
    assert "Vælg en rolle." in short.text and "Adgangskoden skal være mindst 12 tegn." in short.text
    # A kontaktperson must belong to a municipality.
    homeless = post_form(
        ada,
        "/admin/staff/new",
        "/admin/staff",
        name="X",
        email="x@kommune.dk",
        role="kontaktperson",
        password="et langt nyt kodeord",
    )
    assert homeless.status_code == 400 and 'id="municipality-error"' in homeless.text
    assert _snapshot(site) == before


def test_deactivation_ends_every_session_and_token_at_once_and_can_be_undone(site: Site) -> None:
    ada = site.browser("ada")
    karin = site.browser("karin")
    ids = site.world.staff
    with site.runtime.database.session() as session:
        session.add(ApiToken(staff_id=ids["karin"], name="script", token_hash=hash_token("t" * 43)))
    page = f"/admin/staff/{ids['karin']}"
    response = post_form(ada, page, f"{page}/deactivate")
    assert (response.status_code, response.headers["location"]) == (303, f"{page}?done=deactivated")
    assert not site.staff("karin").is_active
    assert karin.get("/staff", follow_redirects=False).status_code == 303
    with site.runtime.database.session() as session:
        [row] = session.scalars(
            sa.select(StaffSession).where(StaffSession.staff_id == ids["karin"])
        ).all()
        assert row.revoked_reason == "deactivated"
    api = site.browser().get("/api/v1/campaigns", headers={"Authorization": "Bearer " + "t" * 43})
    assert api.status_code == 401
    [event] = site.events("staff.deactivated")
    assert event.details == {"staff_id": ids["karin"], "sessions_ended": 1}
    # Never deleted: she is still listed, and can come back.
    assert "Deaktiveret" in ada.get("/admin/staff").text
    response = post_form(ada, page, f"{page}/reactivate")
    assert response.status_code == 303
    assert site.staff("karin").is_active
    assert sign_in(site.browser(), "karin").status_code == 303
    assert len(site.events("staff.reactivated")) == 1


def test_an_admin_cannot_deactivate_themselves(site: Site) -> None:
    ada = site.browser("ada")
    page = f"/admin/staff/{site.world.staff['ada']}"
    assert "Du kan ikke deaktivere din egen konto." in ada.get(page).text
    response = post_form(ada, page, f"{page}/deactivate")
    assert response.status_code == 400
    assert "Du kan ikke deaktivere dig selv." in response.text
    assert site.staff("ada").is_active


def test_an_admin_lifts_a_lockout(site: Site) -> None:
    with time_machine.travel(T0, tick=False):
        for _ in range(5):
            sign_in(site.browser(), "karin", "forkert")
        assert site.staff("karin").locked_until is not None
        ada = site.browser("ada")
        page = f"/admin/staff/{site.world.staff['karin']}"
        assert "Låst efter forkerte forsøg" in ada.get(page).text
        assert post_form(ada, page, f"{page}/unlock").status_code == 303
        assert site.staff("karin").locked_until is None
        assert sign_in(site.browser(), "karin").status_code == 303
    assert len(site.events("staff.unlocked")) == 1


# ---------------------------------------------------------------------------- absences


def test_absence_mistakes_are_refused_with_the_reason(site: Site) -> None:
    ada = site.browser("ada")
    ids = site.world.staff
    page = f"/admin/staff/{ids['ali']}"
    cases = [
        ({"absent_from": "2026-12-10", "absent_until": "2026-12-01"}, "absent_until"),
        ({"absent_from": "i morgen"}, "absent_from"),
        ({"absent_from": "2026-12-10", "absent_until": "9999-12-31"}, "absent_until"),
        ({"absent_until": "2026-12-10"}, "absent_from"),
        ({"absent_from": "2026-12-10", "backup": str(ids["ole"])}, "backup"),  # Odense
        ({"absent_from": "2026-12-10", "backup": str(ids["carsten"])}, "backup"),  # coordinator
        ({"absent_from": "2026-12-10", "backup": str(ids["ali"])}, "backup"),  # himself
        ({"absent_from": "2026-12-10", "backup": "99999"}, "backup"),
    ]
    before = _snapshot(site)
    for data, field in cases:
        response = post_form(ada, page, f"{page}/absence", **data)
        assert response.status_code == 400, data
        assert f'id="{field}-error"' in response.text, data
    assert _snapshot(site) == before
    assert site.events("staff.absence_set") == []


def test_an_absence_is_written_as_people_say_it_and_can_be_removed(site: Site) -> None:
    ada = site.browser("ada")
    page = f"/admin/staff/{site.world.staff['ali']}"
    response = post_form(ada, page, f"{page}/absence", absent_from="24.12.2026")
    assert response.status_code == 303
    ali = site.staff("ali")
    assert ali.absent_from == datetime(2026, 12, 24, tzinfo=COPENHAGEN)
    assert ali.absent_until is None  # until further notice
    text = ada.get(page).text
    assert "Registreret fravær: fra 24. december 2026, indtil videre." in text
    assert post_form(ada, page, f"{page}/absence", clear="1").status_code == 303
    assert site.staff("ali").absent_from is None


def test_the_staff_page_shows_cover_and_absence(site: Site) -> None:
    ids = site.world.staff
    with site.runtime.database.session() as session:
        ali = session.get_one(StaffUser, ids["ali"])
        ali.absent_from = datetime(2026, 12, 1, tzinfo=COPENHAGEN)
        ali.absent_until = datetime(2026, 12, 8, tzinfo=COPENHAGEN)
        ali.backup_id = ids["karin"]
    with time_machine.travel(datetime(2026, 12, 3, 12, tzinfo=UTC), tick=False):
        karin = site.browser("karin").get("/staff").text
        assert "Du har adgang til 2 unge." in karin
        assert "Ali Mentor til og med 7. december 2026" in karin
        ali_page = site.browser("ali").get("/staff").text
        assert "Du er registreret som fraværende fra 1. december 2026 til og med 7." in ali_page
        assert "Karin Kontakt dækker for dig imens." in ali_page
        assert "Du har adgang til 1 ung." in ali_page
        carsten = site.browser("carsten").get("/staff").text
        assert "Du har adgang til 3 unge." in carsten
        assert "Medarbejdere i Aarhus Kommune" in carsten
        ada = site.browser("ada").get("/staff").text
        assert "Du ser ingen unges oplysninger" in ada and "Du har adgang til" not in ada


# ---------------------------------------------------------------------------- municipalities


def test_an_admin_creates_a_municipality(site: Site) -> None:
    ada = site.browser("ada")
    overview = ada.get("/admin").text
    assert "Aarhus Kommune" in overview and "Odense Kommune" in overview
    bad = post_form(ada, "/admin", "/admin/municipalities", name="Vejle", slug="Vejle Kommune!")
    assert bad.status_code == 400 and 'id="slug-error"' in bad.text
    taken = post_form(ada, "/admin", "/admin/municipalities", name="Aarhus 2", slug="aarhus")
    assert taken.status_code == 400
    zone = post_form(
        ada, "/admin", "/admin/municipalities", name="Vejle", slug="vejle", timezone="Mars/Olympus"
    )
    assert zone.status_code == 400 and 'id="timezone-error"' in zone.text
    response = post_form(ada, "/admin", "/admin/municipalities", name="Vejle Kommune", slug="vejle")
    assert (response.status_code, response.headers["location"]) == (
        303,
        "/admin?done=municipality",
    )
    with site.runtime.database.session() as session:
        vejle = session.scalars(sa.select(Municipality).where(Municipality.slug == "vejle")).one()
        assert (vejle.name, vejle.timezone) == ("Vejle Kommune", "Europe/Copenhagen")
    [event] = site.events("municipality.created")
    assert event.staff_id == site.world.staff["ada"]
