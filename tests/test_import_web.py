"""Importing young people in the browser through the real app, on both databases: the preview
names every bad row by line and field and writes nothing, the import writes all rows in one go,
Excel files are read like CSV files, and drafts belong to their coordinator for an hour."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx2 import Response

from storage import importing
from storage.db import Database
from storage.models import AuditEvent, ImportDraft, Municipality, YoungPerson, utcnow
from tests.staff_world import StaffSite, csrf_token, staff_site

DATA = Path(__file__).parent / "data" / "import"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Site(StaffSite):
    def names(self) -> set[str]:
        with self.runtime.database.session() as session:
            return set(session.scalars(sa.select(YoungPerson.first_name)))

    def drafts(self) -> int:
        with self.runtime.database.session() as session:
            return int(session.scalar(sa.select(sa.func.count()).select_from(ImportDraft)) or 0)

    def actions(self, action: str) -> list[AuditEvent]:
        with self.runtime.database.session() as session:
            return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


@pytest.fixture
def site(database: Database) -> Iterator[Site]:
    with staff_site(database, Site) as built:
        yield built


def upload(client: TestClient, name: str, content: bytes, kind: str = "text/csv") -> Response:
    token = csrf_token(client.get("/import").text)
    return client.post(
        "/import",
        data={"csrf_token": token},
        files={"file": (name, content, kind)},
        follow_redirects=False,
    )


def confirm(client: TestClient, location: str) -> Response:
    token = csrf_token(client.get(location).text)
    return client.post(location, data={"csrf_token": token}, follow_redirects=False)


def workbook(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for number, row in enumerate(rows, start=1):
        for column, value in enumerate(row, start=1):
            sheet.cell(row=number, column=column, value=value)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_a_file_with_bad_rows_is_previewed_with_every_error_and_writes_nothing(site: Site) -> None:
    carsten = site.browser("carsten")
    before = site.names()
    response = upload(carsten, "unge.csv", (DATA / "unge_med_fejl.csv").read_bytes())
    assert response.status_code == 303
    location = response.headers["location"]
    page = carsten.get(location)
    assert page.status_code == 200
    text = page.text
    assert "Filen har fejl, så intet kan importeres" in text
    # Both bad rows, by line and by the column as the file spells it.
    assert '<th scope="row">3</th><td>fødselsdato</td>' in text
    assert "Fødselsdatoen 31-02-2007 findes ikke i kalenderen." in text
    assert '<th scope="row">4</th><td>telefon</td>' in text
    assert "Telefonnummeret 1234 er ikke et gyldigt mobilnummer." in text
    assert f'action="{location}"' not in text  # no Import button
    assert site.names() == before
    # Confirming anyway imports nothing and shows the errors again.
    refused = confirm(carsten, location)
    assert refused.status_code == 400
    assert site.names() == before
    assert site.drafts() == 1
    assert len(site.actions("young_people.import_previewed")) == 2


def test_a_good_file_is_previewed_then_imported_in_one_go(site: Site) -> None:
    carsten = site.browser("carsten")
    response = upload(carsten, "unge.csv", (DATA / "unge.csv").read_bytes())
    location = response.headers["location"]
    page = carsten.get(location).text
    assert "3 nye unge bliver oprettet, og 0 bliver opdateret." in page
    assert f'action="{location}"' in page
    assert {"Nora", "Yusuf", "Liva"}.isdisjoint(site.names())
    done = confirm(carsten, location)
    assert done.status_code == 200
    assert "Importen er gennemført" in done.text
    assert {"Nora", "Yusuf", "Liva"} <= site.names()
    assert site.drafts() == 0
    assert len(site.actions("young_person.imported")) == 3
    [event] = site.actions("young_people.imported")
    assert event.staff_id == site.world.staff["carsten"]
    assert event.details == {"created": 3, "updated": 0}
    assert "Nora" in carsten.get("/young-people").text
    # The draft is gone once imported.
    assert carsten.get(location).status_code == 404
    # The same file again updates nobody's fields: the preview says so, and nothing is created.
    again = upload(carsten, "unge.csv", (DATA / "unge.csv").read_bytes())
    assert (
        "0 nye unge bliver oprettet, og 3 bliver opdateret."
        in carsten.get(again.headers["location"]).text
    )


def test_an_excel_file_is_read_with_sheet_rows_as_lines_and_real_dates(site: Site) -> None:
    content = workbook(
        [
            [],
            ["Fornavn", "Fødselsdato", "Telefon", "Kontaktperson"],
            ["Ida", datetime(2008, 4, 2), 20112236, "karin@kommune.dk"],  # noqa: DTZ001
            ["Bo", date(2008, 4, 3), "2011 2237", "nobody@kommune.dk"],
        ]
    )
    carsten = site.browser("carsten")
    location = upload(carsten, "unge.xlsx", content, XLSX).headers["location"]
    text = carsten.get(location).text
    assert '<th scope="row">4</th><td>Kontaktperson</td>' in text
    assert "02-04-2008" in text  # Ida's date came through as a date
    fixed = workbook(
        [
            ["Fornavn", "Fødselsdato", "Telefon", "Kontaktperson"],
            ["Ida", datetime(2008, 4, 2), 20112236, "karin@kommune.dk"],  # noqa: DTZ001
            ["Bo", '="03-04-2008"', "2011 2237", "ali@kommune.dk"],
        ]
    )
    location = upload(carsten, "unge.xlsx", fixed, XLSX).headers["location"]
    # openpyxl saves no cached value for a formula: the cell is empty, and the row says so.
    text = carsten.get(location).text
    assert "Feltet Fødselsdato er tomt, men skal udfyldes." in text


def test_the_reader_refuses_what_is_not_a_spreadsheet_and_what_is_too_big() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "hej")
    rows, errors = importing.read_rows(buffer.getvalue())
    assert rows == []
    assert [e.message for e in errors] == [
        "Filen er en zip-fil, men ikke et Excel-regneark (.xlsx). Upload regnearket selv eller "
        "en CSV-fil."
    ]
    rows, errors = importing.read_rows(b"fornavn;" + b"x" * importing.MAX_FILE_BYTES)
    assert [e.message for e in errors] == [importing.TOO_BIG]
    rows, errors = importing.read_rows(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest")
    assert "(.xls)" in errors[0].message


def test_a_dry_run_reports_what_would_change_and_writes_nothing(site: Site) -> None:
    with site.runtime.database.session() as session:
        place = session.get_one(Municipality, site.world.places["aarhus"])
        report = importing.import_young_people(
            session, municipality=place, data=(DATA / "unge.csv").read_bytes(), dry_run=True
        )
        assert (report.created, report.updated, report.written) == (3, 0, False)
        assert [row.first_name for row in report.planned] == ["Nora", "Yusuf", "Liva"]
        assert [row.line for row in report.planned] == [2, 3, 4]
    assert {"Nora", "Yusuf", "Liva"}.isdisjoint(site.names())


def test_drafts_belong_to_their_coordinator_and_expire_after_an_hour(site: Site) -> None:
    carsten = site.browser("carsten")
    location = upload(carsten, "unge.csv", (DATA / "unge.csv").read_bytes()).headers["location"]
    assert site.browser("olga").get(location).status_code == 404
    assert site.browser("karin").get(location).status_code == 403
    assert site.browser("karin").get("/import").status_code == 403
    with site.runtime.database.session() as session:
        for draft in session.scalars(sa.select(ImportDraft)):
            draft.created_at = utcnow() - timedelta(minutes=61)
    assert carsten.get(location).status_code == 404
    assert site.drafts() == 0
    assert {"Nora", "Yusuf", "Liva"}.isdisjoint(site.names())


def test_the_upload_form_refuses_other_files_with_a_clear_message(site: Site) -> None:
    carsten = site.browser("carsten")
    response = upload(carsten, "unge.pdf", b"%PDF-1.4")
    assert response.status_code == 400
    assert "Filen skal være en CSV-fil (.csv) eller et Excel-regneark (.xlsx)." in response.text
    assert upload(carsten, "unge.csv", b"").status_code == 400
    assert site.drafts() == 0
