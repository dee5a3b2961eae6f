"""Inviting a young person from their page, through the real app on both databases: the Telegram
link, and the SMS invitation queued in the outbox in the young person's language (deferred in
quiet hours), refused without a phone, after an opt-out and within a day of the last one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from dialogs.types import Author, OutboxStatus, Purpose, YoungPersonStatus
from storage.db import Database
from storage.models import AuditEvent, Message, Municipality, OutboxEntry, YoungPerson, utcnow
from tests.conftest import make_settings
from tests.staff_world import StaffSite, World, csrf_token, staff_site

BOT = "stifinder_test_bot"


@dataclass
class Site(StaffSite):
    def page(self, name: str) -> str:
        return f"/young-people/{self.world.people[name]}"

    def post(self, client: TestClient, name: str, action: str) -> tuple[int, str]:
        page = self.page(name)
        token = csrf_token(client.get(page).text)
        response = client.post(f"{page}/{action}", data={"csrf_token": token})
        return response.status_code, response.text

    def queued(self) -> list[tuple[Message, OutboxEntry]]:
        with self.runtime.database.session() as session:
            rows = session.execute(
                sa.select(Message, OutboxEntry)
                .join(OutboxEntry, OutboxEntry.message_id == Message.id)
                .order_by(Message.id)
            ).all()
            session.expunge_all()
            return [(message, entry) for message, entry in rows]

    def set_quiet(self, *, now_is_quiet: bool) -> None:
        with self.runtime.database.session() as session:
            place = session.get_one(Municipality, self.world.places["aarhus"])
            place.quiet_on_weekends = False
            if now_is_quiet:
                local = utcnow().astimezone(ZoneInfo(place.timezone))
                place.quiet_hours_start = (local - timedelta(hours=1)).time().replace(second=0)
                place.quiet_hours_end = (local + timedelta(hours=2)).time().replace(second=0)
            else:
                place.quiet_hours_start = place.quiet_hours_end = time(0, 0)


def _phones_and_languages(session: Session, world: World) -> None:
    for name, phone, language in (("mads", "+4520000001", "ar"), ("sara", "+4520000002", "da")):
        person = session.get_one(YoungPerson, world.people[name])
        person.phone = phone
        person.language = language


@pytest.fixture
def site(database: Database) -> Iterator[Site]:
    settings = make_settings(
        telegram_bot_token="123:abc",
        telegram_webhook_secret="walk-secret",
        telegram_bot_username=BOT,
    )
    with staff_site(database, Site, settings=settings, prepare=_phones_and_languages) as built:
        yield built


def test_the_kontaktperson_gets_a_telegram_link_for_their_young_person(site: Site) -> None:
    karin = site.browser("karin")
    status, text = site.post(karin, "mads", "invitation/telegram")
    assert status == 200
    with site.runtime.database.session() as session:
        code = session.get_one(YoungPerson, site.world.people["mads"]).invite_code
    assert code is not None
    assert f'value="https://t.me/{BOT}?start={code}"' in text
    # Someone else's young person, or another municipality's: 404 and no new code.
    assert site.post(site.browser("ali"), "mads", "invitation/telegram")[0] == 404
    olga = site.browser("olga")
    page = site.page("mads")
    response = olga.post(
        f"{page}/invitation/telegram", data={"csrf_token": csrf_token(olga.get("/staff").text)}
    )
    assert response.status_code == 404


def test_an_sms_invitation_is_queued_in_the_young_persons_language(site: Site) -> None:
    site.set_quiet(now_is_quiet=False)
    carsten = site.browser("carsten")
    status, text = site.post(carsten, "sara", "invitation/sms")
    assert status == 200
    assert "Invitationen er lagt i kø og sendes på sms." in text
    [(message, entry)] = site.queued()
    assert message.young_person_id == site.world.people["sara"]
    assert message.author is Author.STAFF
    assert message.staff_id == site.world.staff["carsten"]
    assert entry.purpose is Purpose.PROACTIVE
    assert entry.status is OutboxStatus.PENDING
    assert entry.not_before <= utcnow()
    body = message.text or ""
    assert body.startswith("Hej Sara! Jeg er Stifinder, en chatbot fra ungeindsatsen i Aarhus")
    assert "Carsten Koordinator har bedt mig skrive til dig" in body
    assert f"https://t.me/{BOT}?start=" in body
    assert "STOP" in body
    # Arabic for Mads, with his name and the same link shape.
    site.post(carsten, "mads", "invitation/sms")
    arabic = site.queued()[-1][0].text or ""
    assert arabic.startswith("مرحبًا Mads")
    assert "STOP" in arabic
    with site.runtime.database.session() as session:
        events = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "young_person.invited_by_sms")
        ).all()
        assert [e.young_person_id for e in events] == [
            site.world.people["sara"],
            site.world.people["mads"],
        ]


def test_in_quiet_hours_the_invitation_waits_for_the_morning(site: Site) -> None:
    site.set_quiet(now_is_quiet=True)
    status, text = site.post(site.browser("karin"), "mads", "invitation/sms")
    assert status == 200
    assert "Det er stille tid nu" in text
    [(_, entry)] = site.queued()
    assert entry.not_before > utcnow() + timedelta(minutes=30)


def test_an_sms_invitation_is_refused_when_it_may_not_be_sent(site: Site) -> None:
    site.set_quiet(now_is_quiet=False)
    carsten = site.browser("carsten")
    # No phone number.
    status, text = site.post(carsten, "emil", "invitation/sms")
    assert status == 400
    assert "Vi har ikke et telefonnummer til Emil" in text
    # Twice within a day.
    assert site.post(carsten, "sara", "invitation/sms")[0] == 200
    status, text = site.post(carsten, "sara", "invitation/sms")
    assert status == 400
    assert "for mindre end et døgn siden" in text
    with site.runtime.database.session() as session:
        event = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "young_person.invited_by_sms")
        ).one()
        event.at = datetime.now(ZoneInfo("UTC")) - timedelta(hours=25)
    assert site.post(carsten, "sara", "invitation/sms")[0] == 200
    # Opted out.
    with site.runtime.database.session() as session:
        session.get_one(YoungPerson, site.world.people["mads"]).status = YoungPersonStatus.OPTED_OUT
    status, text = site.post(carsten, "mads", "invitation/sms")
    assert status == 400
    assert "Mads har frameldt beskeder (STOP)" in text
    assert len(site.queued()) == 2
    # A kontaktperson of another young person cannot send one.
    assert site.post(site.browser("ali"), "mads", "invitation/sms")[0] == 404
