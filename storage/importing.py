"""Importing young people from a CSV or Excel (.xlsx) file that a coordinator exported from the
municipality.

Every row is read and checked before anything is written, so that a file with a mistake in it
writes nothing at all (unless the caller asks to skip bad rows) and the coordinator gets every
mistake in one go instead of one per attempt. All writes go into the caller's session; the caller
commits, or rolls back when the import is interrupted.

The messages in :class:`RowError` are Danish source texts marked with ``N_``; the CLI and the web
translate them for their reader and fill in the ``{named}`` fields from ``params``.

An Excel file is told from a CSV file by its first bytes (a zip archive), not by its name. Its
first sheet is read like a CSV file: a row's line is its row number in the sheet, dates are real
dates, and a formula counts with the value Excel saved for it.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import re
import secrets
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import openpyxl
import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from dialogs.i18n import N_
from dialogs.types import Role, YoungPersonStatus
from storage.models import AuditEvent, Municipality, StaffUser, YoungPerson, YoungPersonTag, utcnow
from storage.phones import InvalidPhone, normalise_phone

T = TypeVar("T")

MIN_AGE = 13
MAX_AGE = 30
LANGUAGES = ("da", "en", "ar", "tr", "uk", "so", "fa", "ur", "pl")
INVITE_VALID_FOR = timedelta(days=30)
KONTAKTPERSON_ROLES = (Role.KONTAKTPERSON, Role.COORDINATOR)

# Column lengths of the young_person and young_person_tag tables.
MAX_FIRST_NAME = 80
MAX_EXTERNAL_REF = 64
MAX_TAG = 40

# A file larger than this is refused before it is read; so is an Excel file that unpacks to more.
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_UNPACKED_BYTES = 50 * 1024 * 1024
TOO_BIG = N_("Filen er for stor. Den må højst fylde {megabytes} MB. Del den op i flere filer.")
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the old Excel format (.xls)

REQUIRED_COLUMNS = ("first_name", "birth_date", "phone", "kontaktperson")

# How each column is named to a Danish coordinator, e.g. when it is missing.
DANISH_COLUMN_NAMES = {
    "first_name": "fornavn",
    "birth_date": "fødselsdato",
    "phone": "telefon",
    "kontaktperson": "kontaktperson",
    "language": "sprog",
    "tags": "mærker",
    "external_ref": "reference",
}

# Header spellings and the column each one means; compared by _header_key.
HEADER_ALIASES = {
    "fornavn": "first_name",
    "first_name": "first_name",
    "navn": "first_name",
    "fødselsdato": "birth_date",
    "foedselsdato": "birth_date",
    "birth_date": "birth_date",
    "født": "birth_date",
    "telefon": "phone",
    "mobil": "phone",
    "mobilnummer": "phone",
    "phone": "phone",
    "kontaktperson": "kontaktperson",
    "kontaktperson_email": "kontaktperson",
    "contact": "kontaktperson",
    "sprog": "language",
    "language": "language",
    "tags": "tags",
    "mærker": "tags",
    "reference": "external_ref",
    "ref": "external_ref",
    "external_ref": "external_ref",
}

# "CPR", "cpr_nr", "CPR-nummer", "personnummer", "person nr" ... (matched on _header_key).
_CPR_HEADER = re.compile(r"cpr|personn(?:umme)?r")
# A CPR number is DDMMYY-NNNN; a reference shaped like one is refused rather than stored.
_CPR_VALUE = re.compile(r"(\d{2})(\d{2})\d{2}-?\d{4}")
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DANISH_DATE = re.compile(r"(\d{1,2})([-./])(\d{1,2})\2(\d{4})")
_TAG_SEPARATORS = re.compile(r"[,;|]")
# Bytes that did not decode come back as lone surrogates under errors="surrogateescape".
_UNDECODED = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class RowError:
    line: int  # 1-based line number in the file (the header is line 1)
    field: str  # the column as the file's header spells it, or "" for the whole row or file
    message: str  # a Danish source text marked with N_, with {named} fields
    params: dict[str, str]


@dataclass(frozen=True)
class PlannedRow:
    """What a good row does (or, in a dry run, would do) to the young people."""

    line: int
    first_name: str
    birth_date: date
    phone: str
    kontaktperson: str  # the kontaktperson's name
    created: bool  # False: an existing young person with the phone number is updated
    changed: tuple[str, ...]  # for an update, the fields that change


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    skipped: int = 0  # bad rows left out because skip_bad_rows was asked
    errors: list[RowError] = dataclasses.field(default_factory=list)
    written: bool = False  # False when nothing was written because of errors (or a dry run)
    total_rows: int = 0
    # What the good rows do (a dry run: would do); left out of equality, as a detail of the counts.
    planned: list[PlannedRow] = dataclasses.field(default_factory=list, compare=False)


# ---------------------------------------------------------------------------------------------
# Reading the file


@dataclass
class _Table:
    rows: list[tuple[int, dict[str, str]]] = dataclasses.field(default_factory=list)
    errors: list[RowError] = dataclasses.field(default_factory=list)
    # True when the file as a whole cannot be imported; then no row is ever written.
    refused: bool = False
    # Canonical column -> the header as the file spells it, to name columns in errors.
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    row_count: int = 0


def read_rows(
    data: bytes, *, encoding: str = "utf-8"
) -> tuple[list[tuple[int, dict[str, str]]], list[RowError]]:
    """The data rows as (line, {canonical column: stripped cell}), and what could not be read.

    Only the columns Stifinder knows are returned; an optional column the file does not have is
    absent from the dicts (not an empty string), so an import can leave such values alone.
    """
    table = _read_table(data, encoding)
    return table.rows, table.errors


def _refused(line: int, message: str, /, **params: str) -> _Table:
    return _Table(errors=[RowError(line, "", message, params)], refused=True)


def _read_table(data: bytes, encoding: str) -> _Table:
    if len(data) > MAX_FILE_BYTES:
        return _refused(
            1,
            TOO_BIG,
            megabytes=str(MAX_FILE_BYTES // (1024 * 1024)),
        )
    if data.startswith(_OLE_MAGIC):
        return _refused(
            1,
            N_(
                "Filen er i det gamle Excel-format (.xls). Åbn den i Excel, og gem den som "
                "»Excel-projektmappe (.xlsx)« eller som »CSV UTF-8«."
            ),
        )
    delimiter: str | None
    if data.startswith(_ZIP_MAGIC):
        records, refusal = _xlsx_records(data)
        if refusal is not None:
            return refusal
        delimiter = None
    else:
        text, decode_error = _decode(data, encoding)
        if decode_error is not None:
            return _Table(errors=[decode_error], refused=True)
        delimiter = _sniff_delimiter(text)
        records, csv_error_line = _records(text, delimiter)
        if csv_error_line is not None:
            return _refused(
                csv_error_line,
                N_(
                    "Linje {line} kan ikke læses som CSV. Åbn filen i Excel, og gem den igen "
                    "som CSV."
                ),
                line=str(csv_error_line),
            )
    if not records:
        return _refused(
            1,
            N_(
                "Filen er tom. Første linje skal være overskrifterne, og derefter kommer "
                "én ung pr. linje."
            ),
        )

    (header_line, header_cells), data_records = records[0], records[1:]
    columns, headers, header_errors = _map_header(header_line, header_cells)
    table = _Table(headers=headers, row_count=len(data_records), errors=header_errors)
    if header_errors:
        # Rows are not even looked at: with a CPR column they would hold CPR numbers.
        table.refused = True
        return table
    if not data_records:
        return _refused(
            header_line, N_("Filen har ingen unge at importere – der er kun overskrifterne.")
        )

    for line, cells in data_records:
        # In a sheet, cells right of the header are notes beside the table and are not read.
        if delimiter is not None and any(cells[len(header_cells) :]):
            # Usually a name or tag with the delimiter in it and no quotes: every later cell of
            # the row would be shifted, so the row is refused as a whole instead of misread.
            table.errors.append(
                RowError(
                    line,
                    "",
                    N_(
                        "Linjen har flere felter end overskriften. Står der et {delimiter} "
                        "i et felt, skal feltet have anførselstegn om."
                    ),
                    {"delimiter": delimiter},
                )
            )
            continue
        # Some programs leave out empty cells at the end of a row; they count as empty.
        row = {name: cells[i] if i < len(cells) else "" for i, name in columns.items()}
        table.rows.append((line, row))
    return table


def _xlsx_records(data: bytes) -> tuple[list[tuple[int, list[str]]], _Table | None]:
    """The non-empty rows of the first sheet as (row number, cells as text); or the refusal."""
    not_a_workbook = N_(
        "Filen kan ikke læses. Upload et Excel-regneark (.xlsx) eller en CSV-fil, "
        "f.eks. gemt fra Excel som »CSV UTF-8«."
    )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            names = {member.filename for member in members}
            unpacked = sum(member.file_size for member in members)
    except zipfile.BadZipFile:
        return [], _refused(1, not_a_workbook)
    if "xl/workbook.xml" not in names:
        return [], _refused(
            1,
            N_(
                "Filen er en zip-fil, men ikke et Excel-regneark (.xlsx). Upload regnearket "
                "selv eller en CSV-fil."
            ),
        )
    if unpacked > MAX_UNPACKED_BYTES:
        return [], _refused(
            1,
            N_("Regnearket er for stort. Del det op i flere filer."),
        )
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # a damaged workbook fails in many ways inside openpyxl
        return [], _refused(1, not_a_workbook)
    records: list[tuple[int, list[str]]] = []
    try:
        if not workbook.worksheets:
            return [], None
        sheet = workbook.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1):
            cells = [_cell_text(value) for value in values]
            if any(cells):
                records.append((number, cells))
    except Exception:  # a damaged sheet too
        return [], _refused(1, not_a_workbook)
    finally:
        workbook.close()
    return records, None


def _cell_text(value: object) -> str:
    """A sheet cell as the text a CSV file would have: dates as YYYY-MM-DD, whole numbers
    (a phone number typed as a number) without a decimal point."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value).strip()


