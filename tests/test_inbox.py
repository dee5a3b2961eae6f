"""The handoff inbox through the real app, on both databases: the list and its order, who sees
what, statuses and reopening, take over / reply / hand back against real conversation turns,
failed SMS, private notes, canned replies, CSRF and the audit trail."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from dialogs.types import (
    Author,
    Channel,
    DeliveryStatus,
    Direction,
    HandoffPriority,
    HandoffReason,
    HandoffStatus,
    Holder,
    Purpose,
    YoungPersonStatus,
)
from storage import inbox
from storage.db import Database
from storage.models import (
    AuditEvent,
    CannedReply,
    Conversation,
    Handoff,
    Message,
    OutboxEntry,
    StaffNote,
    StaffUser,
    YoungPerson,
    utcnow,
)
from tests.staff_world import (
    StaffSite,
    World,
    csrf_token,
    post_form,
    staff_site,
)

PHONES = {"mads": "+4520000001", "sara": "+4520000002", "emil": "+4520000003"}


@dataclass
class Site(StaffSite):
    @property
    def database(self) -> Database:
        return self.runtime.database

    def person(self, name: str) -> int:
        return self.world.people[name]

    def say(self, name: str, text: str) -> list[str]:
        sent = self.runtime.conversations.receive(
            young_person_id=self.person(name), channel=Channel.SMS, text=text
        )
        return [s.text for s in sent]

    def handoff(self, name: str, **fields: Any) -> int:
        values: dict[str, Any] = {
            "reason": HandoffReason.ASKED,
            "priority": HandoffPriority.NORMAL,
            "opened_at": utcnow() - timedelta(minutes=10),
        }
        values.update(fields)
        with self.database.session() as session:
            handoff = Handoff(young_person_id=self.person(name), **values)
            session.add(handoff)
            session.flush()
            return handoff.id

    def handoffs(self, name: str) -> list[Handoff]:
        with self.database.session() as session:
            return list(
                session.scalars(
                    sa.select(Handoff)
                    .where(Handoff.young_person_id == self.person(name))
                    .order_by(Handoff.id)
                )
            )

    def conversation(self, name: str) -> Conversation | None:
        with self.database.session() as session:
            return session.scalar(
                sa.select(Conversation).where(Conversation.young_person_id == self.person(name))
            )

    def count(self, model: type) -> int:
        with self.database.session() as session:
            return int(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)

    def events(self, action: str) -> list[AuditEvent]:
        with self.database.session() as session:
            return list(
                session.scalars(
                    sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
                )
            )


@pytest.fixture
def site(database: Database) -> Iterator[Site]:
    def reachable(session: Session, world: World) -> None:
        for name, phone in PHONES.items():
            person = session.get_one(YoungPerson, world.people[name])
            person.phone = phone
            person.status = YoungPersonStatus.ACTIVE

    with staff_site(database, Site, prepare=reachable) as built:
        yield built


def _names_in_list(page: str) -> list[str]:
    return re.findall(r'class="inbox-name" href="/young-people/\d+">(\w+)</a>', page)


def _post(client: TestClient, site: Site, name: str, action: str, **data: Any) -> Any:
    person_id = site.person(name)
    return post_form(client, f"/inbox/{person_id}", f"/inbox/{person_id}/{action}", **data)


# ---------------------------------------------------------------------------- the list


def test_urgent_first_then_the_longest_wait_then_failed_deliveries(site: Site) -> None:
    now = utcnow()
    site.handoff("sara", opened_at=now - timedelta(hours=3))
    site.handoff("mads", opened_at=now - timedelta(hours=5))
    site.handoff(
        "emil",
        reason=HandoffReason.CRISIS,
        priority=HandoffPriority.URGENT,
        opened_at=now - timedelta(minutes=2),
    )
    with site.database.session() as session:
        # Freja (Odense) failed too, but Carsten is in Aarhus.
        for name in ("freja", "mads"):
            session.add(
                Message(
                    young_person_id=site.person(name),
                    direction=Direction.OUTBOUND,
                    channel=Channel.SMS,
                    author=Author.BOT,
                    text="Hej",
                    status=DeliveryStatus.FAILED,
                    error_code="30005",
                    created_at=now - timedelta(hours=1),
                )
            )
        # A resolved handoff is not in the attention view; its young person's failure is.
        person = session.get_one(YoungPerson, site.person("sara"))
        person.first_name = "Sara"
    with site.database.session() as session:
        emil_failed = YoungPerson(
            municipality_id=site.world.places["aarhus"],
            first_name="Ida",
            birth_date=utcnow().date().replace(year=2008),
            phone="+4520000009",
        )
        session.add(emil_failed)
        session.flush()
        session.add(
            Message(
                young_person_id=emil_failed.id,
                direction=Direction.OUTBOUND,
                channel=Channel.SMS,
                author=Author.BOT,
                text="Hej Ida",
                status=DeliveryStatus.UNDELIVERED,
                error_code="30003",
                created_at=now - timedelta(hours=2),
            )
        )
        carsten = session.get_one(StaffUser, site.world.staff["carsten"])
        rows = inbox.needs_attention(session, carsten, utcnow())
    assert [(r.first_name, r.kind) for r in rows] == [
        ("Emil", inbox.Kind.URGENT),
        ("Mads", inbox.Kind.HANDOFF),  # waited 5 hours; his failed SMS shows on his row
        ("Sara", inbox.Kind.HANDOFF),
        ("Ida", inbox.Kind.FAILED),
    ]
    client = site.browser("carsten")
    page = client.get("/inbox")
    assert page.status_code == 200
    assert _names_in_list(page.text) == ["Emil", "Mads", "Sara", "Ida"]
    assert 'id="inbox-list" data-live="inbox"' in page.text
    assert "Telefonen kunne ikke nås." in page.text  # Ida's reason, in plain words
    assert site.events("inbox.listed")[-1].details["young_people"] == [
        site.person("emil"),
        site.person("mads"),
        site.person("sara"),
        emil_failed.id,
    ]


def test_each_role_sees_only_its_own_inbox(site: Site) -> None:
    for name in ("mads", "sara", "emil", "freja"):
        site.handoff(name)
    assert _names_in_list(site.browser("karin").get("/inbox").text) == ["Mads"]
    assert _names_in_list(site.browser("ali").get("/inbox").text) == ["Sara"]
    assert sorted(_names_in_list(site.browser("carsten").get("/inbox").text)) == [
        "Emil",
        "Mads",
        "Sara",
    ]
    assert _names_in_list(site.browser("olga").get("/inbox").text) == ["Freja"]
    ada = site.browser("ada")
    assert ada.get("/inbox").status_code == 403
    assert ada.get(f"/inbox/{site.person('mads')}").status_code == 403

    karin = site.browser("karin")
    sara = site.person("sara")
    # Someone else's young person, and one that does not exist, look the same: 404.
    assert karin.get(f"/inbox/{sara}").status_code == 404
    assert karin.get("/inbox/999999").status_code == 404
    token = csrf_token(karin.get("/inbox").text)
    for action, data in [
        ("take-over", {}),
        ("reply", {"text": "Hej"}),
        ("hand-back", {}),
        ("notes", {"text": "note"}),
        ("status", {"status": "resolved"}),
    ]:
        response = karin.post(
            f"/inbox/{sara}/{action}", data={"csrf_token": token, **data}, follow_redirects=False
        )
        assert response.status_code == 404, action
    assert site.count(StaffNote) == 0
    assert site.count(OutboxEntry) == 0
    assert [h.status for h in site.handoffs("sara")] == [HandoffStatus.OPEN]

    # While Ali is away with Karin as his backup, Karin sees and answers Sara's.
    with site.database.session() as session:
        ali = session.get_one(StaffUser, site.world.staff["ali"])
        ali.absent_from = utcnow() - timedelta(days=1)
        ali.backup_id = site.world.staff["karin"]
    assert _names_in_list(karin.get("/inbox").text) == ["Mads", "Sara"]
    assert karin.get(f"/inbox/{sara}").status_code == 200
    # Ole in Odense still sees nothing of Aarhus.
    assert site.browser("ole").get(f"/inbox/{sara}").status_code == 404


# ---------------------------------------------------------------------------- statuses


def test_statuses_and_reopening_when_the_young_person_writes(site: Site) -> None:
    site.say("mads", "tal med en voksen")
    [handoff] = site.handoffs("mads")
    assert handoff.status is HandoffStatus.OPEN
    karin = site.browser("karin")
    assert _post(karin, site, "mads", "status", status="pending").status_code == 303
    assert site.handoffs("mads")[0].status is HandoffStatus.PENDING
    assert _names_in_list(karin.get("/inbox").text) == []
    assert _names_in_list(karin.get("/inbox?view=pending").text) == ["Mads"]
    site.say("mads", "okay tak")
    assert site.handoffs("mads")[0].status is HandoffStatus.OPEN

    # Snoozed until tomorrow: out of the attention view, in the snoozed one.
    tomorrow = (utcnow() + timedelta(days=1)).astimezone(inbox_zone()).strftime("%Y-%m-%dT%H:%M")
    response = _post(karin, site, "mads", "status", status="snoozed", until=tomorrow)
    assert response.status_code == 303
    [snoozed] = site.handoffs("mads")
    assert snoozed.status is HandoffStatus.SNOOZED and snoozed.snoozed_until is not None
    assert _names_in_list(karin.get("/inbox").text) == []
    assert _names_in_list(karin.get("/inbox?view=snoozed").text) == ["Mads"]
    # A snooze that has run out counts as open, without anyone touching the row.
    with site.database.session() as session:
        me = session.get_one(StaffUser, site.world.staff["karin"])
        later = utcnow() + timedelta(days=2)
        rows = inbox.needs_attention(session, me, later)
        assert [(r.first_name, r.status) for r in rows] == [("Mads", HandoffStatus.OPEN)]
    # A snooze in the past, or without a time, is refused with the reason.
    response = _post(karin, site, "mads", "status", status="snoozed", until="2020-01-01T10:00")
    assert response.status_code == 400
    assert "Tidspunktet skal ligge ude i fremtiden." in response.text
    assert 'role="alert"' in response.text
    # The young person writes: the snoozed handoff opens again.
    site.say("mads", "hallo?")
    assert site.handoffs("mads")[0].status is HandoffStatus.OPEN

    # Resolved while the bot is still silent (waiting for a human): the next message reopens.
    assert _post(karin, site, "mads", "status", status="resolved").status_code == 303
    assert site.handoffs("mads")[0].status is HandoffStatus.RESOLVED
    assert site.say("mads", "er der nogen?") == []  # the bot is still silent
    [reopened] = site.handoffs("mads")
    assert reopened.status is HandoffStatus.OPEN and reopened.resolved_at is None
    assert [e.details["handoffs"] for e in site.events("inbox.reopened")][-1] == [reopened.id]

    # Handed back to the bot: the bot answers and nothing reopens.
    assert _post(karin, site, "mads", "hand-back").status_code == 303
    assert site.say("mads", "hjælp") != []
    assert [h.status for h in site.handoffs("mads")] == [HandoffStatus.RESOLVED]


def inbox_zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Copenhagen")


# ---------------------------------------------------------------------------- take over, reply


def test_take_over_reply_and_hand_back_against_real_turns(site: Site) -> None:
    mads = site.person("mads")
    site.say("mads", "tal med en voksen")
    karin = site.browser("karin")
    assert _post(karin, site, "mads", "take-over").status_code == 303
    conversation = site.conversation("mads")
    assert conversation is not None
    assert (conversation.holder, conversation.held_by_id) == (
        Holder.HUMAN,
        site.world.staff["karin"],
    )
    assert site.handoffs("mads")[0].assignee_id == site.world.staff["karin"]

    before = site.count(OutboxEntry)
    assert site.say("mads", "hvad skal jeg gøre?") == []  # the bot stays silent
    # A picture alone gets no "I cannot read pictures" from the bot either.
    assert (
        site.runtime.conversations.notice(
            young_person_id=mads, channel=Channel.SMS, provider_id="MM1", reply="Billede"
        )
        == []
    )
    assert site.count(OutboxEntry) == before
    # ... except on signs of crisis: help lines at once, and the handoff turns urgent.
    crisis = site.say("mads", "jeg vil ikke leve mere")
    assert len(crisis) == 1 and "Livslinien" in crisis[0]
    assert site.handoffs("mads")[0].priority is HandoffPriority.URGENT

    response = _post(
        karin, site, "mads", "reply", text="Hej Mads, jeg er her. Ring 112 hvis det haster."
    )
    assert response.status_code == 303
    with site.database.session() as session:
        message = session.scalars(
            sa.select(Message).where(Message.author == Author.STAFF).order_by(Message.id)
        ).one()
        entry = session.scalars(
            sa.select(OutboxEntry).where(OutboxEntry.message_id == message.id)
        ).one()
    assert (message.channel, message.young_person_id, message.staff_id) == (
        Channel.SMS,
        mads,
        site.world.staff["karin"],
    )
    assert (entry.channel, entry.purpose) == (Channel.SMS, Purpose.STAFF)
    [handoff] = site.handoffs("mads")
    assert handoff.first_human_answer_at is not None
    first_answer = handoff.first_human_answer_at
    _post(karin, site, "mads", "reply", text="Skriv når du kan.")
    assert site.handoffs("mads")[0].first_human_answer_at == first_answer  # the first one counts

    page = karin.get(f"/inbox/{mads}")
    assert 'id="thread" class="inbox-thread" data-live="thread"' in page.text
    assert f'data-young-person="{mads}"' in page.text
    assert "Karin Kontakt" in page.text and "Hej Mads, jeg er her." in page.text

    assert _post(karin, site, "mads", "hand-back").status_code == 303
    conversation = site.conversation("mads")
    assert conversation is not None and conversation.holder is Holder.BOT
    assert conversation.held_by_id is None
    [resolved] = site.handoffs("mads")
    assert resolved.status is HandoffStatus.RESOLVED
    assert resolved.resolved_by_id == site.world.staff["karin"]
    assert site.say("mads", "hjælp") != []  # the bot answers again
    actions = [
        e.action
        for e in site.events("inbox.took_over")
        + site.events("inbox.replied")
        + site.events("inbox.handed_back")
    ]
    assert actions == ["inbox.took_over", "inbox.replied", "inbox.replied", "inbox.handed_back"]


def test_a_reply_takes_the_conversation_over_from_the_bot(site: Site) -> None:
    karin = site.browser("karin")
    response = _post(karin, site, "mads", "reply", text="Hej Mads")
    assert response.status_code == 303
    assert "done=replied_took_over" in response.headers["location"]
    conversation = site.conversation("mads")
    assert conversation is not None and conversation.holder is Holder.HUMAN


def test_no_reply_reaches_an_opted_out_young_person(site: Site) -> None:
    with site.database.session() as session:
        session.get_one(YoungPerson, site.person("mads")).status = YoungPersonStatus.OPTED_OUT
    karin = site.browser("karin")
    response = _post(karin, site, "mads", "reply", text="Hej Mads")
    assert response.status_code == 400
    assert "Mads har frameldt beskeder (STOP), så svaret er ikke sendt." in response.text
    assert 'role="alert"' in response.text
    assert site.count(OutboxEntry) == 0
    assert site.count(Message) == 0


def test_an_empty_reply_is_refused_with_its_field(site: Site) -> None:
    response = _post(site.browser("karin"), site, "mads", "reply", text="   ")
    assert response.status_code == 400
    assert 'href="#reply-text"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert site.count(OutboxEntry) == 0


# ---------------------------------------------------------------------------- the thread


def test_a_failed_sms_shows_its_reason_in_plain_words(site: Site) -> None:
    with site.database.session() as session:
        session.add(
            Message(
                young_person_id=site.person("mads"),
                direction=Direction.OUTBOUND,
                channel=Channel.SMS,
                author=Author.BOT,
                text="Husk mødet i morgen",
                status=DeliveryStatus.FAILED,
                error_code="30005",
                created_at=utcnow(),
            )
        )
    karin = site.browser("karin")
    page = karin.get(f"/inbox/{site.person('mads')}")
    assert "Fejlede" in page.text
    assert "Nummeret findes ikke, eller teleselskabet kender ikke telefonen." in page.text
    english = karin.get(f"/inbox/{site.person('mads')}?lang=en")
    assert "Failed" in english.text or "failed" in english.text


def test_notes_are_kept_and_never_reach_the_outbox(site: Site) -> None:
    karin = site.browser("karin")
    response = _post(karin, site, "mads", "notes", text="Mads virker presset, cpr 010203-1234")
    assert response.status_code == 303
    with site.database.session() as session:
        note = session.scalars(sa.select(StaffNote)).one()
    assert note.author_id == site.world.staff["karin"]
    assert "010203-1234" not in note.text
    assert site.count(Message) == 0 and site.count(OutboxEntry) == 0
    page = karin.get(f"/inbox/{site.person('mads')}")
    assert "Mads virker presset" in page.text
    assert [e.young_person_id for e in site.events("inbox.note_added")] == [site.person("mads")]


def test_viewing_a_thread_is_an_audit_event(site: Site) -> None:
    site.browser("karin").get(f"/inbox/{site.person('mads')}")
    [event] = site.events("thread.viewed")
    assert (event.staff_id, event.young_person_id, event.municipality_id, event.actor) == (
        site.world.staff["karin"],
        site.person("mads"),
        site.world.places["aarhus"],
        f"staff:{site.world.staff['karin']}",
    )


def test_a_post_without_the_csrf_token_is_refused(site: Site) -> None:
    karin = site.browser("karin")
    mads = site.person("mads")
    for action in ("take-over", "reply", "notes", "status", "hand-back"):
        response = karin.post(
            f"/inbox/{mads}/{action}",
            data={"text": "Hej", "status": "resolved", "csrf_token": "forkert"},
            follow_redirects=False,
        )
        assert response.status_code == 403, action
    assert site.conversation("mads") is None
    assert site.count(Message) == 0 and site.count(StaffNote) == 0


# ---------------------------------------------------------------------------- canned replies


def test_coordinators_keep_canned_replies_that_fill_the_reply_box(site: Site) -> None:
    carsten = site.browser("carsten")
    response = post_form(
        carsten,
        "/canned-replies",
        "/canned-replies",
        title="Mødetid",
        text="Hej! Hvornår passer det dig at mødes?",
        text_en="Hi! When would you like to meet?",
    )
    assert response.status_code == 303
    with site.database.session() as session:
        reply = session.scalars(sa.select(CannedReply)).one()
        reply_id = reply.id
    assert reply.translations == {"en": "Hi! When would you like to meet?"}
    assert reply.municipality_id == site.world.places["aarhus"]
    olga = site.browser("olga")
    post_form(olga, "/canned-replies", "/canned-replies", title="Odense", text="Hej fra Odense")
    with site.database.session() as session:
        odense_id = session.scalars(
            sa.select(CannedReply.id).where(CannedReply.title == "Odense")
        ).one()

    karin = site.browser("karin")
    assert karin.get("/canned-replies").status_code == 403
    mads = site.person("mads")
    page = karin.get(f"/inbox/{mads}?canned={reply_id}").text
    assert ">Hej! Hvornår passer det dig at mødes?</textarea>" in page
    assert "Odense" not in karin.get(f"/inbox/{mads}").text
    # Another municipality's canned reply is neither listed nor used.
    assert "Hej fra Odense" not in karin.get(f"/inbox/{mads}?canned={odense_id}").text
    # In the young person's own language when there is one.
    with site.database.session() as session:
        session.get_one(YoungPerson, mads).language = "en"
    assert (
        ">Hi! When would you like to meet?</textarea>"
        in karin.get(f"/inbox/{mads}?canned={reply_id}").text
    )

    # Olga cannot change Aarhus's reply; Carsten can retire it.
    token = csrf_token(olga.get("/canned-replies").text)
    response = olga.post(
        f"/canned-replies/{reply_id}",
        data={"csrf_token": token, "title": "x", "text": "y"},
        follow_redirects=False,
    )
    assert response.status_code == 404
    response = post_form(
        carsten, "/canned-replies", f"/canned-replies/{reply_id}", title="Mødetid", text="Hej"
    )
    assert response.status_code == 303
    assert "Mødetid" not in karin.get(f"/inbox/{mads}").text  # no longer in use
    assert [e.action for e in site.events("canned_reply.updated")] == ["canned_reply.updated"]


def test_waiting_time_counts_from_the_first_message_after_a_staff_answer(site: Site) -> None:
    now = utcnow()
    site.handoff("mads", opened_at=now - timedelta(hours=5))
    site.handoff("sara", opened_at=now - timedelta(hours=2))
    with site.database.session() as session:
        for minutes_ago, direction, author in [
            (240, Direction.OUTBOUND, Author.STAFF),  # Carsten answered Mads 4 hours ago
            (60, Direction.INBOUND, Author.YOUNG_PERSON),  # Mads wrote again an hour ago
            (30, Direction.INBOUND, Author.YOUNG_PERSON),
        ]:
            session.add(
                Message(
                    young_person_id=site.person("mads"),
                    direction=direction,
                    channel=Channel.SMS,
                    author=author,
                    staff_id=site.world.staff["carsten"] if author is Author.STAFF else None,
                    text="...",
                    status=DeliveryStatus.RECEIVED,
                    created_at=now - timedelta(minutes=minutes_ago),
                )
            )
        carsten = session.get_one(StaffUser, site.world.staff["carsten"])
        rows = inbox.needs_attention(session, carsten, now)
    assert [(r.first_name, r.waiting_since) for r in rows] == [
        ("Sara", now - timedelta(hours=2)),
        ("Mads", now - timedelta(minutes=60)),
    ]
    english = site.browser("carsten").get("/inbox?lang=en").text
    assert "Needs attention" in english and "2 hours" in english
