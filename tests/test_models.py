from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from dialogs.types import (
    Author,
    Channel,
    ConsentKind,
    ConsentSource,
    DeliveryStatus,
    Direction,
    Role,
)
from storage.db import Database
from storage.models import (
    AppendOnlyError,
    ConsentEvent,
    Message,
    Municipality,
    StaffUser,
    YoungPerson,
    YoungPersonTag,
)


def _person(database: Database, **fields: object) -> int:
    with database.session() as session:
        place = session.scalar(sa.select(Municipality)) or Municipality(
            name="Aarhus", slug="aarhus"
        )
        person = YoungPerson(
            municipality=place, first_name="Mads", birth_date=date(2008, 5, 1), **fields
        )
        session.add(person)
        session.flush()
        return person.id


def test_municipality_defaults(database: Database) -> None:
    with database.session() as session:
        session.add(Municipality(name="Aarhus", slug="aarhus"))
    with database.session() as session:
        place = session.scalars(sa.select(Municipality)).one()
        assert place.timezone == "Europe/Copenhagen"
        assert (place.quiet_hours_start.hour, place.quiet_hours_end.hour) == (21, 8)
        assert place.default_language == "da"
        assert [line["number"] for line in place.help_lines] == [
            "112",
            "70 201 201",
            "116 111",
            "1888",
        ]


def test_timestamps_come_back_as_the_same_utc_instant(database: Database) -> None:
    copenhagen_summer = timezone(timedelta(hours=2))
    written = datetime(2026, 7, 1, 14, 30, tzinfo=copenhagen_summer)
    person_id = _person(database, last_inbound_at=written)
    with database.session() as session:
        read = session.get_one(YoungPerson, person_id).last_inbound_at
    assert read == written
    assert read is not None and read.tzinfo == UTC
    assert read.hour == 12


def test_naive_timestamps_are_refused(database: Database) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        _person(database, last_inbound_at=datetime(2026, 7, 1, 14, 30))  # noqa: DTZ001


def test_provider_id_is_unique_per_channel(database: Database) -> None:
    person_id = _person(database)

    def message(channel: Channel) -> Message:
        return Message(
            young_person_id=person_id,
            direction=Direction.INBOUND,
            channel=channel,
            author=Author.YOUNG_PERSON,
            text="hej",
            provider_id="SM123",
            status=DeliveryStatus.RECEIVED,
        )

    with database.session() as session:
        session.add_all([message(Channel.SMS), message(Channel.TELEGRAM)])
    with pytest.raises(sa.exc.IntegrityError), database.session() as session:
        session.add(message(Channel.SMS))


def test_one_young_person_per_phone_in_a_municipality(database: Database) -> None:
    _person(database, phone="+4520000001")
    with pytest.raises(sa.exc.IntegrityError):
        _person(database, phone="+4520000001")


def test_deleting_a_young_person_takes_their_tags_and_events_along(database: Database) -> None:
    person_id = _person(database, tags=[YoungPersonTag(tag="fgu")])
    with database.session() as session:
        session.add(
            ConsentEvent(
                young_person_id=person_id,
                kind=ConsentKind.CONSENT_GIVEN,
                source=ConsentSource.YOUNG_PERSON,
            )
        )
    with database.session() as session:
        session.execute(sa.delete(YoungPerson).where(YoungPerson.id == person_id))
    with database.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(YoungPersonTag)) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(ConsentEvent)) == 0


def test_consent_events_are_append_only(database: Database) -> None:
    person_id = _person(database)
    with database.session() as session:
        session.add(
            ConsentEvent(
                young_person_id=person_id,
                kind=ConsentKind.OPTED_OUT,
                source=ConsentSource.YOUNG_PERSON,
                note="STOP",
            )
        )
    with pytest.raises(AppendOnlyError), database.session() as session:
        event = session.scalars(sa.select(ConsentEvent)).one()
        event.note = "changed"


def test_staff_absence_and_backup(database: Database) -> None:
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    with database.session() as session:
        place = Municipality(name="Aarhus", slug="aarhus")
        karin = StaffUser(
            name="Karin",
            email="k@x.dk",
            role=Role.KONTAKTPERSON,
            password_hash="h",
            municipality=place,
        )
        ali = StaffUser(
            name="Ali",
            email="a@x.dk",
            role=Role.KONTAKTPERSON,
            password_hash="h",
            municipality=place,
            backup=karin,
            absent_from=now - timedelta(days=1),
            absent_until=now + timedelta(days=1),
        )
        session.add_all([karin, ali])
    with database.session() as session:
        ali = session.scalars(sa.select(StaffUser).where(StaffUser.name == "Ali")).one()
        assert ali.backup is not None and ali.backup.name == "Karin"
        assert ali.is_absent(now)
        assert not ali.is_absent(now + timedelta(days=2))


def test_sqlite_runs_with_wal_and_foreign_keys(tmp_path: object) -> None:
    database = Database(f"sqlite:///{tmp_path}/pragma.db")
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    database.dispose()


def test_hot_queries_have_indexes(database: Database) -> None:
    inspector = sa.inspect(database.engine)

    def indexed(table: str) -> list[list[str | None]]:
        return [index["column_names"] for index in inspector.get_indexes(table)]

    assert ["young_person_id", "created_at"] in indexed("message")
    assert ["status", "due_at"] in indexed("scheduled_item")
    assert ["status", "not_before"] in indexed("outbox_entry")
    assert ["assignee_id", "status", "priority", "opened_at"] in indexed("handoff")
