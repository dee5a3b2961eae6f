"""The access-request export of one young person (storage.export and the two downloads), on both
databases: everything held about them, the access log, and the export itself in the next one."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

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
    HandoffPriority,
    HandoffReason,
)
from storage import consent, export, plans
from storage.db import Database
from storage.handoffs import open_handoff
from storage.models import AuditEvent, Dream, Message, StaffNote, YoungPerson, utcnow
from tests.conftest import make_settings
from tests.staff_world import World, build_world, sign_in


@pytest.fixture
def world_app(database: Database) -> Iterator[tuple[TestClient, World, Database]]:
    runtime = Runtime(settings=make_settings(), database=database)
    with database.session() as session:
        world = build_world(session)
        _fill(session, world)
    with TestClient(create_app(runtime)) as client:
        yield client, world, database


def _fill(session: sa.orm.Session, world: World) -> None:
    now = utcnow()
    mads = session.get_one(YoungPerson, world.people["mads"])
    mads.phone = "+4512345678"
    inbound = Message(
        young_person_id=mads.id,
        direction=Direction.INBOUND,
        channel=Channel.SMS,
        author=Author.YOUNG_PERSON,
        text="Jeg drømmer om at blive kok. Æbler, øl og år!",
        status=DeliveryStatus.RECEIVED,
        created_at=now - timedelta(hours=2),
    )
    formula = Message(
        young_person_id=mads.id,
        direction=Direction.INBOUND,
        channel=Channel.SMS,
        author=Author.YOUNG_PERSON,
        text="=HYPERLINK(1)",
        status=DeliveryStatus.RECEIVED,
        created_at=now - timedelta(hours=1),
    )
    session.add_all([inbound, formula])
    session.flush()
    session.add(
        Dream(
            young_person_id=mads.id,
            text="Blive kok",
            category=DreamCategory.JOB,
            captured_at=now - timedelta(hours=2),
            captured_via=CaptureSource.DIALOG,
            channel=Channel.SMS,
            message_id=inbound.id,
        )
    )
    goal = plans.add_goal(session, mads, title="Kokkeskole", now=now)
    plans.add_sub_goal(
        session, goal, title="Besøge skolen", now=now, due_date=now.date() + timedelta(days=9)
    )
    plans.create_meeting(session, mads, starts_at=now + timedelta(days=3), now=now, place="Huset")
    consent.record(
        session,
        mads,
        ConsentKind.CONSENT_GIVEN,
        source=ConsentSource.YOUNG_PERSON,
        channel=Channel.SMS,
        now=now,
    )
    open_handoff(
        session, mads, reason=HandoffReason.ASKED, priority=HandoffPriority.NORMAL, now=now
    )
    session.add(
        StaffNote(
            young_person_id=mads.id,
            author_id=world.staff["karin"],
            text="Ringede til mor",
            created_at=now,
        )
    )
    # Another young person's data must not leak into Mads's export.
    sara = session.get_one(YoungPerson, world.people["sara"])
    plans.add_goal(session, sara, title="Saras mål", now=now)


def test_gather_holds_everything_about_the_young_person_and_nothing_else(
    world_app: tuple[TestClient, World, Database],
) -> None:
    _, world, database = world_app
    with database.session() as session:
        data = export.gather(session, world.people["mads"], now=utcnow())
    assert data["young_person_id"] == world.people["mads"]
    [profile] = data["profile"]
    assert (profile["first_name"], profile["phone"], profile["kontaktperson"]) == (
        "Mads",
        "+4512345678",
        "Karin Kontakt",
    )
    assert profile["birth_date"] == "2008-05-01"
    assert next(m["text"] for m in data["messages"]).startswith("Jeg drømmer om at blive kok")
    assert [d["text"] for d in data["dreams"]] == ["Blive kok"]
    assert data["dreams"][0]["category"] == "job"
    assert [g["title"] for g in data["goals"]] == ["Kokkeskole"]
    assert [s["title"] for s in data["sub_goals"]] == ["Besøge skolen"]
    assert [m["place"] for m in data["meetings"]] == ["Huset"]
    assert [c["kind"] for c in data["consent_events"]] == ["consent_given"]
    assert [h["reason"] for h in data["handoffs"]] == ["asked"]
    assert [(n["text"], n["author"]) for n in data["notes"]] == [
        ("Ringede til mor", "Karin Kontakt")
    ]
    assert "Saras mål" not in json.dumps(data, ensure_ascii=False)
    json.dumps(data)  # plain JSON throughout


def test_the_json_download_is_an_attachment_and_the_export_is_in_the_next_one(
    world_app: tuple[TestClient, World, Database],
) -> None:
    client, world, database = world_app
    assert sign_in(client, "carsten").status_code == 303
    path = f"/young-people/{world.people['mads']}/export.json"
    first = client.get(path)
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("application/json")
    disposition = first.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="stifinder-ung-')
    assert disposition.endswith('.json"')
    assert first.headers["cache-control"] == "no-store"
    data = json.loads(first.content.decode("utf-8"))
    assert "young_person.exported" not in [e["action"] for e in data["access_log"]]
    assert "Æbler, øl og år!" in first.content.decode("utf-8")  # not \u-escaped
    second = json.loads(client.get(path).content)
    [exported] = [e for e in second["access_log"] if e["action"] == "young_person.exported"]
    assert (exported["staff"], exported["details"]) == ("Carsten Koordinator", {"format": "json"})
    with database.session() as session:
        events = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "young_person.exported")
        ).all()
    assert [(e.staff_id, e.young_person_id) for e in events] == [
        (world.staff["carsten"], world.people["mads"])
    ] * 2


def test_the_csv_download_is_one_flat_file_that_excel_reads(
    world_app: tuple[TestClient, World, Database],
) -> None:
    client, world, _ = world_app
    assert sign_in(client, "carsten").status_code == 303
    response = client.get(f"/young-people/{world.people['mads']}/export.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].endswith('.csv"')
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for æøå
    text = response.content.decode("utf-8-sig")
    assert "\r\n" in text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["section", "record", "field", "value"]
    assert all(len(row) == 4 for row in rows)
    sections = {row[0] for row in rows[1:]}
    assert {"export", "profile", "messages", "dreams", "goals", "sub_goals", "meetings"} <= sections
    assert {"handoffs", "notes", "consent_events"} <= sections
    assert ["profile", str(world.people["mads"]), "first_name", "Mads"] in rows
    texts = [row[3] for row in rows if row[0] == "messages" and row[2] == "text"]
    assert "Jeg drømmer om at blive kok. Æbler, øl og år!" in texts
    # A text a spreadsheet would run as a formula is defused.
    assert "'=HYPERLINK(1)" in texts


def test_the_access_log_in_the_export_names_who_read_and_when(
    world_app: tuple[TestClient, World, Database],
) -> None:
    client, world, database = world_app
    karin = TestClient(client.app)
    assert sign_in(karin, "karin").status_code == 303
    assert karin.get(f"/young-people/{world.people['mads']}").status_code == 200
    assert sign_in(client, "carsten").status_code == 303
    response = client.get(f"/young-people/{world.people['mads']}/export.csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    log: dict[str, dict[str, str]] = {}
    for section, record, field, value in rows:
        if section == "access_log":
            log.setdefault(record, {})[field] = value
    viewed = [entry for entry in log.values() if entry["action"] == "young_person.viewed"]
    assert [entry["staff"] for entry in viewed] == ["Karin Kontakt"]
    with database.session() as session:
        at = session.scalar(
            sa.select(AuditEvent.at).where(AuditEvent.action == "young_person.viewed")
        )
    assert at is not None and viewed[0]["at"] == at.isoformat()
