"""Handoff notifications through the real worker on a controlled clock: the inbox alert and the
e-mail (through a local SMTP server) to the kontaktperson or their backup, the coordinators'
alert when nobody answers in time, and nothing at all for a handoff that was rolled back; on
SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from bot.conversations import Conversations
from bot.metrics import Metrics
from bot.notify import ESCALATE, NOTIFY, Notifier
from bot.runtime import Runtime
from bot.web.app import create_app
from bot.worker import Worker
from dialogs.engine import Engine
from dialogs.flows import CORE_DIALOGS
from dialogs.types import (
    AlertKind,
    Channel,
    HandoffPriority,
    HandoffReason,
    HandoffStatus,
    ScheduledStatus,
)
from storage import handoffs
from storage.db import Database
from storage.models import (
    Handoff,
    Municipality,
    ScheduledItem,
    StaffAlert,
    StaffUser,
    YoungPerson,
)
from tests.conftest import make_settings
from tests.fakes.smtp import FakeSmtp, Received
from tests.staff_world import World, build_world, email, sign_in

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
BASE_URL = "https://stifinder.aarhus.example"
CPR_LIKE = re.compile(r"\d{6}-?\d{4}")


@dataclass
class Setup:
    database: Database
    world: World
    worker: Worker
    clock: list[datetime]

    def sweep(self, at: datetime | None = None) -> int:
        if at is not None:
            self.clock[0] = at
        return self.worker.sweep_items()

    def open(
        self,
        who: str = "mads",
        *,
        reason: HandoffReason = HandoffReason.ASKED,
        priority: HandoffPriority = HandoffPriority.NORMAL,
    ) -> int:
        with self.database.session() as session:
            person = session.get_one(YoungPerson, self.world.people[who])
            handoff = handoffs.open_handoff(
                session, person, reason=reason, priority=priority, now=self.clock[0]
            )
            session.flush()
            return handoff.id

    def items(self, kind: str) -> list[tuple[ScheduledStatus, str | None]]:
        with self.database.session() as session:
            rows = session.execute(
                sa.select(ScheduledItem.status, ScheduledItem.outcome)
                .where(ScheduledItem.kind == kind)
                .order_by(ScheduledItem.id)
            ).all()
        return [(status, outcome) for status, outcome in rows]

    def alerts(self) -> list[tuple[AlertKind, int, int | None]]:
        with self.database.session() as session:
            rows = session.execute(
                sa.select(StaffAlert.kind, StaffAlert.staff_id, StaffAlert.young_person_id)
                .where(
                    StaffAlert.kind.in_([AlertKind.HANDOFF_OPENED, AlertKind.HANDOFF_UNANSWERED])
                )
                .order_by(StaffAlert.id)
            ).all()
        return [(kind, staff_id, person_id) for kind, staff_id, person_id in rows]

    def staff(self, who: str, **fields: Any) -> None:
        with self.database.session() as session:
            row = session.get_one(StaffUser, self.world.staff[who])
            for name, value in fields.items():
                setattr(row, name, value)


@contextmanager
def setup(database: Database, smtp: FakeSmtp | None) -> Iterator[Setup]:
    values: dict[str, Any] = {"public_base_url": BASE_URL}
    if smtp is not None:
        values.update(smtp.settings())
    settings = make_settings(**values)
    with database.session() as session:
        world = build_world(session)
    clock = [NOW]
    worker = Worker(
        database=database,
        metrics=Metrics(),
        handlers=Notifier(settings).handlers(),
        clock=lambda: clock[0],
    )
    yield Setup(database=database, world=world, worker=worker, clock=clock)


@pytest.fixture
def smtp() -> Iterator[FakeSmtp]:
    with FakeSmtp.running() as server:
        yield server


def _assert_safe(received: Received) -> None:
    text = received.text()
    assert not CPR_LIKE.search(text)
    assert not CPR_LIKE.search(str(received.message["Subject"]))


def test_a_handoff_tells_the_kontaktperson_in_the_inbox_and_by_e_mail(
    database: Database, smtp: FakeSmtp
) -> None:
    with setup(database, smtp) as world:
        world.open("mads")
        karin, mads = world.world.staff["karin"], world.world.people["mads"]
        # The inbox alert is there at once, in the handoff's own transaction.
        assert world.alerts() == [(AlertKind.HANDOFF_OPENED, karin, mads)]
        with database.session() as session:
            [waiting] = handoffs.waiting_alerts(session, session.get_one(StaffUser, karin), NOW)
            assert (waiting.first_name, waiting.reason) == ("Mads", HandoffReason.ASKED)
            ali = session.get_one(StaffUser, world.world.staff["ali"])
            assert handoffs.waiting_alerts(session, ali, NOW) == []
        assert smtp.received == []  # nothing from inside the transaction: the worker sends
        assert world.sweep() == 1
        [received] = smtp.wait_for(1)
    assert received.recipients == [email("karin")]
    assert received.message["Subject"] == "Mads har brug for dig i Stifinder"
    text = received.text()
    assert "Hej Karin Kontakt" in text
    assert "Mads har brug for en voksen. Årsag: bad om at tale med en voksen." in text
    assert f"{BASE_URL}/inbox/{mads}" in text
    assert "Sara" not in text and "Carsten" not in text
    _assert_safe(received)
    assert world.items(NOTIFY) == [(ScheduledStatus.DONE, "e-mailed 1")]
    # Sweeping again sends nothing more.
    world.sweep(NOW + timedelta(minutes=1))
    assert len(smtp.received) == 1


def test_the_e_mail_is_in_the_readers_language_and_says_when_it_is_urgent(
    database: Database, smtp: FakeSmtp
) -> None:
    with setup(database, smtp) as world:
        world.staff("karin", language="en")
        world.open("mads", reason=HandoffReason.CRISIS, priority=HandoffPriority.URGENT)
        world.sweep()
        [received] = smtp.wait_for(1)
    assert received.message["Subject"] == "Urgent: Mads needs you in Stifinder"
    assert "Reason: wrote something that may be a sign of crisis." in received.text()
    assert "Hi Karin Kontakt" in received.text()


def test_while_the_kontaktperson_is_away_their_backup_is_told(
    database: Database, smtp: FakeSmtp
) -> None:
    with setup(database, smtp) as world:
        world.staff(
            "karin",
            absent_from=NOW - timedelta(days=1),
            absent_until=NOW + timedelta(days=6),
            backup_id=world.world.staff["ali"],
        )
        world.open("mads")
        ali = world.world.staff["ali"]
        assert world.alerts() == [(AlertKind.HANDOFF_OPENED, ali, world.world.people["mads"])]
        world.sweep()
        [received] = smtp.wait_for(1)
    assert received.recipients == [email("ali")]
    assert "fordi du dækker for Karin Kontakt" in received.text()


def test_nobody_answering_in_time_alerts_the_coordinators(
    database: Database, smtp: FakeSmtp
) -> None:
    with setup(database, smtp) as world:
        with database.session() as session:
            place = session.get_one(Municipality, world.world.places["aarhus"])
            place.handoff_answer_minutes = 30
        handoff_id = world.open("mads")
        world.sweep()
        smtp.wait_for(1)
        world.sweep(NOW + timedelta(minutes=29))
        assert world.items(ESCALATE) == [(ScheduledStatus.PENDING, None)]
        world.sweep(NOW + timedelta(minutes=30))
        received = smtp.wait_for(2)
        carsten, mads = world.world.staff["carsten"], world.world.people["mads"]
        assert (AlertKind.HANDOFF_UNANSWERED, carsten, mads) in world.alerts()
        # Odense's coordinator hears nothing of Aarhus.
        assert all(staff != world.world.staff["olga"] for _, staff, _ in world.alerts())
        with database.session() as session:
            assert session.get_one(Handoff, handoff_id).status is HandoffStatus.OPEN
    escalation = received[1]
    assert escalation.recipients == [email("carsten")]
    assert escalation.message["Subject"] == "Ingen har svaret Mads endnu"
    assert "Mads har ventet 30 minutter på svar fra en voksen" in escalation.text()
    assert f"{BASE_URL}/inbox/{mads}" in escalation.text()
    _assert_safe(escalation)
    assert world.items(ESCALATE) == [(ScheduledStatus.DONE, "coordinators alerted and e-mailed: 1")]


def test_an_answered_handoff_is_not_escalated(database: Database, smtp: FakeSmtp) -> None:
    with setup(database, smtp) as world:
        handoff_id = world.open("mads")
        world.sweep()
        smtp.wait_for(1)
        with database.session() as session:
            session.get_one(Handoff, handoff_id).first_human_answer_at = NOW + timedelta(minutes=12)
        world.sweep(NOW + timedelta(hours=2))
        assert world.items(ESCALATE) == [(ScheduledStatus.EXPIRED, "answered after 12 min")]
        with database.session() as session:
            karin = session.get_one(StaffUser, world.world.staff["karin"])
            assert handoffs.waiting_alerts(session, karin, NOW) == []  # answering cleared it
        assert [kind for kind, _, _ in world.alerts()] == [AlertKind.HANDOFF_OPENED]
    assert len(smtp.received) == 1


def test_a_resolved_handoff_is_not_escalated_and_not_e_mailed(
    database: Database, smtp: FakeSmtp
) -> None:
    with setup(database, smtp) as world:
        handoff_id = world.open("mads")
        with database.session() as session:
            session.get_one(Handoff, handoff_id).status = HandoffStatus.RESOLVED
        world.sweep(NOW + timedelta(hours=2))
        assert world.items(NOTIFY)[0][0] is ScheduledStatus.EXPIRED
        assert world.items(ESCALATE) == [(ScheduledStatus.EXPIRED, "handoff resolved in time")]
    assert smtp.received == []


def test_a_rolled_back_handoff_tells_nobody(database: Database, smtp: FakeSmtp) -> None:
    with setup(database, smtp) as world:

        class BoomError(Exception):
            pass

        with pytest.raises(BoomError), database.session() as session:
            person = session.get_one(YoungPerson, world.world.people["mads"])
            handoffs.open_handoff(
                session,
                person,
                reason=HandoffReason.ASKED,
                priority=HandoffPriority.NORMAL,
                now=NOW,
            )
            session.flush()
            raise BoomError
        assert world.sweep(NOW + timedelta(hours=3)) == 0
        assert world.items(NOTIFY) == [] and world.items(ESCALATE) == []
        assert world.alerts() == []
    assert smtp.received == []


def test_without_smtp_only_the_inbox_alerts_are_made(database: Database) -> None:
    with setup(database, None) as world:
        world.open("mads")
        world.sweep()
        world.sweep(NOW + timedelta(minutes=60))
        assert world.items(NOTIFY) == [
            (ScheduledStatus.DONE, "inbox alert only for 1 (e-mail is not configured)")
        ]
        assert world.items(ESCALATE) == [
            (ScheduledStatus.DONE, "inbox alert only for 1 coordinators (no e-mail configured)")
        ]
        karin, carsten = world.world.staff["karin"], world.world.staff["carsten"]
        mads = world.world.people["mads"]
        assert world.alerts() == [
            (AlertKind.HANDOFF_OPENED, karin, mads),
            (AlertKind.HANDOFF_UNANSWERED, carsten, mads),
        ]


def test_a_young_person_without_a_kontaktperson_goes_to_the_coordinators(
    database: Database, smtp: FakeSmtp
) -> None:
    with setup(database, smtp) as world:
        world.open("emil")
        carsten = world.world.staff["carsten"]
        assert world.alerts() == [(AlertKind.HANDOFF_OPENED, carsten, world.world.people["emil"])]
        world.sweep()
        [received] = smtp.wait_for(1)
    assert received.recipients == [email("carsten")]
    assert "så du får beskeden som koordinator" in received.text()


def test_a_mail_server_that_is_down_is_tried_again(database: Database) -> None:
    with FakeSmtp.running() as smtp:
        port = smtp.port
    # The server has stopped: its port refuses.
    settings_smtp = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none"}
    values: dict[str, Any] = {"smtp_from": "Stifinder <stifinder@kommune.example>"}
    settings = make_settings(**settings_smtp, **values)
    with database.session() as session:
        world = build_world(session)
    clock = [NOW]
    worker = Worker(
        database=database,
        metrics=Metrics(),
        handlers=Notifier(settings).handlers(),
        clock=lambda: clock[0],
    )
    with database.session() as session:
        person = session.get_one(YoungPerson, world.people["mads"])
        handoffs.open_handoff(
            session, person, reason=HandoffReason.ASKED, priority=HandoffPriority.NORMAL, now=NOW
        )
    worker.sweep_items()
    with database.session() as session:
        item = session.scalars(sa.select(ScheduledItem).where(ScheduledItem.kind == NOTIFY)).one()
        assert (item.status, item.attempts) == (ScheduledStatus.PENDING, 1)
        assert item.due_at > NOW


def test_a_handoff_from_a_real_conversation_turn_notifies(
    database: Database, smtp: FakeSmtp
) -> None:
    with setup(database, smtp) as world:
        conversations = Conversations(
            database=database, engine=Engine(CORE_DIALOGS), clock=lambda: world.clock[0]
        )
        conversations.receive(
            young_person_id=world.world.people["mads"],
            channel=Channel.SIMULATOR,
            text="jeg vil tale med en voksen",
        )
        world.sweep()
        [received] = smtp.wait_for(1)
    assert received.recipients == [email("karin")]
    assert "jeg vil tale med en voksen" not in received.text()


def test_time_to_first_human_answer_median_and_90th_percentile(database: Database) -> None:
    with database.session() as session:
        world = build_world(session)
    start = NOW
    waits = [5, 10, 15, 20, 25, 30, 35, 40, 45, 120]  # minutes
    with database.session() as session:
        mads = world.people["mads"]
        for number, minutes in enumerate(waits):
            opened = start + timedelta(hours=number)
            session.add(
                Handoff(
                    young_person_id=mads,
                    reason=HandoffReason.ASKED,
                    status=HandoffStatus.RESOLVED,
                    opened_at=opened,
                    first_human_answer_at=opened + timedelta(minutes=minutes),
                )
            )
        # Not answered (yet): counted as opened, not in the figures.
        session.add(Handoff(young_person_id=mads, reason=HandoffReason.ASKED, opened_at=start))
        # Another municipality's and another period's handoffs do not count.
        session.add(
            Handoff(
                young_person_id=world.people["freja"],
                reason=HandoffReason.ASKED,
                opened_at=start,
                first_human_answer_at=start + timedelta(days=3),
            )
        )
        session.add(
            Handoff(
                young_person_id=mads,
                reason=HandoffReason.ASKED,
                opened_at=start - timedelta(days=40),
                first_human_answer_at=start - timedelta(days=39),
            )
        )
    with database.session() as session:
        times = handoffs.answer_times(
            session,
            municipality_id=world.places["aarhus"],
            start=start,
            end=start + timedelta(days=30),
        )
        empty = handoffs.answer_times(
            session,
            municipality_id=world.places["aarhus"],
            start=start + timedelta(days=60),
            end=start + timedelta(days=90),
        )
    assert (times.opened, times.answered) == (11, 10)
    assert times.median == timedelta(minutes=25)
    assert times.p90 == timedelta(minutes=45)
    assert (empty.opened, empty.answered, empty.median, empty.p90) == (0, 0, None, None)


def test_the_staff_page_lists_the_handoffs_waiting_for_the_reader(database: Database) -> None:
    with setup(database, None) as world:
        world.open("mads", reason=HandoffReason.CRISIS, priority=HandoffPriority.URGENT)
        world.open("sara")
        runtime = Runtime(settings=make_settings(), database=database)
        with TestClient(create_app(runtime)) as client:
            assert sign_in(client, "karin").status_code == 303
            page = client.get("/staff").text
            assert f'href="/inbox/{world.world.people["mads"]}">Mads</a>' in page
            assert "skrev noget, der kan være tegn på krise" in page and "Haster" in page
            assert "Sara" not in page  # Ali's
            with database.session() as session:
                handoff = session.scalars(
                    sa.select(Handoff).where(Handoff.young_person_id == world.world.people["mads"])
                ).one()
                handoff.first_human_answer_at = NOW + timedelta(minutes=3)
            assert "Ingen overdragelser venter på dig." in client.get("/staff").text