def _decode(data: bytes, encoding: str) -> tuple[str, RowError | None]:
    try:
        codec_name = codecs.lookup(encoding).name
    except LookupError:
        message = N_("Tegnkodningen {encoding} kendes ikke. Prøv utf-8 eller cp1252.")
        return "", RowError(1, "", message, {"encoding": encoding})
    # Excel's "CSV UTF-8" starts with a byte order mark; utf-8-sig reads files with or without it.
    is_utf8 = codec_name in ("utf-8", "utf-8-sig")
    text = data.decode("utf-8-sig" if is_utf8 else codec_name, errors="surrogateescape")
    undecoded = _UNDECODED.search(text)
    if undecoded is None:
        return text, None
    line = text.count("\n", 0, undecoded.start()) + 1
    if is_utf8:
        # The usual cause: Excel's plain "CSV" saves æ, ø and å in cp1252, not UTF-8.
        message = N_(
            "Linje {line} indeholder tegn, der ikke er UTF-8. Filen er nok gemt som almindelig "
            "CSV i Excel: gem den som »CSV UTF-8«, eller importér den med tegnkodningen cp1252."
        )
    else:
        message = N_(
            "Linje {line} kan ikke læses med tegnkodningen {encoding}. "
            "Tjek, hvilken tegnkodning filen er gemt med."
        )
    return "", RowError(line, "", message, {"line": str(line), "encoding": encoding})


