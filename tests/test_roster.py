"""The young people's list and kontaktpersoner through the real app, on both databases: the list's
filters (age, status, tags, kontaktperson, channel, days since contact), assigning one young
person and many, each change audited, and an open handoff that follows the new kontaktperson."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dialogs.types import HandoffPriority, HandoffReason, YoungPersonStatus
from storage import handoffs
from storage.db import Database
from storage.models import (
    AuditEvent,
    Handoff,
    ScheduledItem,
    StaffAlert,
    YoungPerson,
    YoungPersonTag,
    utcnow,
)
from tests.staff_world import StaffSite, csrf_token, staff_site

NAMES = ("Mads", "Sara", "Emil", "Freja")


@dataclass
class Site(StaffSite):
    def kontaktperson(self, name: str) -> int | None:
        with self.runtime.database.session() as session:
            return session.get_one(YoungPerson, self.world.people[name]).kontaktperson_id

    def assigned_events(self) -> list[AuditEvent]:
        with self.runtime.database.session() as session:
            return list(
                session.scalars(
                    sa.select(AuditEvent)
                    .where(AuditEvent.action == "young_person.assigned")
                    .order_by(AuditEvent.id)
                )
            )


@pytest.fixture
def site(database: Database) -> Iterator[Site]:
    with staff_site(database, Site) as built:
        yield built


def listed(client: TestClient, query: str = "") -> set[str]:
    response = client.get("/young-people" + query)
    assert response.status_code == 200
    return {name for name in NAMES if f">{name}</a>" in response.text}


def post(client: TestClient, page: str, action: str, data: dict[str, object]) -> int:
    token = csrf_token(client.get(page).text)
    response = client.post(action, data={"csrf_token": token, **data}, follow_redirects=False)
    return response.status_code


# ---------------------------------------------------------------------------- the list's filters


def test_the_list_filters_on_age_status_tags_kontaktperson_channel_and_contact(site: Site) -> None:
    today = utcnow().date()
    with site.runtime.database.session() as session:
        mads = session.get_one(YoungPerson, site.world.people["mads"])
        sara = session.get_one(YoungPerson, site.world.people["sara"])
        emil = session.get_one(YoungPerson, site.world.people["emil"])
        mads.birth_date = date(today.year - 16, 1, 1)
        sara.birth_date = date(today.year - 22, 1, 1)
        emil.birth_date = date(today.year - 19, 1, 1)
        sara.status = YoungPersonStatus.OPTED_OUT
        mads.phone = "+4520000001"
        emil.telegram_chat_id = 4242
        mads.last_inbound_at = utcnow() - timedelta(days=2)
        sara.last_inbound_at = utcnow() - timedelta(days=40)
        session.add(YoungPersonTag(young_person_id=emil.id, tag="FGU"))
    carsten = site.browser("carsten")
    ali = site.world.staff["ali"]
    assert listed(carsten, "?min_age=18") == {"Sara", "Emil"}
    assert listed(carsten, "?min_age=18&max_age=20") == {"Emil"}
    # A list shows opted-out young people too, when asked for.
    assert listed(carsten, "?status=opted_out") == {"Sara"}
    assert listed(carsten, "?status=invited&status=opted_out") == {"Mads", "Sara", "Emil"}
    assert listed(carsten, "?tag=FGU") == {"Emil"}
    assert listed(carsten, f"?kontaktperson={ali}") == {"Sara"}
    assert listed(carsten, "?channel=sms") == {"Mads"}
    assert listed(carsten, "?channel=telegram") == {"Emil"}
    # Days since the young person last wrote: never having written counts as long ago.
    assert listed(carsten, "?min_days=30") == {"Sara", "Emil"}
    assert listed(carsten, "?max_days=7") == {"Mads"}
    assert listed(carsten, "?q=e&min_days=30") == {"Emil"}
    # A filter that cannot be used is named, and the list is not filtered by it.
    page = carsten.get("/young-people?min_age=abc").text
    assert "Skriv et helt tal fra 0 til 120." in page
    assert listed(carsten, "?min_age=abc") == {"Mads", "Sara", "Emil"}


def test_a_kontaktperson_filters_only_their_own_young_people(site: Site) -> None:
    with site.runtime.database.session() as session:
        session.add(YoungPersonTag(young_person_id=site.world.people["mads"], tag="Sport"))
        session.add(YoungPersonTag(young_person_id=site.world.people["sara"], tag="Hemmeligt"))
    karin = site.browser("karin")
    page = karin.get("/young-people").text
    assert 'name="kontaktperson"' not in page  # no one else's young people to filter on
    assert 'value="Sport"' in page
    assert "Hemmeligt" not in page  # nor the tags of young people she does not see
    assert listed(karin, "?tag=Sport") == {"Mads"}
    assert 'action="/young-people/assign"' not in page
    assert listed(karin, "?min_age=0") == {"Mads"}
    assert listed(karin, f"?kontaktperson={site.world.staff['ali']}") == {"Mads"}
    assert (
        "Vælg en kontaktperson fra listen."
        in karin.get(f"/young-people?kontaktperson={site.world.staff['ali']}").text
    )


# ---------------------------------------------------------------------------- assigning


def test_a_coordinator_assigns_one_young_person_and_it_is_audited(site: Site) -> None:
    carsten = site.browser("carsten")
    emil = site.world.people["emil"]
    page = f"/young-people/{emil}"
    karin = site.world.staff["karin"]
    assert post(carsten, page, f"{page}/kontaktperson", {"kontaktperson": karin}) == 303
    assert site.kontaktperson("emil") == karin
    [event] = site.assigned_events()
    assert event.young_person_id == emil
    assert event.staff_id == site.world.staff["carsten"]
    assert event.details["kontaktperson_id"] == karin
    assert event.details["before"] is None
    assert "Emil" in listed(site.browser("karin"))
    # The same choice again changes nothing and audits nothing more.
    assert post(carsten, page, f"{page}/kontaktperson", {"kontaktperson": karin}) == 303
    assert len(site.assigned_events()) == 1


def test_only_an_active_kontaktperson_of_the_same_municipality_can_be_chosen(site: Site) -> None:
    carsten = site.browser("carsten")
    emil = site.world.people["emil"]
    page = f"/young-people/{emil}"
    for wrong in (site.world.staff["ole"], site.world.staff["olga"], site.world.staff["carsten"]):
        response = carsten.post(
            f"{page}/kontaktperson",
            data={"csrf_token": csrf_token(carsten.get(page).text), "kontaktperson": wrong},
        )
        assert response.status_code == 400
        assert "Vælg en aktiv kontaktperson fra din kommune." in response.text
    assert site.kontaktperson("emil") is None
    # A kontaktperson cannot reassign, not even their own young person, one or in bulk.
    karin = site.browser("karin")
    mads = f"/young-people/{site.world.people['mads']}"
    ali = site.world.staff["ali"]
    assert post(karin, mads, f"{mads}/kontaktperson", {"kontaktperson": ali}) == 403
    assert site.kontaktperson("mads") == site.world.staff["karin"]
    token = csrf_token(karin.get("/young-people").text)
    response = karin.post(
        "/young-people/assign",
        data={"csrf_token": token, "person": [site.world.people["mads"]], "kontaktperson": ali},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert site.kontaktperson("mads") == site.world.staff["karin"]
    assert site.assigned_events() == []


def test_bulk_assignment_changes_each_chosen_young_person_and_audits_each(site: Site) -> None:
    carsten = site.browser("carsten")
    ali = site.world.staff["ali"]
    people = site.world.people
    data = {"person": [people["mads"], people["sara"], people["emil"]], "kontaktperson": ali}
    token = csrf_token(carsten.get("/young-people").text)
    response = carsten.post(
        "/young-people/assign",
        data={"csrf_token": token, "back": "status=invited", **data},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/young-people?status=invited&assigned=2"
    assert "2 unge har fået en ny kontaktperson." in carsten.get(response.headers["location"]).text
    assert {site.kontaktperson(n) for n in ("mads", "sara", "emil")} == {ali}
    events = site.assigned_events()
    assert sorted(e.young_person_id or 0 for e in events) == sorted(
        [people["mads"], people["emil"]]
    )
    assert all(e.details["bulk"] for e in events)


def test_bulk_assignment_takes_a_long_list(site: Site) -> None:
    with site.runtime.database.session() as session:
        place = site.world.places["aarhus"]
        many = [
            YoungPerson(municipality_id=place, first_name=f"Ung{i}", birth_date=date(2008, 1, 1))
            for i in range(30)
        ]
        session.add_all(many)
        session.flush()
        ids = [person.id for person in many]
    carsten = site.browser("carsten")
    token = csrf_token(carsten.get("/young-people").text)
    response = carsten.post(
        "/young-people/assign",
        data={"csrf_token": token, "person": ids, "kontaktperson": site.world.staff["ali"]},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/young-people?assigned=30"
    assert len(site.assigned_events()) == 30


def test_bulk_assignment_with_anyone_outside_the_municipality_changes_nobody(site: Site) -> None:
    carsten = site.browser("carsten")
    people = site.world.people
    token = csrf_token(carsten.get("/young-people").text)
    response = carsten.post(
        "/young-people/assign",
        data={
            "csrf_token": token,
            "person": [people["emil"], people["freja"]],
            "kontaktperson": site.world.staff["karin"],
        },
        follow_redirects=False,
    )
    assert response.status_code == 404
    assert "Freja" not in response.text
    assert site.kontaktperson("emil") is None
    # Nobody chosen, or no kontaktperson chosen: the list says what is missing.
    response = carsten.post(
        "/young-people/assign",
        data={"csrf_token": token, "kontaktperson": site.world.staff["karin"]},
    )
    assert response.status_code == 400
    assert "Vælg mindst én ung." in response.text
    response = carsten.post(
        "/young-people/assign",
        data={"csrf_token": token, "person": [people["emil"]], "kontaktperson": ""},
    )
    assert response.status_code == 400
    assert re.search(r'id="pick-\d+" checked', response.text)  # the choice is kept
    assert site.assigned_events() == []


def test_an_open_handoff_follows_the_new_kontaktperson(site: Site) -> None:
    now = utcnow()
    with site.runtime.database.session() as session:
        person = session.get_one(YoungPerson, site.world.people["mads"])
        handoff = handoffs.open_handoff(
            session,
            person,
            reason=HandoffReason.ASKED,
            priority=HandoffPriority.NORMAL,
            now=now,
        )
        handoff_id = handoff.id
        assert handoff.assignee_id == site.world.staff["karin"]
    carsten = site.browser("carsten")
    page = f"/young-people/{site.world.people['mads']}"
    ali = site.world.staff["ali"]
    assert post(carsten, page, f"{page}/kontaktperson", {"kontaktperson": ali}) == 303
    with site.runtime.database.session() as session:
        assert session.get_one(Handoff, handoff_id).assignee_id == ali
        alerts = session.scalars(sa.select(StaffAlert.staff_id)).all()
        assert ali in alerts
        notify = session.scalars(
            sa.select(ScheduledItem).where(ScheduledItem.kind == handoffs.NOTIFY)
        ).all()
        assert [ali] in [item.payload["staff_ids"] for item in notify]
    [event] = site.assigned_events()
    assert event.details["handoffs"] == [handoff_id]
    # Ali's inbox has Mads now; Karin's does not.
    assert "Mads" in site.browser("ali").get("/inbox").text
    assert "Mads" not in site.browser("karin").get("/inbox").text
