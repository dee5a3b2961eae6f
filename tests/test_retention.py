"""The nightly retention run on both databases, with the clock moved past the limit: the texts of
an inactive young person go, their rows (and so the counts) and the audit log stay, a young
person with a recent message keeps everything, a second night changes nothing, each night
schedules the next, and two workers sweeping at once run a night once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from sqlalchemy.orm import Session

from bot import retention as nightly
from bot.cli import _ensure_nightly
from bot.metrics import Metrics
from bot.runtime import Runtime
from bot.worker import Worker
from dialogs.types import (
    Author,
    CaptureSource,
    Channel,
    DeliveryStatus,
    Direction,
    DreamCategory,
    HandoffReason,
    InboundStatus,
    ScheduledStatus,
)
from storage import audit, retention
from storage.db import Database
from storage.models import (
    AuditEvent,
    Dream,
    Handoff,
    InboundEvent,
    Message,
    Municipality,
    ScheduledItem,
    StaffNote,
    StaffUser,
    YoungPerson,
    utcnow,
)
from tests.conftest import make_settings
from tests.people import kontaktperson

T0 = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
COPENHAGEN = ZoneInfo("Europe/Copenhagen")


@dataclass
class Town:
    place_id: int
    old: int  # Mads: nothing for 13 months
    recent: int  # Sara: wrote 2 months ago


def _message(person: YoungPerson, text: str, at: datetime, inbound: bool) -> Message:
    return Message(
        young_person_id=person.id,
        direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
        channel=Channel.SMS,
        author=Author.YOUNG_PERSON if inbound else Author.BOT,
        text=text,
        status=DeliveryStatus.RECEIVED if inbound else DeliveryStatus.DELIVERED,
        created_at=at,
    )


def _history(session: Session, person: YoungPerson, staff: StaffUser, at: datetime) -> None:
    """Two messages each way, a dream, a note, a handoff with a note and the stored SMS."""
    for number in range(2):
        session.add(_message(person, f"{person.first_name} skriver {number}", at, inbound=True))
        session.add(_message(person, f"Botten svarer {number}", at, inbound=False))
        session.add(
            InboundEvent(
                channel=Channel.SMS,
                dedupe_key=f"SM{person.id}x{number}x{at.timestamp()}",
                payload={"From": person.phone, "Body": f"{person.first_name} skriver {number}"},
                status=InboundStatus.DONE,
                received_at=at,
            )
        )
    session.add(
        Dream(
            young_person_id=person.id,
            text=f"{person.first_name} vil være tømrer",
            category=DreamCategory.JOB,
            captured_via=CaptureSource.DIALOG,
            captured_at=at,
        )
    )
    session.add(
        StaffNote(
            young_person_id=person.id, author_id=staff.id, text="Ring efter ferien", created_at=at
        )
    )
    session.add(
        Handoff(
            young_person_id=person.id,
            reason=HandoffReason.ASKED,
            note="Vil gerne mødes torsdag",
            opened_at=at,
        )
    )
    audit.record(
        session, actor="staff:1", action="thread.viewed", young_person_id=person.id, details={}
    )


def _build(database: Database) -> Town:
    with database.session() as session:
        place = Municipality(name="Aarhus Kommune", slug="aarhus", retention_months=12)
        karin = kontaktperson(place)
        old = YoungPerson(
            municipality=place,
            first_name="Mads",
            birth_date=date(2008, 3, 1),
            phone="+4520000001",
            created_at=T0,
            last_inbound_at=T0,
        )
        recent = YoungPerson(
            municipality=place,
            first_name="Sara",
            birth_date=date(2007, 6, 1),
            phone="+4520000002",
            created_at=T0,
            last_inbound_at=T0 + timedelta(days=335),
        )
        session.add_all([place, karin, old, recent])
        session.flush()
        _history(session, old, karin, T0)
        _history(session, recent, karin, T0)
        session.add(
            _message(recent, "Hej igen", T0 + timedelta(days=335), inbound=True)
        )  # 11 months later
        return Town(place.id, old.id, recent.id)


def _texts(database: Database, person_id: int) -> dict[str, list[Any]]:
    with database.session() as session:
        messages = session.execute(
            sa.select(Message.text, Message.redacted_at)
            .where(Message.young_person_id == person_id)
            .order_by(Message.id)
        ).all()
        phone = session.get_one(YoungPerson, person_id).phone
        events = session.scalars(
            sa.select(InboundEvent.payload)
            .where(InboundEvent.dedupe_key.like(f"SM{person_id}x%"))
            .order_by(InboundEvent.id)
        ).all()
        assert all(event["From"] == phone for event in events)
        return {
            "messages": [text for text, _ in messages],
            "redacted": [when is not None for _, when in messages],
            "events": [event["Body"] for event in events],
            "dreams": list(
                session.scalars(sa.select(Dream.text).where(Dream.young_person_id == person_id))
            ),
            "notes": list(
                session.scalars(
                    sa.select(StaffNote.text).where(StaffNote.young_person_id == person_id)
                )
            ),
            "handoffs": list(
                session.scalars(sa.select(Handoff.note).where(Handoff.young_person_id == person_id))
            ),
        }


def _audit(database: Database) -> list[tuple[Any, ...]]:
    with database.session() as session:
        rows = session.execute(
            sa.select(AuditEvent.id, AuditEvent.action, AuditEvent.young_person_id).order_by(
                AuditEvent.id
            )
        ).all()
        return [tuple(row) for row in rows]


def _runs(database: Database) -> list[dict[str, Any]]:
    with database.session() as session:
        return [
            dict(details)
            for details in session.scalars(
                sa.select(AuditEvent.details)
                .where(AuditEvent.action == "retention.run")
                .order_by(AuditEvent.id)
            )
        ]


def _pending_nights(database: Database) -> list[tuple[str, datetime]]:
    with database.session() as session:
        rows = session.execute(
            sa.select(ScheduledItem.idempotency_key, ScheduledItem.due_at)
            .where(
                ScheduledItem.kind == nightly.KIND,
                ScheduledItem.status == ScheduledStatus.PENDING,
            )
            .order_by(ScheduledItem.due_at)
        ).all()
        return [(key, due) for key, due in rows]


def _worker(database: Database, name: str) -> Worker:
    return Worker(
        database=database,
        metrics=Metrics(),
        handlers=nightly.handlers(),
        worker_id=name,
        clock=utcnow,
    )


@pytest.fixture
def town(database: Database) -> Iterator[Town]:
    with time_machine.travel(T0, tick=False):
        yield _build(database)


def test_months_before_keeps_to_the_calendar() -> None:
    assert retention.months_before(datetime(2025, 3, 31, tzinfo=UTC), 1) == datetime(
        2025, 2, 28, tzinfo=UTC
    )
    assert retention.months_before(datetime(2025, 1, 15, tzinfo=UTC), 13) == datetime(
        2023, 12, 15, tzinfo=UTC
    )
    assert retention.months_before(datetime(2024, 5, 31, tzinfo=UTC), 120) == datetime(
        2014, 5, 31, tzinfo=UTC
    )


def test_payload_texts_are_emptied_at_any_depth() -> None:
    payload = {"update_id": 1, "message": {"text": "hej", "chat": {"id": 5}}, "Body": "x"}
    assert retention.without_texts(payload) == {
        "update_id": 1,
        "message": {"text": None, "chat": {"id": 5}},
        "Body": None,
    }


def test_a_night_past_the_limit_removes_old_texts_and_keeps_counts_and_audit(
    database: Database, town: Town
) -> None:
    before_old = _texts(database, town.old)
    before_recent = _texts(database, town.recent)
    with time_machine.travel(T0 + timedelta(days=400), tick=False) as clock:
        with database.session() as session:
            assert nightly.ensure_scheduled(session, utcnow()) == 1
            assert nightly.ensure_scheduled(session, utcnow()) == 0  # once per night
        [(key, due)] = _pending_nights(database)
        assert due.astimezone(COPENHAGEN).time() == nightly.AT
        assert key == nightly.key_for(town.place_id, due.astimezone(COPENHAGEN).date())
        audit_before = _audit(database)
        assert _worker(database, "w1").sweep_items() == 0  # not yet 03:00
        clock.move_to(due + timedelta(minutes=1))
        assert _worker(database, "w1").sweep_items() == 1

        after_old = _texts(database, town.old)
        assert after_old == {
            "messages": [None] * 4,
            "redacted": [True] * 4,
            "events": [None, None],
            "dreams": [""],
            "notes": [""],
            "handoffs": [None],
        }
        assert len(before_old["messages"]) == 4
        # Sara wrote 11 months after: everything of hers stays, the old messages too.
        assert _texts(database, town.recent) == before_recent
        assert before_recent["messages"][-1] == "Hej igen"

        audit_after = _audit(database)
        assert audit_after[: len(audit_before)] == audit_before
        assert [row[1] for row in audit_after[len(audit_before) :]] == ["retention.run"]
        [run] = _runs(database)
        assert run == {
            "retention_months": 12,
            "cutoff": retention.months_before(due + timedelta(minutes=1), 12).isoformat(),
            "people": 1,
            "messages": 4,
            "inbound_events": 2,
            "notes": 1,
            "dreams": 1,
            "handoff_notes": 1,
        }
        assert "Mads" not in str(run)

        # The next night is scheduled, at 03:00 the following local day.
        [(next_key, next_due)] = _pending_nights(database)
        local = next_due.astimezone(COPENHAGEN)
        assert local.time() == nightly.AT
        assert local.date() == due.astimezone(COPENHAGEN).date() + timedelta(days=1)
        assert next_key == nightly.key_for(town.place_id, local.date())

        # The second night finds nothing left to do and changes nothing.
        clock.move_to(next_due + timedelta(minutes=1))
        assert _worker(database, "w1").sweep_items() == 1
        assert _texts(database, town.old) == after_old
        assert _texts(database, town.recent) == before_recent
        second = _runs(database)[1]
        assert {k: v for k, v in second.items() if k not in ("cutoff", "retention_months")} == {
            "people": 0,
            "messages": 0,
            "inbound_events": 0,
            "notes": 0,
            "dreams": 0,
            "handoff_notes": 0,
        }
        assert len(_pending_nights(database)) == 1


def test_within_the_limit_nothing_is_removed(database: Database, town: Town) -> None:
    before = _texts(database, town.old)
    with time_machine.travel(T0 + timedelta(days=300), tick=False):
        with database.session() as session:
            place = session.get_one(Municipality, town.place_id)
            counts = retention.run(session, place, now=utcnow())
        assert counts.people == 0
        assert _texts(database, town.old) == before


def test_two_workers_sweeping_at_once_run_a_night_once(database: Database, town: Town) -> None:
    with time_machine.travel(T0 + timedelta(days=400), tick=False) as clock:
        with database.session() as session:
            nightly.ensure_scheduled(session, utcnow())
            # A second municipality, whose night is added by the first one's run.
            session.add(Municipality(name="Odense Kommune", slug="odense"))
        [(_, due)] = _pending_nights(database)
        clock.move_to(due + timedelta(minutes=1))
        start = threading.Barrier(2)
        handled: list[int] = []

        def sweep(name: str) -> None:
            worker = _worker(database, name)
            start.wait()
            handled.append(worker.sweep_items())

        threads = [threading.Thread(target=sweep, args=(f"w{i}",)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(handled) == [0, 1]
        assert len(_runs(database)) == 1
        nights = _pending_nights(database)
        assert len(nights) == 2  # Aarhus's next night, and Odense's first
        assert len({key for key, _ in nights}) == 2


def test_a_night_for_a_municipality_that_is_gone_expires(database: Database) -> None:
    with database.session() as session:
        item = ScheduledItem(
            kind=nightly.KIND, idempotency_key="x", due_at=T0, municipality_id=None
        )
        session.add(item)
        session.flush()
        with pytest.raises(Exception, match="municipality is gone"):
            nightly.run_night(session, item, T0)


def test_starting_a_worker_schedules_every_municipalitys_next_night(
    database: Database, town: Town
) -> None:
    runtime = Runtime(settings=make_settings(), database=database)
    with database.session() as session:
        session.add(Municipality(name="Odense Kommune", slug="odense"))
    _ensure_nightly(runtime)
    _ensure_nightly(runtime)  # a second process starting: nothing more
    nights = _pending_nights(database)
    assert len(nights) == 2
    assert {due.astimezone(COPENHAGEN).time() for _, due in nights} == {nightly.AT}
    assert nightly.KIND in runtime.handlers()