def _sniff_delimiter(text: str) -> str:
    """Semicolon (Danish Excel) or comma, whichever the header line uses more."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    return ";" if header.count(";") > header.count(",") else ","


def _records(text: str, delimiter: str) -> tuple[list[tuple[int, list[str]]], int | None]:
    """Non-empty records as (first line, stripped cells); or the line where CSV reading failed."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: list[tuple[int, list[str]]] = []
    end_of_previous = 0
    try:
        for cells in reader:
            # A quoted cell may span lines, so a record starts right after the previous one ends.
            line, end_of_previous = end_of_previous + 1, reader.line_num
            stripped = [cell.strip() for cell in cells]
            if any(stripped):  # empty lines and rows of bare delimiters (";;;") are ignored
                records.append((line, stripped))
    except csv.Error:
        return [], end_of_previous + 1
    return records, None


def _header_key(spelled: str) -> str:
    """Letters and digits only, so "Kontaktperson e-mail" and "KONTAKTPERSON_EMAIL" are one."""
    return re.sub(r"[\W_]+", "", spelled.casefold())


_ALIASES_BY_KEY = {_header_key(alias): canonical for alias, canonical in HEADER_ALIASES.items()}


def _map_header(
    line: int, cells: list[str]
) -> tuple[dict[int, str], dict[str, str], list[RowError]]:
    """Cell index -> canonical column, canonical column -> spelling, and what is wrong."""
    columns: dict[int, str] = {}
    headers: dict[str, str] = {}
    errors: list[RowError] = []
    for index, spelled in enumerate(cells):
        key = _header_key(spelled)
        if _CPR_HEADER.search(key):
            message = N_(
                "Kolonnen {column} ser ud til at indeholde CPR-numre. CPR-numre må aldrig "
                "importeres i Stifinder, så filen er afvist. Slet kolonnen, og prøv igen."
            )
            errors.append(RowError(line, spelled, message, {"column": spelled}))
            continue
        canonical = _ALIASES_BY_KEY.get(key)
        if canonical is None:
            # Stifinder keeps only what it needs: columns it does not know are never read.
            continue
        if canonical in headers:
            message = N_("Kolonnerne {first} og {second} betyder det samme. Behold kun den ene.")
            params = {"first": headers[canonical], "second": spelled}
            errors.append(RowError(line, spelled, message, params))
            continue
        columns[index] = canonical
        headers[canonical] = spelled
    for canonical in REQUIRED_COLUMNS:
        if canonical not in headers:
            danish = DANISH_COLUMN_NAMES[canonical]
            message = N_(
                "Filen mangler kolonnen {column}. Første linje skal mindst have fornavn, "
                "fødselsdato, telefon og kontaktperson."
            )
            errors.append(RowError(line, danish, message, {"column": danish}))
    return columns, headers, errors


