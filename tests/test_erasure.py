"""Erasing one young person on request through the data-protection pages, on both databases:
the confirmation is required, a wrong one changes nothing, the personal data goes from every
table while the rows and the audit log stay, pending sends are cancelled, the young person leaves
every list, and other roles and municipalities are refused. Also the retention setting."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from bot import retention as nightly
from bot.runtime import Runtime
from bot.web.app import create_app
from dialogs.types import (
    Author,
    CaptureSource,
    Channel,
    ConsentKind,
    ConsentSource,
    DeliveryStatus,
    Direction,
    DreamCategory,
    HandoffReason,
    HandoffStatus,
    InboundStatus,
    OutboxStatus,
    Purpose,
    RecipientStatus,
    ScheduledStatus,
    YoungPersonStatus,
)
from storage import campaigns, consent, plans
from storage.db import Database
from storage.models import (
    AuditEvent,
    Base,
    Campaign,
    CampaignRecipient,
    ConsentEvent,
    Dream,
    Goal,
    Handoff,
    InboundEvent,
    Meeting,
    Message,
    Municipality,
    OutboxEntry,
    ScheduledItem,
    StaffNote,
    StaffUser,
    SubGoal,
    YoungPerson,
    YoungPersonTag,
    utcnow,
)
from tests.browser import PHONE, LiveApp, PageGuard, axe_check, horizontal_overflow
from tests.conftest import make_settings
from tests.staff_world import PASSWORD, World, build_world, csrf_token, email, sign_in

ERASE = "/data-protection/erase/{}"
LOGS = {AuditEvent.__tablename__, "staff_session", "sign_in_throttle"}


@dataclass
class Site:
    app: Any
    database: Database
    world: World
    campaign: int


def _fill(session: sa.orm.Session, world: World) -> int:
    now = utcnow()
    mads = session.get_one(YoungPerson, world.people["mads"])
    mads.phone = "+4520000001"
    mads.telegram_chat_id = 777
    mads.external_ref = "SAG-1"
    mads.invite_code = "kode-mads"
    mads.tags.append(YoungPersonTag(tag="fgu"))
    sara = session.get_one(YoungPerson, world.people["sara"])
    sara.phone = "+4520000002"
    for person in (mads, sara):
        session.add(
            Message(
                young_person_id=person.id,
                direction=Direction.INBOUND,
                channel=Channel.SMS,
                author=Author.YOUNG_PERSON,
                text=f"{person.first_name} drømmer om at blive kok",
                status=DeliveryStatus.RECEIVED,
                created_at=now - timedelta(hours=2),
            )
        )
        session.add(
            InboundEvent(
                channel=Channel.SMS,
                dedupe_key=f"SM{person.id}",
                payload={"From": person.phone, "Body": f"{person.first_name} skriver"},
                status=InboundStatus.DONE,
                received_at=now - timedelta(hours=2),
            )
        )
        session.add(
            Dream(
                young_person_id=person.id,
                text="Blive kok",
                category=DreamCategory.JOB,
                captured_via=CaptureSource.DIALOG,
                captured_at=now,
            )
        )
        goal = plans.add_goal(session, person, title="Komme i gang med FGU", now=now)
        plans.add_sub_goal(session, goal, title="Besøg skolen", now=now)
        plans.create_meeting(
            session,
            person,
            starts_at=now + timedelta(days=3),
            now=now,
            place="Jobcentret, Værkmestergade",
            purpose="Tale om FGU",
        )
        session.add(
            StaffNote(
                young_person_id=person.id,
                author_id=world.staff["karin"],
                text="Mor er syg",
                created_at=now,
            )
        )
        session.add(
            Handoff(young_person_id=person.id, reason=HandoffReason.ASKED, note="Ring torsdag")
        )
        consent.record(
            session,
            person,
            ConsentKind.CONSENT_GIVEN,
            source=ConsentSource.YOUNG_PERSON,
            channel=Channel.SMS,
            now=now,
        )
    session.add(
        InboundEvent(
            channel=Channel.TELEGRAM,
            dedupe_key="1:777:5",
            payload={
                "update_id": 1,
                "message": {
                    "message_id": 5,
                    "chat": {"id": 777, "first_name": "Mads"},
                    "text": "hej det er Mads",
                },
            },
            status=InboundStatus.DONE,
            received_at=now,
        )
    )
    waiting = Message(
        young_person_id=mads.id,
        direction=Direction.OUTBOUND,
        channel=Channel.SMS,
        author=Author.BOT,
        text="Hej Mads, husk mødet",
        status=DeliveryStatus.QUEUED,
        created_at=now,
    )
    session.add(waiting)
    session.flush()
    session.add(
        OutboxEntry(
            message_id=waiting.id,
            channel=Channel.SMS,
            purpose=Purpose.PROACTIVE,
            not_before=now + timedelta(hours=8),
        )
    )
    campaign = Campaign(municipality_id=world.places["aarhus"], name="Efterår")
    session.add(campaign)
    session.flush()
    for person in (mads, sara):
        session.add(
            CampaignRecipient(
                campaign_id=campaign.id,
                young_person_id=person.id,
                due_at=now + timedelta(days=1),
            )
        )
    session.flush()
    return campaign.id


@pytest.fixture
def site(database: Database) -> Iterator[Site]:
    runtime = Runtime(settings=make_settings(), database=database)
    with database.session() as session:
        world = build_world(session)
        campaign = _fill(session, world)
    yield Site(create_app(runtime), database, world, campaign)


def _client(site: Site, who: str) -> TestClient:
    client = TestClient(site.app)
    assert sign_in(client, who).status_code == 303
    return client


def _post(client: TestClient, path: str, **data: str) -> Any:
    token = csrf_token(client.get("/staff").text)
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


def _snapshot(database: Database) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    with database.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            if table.name not in LOGS:
                seen[table.name] = sorted(
                    repr(tuple(r)) for r in connection.execute(sa.select(table))
                )
    return seen


def _counts(database: Database, person_id: int) -> dict[str, int]:
    with database.session() as session:

        def count(model: Any, column: Any) -> int:
            return int(
                session.scalar(
                    sa.select(sa.func.count()).select_from(model).where(column == person_id)
                )
                or 0
            )

        return {
            "messages": count(Message, Message.young_person_id),
            "dreams": count(Dream, Dream.young_person_id),
            "goals": count(Goal, Goal.young_person_id),
            "meetings": count(Meeting, Meeting.young_person_id),
            "notes": count(StaffNote, StaffNote.young_person_id),
            "handoffs": count(Handoff, Handoff.young_person_id),
            "audit": count(AuditEvent, AuditEvent.young_person_id),
        }


def test_the_confirmation_page_names_the_person_and_what_goes(site: Site) -> None:
    with _client(site, "carsten") as client:
        page = client.get(ERASE.format(site.world.people["mads"]))
        assert page.status_code == 200
        assert "Mads" in page.text
        assert "Teksten i 2 beskeder" in page.text
        assert 'name="confirm_name"' in page.text
        person = client.get(f"/young-people/{site.world.people['mads']}")
        assert ERASE.format(site.world.people["mads"]) in person.text
        assert "/data-protection" in client.get("/staff").text


def test_a_wrong_confirmation_changes_nothing(site: Site) -> None:
    mads = site.world.people["mads"]
    with _client(site, "carsten") as client:
        before = _snapshot(site.database)
        for typed in ("", "Sara", "Mad"):
            answer = _post(client, ERASE.format(mads), confirm_name=typed)
            assert answer.status_code == 400
            assert "Skriv den unges fornavn" in answer.text
    assert _snapshot(site.database) == before


def test_erasure_removes_personal_data_and_keeps_rows_and_audit(site: Site) -> None:
    mads, sara = site.world.people["mads"], site.world.people["sara"]
    counts_before = _counts(site.database, mads)
    with site.database.session() as session:
        audit_before = session.execute(sa.select(AuditEvent.id, AuditEvent.action)).all()
        staff_before = session.scalar(sa.select(sa.func.count()).select_from(StaffUser))
    with _client(site, "carsten") as client:
        answer = _post(client, ERASE.format(mads), confirm_name=" mads ")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/data-protection?done=erased"
        assert "personoplysninger er slettet" in client.get(answer.headers["location"]).text

    with site.database.session() as session:
        person = session.get_one(YoungPerson, mads)
        assert person.erased_at is not None
        assert person.first_name == "—"
        assert person.birth_date == date(2008, 1, 1)
        assert (person.phone, person.telegram_chat_id, person.external_ref) == (None, None, None)
        assert person.invite_code is None
        assert person.tags == []
        assert person.status is YoungPersonStatus.CLOSED
        assert set(
            session.scalars(sa.select(Message.text).where(Message.young_person_id == mads))
        ) == {None}
        assert None not in set(
            session.scalars(sa.select(Message.redacted_at).where(Message.young_person_id == mads))
        )
        payloads = session.scalars(
            sa.select(InboundEvent.payload).where(
                InboundEvent.dedupe_key.in_([f"SM{mads}", "1:777:5"])
            )
        ).all()
        assert payloads == [{"redacted": "erased"}] * 2
        assert session.scalars(
            sa.select(Dream.text).where(Dream.young_person_id == mads)
        ).all() == [""]
        assert session.scalars(sa.select(Goal.title).where(Goal.young_person_id == mads)).all() == [
            ""
        ]
        assert session.scalars(
            sa.select(SubGoal.title).join(Goal).where(Goal.young_person_id == mads)
        ).all() == [""]
        meeting = session.scalars(sa.select(Meeting).where(Meeting.young_person_id == mads)).one()
        assert (meeting.place, meeting.purpose) == (None, None)
        assert session.scalars(
            sa.select(StaffNote.text).where(StaffNote.young_person_id == mads)
        ).all() == [""]
        assert session.scalars(
            sa.select(Handoff.note).where(Handoff.young_person_id == mads)
        ).all() == [None]
        handoff = session.scalars(sa.select(Handoff).where(Handoff.young_person_id == mads)).one()
        assert handoff.status is HandoffStatus.RESOLVED
        assert handoff.resolved_by_id == site.world.staff["carsten"]
        # Pending sends and reminders are cancelled.
        pending = session.scalar(
            sa.select(sa.func.count())
            .select_from(ScheduledItem)
            .where(
                ScheduledItem.young_person_id == mads,
                ScheduledItem.status == ScheduledStatus.PENDING,
            )
        )
        assert pending == 0
        assert set(
            session.scalars(
                sa.select(ScheduledItem.outcome).where(ScheduledItem.young_person_id == mads)
            )
        ) == {"erased"}
        outbox = session.scalars(
            sa.select(OutboxEntry.status).join(Message).where(Message.young_person_id == mads)
        ).all()
        assert outbox == [OutboxStatus.CANCELLED]
        recipient = session.scalars(
            sa.select(CampaignRecipient).where(CampaignRecipient.young_person_id == mads)
        ).one()
        assert (recipient.status, recipient.skip_reason) == (RecipientStatus.SKIPPED, "erased")
        # The audit log is kept whole, with the erasure in it; staff are never touched.
        audit_after = session.execute(sa.select(AuditEvent.id, AuditEvent.action)).all()
        assert set(audit_before) <= set(audit_after)
        erased = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "young_person.erased")
        ).one()
        assert erased.young_person_id == mads
        assert erased.staff_id == site.world.staff["carsten"]
        assert erased.details["messages"] == 2
        assert erased.details["outbox_cancelled"] == 1
        assert "Mads" not in str(erased.details)
        assert session.scalar(sa.select(sa.func.count()).select_from(StaffUser)) == staff_before
        # Consent history stays.
        assert consent_kinds(session, mads) == [ConsentKind.CONSENT_GIVEN]

    counts_after = _counts(site.database, mads)
    assert {k: v for k, v in counts_after.items() if k != "audit"} == {
        k: v for k, v in counts_before.items() if k != "audit"
    }
    assert counts_after["audit"] > counts_before["audit"]
    # Sara's data is untouched.
    with site.database.session() as session:
        assert session.scalars(
            sa.select(Dream.text).where(Dream.young_person_id == sara)
        ).all() == ["Blive kok"]
        assert session.get_one(YoungPerson, sara).first_name == "Sara"
        assert (
            session.scalars(
                sa.select(InboundEvent.payload).where(InboundEvent.dedupe_key == f"SM{sara}")
            ).one()["Body"]
            == "Sara skriver"
        )
        assert (
            session.scalar(
                sa.select(sa.func.count())
                .select_from(CampaignRecipient)
                .where(
                    CampaignRecipient.young_person_id == sara,
                    CampaignRecipient.status == RecipientStatus.PENDING,
                )
            )
            == 1
        )


def consent_kinds(session: sa.orm.Session, person_id: int) -> list[ConsentKind]:
    return list(
        session.scalars(
            sa.select(ConsentEvent.kind).where(ConsentEvent.young_person_id == person_id)
        )
    )


def _people_on_home(client: TestClient) -> int:
    """The count of young people on the staff home page ("Du har adgang til N unge.")."""
    found = re.search(r"Du har adgang til (\d+) unge?\.", client.get("/staff").text)
    assert found is not None
    return int(found.group(1))


def test_an_erased_person_is_gone_from_pages_lists_and_audiences(site: Site) -> None:
    mads = site.world.people["mads"]
    with _client(site, "karin") as client:
        assert f"/inbox/{mads}" in client.get("/inbox").text  # his open handoff
    with _client(site, "carsten") as client:
        assert f'/young-people/{mads}"' in client.get("/young-people").text
        before = _people_on_home(client)
        assert _post(client, ERASE.format(mads), confirm_name="Mads").status_code == 303
        assert _people_on_home(client) == before - 1
        for path in (f"/young-people/{mads}", f"/inbox/{mads}", ERASE.format(mads)):
            assert client.get(path).status_code == 404, path
        assert _post(client, ERASE.format(mads), confirm_name="—").status_code == 404
        listing = client.get("/young-people").text
        assert f'/young-people/{mads}"' not in listing
        assert "Sara" in listing
        assert f"/young-people/{mads}/" not in client.get("/data-protection?q=a").text
    with _client(site, "karin") as client:
        assert f"/inbox/{mads}" not in client.get("/inbox").text
    with site.database.session() as session:
        # Even were the erased row's status changed back, no audience would hold it.
        session.get_one(YoungPerson, mads).status = YoungPersonStatus.INVITED
        session.flush()
        audience = campaigns.Audience.from_dict({"statuses": ["invited"]})
        ids = set(
            session.scalars(
                campaigns.audience_query(
                    audience, site.world.places["aarhus"], today=utcnow().date(), now=utcnow()
                )
            )
        )
        assert mads not in ids
        assert site.world.people["sara"] in ids


@pytest.mark.parametrize(("who", "status"), [("karin", 403), ("ada", 403), ("olga", 404)])
def test_erasure_is_refused_to_others(site: Site, who: str, status: int) -> None:
    mads = site.world.people["mads"]
    with _client(site, who) as client:
        before = _snapshot(site.database)
        assert client.get(ERASE.format(mads)).status_code == status
        assert _post(client, ERASE.format(mads), confirm_name="Mads").status_code == status
    assert _snapshot(site.database) == before


def test_the_retention_setting_is_checked_saved_and_audited(site: Site) -> None:
    with _client(site, "carsten") as client:
        page = client.get("/data-protection")
        assert page.status_code == 200
        assert 'value="24"' in page.text
        before = _snapshot(site.database)
        for bad in ("0", "121", "tolv", ""):
            answer = _post(client, "/data-protection", retention_months=bad)
            assert answer.status_code == 400
            assert 'id="retention_months-error"' in answer.text
        assert _snapshot(site.database) == before
        answer = _post(client, "/data-protection", retention_months="6")
        assert answer.status_code == 303
        assert "Opbevaringsperioden er gemt" in client.get(answer.headers["location"]).text
        found = client.get("/data-protection?q=mad").text
        assert f"/young-people/{site.world.people['mads']}/export.json" in found
        assert "Freja" not in found
    with site.database.session() as session:
        place = session.get_one(Municipality, site.world.places["aarhus"])
        assert place.retention_months == 6
        changed = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "retention.changed")
        ).one()
        assert changed.details == {"from": 24, "to": 6}
        nights = session.scalars(
            sa.select(ScheduledItem.municipality_id).where(ScheduledItem.kind == nightly.KIND)
        ).all()
        assert nights == [place.id]
    for who, status in (("karin", 403), ("ada", 403)):
        with _client(site, who) as client:
            assert client.get("/data-protection").status_code == status
            assert _post(client, "/data-protection", retention_months="3").status_code == status


@pytest.mark.browser
def test_the_pages_work_in_a_browser_and_pass_axe(
    page: Page, live_app: LiveApp, page_guard: PageGuard
) -> None:
    page_guard.expect_console_error(r"status of 400 .*/data-protection/erase/\d+\)$")
    with live_app.database.session() as session:
        build_world(session)
    page.set_viewport_size(PHONE)
    page.goto(live_app.at("/sign-in"))
    page.get_by_label("E-mailadresse").fill(email("carsten"))
    page.get_by_label("Adgangskode").fill(PASSWORD)
    page.get_by_role("button", name="Log ind").click()
    page.get_by_role("link", name="Databeskyttelse").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Databeskyttelse")
    axe_check(page)
    page.get_by_label("Søg på fornavn").fill("Mads")
    page.get_by_role("button", name="Søg").click()
    assert horizontal_overflow(page) == 0
    axe_check(page)
    page.get_by_role("link", name="Slet Mads").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Slet personoplysningerne om Mads")
    axe_check(page)
    page.get_by_label("Skriv den unges fornavn for at bekræfte").fill("Sara")
    page.get_by_role("button", name="Slet personoplysningerne om Mads").click()
    expect(page.get_by_role("alert")).to_contain_text("Skriv den unges fornavn præcis")
    axe_check(page)
    page.get_by_label("Skriv den unges fornavn for at bekræfte").fill("Mads")
    page.get_by_role("button", name="Slet personoplysningerne om Mads").click()
    expect(page.get_by_role("status").first).to_have_text("Den unges personoplysninger er slettet.")
    axe_check(page)
