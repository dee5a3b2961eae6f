"""The CSV import of young people, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialogs.types import Role, YoungPersonStatus
from storage.db import Database
from storage.importing import ImportReport, RowError, import_young_people, read_rows
from storage.models import AuditEvent, Municipality, StaffUser, YoungPerson, YoungPersonTag, utcnow

TODAY = date(2025, 6, 1)
HEADER = "fornavn;fødselsdato;telefon;kontaktperson;sprog;mærker;reference"


@dataclass(frozen=True)
class World:
    municipality_id: int
    other_municipality_id: int
    anna_id: int  # kontaktperson
    bo_id: int  # coordinator


def _staff(municipality: Municipality, name: str, email: str, role: Role, **kw: bool) -> StaffUser:
    return StaffUser(
        municipality=municipality,
        name=name,
        email=email,
        role=role,
        password_hash="x",
        **kw,
    )


@pytest.fixture
def world(database: Database) -> World:
    with database.session() as session:
        aarhus = Municipality(name="Aarhus Kommune", slug="aarhus")
        odense = Municipality(name="Odense Kommune", slug="odense", default_language="en")
        anna = _staff(aarhus, "Anna", "Anna@Aarhus.dk", Role.KONTAKTPERSON)
        bo = _staff(aarhus, "Bo", "bo@aarhus.dk", Role.COORDINATOR)
        session.add_all(
            [
                anna,
                bo,
                _staff(aarhus, "Carl", "carl@aarhus.dk", Role.KONTAKTPERSON, is_active=False),
                _staff(aarhus, "Dora", "dora@aarhus.dk", Role.ADMIN),
                _staff(odense, "Eva", "eva@odense.dk", Role.KONTAKTPERSON),
            ]
        )
        session.flush()
        return World(aarhus.id, odense.id, anna.id, bo.id)


def run_import(
    database: Database,
    municipality_id: int,
    text: str | bytes,
    **options: object,
) -> ImportReport:
    data = text.encode("utf-8") if isinstance(text, str) else text
    with database.session() as session:
        municipality = session.get_one(Municipality, municipality_id)
        return import_young_people(
            session,
            municipality=municipality,
            data=data,
            today=TODAY,
            **options,  # type: ignore[arg-type]
        )


def people(database: Database) -> list[YoungPerson]:
    with database.session() as session:
        query = sa.select(YoungPerson).order_by(YoungPerson.id)
        found = list(session.scalars(query))
        for person in found:
            _ = person.tag_names  # loaded while the session is open
        return found


def count(database: Database, model: type[object]) -> int:
    with database.session() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def where(report: ImportReport) -> list[tuple[int, str]]:
    return [(error.line, error.field) for error in report.errors]


def lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


# -------------------------------------------------------------------------------------------------
# Good files


def test_semicolon_file_with_danish_headers_creates_invited_young_people(
    database: Database, world: World
) -> None:
    before = utcnow()
    report = run_import(
        database,
        world.municipality_id,
        lines(
            HEADER,
            "Søren;24-12-2008;20 12 34 56;anna@aarhus.dk;;ung, KUI | ung;A-17",
            "",
            "  Aisha ; 2005-01-31 ; +45 30 12 34 56 ; BO@aarhus.dk ; AR ;  ;  ",
        ),
        staff_id=world.bo_id,
    )

    assert report == ImportReport(created=2, written=True, total_rows=2)
    soeren, aisha = people(database)
    assert (
        soeren.municipality_id,
        soeren.first_name,
        soeren.birth_date,
        soeren.phone,
        soeren.kontaktperson_id,
        soeren.language,
        soeren.status,
        soeren.tag_names,
        soeren.external_ref,
    ) == (
        world.municipality_id,
        "Søren",
        date(2008, 12, 24),
        "+4520123456",
        world.anna_id,
        "da",
        YoungPersonStatus.INVITED,
        ["KUI", "ung"],
        "A-17",
    )
    assert (
        aisha.first_name,
        aisha.birth_date,
        aisha.phone,
        aisha.kontaktperson_id,
        aisha.language,
        aisha.tag_names,
        aisha.external_ref,
    ) == ("Aisha", date(2005, 1, 31), "+4530123456", world.bo_id, "ar", [], None)
    for person in (soeren, aisha):
        assert person.invite_code is not None
        assert len(person.invite_code) == 22  # secrets.token_urlsafe(16)
        assert person.invite_code_expires_at is not None
        expires_in = person.invite_code_expires_at - before
        assert timedelta(days=30) <= expires_in < timedelta(days=30, minutes=5)
    assert soeren.invite_code != aisha.invite_code


def test_comma_file_with_bom_english_headers_and_semicolon_tags(
    database: Database, world: World
) -> None:
    text = lines(
        "First_Name,Birth_Date,Phone,Contact,Language,Tags,External_Ref,Surname",
        'Ali,01.02.2006,004520123456,anna@aarhus.dk,en,"neet;15-17",R1,Hassan',
        "Maja,15/08/2003,+4530123456,bo@aarhus.dk,,a|b,,Jensen",
    )
    report = run_import(database, world.municipality_id, b"\xef\xbb\xbf" + text.encode())

    assert report == ImportReport(created=2, written=True, total_rows=2)
    assert [
        (p.first_name, p.birth_date, p.phone, p.language, p.tag_names, p.external_ref)
        for p in people(database)
    ] == [
        ("Ali", date(2006, 2, 1), "+4520123456", "en", ["15-17", "neet"], "R1"),
        ("Maja", date(2003, 8, 15), "+4530123456", "da", ["a", "b"], None),
    ]


def test_empty_language_takes_the_municipality_default(database: Database, world: World) -> None:
    report = run_import(
        database,
        world.other_municipality_id,
        lines("navn;født;mobil;kontaktperson_email", "Ida;2007-03-03;20123456;eva@odense.dk"),
    )

    assert report == ImportReport(created=1, written=True, total_rows=1)
    assert [(p.first_name, p.language) for p in people(database)] == [("Ida", "en")]


def test_audit_event_for_each_created_young_person(database: Database, world: World) -> None:
    run_import(
        database,
        world.municipality_id,
        lines(
            "fornavn;fødselsdato;telefon;kontaktperson",
            "Søren;24-12-2008;20123456;anna@aarhus.dk",
            "Aisha;2005-01-31;30123456;bo@aarhus.dk",
        ),
        actor="web",
        staff_id=world.bo_id,
    )

    ids = [p.id for p in people(database)]
    with database.session() as session:
        events = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id)).all()
        assert [
            (e.actor, e.staff_id, e.action, e.municipality_id, e.young_person_id, e.details)
            for e in events
        ] == [
            (
                "web",
                world.bo_id,
                "young_person.imported",
                world.municipality_id,
                ids[0],
                {"line": 2},
            ),
            (
                "web",
                world.bo_id,
                "young_person.imported",
                world.municipality_id,
                ids[1],
                {"line": 3},
            ),
        ]


def test_progress_is_reported_after_each_written_row(database: Database, world: World) -> None:
    calls: list[tuple[int, int]] = []
    run_import(
        database,
        world.municipality_id,
        lines(
            "fornavn;fødselsdato;telefon;kontaktperson",
            "A;2005-01-01;20123456;anna@aarhus.dk",
            "B;2005-01-01;30123456;anna@aarhus.dk",
            "C;2005-01-01;40123456;anna@aarhus.dk",
        ),
        progress=lambda done, total: calls.append((done, total)),
    )

    assert calls == [(1, 3), (2, 3), (3, 3)]


# -------------------------------------------------------------------------------------------------
# Updating who is already there


def _existing_young_person(database: Database, world: World) -> int:
    with database.session() as session:
        person = YoungPerson(
            municipality_id=world.municipality_id,
            first_name="Soren",
            birth_date=date(2008, 1, 1),
            phone="+4520123456",
            kontaktperson_id=world.anna_id,
            language="ar",  # chosen by the young person in the chat
            status=YoungPersonStatus.ACTIVE,
            invite_code="old-code",
            external_ref="OLD",
            tags=[YoungPersonTag(tag="ung"), YoungPersonTag(tag="gammel")],
        )
        session.add(person)
        session.flush()
        return person.id


def test_known_phone_updates_the_young_person_instead_of_creating(
    database: Database, world: World
) -> None:
    person_id = _existing_young_person(database, world)

    report = run_import(
        database,
        world.municipality_id,
        lines(
            "fornavn;fødselsdato;telefon;kontaktperson;sprog;mærker;reference",
            "Søren;24-12-2008;+45 20-12-34-56;bo@aarhus.dk;;ung|ny;",
            "Aisha;2005-01-31;30123456;bo@aarhus.dk;;;",
        ),
        staff_id=world.bo_id,
    )

    assert report == ImportReport(created=1, updated=1, written=True, total_rows=2)
    soeren, aisha = people(database)
    assert (
        soeren.id,
        soeren.first_name,
        soeren.birth_date,
        soeren.kontaktperson_id,
        soeren.language,
        soeren.status,
        soeren.invite_code,
        soeren.tag_names,
        soeren.external_ref,
    ) == (
        person_id,
        "Søren",
        date(2008, 12, 24),
        world.bo_id,
        "ar",  # an empty cell does not overwrite the young person's own choice
        YoungPersonStatus.ACTIVE,
        "old-code",
        ["ny", "ung"],
        "OLD",
    )
    assert aisha.first_name == "Aisha"
    with database.session() as session:
        events = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id)).all()
        assert [(e.action, e.young_person_id, e.details) for e in events] == [
            (
                "young_person.updated_by_import",
                person_id,
                {"line": 2, "changed": ["first_name", "birth_date", "kontaktperson_id", "tags"]},
            ),
            ("young_person.imported", aisha.id, {"line": 3}),
        ]


def test_filled_optional_cells_replace_stored_values(database: Database, world: World) -> None:
    _existing_young_person(database, world)

    report = run_import(
        database,
        world.municipality_id,
        lines(
            "fornavn;fødselsdato;telefon;kontaktperson;sprog;reference",
            "Soren;2008-01-01;20123456;anna@aarhus.dk;uk;NEW",
        ),
    )

    assert report == ImportReport(updated=1, written=True, total_rows=1)
    [soeren] = people(database)
    assert (soeren.language, soeren.external_ref, soeren.tag_names) == (
        "uk",
        "NEW",
        ["gammel", "ung"],  # no tags column: tags stay as they were
    )


def test_same_phone_in_another_municipality_is_another_young_person(
    database: Database, world: World
) -> None:
    _existing_young_person(database, world)

    report = run_import(
        database,
        world.other_municipality_id,
        lines("fornavn;fødselsdato;telefon;kontaktperson", "Ida;2007-03-03;20123456;eva@odense.dk"),
    )

    assert report == ImportReport(created=1, written=True, total_rows=1)
    assert [(p.municipality_id, p.phone) for p in people(database)] == [
        (world.municipality_id, "+4520123456"),
        (world.other_municipality_id, "+4520123456"),
    ]


# -------------------------------------------------------------------------------------------------
# Bad rows

BAD_FILE = lines(
    HEADER,
    "Søren;24-12-2008;20123456;anna@aarhus.dk;;;",  # 2: good
    "Ali;2005-01-01;1234;anna@aarhus.dk;;;",  # 3: invalid phone
    "Maja;2005-01-01;30123456;ukendt@aarhus.dk;;;",  # 4: unknown kontaktperson
    "Ida;31-02-2008;40123456;anna@aarhus.dk;;;",  # 5: impossible date
    "Emil;2026-01-01;50123456;anna@aarhus.dk;;;",  # 6: future date
    "Lea;2015-01-01;60123456;anna@aarhus.dk;;;",  # 7: too young (10)
    "Ole;1990-01-01;61123456;anna@aarhus.dk;;;",  # 8: too old (35)
    "Noa;2. maj 2005;71123456;anna@aarhus.dk;;;",  # 9: unreadable date
    "Liv;2005-01-01;+45 20 12 34 56;anna@aarhus.dk;;;",  # 10: same phone as line 2
    "Kim;2005-01-01;81123456;carl@aarhus.dk;;;",  # 11: inactive kontaktperson
    "Zoe;2005-01-01;91123456;dora@aarhus.dk;;;",  # 12: admin is no kontaktperson
    "Max;2005-01-01;92123456;eva@odense.dk;;;",  # 13: staff of another municipality
    "Eva;2005-01-01;93123456;anna@aarhus.dk;de;;",  # 14: unknown language
    ";2005-01-01;42123456;anna@aarhus.dk;;;",  # 15: no first name
    "Bo;;;;;;",  # 16: three required cells empty
    "Tor;2005-01-01;33 12 34 56;anna@aarhus.dk;;;010203-1234",  # 17: CPR as reference
    "Ib;2012-06-01;31123456;anna@aarhus.dk;;;",  # 18: exactly 13 today: good
    "Al;1994-06-02;32123456;anna@aarhus.dk;;;",  # 19: 30, turns 31 tomorrow: good
)

BAD_FILE_ERRORS = [
    (3, "telefon"),
    (4, "kontaktperson"),
    (5, "fødselsdato"),
    (6, "fødselsdato"),
    (7, "fødselsdato"),
    (8, "fødselsdato"),
    (9, "fødselsdato"),
    (10, "telefon"),
    (11, "kontaktperson"),
    (12, "kontaktperson"),
    (13, "kontaktperson"),
    (14, "sprog"),
    (15, "fornavn"),
    (16, "fødselsdato"),
    (16, "telefon"),
    (16, "kontaktperson"),
    (17, "reference"),
]


def test_a_file_with_bad_rows_writes_nothing_and_lists_every_error(
    database: Database, world: World
) -> None:
    report = run_import(database, world.municipality_id, BAD_FILE)

    assert where(report) == BAD_FILE_ERRORS
    assert (report.created, report.updated, report.skipped, report.written) == (0, 0, 0, False)
    assert report.total_rows == 18
    assert count(database, YoungPerson) == 0
    assert count(database, AuditEvent) == 0


def test_bad_row_messages_and_params(database: Database, world: World) -> None:
    report = run_import(database, world.municipality_id, BAD_FILE)
    by_line = {(e.line, e.field): e for e in report.errors}

    assert by_line[3, "telefon"] == RowError(
        3,
        "telefon",
        "Telefonnummeret {value} er ikke et gyldigt mobilnummer.",
        {"value": "1234"},
    )
    assert by_line[4, "kontaktperson"].params == {
        "value": "ukendt@aarhus.dk",
        "municipality": "Aarhus Kommune",
    }
    assert by_line[5, "fødselsdato"].message == "Fødselsdatoen {value} findes ikke i kalenderen."
    assert by_line[6, "fødselsdato"].message == "Fødselsdatoen {value} ligger ude i fremtiden."
    assert by_line[7, "fødselsdato"].params == {
        "value": "2015-01-01",
        "age": "10",
        "min_age": "13",
        "max_age": "30",
    }
    assert by_line[8, "fødselsdato"].params["age"] == "35"
    assert by_line[9, "fødselsdato"].message.startswith("Fødselsdatoen {value} kan ikke læses.")
    assert by_line[10, "telefon"].params == {"value": "+45 20 12 34 56", "other_line": "2"}
    assert by_line[14, "sprog"].params == {
        "value": "de",
        "languages": "da, en, ar, tr, uk, so, fa, ur, pl",
    }
    assert by_line[16, "telefon"].params == {"column": "telefon"}
    # The CPR number itself is neither shown nor kept in the error.
    assert by_line[17, "reference"].params == {}
    assert "CPR" in by_line[17, "reference"].message
    # Every text can be filled in with its own params.
    for error in report.errors:
        error.message.format(**error.params)


def test_skip_bad_rows_writes_the_good_rows(database: Database, world: World) -> None:
    report = run_import(database, world.municipality_id, BAD_FILE, skip_bad_rows=True)

    assert where(report) == BAD_FILE_ERRORS
    assert (report.created, report.updated, report.skipped, report.written) == (3, 0, 15, True)
    assert [p.first_name for p in people(database)] == ["Søren", "Ib", "Al"]
    assert count(database, AuditEvent) == 3


def test_skip_bad_rows_with_only_bad_rows_writes_nothing(database: Database, world: World) -> None:
    report = run_import(
        database,
        world.municipality_id,
        lines("fornavn;fødselsdato;telefon;kontaktperson", "Ali;2005-01-01;1234;anna@aarhus.dk"),
        skip_bad_rows=True,
    )

    assert report == ImportReport(
        skipped=1,
        errors=[
            RowError(
                2,
                "telefon",
                "Telefonnummeret {value} er ikke et gyldigt mobilnummer.",
                {"value": "1234"},
            )
        ],
        written=False,
        total_rows=1,
    )
    assert count(database, YoungPerson) == 0


def test_a_row_with_too_many_cells_is_refused_as_a_whole(database: Database, world: World) -> None:
    report = run_import(
        database,
        world.municipality_id,
        lines(
            "fornavn,fødselsdato,telefon,kontaktperson",
            "Ali, Hassan,2005-01-01,20123456,anna@aarhus.dk",
            "Maja,2005-01-01,30123456,anna@aarhus.dk,,",  # empty trailing cells are fine
            "Ida,2005-01-01,40123456",  # missing trailing cells are empty
        ),
        skip_bad_rows=True,
    )

    assert where(report) == [(2, ""), (4, "kontaktperson")]
    assert report.errors[0].params == {"delimiter": ","}
    assert (report.created, report.skipped, report.total_rows) == (1, 2, 3)
    assert [p.first_name for p in people(database)] == ["Maja"]


# -------------------------------------------------------------------------------------------------
# Files that are refused as a whole


def test_cp1252_file_read_as_utf8_names_the_line_and_writes_nothing(
    database: Database, world: World
) -> None:
    text = lines(
        "fornavn;fødselsdato;telefon;kontaktperson",
        "Ali;2005-01-01;20123456;anna@aarhus.dk",
        "Søren;24-12-2008;30123456;anna@aarhus.dk",
    )
    data = text.encode("cp1252")

    report = run_import(database, world.municipality_id, data, skip_bad_rows=True)

    # The header's "ø" is already cp1252, so line 1 is the first line that cannot be read.
    assert report == ImportReport(
        errors=[
            RowError(
                1,
                "",
                "Linje {line} indeholder tegn, der ikke er UTF-8. Filen er nok gemt som almindelig "
                "CSV i Excel: gem den som »CSV UTF-8«, eller importér den med tegnkodningen "
                "cp1252.",
                {"line": "1", "encoding": "utf-8"},
            )
        ]
    )
    assert count(database, YoungPerson) == 0

    report = run_import(database, world.municipality_id, data, encoding="cp1252")
    assert report == ImportReport(created=2, written=True, total_rows=2)
    assert [p.first_name for p in people(database)] == ["Ali", "Søren"]


def test_wrong_encoding_names_the_line_with_the_bad_bytes(database: Database, world: World) -> None:
    data = (
        b"fornavn;foedselsdato;telefon;kontaktperson\n"
        b"Ali;2005-01-01;20123456;anna@aarhus.dk\n"
        b"\n"
        b"S\xf8ren;24-12-2008;30123456;anna@aarhus.dk\n"
    )

    report = run_import(database, world.municipality_id, data)

    assert where(report) == [(4, "")]
    assert report.errors[0].params == {"line": "4", "encoding": "utf-8"}
    assert count(database, YoungPerson) == 0


def test_unknown_encoding_is_refused(database: Database, world: World) -> None:
    report = run_import(database, world.municipality_id, "fornavn\n", encoding="klingon")

    assert report.errors == [
        RowError(
            1,
            "",
            "Tegnkodningen {encoding} kendes ikke. Prøv utf-8 eller cp1252.",
            {"encoding": "klingon"},
        )
    ]


def test_missing_columns_are_named_in_danish(database: Database, world: World) -> None:
    report = run_import(
        database,
        world.municipality_id,
        lines("Name;Phone;Contact", "Ali;20123456;anna@aarhus.dk"),
        skip_bad_rows=True,
    )

    assert where(report) == [(1, "fornavn"), (1, "fødselsdato")]
    assert [e.params for e in report.errors] == [{"column": "fornavn"}, {"column": "fødselsdato"}]
    assert (report.written, report.total_rows) == (False, 1)
    assert count(database, YoungPerson) == 0


@pytest.mark.parametrize("cpr_header", ["CPR", "cpr-nr", "CPR nummer", "Personnummer", "person_nr"])
def test_a_cpr_column_refuses_the_whole_file(
    database: Database, world: World, cpr_header: str
) -> None:
    report = run_import(
        database,
        world.municipality_id,
        lines(
            f"fornavn;{cpr_header};fødselsdato;telefon;kontaktperson",
            "Ali;010205-1234;2005-02-01;20123456;anna@aarhus.dk",
        ),
        skip_bad_rows=True,
    )

    assert where(report) == [(1, cpr_header)]
    assert report.errors[0].params == {"column": cpr_header}
    assert "CPR-numre må aldrig importeres" in report.errors[0].message
    assert report.written is False
    assert count(database, YoungPerson) == 0


def test_two_columns_meaning_the_same_are_refused(database: Database, world: World) -> None:
    report = run_import(
        database,
        world.municipality_id,
        lines("fornavn;navn;fødselsdato;telefon;kontaktperson", "A;B;2005-01-01;20123456;a@b.dk"),
    )

    assert where(report) == [(1, "navn")]
    assert report.errors[0].params == {"first": "fornavn", "second": "navn"}


@pytest.mark.parametrize("text", ["", "\n\n", "  \r\n"])
def test_an_empty_file_is_refused(database: Database, world: World, text: str) -> None:
    report = run_import(database, world.municipality_id, text)

    assert where(report) == [(1, "")]
    assert report.errors[0].message.startswith("Filen er tom.")
    assert report.written is False


def test_a_file_with_only_headers_is_refused(database: Database, world: World) -> None:
    report = run_import(database, world.municipality_id, lines(HEADER, "", ";;;;;;"))

    assert report.errors == [
        RowError(1, "", "Filen har ingen unge at importere – der er kun overskrifterne.", {})
    ]
    assert report.written is False


# -------------------------------------------------------------------------------------------------
# Interruption


class ImportInterruptedError(Exception):
    pass


def test_an_interrupted_import_leaves_the_database_unchanged(
    database: Database, world: World
) -> None:
    _existing_young_person(database, world)
    text = lines(
        "fornavn;fødselsdato;telefon;kontaktperson",
        "A;2005-01-01;30123456;anna@aarhus.dk",
        "Søren;24-12-2008;20123456;bo@aarhus.dk",  # an update
        "C;2005-01-01;40123456;anna@aarhus.dk",
        "D;2005-01-01;50123456;anna@aarhus.dk",
    )

    def interrupt(done: int, _total: int) -> None:
        if done == 3:
            raise ImportInterruptedError

    with pytest.raises(ImportInterruptedError), database.session() as session:
        municipality = session.get_one(Municipality, world.municipality_id)
        import_young_people(
            session, municipality=municipality, data=text.encode(), today=TODAY, progress=interrupt
        )

    assert [(p.first_name, p.kontaktperson_id, p.tag_names) for p in people(database)] == [
        ("Soren", world.anna_id, ["gammel", "ung"])
    ]
    assert count(database, YoungPersonTag) == 2
    assert count(database, AuditEvent) == 0


# -------------------------------------------------------------------------------------------------
# read_rows


def test_read_rows_maps_headers_and_skips_empty_lines() -> None:
    data = (
        "\ufeffFORNAVN; Født ;Mobilnummer;Kontaktperson E-mail;Efternavn\r\n"
        "\r\n"
        " Ali ;2005-01-01; 20123456 ;anna@aarhus.dk;Hassan\r\n"
        ";;;;\r\n"
        '"Maja ""M""";2006-02-02;30123456;bo@aarhus.dk;Jensen\r\n'
    ).encode()

    rows, errors = read_rows(data)

    assert errors == []
    assert rows == [
        (
            3,
            {
                "first_name": "Ali",
                "birth_date": "2005-01-01",
                "phone": "20123456",
                "kontaktperson": "anna@aarhus.dk",
            },
        ),
        (
            5,
            {
                "first_name": 'Maja "M"',
                "birth_date": "2006-02-02",
                "phone": "30123456",
                "kontaktperson": "bo@aarhus.dk",
            },
        ),
    ]


def test_read_rows_counts_lines_of_multi_line_cells() -> None:
    data = lines(
        "fornavn,fødselsdato,telefon,kontaktperson,tags",
        'Ali,2005-01-01,20123456,a@b.dk,"x',
        'y"',
        "Maja,2006-02-02,30123456,a@b.dk,z",
    ).encode()

    rows, errors = read_rows(data)

    assert errors == []
    assert [(line, row["tags"]) for line, row in rows] == [(2, "x\ny"), (4, "z")]


def test_import_in_a_session_the_caller_owns(database: Database, world: World) -> None:
    # Nothing is committed by the import itself: rolling back the caller's session undoes it.
    with database.sessions() as session:
        session.begin()
        municipality = session.get_one(Municipality, world.municipality_id)
        report = import_young_people(
            session,
            municipality=municipality,
            data=lines(
                "fornavn;fødselsdato;telefon;kontaktperson", "A;2005-01-01;30123456;anna@aarhus.dk"
            ).encode(),
            today=TODAY,
        )
        assert report.created == 1
        assert _count_in(session, YoungPerson) == 1
        session.rollback()

    assert count(database, YoungPerson) == 0


def _count_in(session: Session, model: type[object]) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0