# ---------------------------------------------------------------------------------------------
# Checking the rows


class _CellError(Exception):
    """A cell that cannot be imported: the Danish source text and its fields."""

    def __init__(self, message: str, **params: str) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


@dataclass(frozen=True)
class _Row:
    """A checked row, ready to be written. None means the cell was empty or the column absent."""

    line: int
    first_name: str
    birth_date: date
    phone: str
    kontaktperson: StaffUser
    language: str | None
    tags: tuple[str, ...] | None
    external_ref: str | None


def _required(raw: str, column: str) -> str:
    if not raw:
        raise _CellError(N_("Feltet {column} er tomt, men skal udfyldes."), column=column)
    return raw


def _parse_first_name(raw: str) -> str:
    if len(raw) > MAX_FIRST_NAME:
        raise _CellError(
            N_("Fornavnet er for langt. Det må højst være {max_length} tegn."),
            max_length=str(MAX_FIRST_NAME),
        )
    return raw


def _parse_date(raw: str) -> date:
    """YYYY-MM-DD, DD-MM-YYYY, DD.MM.YYYY or DD/MM/YYYY."""
    if iso := _ISO_DATE.fullmatch(raw):
        year, month, day = iso.group(1, 2, 3)
    elif danish := _DANISH_DATE.fullmatch(raw):
        day, month, year = danish.group(1, 3, 4)
    else:
        raise _CellError(
            N_(
                "Fødselsdatoen {value} kan ikke læses. Skriv den som DD-MM-ÅÅÅÅ, f.eks. 24-12-2008."
            ),
            value=raw,
        )
    try:
        return date(int(year), int(month), int(day))
    except ValueError as error:
        # The shape was right, the day was not: 31-02-2008, 00-01-2008 ...
        raise _CellError(
            N_("Fødselsdatoen {value} findes ikke i kalenderen."), value=raw
        ) from error


def _age_on(birth_date: date, day: date) -> int:
    had_birthday = (day.month, day.day) >= (birth_date.month, birth_date.day)
    return day.year - birth_date.year - (0 if had_birthday else 1)


