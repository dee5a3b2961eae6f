"""The campaign pages over HTTP on both databases: the builder's errors, the live count, the
preview per language, creating and scheduling, pause, resume and cancel, and who is refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx2 import Response

from bot.campaigns import Spec
from bot.runtime import Runtime
from bot.web.app import create_app
from dialogs.types import CampaignStatus, Channel, YoungPersonStatus
from storage.db import Database
from storage.models import AuditEvent, Campaign, Municipality, YoungPerson, YoungPersonTag
from tests.conftest import make_settings
from tests.staff_world import World, build_world, csrf_token, sign_in

DANISH = "Hej {first_name}, vi holder åbent hus på fredag. Kom forbi og mød din kontaktperson!"
ARABIC = "مرحبا {first_name}، نلتقي يوم الجمعة."
ZONE = ZoneInfo("Europe/Copenhagen")


@dataclass
class Site:
    runtime: Runtime
    world: World
    clients: dict[str, TestClient]

    def get(self, who: str, path: str, **kwargs: Any) -> Response:
        return self.clients[who].get(path, follow_redirects=False, **kwargs)

    def post(self, who: str, path: str, **data: Any) -> Response:
        token = csrf_token(self.clients[who].get("/staff").text)
        return self.clients[who].post(
            path, data={"csrf_token": token, **data}, follow_redirects=False
        )

    def build(self, who: str = "carsten", **data: Any) -> Response:
        form: dict[str, Any] = {"tag": "fgu", "content": "message", "when": "now"}
        form.update(data)
        return self.post(who, "/campaigns", **form)

    def campaigns(self) -> list[Campaign]:
        with self.runtime.database.session() as session:
            found = session.scalars(sa.select(Campaign).order_by(Campaign.id)).all()
            session.expunge_all()
            return list(found)

    def audit(self, action: str) -> list[AuditEvent]:
        with self.runtime.database.session() as session:
            found = session.scalars(
                sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            ).all()
            session.expunge_all()
            return list(found)


@pytest.fixture
def site(database: Database) -> Iterator[Site]:
    with database.session() as session:
        world = build_world(session)
        for place_id in world.places.values():
            place = session.get_one(Municipality, place_id)
            place.quiet_hours_start = place.quiet_hours_end = time(0)  # no quiet hours
        # Mads (Danish) and Sara (Arabic) are tagged "fgu"; Emil is not; Freja is in Odense.
        for name, language, tags in (
            ("mads", "da", ["fgu"]),
            ("sara", "ar", ["fgu"]),
            ("emil", "da", []),
            ("freja", "da", ["fgu"]),
        ):
            person = session.get_one(YoungPerson, world.people[name])
            person.language = language
            person.status = YoungPersonStatus.ACTIVE
            person.phone = f"+45201000{len(name):02d}{world.people[name]}"
            person.preferred_channel = Channel.SMS
            person.tags = [YoungPersonTag(tag=tag) for tag in tags]
    runtime = Runtime(settings=make_settings(), database=database)
    app = create_app(runtime)
    clients: dict[str, TestClient] = {}
    try:
        for who in ("carsten", "karin", "ada", "olga"):
            client = TestClient(app)
            client.__enter__()
            assert sign_in(client, who).status_code == 303
            clients[who] = client
        yield Site(runtime, world, clients)
    finally:
        for client in clients.values():
            client.__exit__(None, None, None)


def _error(page: str, field: str) -> str:
    found = re.search(rf'id="{field}-error">(.*?)</p>', page, re.S)
    assert found is not None, f"no error for {field}"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_builder_names_every_bad_field_and_writes_nothing(site: Site) -> None:
    response = site.build(
        action="schedule",
        name="",
        min_age="x",
        text_da="Hej {fornavn}",
        when="once",
        date="32-13-2026",
        time="25:00",
        rate="0",
    )
    assert response.status_code == 400
    page = response.text
    assert _error(page, "name") == "Fejl: Giv kampagnen et navn."
    assert _error(page, "aud-min_age") == "Fejl: Skriv et helt tal fra 0 til 120."
    assert _error(page, "text_da") == (
        "Fejl: Den eneste variabel er {first_name}; skriv den præcis sådan."
    )
    assert _error(page, "date") == "Fejl: Skriv en dato, fx 24-12-2026."
    assert _error(page, "time") == "Fejl: Skriv et klokkeslæt, fx 14:30."
    assert _error(page, "rate") == "Fejl: Skriv et helt tal fra 1 til 100000."
    assert 'href="#aud-min_age"' in page and 'href="#text_da"' in page  # the summary links
    assert 'value="x"' in page  # shown again as typed

    response = site.build(action="draft", name="Uge 3", when="cron", cron="every monday")
    assert response.status_code == 400
    assert _error(response.text, "text_da") == (
        "Fejl: Skriv beskeden på mindst ét sprog, helst dansk."
    )
    assert _error(response.text, "cron").startswith("Fejl: Cron-udtrykket kan ikke læses.")

    response = site.build(
        action="draft", name="Samtale", content="dialog", dialog="meeting_reminder"
    )
    assert response.status_code == 400
    assert _error(response.text, "dialog") == "Fejl: Vælg en samtale fra listen."
    assert site.campaigns() == []


def test_the_count_follows_the_filters_within_the_municipality(site: Site) -> None:
    json = {"accept": "application/json"}
    answer = site.get("carsten", "/campaigns/count?tag=fgu", headers=json)
    assert answer.status_code == 200
    assert answer.json() == {"count": 2, "text": "Kampagnen når 2 unge."}
    assert site.get("carsten", "/campaigns/count", headers=json).json()["count"] == 3
    # Freja is Odense's: only Olga counts her.
    assert site.get("olga", "/campaigns/count?tag=fgu", headers=json).json() == {
        "count": 1,
        "text": "Kampagnen når 1 ung.",
    }
    bad = site.get("carsten", "/campaigns/count?min_age=17&max_age=15&status=closed", headers=json)
    assert bad.status_code == 400
    assert bad.json()["errors"] == {
        "aud-max_age": "Den højeste alder skal være mindst den laveste.",
        "aud-status": "Unge, der er frameldt eller afsluttet, kan ikke få beskeder.",
    }
    assert site.get("karin", "/campaigns/count", headers=json).status_code == 403
    english = site.get("carsten", "/campaigns/count?tag=fgu&lang=en", headers=json).json()
    assert english["text"] == "The campaign reaches 2 young people."
    assert "Update count" in site.get("carsten", "/campaigns/new?lang=en").text
    # Without a script, "Opdater antal" asks the server.
    page = site.build(action="count", tag="fgu")
    assert page.status_code == 200
    assert "Kampagnen når 2 unge." in page.text


def test_the_preview_shows_each_language_with_a_real_first_name(site: Site) -> None:
    response = site.build(action="preview", text_da=DANISH, text_ar=ARABIC)
    assert response.status_code == 200, response.text
    page = _text(response.text)
    assert "Hej Mads, vi holder åbent hus på fredag. Kom forbi og mød din kontaktperson!" in page
    assert "مرحبا Sara، نلتقي يوم الجمعة." in page
    preview = page[page.index(" Forhåndsvisning ") :]
    danish = preview[preview.index("dansk (da)") : preview.index("مرحبا")]
    arabic = preview[preview.index("arabisk (ar)") :]
    # 78 characters, all GSM-7: one segment; 14 words, 2 sentences, 1 long word:
    # LIX 14 / 2 + 100 * 1 / 14 = 14.1.
    assert "Tegnsæt GSM-7 Sms-dele 1 Anslået pris 0,50 kr." in danish
    assert "Læsbarhed (LIX) 14 · let" in danish
    assert "Tegnsæt UCS-2 Sms-dele 1 Anslået pris 0,50 kr." in arabic
    assert "LIX" not in arabic
    assert "Anslået pris for sms: 1,00 kr. (0,50 kr. pr. sms-del)." in page
    assert "Emil" not in page  # not tagged
    assert "stille timer" not in page.split("Forhåndsvisning")[1]
    shown = {event.young_person_id for event in site.audit("campaign.preview")}
    assert shown == {site.world.people["mads"], site.world.people["sara"]}
    assert site.campaigns() == []  # a preview writes no campaign


def test_the_preview_warns_of_sensitive_words_quiet_hours_and_prices_per_municipality(
    site: Site,
) -> None:
    with site.runtime.database.session() as session:
        place = session.get_one(Municipality, site.world.places["aarhus"])
        place.quiet_hours_start, place.quiet_hours_end = time(21), time(8)
        place.quiet_on_weekends = False
        place.sender_settings = {"sms_segment_price_ore": 30}
    tomorrow = (datetime.now(ZONE) + timedelta(days=1)).date()
    response = site.build(
        action="preview",
        text_da="Hej {first_name}, tag din diagnose med.",
        text_en="Hi {first_name}, see you soon.",
        when="once",
        date=tomorrow.isoformat(),
        time="22:00",
    )
    assert response.status_code == 200, response.text
    page = _text(response.text)
    assert "Ordet “diagnose” er følsomt." in page
    assert "ligger i kommunens stille timer. Beskederne venter til" in page
    assert "kl. 08.00." in page
    assert "Anslået pris 0,30 kr." in page
    # Nobody in the audience speaks English: the sample name, and no cost.
    preview = page[page.index(" Forhåndsvisning ") :]
    english = preview[preview.index("engelsk (en)") :]
    assert "Hi Alex, see you soon." in english
    assert "Anslået pris 0,00 kr." in english

    # One a minute from 20:59: the second message would fall at 21:00, in the quiet hours.
    response = site.build(
        action="preview",
        text_da="Hej {first_name}",
        when="once",
        date=tomorrow.isoformat(),
        time="20:59",
        rate="1",
    )
    page = _text(response.text)
    assert "Med det tempo går den sidste besked" in page
    assert "kl. 21.00. Fra" in page
    assert "og resten venter til" in page and "kl. 08.00." in page

    response = site.build(
        action="preview", text_da="Hej {first_name}", when="cron", cron="0 9 * * mon"
    )
    page = _text(response.text)
    assert "De næste gange:" in page
    assert page.count("mandag den") == 3
    assert "kl. 09.00" in page


def test_create_schedule_pause_resume_and_cancel(site: Site) -> None:
    response = site.build(
        action="schedule",
        name="Åbent hus",
        text_da=DANISH,
        rate="2",
        rate_unit="second",
    )
    assert response.status_code == 303, response.text
    (campaign,) = site.campaigns()
    assert response.headers["location"] == f"/campaigns/{campaign.id}?done=scheduled"
    assert campaign.status is CampaignStatus.SCHEDULED
    assert campaign.content == {"template": {"da": DANISH}}
    assert campaign.rate_per_minute == 120
    assert campaign.audience["tags"] == ["fgu"]
    assert [e.details["campaign_id"] for e in site.audit("campaign.scheduled")] == [campaign.id]

    site.runtime.worker().sweep()  # the run writes the recipients, the outbox sends
    progress = site.get("carsten", f"/campaigns/{campaign.id}/progress.json").json()
    assert progress["total"] == 2
    assert progress["counts"]["skipped"] == 0
    page = site.get("carsten", f"/campaigns/{campaign.id}?done=scheduled").text
    assert "Kampagnen er planlagt." in page
    # Without a script the numbers are those of the render, with a link that refreshes them.
    assert '<strong data-field="total">2</strong>' in page
    for key, number in progress["counts"].items():
        assert f'<dd data-count="{key}">{number}</dd>' in page
    assert f'<a href="/campaigns/{campaign.id}">Opdater tallene</a>' in page

    path = f"/campaigns/{campaign.id}"
    assert site.post("carsten", f"{path}/pause").headers["location"] == f"{path}?done=paused"
    assert site.campaigns()[0].status is CampaignStatus.PAUSED
    assert site.post("carsten", f"{path}/pause").status_code == 409  # already paused
    assert site.post("carsten", f"{path}/resume").status_code == 303
    assert site.campaigns()[0].status is CampaignStatus.RUNNING

    asked = site.post("carsten", f"{path}/cancel")
    assert asked.headers["location"] == f"{path}?confirm=cancel#confirm-cancel"
    assert site.campaigns()[0].status is CampaignStatus.RUNNING  # not before it is confirmed
    confirm = site.get("carsten", f"{path}?confirm=cancel").text
    assert "Vil du stoppe kampagnen for altid?" in confirm
    assert site.post("carsten", f"{path}/cancel", confirm="yes").status_code == 303
    assert site.campaigns()[0].status is CampaignStatus.CANCELLED
    for action in ("paused", "resumed", "cancelled"):
        assert [e.staff_id for e in site.audit(f"campaign.{action}")] == [
            site.world.staff["carsten"]
        ]
    listing = _text(site.get("carsten", "/campaigns").text)
    assert "Åbent hus Stoppet 2" in listing


def test_a_draft_a_dialog_and_a_schedule_relative_to_meetings(site: Site) -> None:
    response = site.build(
        action="draft",
        name="Før mødet",
        content="dialog",
        dialog="dreams",
        when="relative",
        offset_days="2",
        direction="before",
    )
    assert response.status_code == 303, response.text
    (campaign,) = site.campaigns()
    assert campaign.status is CampaignStatus.DRAFT
    assert campaign.content == {"dialog": "dreams"}
    assert campaign.relative_schedule == {"anchor": "meeting", "offset_minutes": -2 * 24 * 60}
    page = _text(site.get("carsten", f"/campaigns/{campaign.id}").text)
    assert "2 dage før hvert møde" in page
    assert site.post("carsten", f"/campaigns/{campaign.id}/schedule").status_code == 303
    assert site.campaigns()[0].status is CampaignStatus.SCHEDULED


def test_other_roles_and_municipalities_are_refused(site: Site) -> None:
    campaign_id = site.runtime.campaigns.create(
        Spec(municipality_id=site.world.places["aarhus"], name="Aarhus", template={"da": "Hej"})
    )
    for who in ("karin", "ada"):
        for path in ("/campaigns", "/campaigns/new", f"/campaigns/{campaign_id}"):
            assert site.get(who, path).status_code == 403, (who, path)
        assert site.post(who, "/campaigns", name="x", text_da="Hej").status_code == 403
    assert site.get("olga", f"/campaigns/{campaign_id}").status_code == 404
    assert site.get("olga", f"/campaigns/{campaign_id}/progress.json").status_code == 404
    for action in ("schedule", "pause", "cancel"):
        assert (
            site.post("olga", f"/campaigns/{campaign_id}/{action}", confirm="yes").status_code
            == 404
        )
    assert "Aarhus" not in site.get("olga", "/campaigns").text
    assert site.campaigns()[0].status is CampaignStatus.DRAFT
    # A coordinator's form without the session's token is refused.
    refused = site.clients["carsten"].post(
        f"/campaigns/{campaign_id}/schedule", data={}, follow_redirects=False
    )
    assert refused.status_code == 403
    assert site.campaigns()[0].status is CampaignStatus.DRAFT