def _parse_language(raw: str) -> str | None:
    if not raw:
        return None
    language = raw.casefold()
    if language not in LANGUAGES:
        raise _CellError(
            N_(
                "Sproget {value} kendes ikke. Brug en af sprogkoderne {languages}, "
                "eller lad feltet stå tomt."
            ),
            value=raw,
            languages=", ".join(LANGUAGES),
        )
    return language


def _parse_tags(raw: str) -> tuple[str, ...] | None:
    """Tags split on "," "|" or ";": whichever is not the file's delimiter can separate them."""
    tags: dict[str, str] = {}
    for part in _TAG_SEPARATORS.split(raw):
        tag = " ".join(part.split())
        if not tag:
            continue
        if len(tag) > MAX_TAG:
            raise _CellError(
                N_("Mærket {value} er for langt. Et mærke må højst være {max_length} tegn."),
                value=tag,
                max_length=str(MAX_TAG),
            )
        # "Ung" and "ung" in one cell are the same tag; the first spelling wins.
        tags.setdefault(tag.casefold(), tag)
    return tuple(tags.values()) or None


def _looks_like_cpr(value: str) -> bool:
    match = _CPR_VALUE.fullmatch(value)
    return match is not None and 1 <= int(match[1]) <= 31 and 1 <= int(match[2]) <= 12


def _parse_external_ref(raw: str) -> str | None:
    if not raw:
        return None
    if _looks_like_cpr(raw):
        # The value is left out of the message so that the CPR number is not shown or logged.
        raise _CellError(
            N_(
                "Referencen ligner et CPR-nummer. CPR-numre må aldrig importeres, så brug "
                "kommunens egen reference i stedet."
            )
        )
    if len(raw) > MAX_EXTERNAL_REF:
        raise _CellError(
            N_("Referencen {value} er for lang. Den må højst være {max_length} tegn."),
            value=raw,
            max_length=str(MAX_EXTERNAL_REF),
        )
    return raw


class _RowChecker:
    """Checks rows one by one and remembers the phone numbers it has seen in the file."""

    def __init__(
        self,
        *,
        headers: dict[str, str],
        staff_by_email: dict[str, StaffUser],
        municipality_name: str,
        today: date,
    ) -> None:
        self._headers = headers
        self._staff_by_email = staff_by_email
        self._municipality_name = municipality_name
        self._today = today
        self._line_of_phone: dict[str, int] = {}

    def check(self, line: int, cells: dict[str, str]) -> tuple[_Row | None, list[RowError]]:
        errors: list[RowError] = []

        def attempt(column: str, parse: Callable[[str], T], *, required: bool = False) -> T | None:
            if column not in cells:
                return None
            try:
                raw = _required(cells[column], self._headers[column]) if required else cells[column]
                return parse(raw)
            except _CellError as problem:
                errors.append(
                    RowError(line, self._headers[column], problem.message, problem.params)
                )
                return None

        first_name = attempt("first_name", _parse_first_name, required=True)
        birth_date = attempt("birth_date", self._birth_date, required=True)
        phone = attempt("phone", lambda raw: self._phone(raw, line), required=True)
        kontaktperson = attempt("kontaktperson", self._kontaktperson, required=True)
        language = attempt("language", _parse_language)
        tags = attempt("tags", _parse_tags)
        external_ref = attempt("external_ref", _parse_external_ref)
        # A required value is None only when its cell had an error; the checks narrow the types.
        if first_name is None or birth_date is None or phone is None or kontaktperson is None:
            return None, errors
        if errors:
            return None, errors
        row = _Row(line, first_name, birth_date, phone, kontaktperson, language, tags, external_ref)
        return row, []

    def _birth_date(self, raw: str) -> date:
        birth_date = _parse_date(raw)
        if birth_date > self._today:
            raise _CellError(N_("Fødselsdatoen {value} ligger ude i fremtiden."), value=raw)
        age = _age_on(birth_date, self._today)
        if not MIN_AGE <= age <= MAX_AGE:
            raise _CellError(
                N_(
                    "Med fødselsdatoen {value} er den unge {age} år. Der kan kun importeres unge "
                    "mellem {min_age} og {max_age} år."
                ),
                value=raw,
                age=str(age),
                min_age=str(MIN_AGE),
                max_age=str(MAX_AGE),
            )
        return birth_date

    def _phone(self, raw: str, line: int) -> str:
        try:
            phone = normalise_phone(raw)
        except InvalidPhone as error:
            raise _CellError(
                N_("Telefonnummeret {value} er ikke et gyldigt mobilnummer."), value=raw
            ) from error
        # Compared after normalising, so "20 12 34 56" and "+4520123456" are the same person.
        first_line = self._line_of_phone.setdefault(phone, line)
        if first_line != line:
            raise _CellError(
                N_(
                    "Telefonnummeret {value} står også på linje {other_line}. "
                    "Hver ung må kun stå i filen én gang."
                ),
                value=raw,
                other_line=str(first_line),
            )
        return phone

    def _kontaktperson(self, raw: str) -> StaffUser:
        staff = self._staff_by_email.get(raw.casefold())
        if staff is None:
            raise _CellError(
                N_(
                    "Der er ingen aktiv kontaktperson eller koordinator i {municipality} "
                    "med e-mailen {value}."
                ),
                value=raw,
                municipality=self._municipality_name,
            )
        return staff


# ---------------------------------------------------------------------------------------------
# Writing


def import_young_people(
    session: Session,
    *,
    municipality: Municipality,
    data: bytes,
    encoding: str = "utf-8",
    skip_bad_rows: bool = False,
    actor: str = "cli",
    staff_id: int | None = None,
    today: date | None = None,
    progress: Callable[[int, int], None] | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Create or update the young people of ``municipality`` from a CSV or Excel file.

    A phone number that already belongs to a young person of the municipality updates that
    person. On an update, an empty optional cell (or a missing optional column) leaves the stored
    value alone, so that an import never erases what the young person chose in the chat, such as
    their language; a filled tags cell replaces all the person's tags.

    Nothing is written when the file is refused, or when a row is bad and ``skip_bad_rows`` is
    False. Nothing is committed: an exception (from ``progress`` too) must roll the session back.

    With ``dry_run`` every row is checked the same way and ``planned`` (and the counts) say what
    the good rows would create and update, but nothing is written.
    """
    table = _read_table(data, encoding)
    report = ImportReport(total_rows=table.row_count, errors=list(table.errors))
    if table.refused:
        return report

    checker = _RowChecker(
        headers=table.headers,
        staff_by_email=_kontaktpersoner(session, municipality),
        municipality_name=municipality.name,
        today=today or datetime.now(ZoneInfo(municipality.timezone)).date(),
    )
    good: list[_Row] = []
    for line, cells in table.rows:
        row, errors = checker.check(line, cells)
        report.errors.extend(errors)
        if row is not None:
            good.append(row)
    # Row errors found while reading (too many cells) come first otherwise; keep file order.
    report.errors.sort(key=lambda error: error.line)

    if dry_run:
        # The good rows are planned even beside bad ones, so a preview can show both.
        if report.errors and skip_bad_rows:
            report.skipped = len({error.line for error in report.errors})
        _plan(session, municipality, good, report)
        return report
    if report.errors:
        if not skip_bad_rows:
            return report
        report.skipped = len({error.line for error in report.errors})
    _write(session, municipality, good, report, actor=actor, staff_id=staff_id, progress=progress)
    return report


def _plan(
    session: Session, municipality: Municipality, rows: list[_Row], report: ImportReport
) -> None:
    existing = _existing_by_phone(session, municipality, [row.phone for row in rows])
    for row in rows:
        person = existing.get(row.phone)
        changed = () if person is None else tuple(_update(person, row, apply=False))
        report.planned.append(_planned(row, created=person is None, changed=changed))
        if person is None:
            report.created += 1
        else:
            report.updated += 1


def _planned(row: _Row, *, created: bool, changed: tuple[str, ...]) -> PlannedRow:
    return PlannedRow(
        line=row.line,
        first_name=row.first_name,
        birth_date=row.birth_date,
        phone=row.phone,
        kontaktperson=row.kontaktperson.name,
        created=created,
        changed=changed,
    )


def _kontaktpersoner(session: Session, municipality: Municipality) -> dict[str, StaffUser]:
    """The municipality's active staff who can be a young person's kontaktperson, by e-mail."""
    query = sa.select(StaffUser).where(
        StaffUser.municipality_id == municipality.id,
        StaffUser.is_active.is_(True),
        StaffUser.role.in_(KONTAKTPERSON_ROLES),
    )
    return {staff.email.casefold(): staff for staff in session.scalars(query)}


def _existing_by_phone(
    session: Session, municipality: Municipality, phones: list[str]
) -> dict[str, YoungPerson]:
    found: dict[str, YoungPerson] = {}
    # In chunks, to stay far below the databases' limits on bound parameters.
    for start in range(0, len(phones), 500):
        query = (
            sa.select(YoungPerson)
            .where(
                YoungPerson.municipality_id == municipality.id,
                YoungPerson.phone.in_(phones[start : start + 500]),
            )
            .options(selectinload(YoungPerson.tags))
        )
        for person in session.scalars(query):
            if person.phone is not None:
                found[person.phone] = person
    return found


def _write(
    session: Session,
    municipality: Municipality,
    rows: list[_Row],
    report: ImportReport,
    *,
    actor: str,
    staff_id: int | None,
    progress: Callable[[int, int], None] | None,
) -> None:
    existing = _existing_by_phone(session, municipality, [row.phone for row in rows])
    for done, row in enumerate(rows, start=1):
        person = existing.get(row.phone)
        details: dict[str, Any] = {"line": row.line}
        if person is None:
            person = _create(session, municipality, row)
            action = "young_person.imported"
            report.created += 1
        else:
            # Field names only: the audit trail says what changed, not the personal data itself.
            details["changed"] = _update(person, row)
            action = "young_person.updated_by_import"
            report.updated += 1
        report.planned.append(_planned(row, created=action == "young_person.imported", changed=()))
        session.flush()  # gives a new person its id for the audit event
        session.add(
            AuditEvent(
                actor=actor,
                staff_id=staff_id,
                action=action,
                municipality_id=municipality.id,
                young_person_id=person.id,
                details=details,
            )
        )
        if progress is not None:
            progress(done, len(rows))
    session.flush()
    report.written = bool(rows)


def _create(session: Session, municipality: Municipality, row: _Row) -> YoungPerson:
    person = YoungPerson(
        municipality_id=municipality.id,
        first_name=row.first_name,
        birth_date=row.birth_date,
        phone=row.phone,
        kontaktperson_id=row.kontaktperson.id,
        language=row.language or municipality.default_language,
        status=YoungPersonStatus.INVITED,
        invite_code=secrets.token_urlsafe(16),
        invite_code_expires_at=utcnow() + INVITE_VALID_FOR,
        external_ref=row.external_ref,
        tags=[YoungPersonTag(tag=tag) for tag in row.tags or ()],
    )
    session.add(person)
    return person


def _update(person: YoungPerson, row: _Row, *, apply: bool = True) -> list[str]:
    """Apply the row to an existing young person; the names of the fields that changed (with
    ``apply=False`` only the names, and the person is left as it was)."""
    wanted: dict[str, object] = {
        "first_name": row.first_name,
        "birth_date": row.birth_date,
        "kontaktperson_id": row.kontaktperson.id,
    }
    if row.language is not None:
        wanted["language"] = row.language
    if row.external_ref is not None:
        wanted["external_ref"] = row.external_ref
    changed = [name for name, value in wanted.items() if getattr(person, name) != value]
    if not apply:
        if row.tags is not None and set(row.tags) != {tag.tag for tag in person.tags}:
            changed.append("tags")
        return changed
    for name in changed:
        setattr(person, name, wanted[name])
    if row.tags is not None and _replace_tags(person, row.tags):
        changed.append("tags")
    return changed


def _replace_tags(person: YoungPerson, tags: Iterable[str]) -> bool:
    current = {tag.tag: tag for tag in person.tags}
    wanted = list(tags)
    if set(wanted) == set(current):
        return False
    # Kept tags stay the same rows; only the ones that went away are deleted (delete-orphan).
    person.tags = [current.get(tag) or YoungPersonTag(tag=tag) for tag in wanted]
    return True
