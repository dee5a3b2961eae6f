"""Seeding the scheduling benchmark's databases fast: set-based SQL, never the ORM per row.

Young people, meetings and meeting reminders are written with one ``INSERT ... SELECT`` each, over
``generate_series`` on PostgreSQL and a recursive CTE on SQLite. Every timestamp is bound or
computed in the form the application stores (UTC; on SQLite the text SQLAlchemy writes), so the
application reads the rows exactly as if it had written them.

The municipality has no quiet hours (start equals end), so that the benchmark's results do not
depend on the time of day it runs at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from time import perf_counter as _clock

import sqlalchemy as sa

from dialogs.types import Role
from storage import migrate
from storage.db import Database
from storage.models import Municipality, StaffUser
from storage.models.base import UTCDateTime

# Stored form of a reminder's offset and of its kind (storage/plans.py).
REMINDER_KIND = "meeting_reminder"
REMINDER_OFFSET_MINUTES = 120
PHONE_BASE = 20_000_000  # young person n has the phone +45 (PHONE_BASE + n)


@dataclass(frozen=True)
class Place:
    municipality_id: int
    staff_id: int


def fresh(url: str) -> Database:
    """A migrated database at ``url`` (which must be empty)."""
    database = Database(url)
    migrate.upgrade(database.engine)
    return database


def place(database: Database) -> Place:
    with database.session() as session:
        municipality = Municipality(
            name="Bench Kommune",
            slug="bench",
            quiet_hours_start=time(0, 0),
            quiet_hours_end=time(0, 0),
            quiet_on_weekends=False,
        )
        staff = StaffUser(
            name="Karin Kontakt",
            email="karin@bench.invalid",
            role=Role.KONTAKTPERSON,
            password_hash="!",  # noqa: S106 - nobody logs in
            municipality=municipality,
        )
        session.add_all([municipality, staff])
        session.flush()
        return Place(municipality.id, staff.id)


def _series(dialect: str, count: int) -> tuple[str, str]:
    """(WITH prefix, FROM clause) giving rows ``n`` = 1..count."""
    if dialect == "postgresql":
        return "", f"FROM generate_series(1, {int(count)}) AS s(n)"
    return (
        "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s "  # noqa: S608
        f"WHERE n < {int(count)}) ",
        "FROM s",
    )


def _stamp(name: str) -> sa.BindParameter[datetime]:
    return sa.bindparam(name, type_=UTCDateTime())


def young_people(database: Database, where: Place, count: int, *, now: datetime) -> float:
    """``count`` active young people reachable by SMS, named ``U<n>``; returns seconds taken."""
    dialect = database.dialect
    prefix, source = _series(dialect, count)
    if dialect == "postgresql":
        birth = "DATE '2006-01-01' + (n % 3000)"
        phone = f"'+45' || ({PHONE_BASE} + n)"
        name = "'U' || n"
    else:
        birth = "date('2006-01-01', '+' || (n % 3000) || ' days')"
        phone = f"'+45' || ({PHONE_BASE} + n)"
        name = "'U' || n"
    statement = sa.text(
        f"{prefix}INSERT INTO young_person (municipality_id, first_name, birth_date, "
        "kontaktperson_id, language, status, status_changed_at, phone, created_at, updated_at) "
        f"SELECT :municipality, {name}, {birth}, :staff, 'da', 'active', :now, {phone}, "
        f":now, :now {source}"
    ).bindparams(_stamp("now"))
    started = _clock()
    with database.engine.begin() as connection:
        connection.execute(
            statement, {"municipality": where.municipality_id, "staff": where.staff_id, "now": now}
        )
    _analyze(database)
    return _clock() - started


def meetings_with_reminders(
    database: Database, where: Place, count: int, *, first_start: datetime, now: datetime
) -> float:
    """A planned meeting for each of the first ``count`` young people, meeting ``n`` starting
    ``n`` minutes after ``first_start`` (whole seconds), each with its pending 2-hour reminder
    exactly as ``storage.plans.schedule_meeting_reminders`` writes it. Returns seconds taken."""
    dialect = database.dialect
    first_start = first_start.replace(microsecond=0)
    if dialect == "postgresql":
        start = ":first + make_interval(mins => p.id::int)"
        iso = "to_char(m.starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || '+00:00'"
        due = f"m.starts_at - make_interval(mins => {REMINDER_OFFSET_MINUTES})"
        payload = (
            f"jsonb_build_object('starts_at', {iso}, 'offset_minutes', {REMINDER_OFFSET_MINUTES})"
        )
    else:
        start = "strftime('%Y-%m-%d %H:%M:%S', :first, '+' || p.id || ' minutes') || '.000000'"
        iso = "strftime('%Y-%m-%dT%H:%M:%S', m.starts_at) || '+00:00'"
        due = (
            f"strftime('%Y-%m-%d %H:%M:%S', m.starts_at, '-{REMINDER_OFFSET_MINUTES} minutes')"
            " || '.000000'"
        )
        payload = f"json_object('starts_at', {iso}, 'offset_minutes', {REMINDER_OFFSET_MINUTES})"
    meetings = sa.text(
        "INSERT INTO meeting (young_person_id, starts_at, duration_minutes, with_whom, "  # noqa: S608
        "staff_id, status, status_changed_at, created_at, updated_at) "
        f"SELECT p.id, {start}, 60, 'Karin', :staff, 'planned', :now, :now, :now "
        "FROM young_person p WHERE p.municipality_id = :municipality "
        f"ORDER BY p.id LIMIT {int(count)}"
    ).bindparams(_stamp("first"), _stamp("now"))
    reminders = sa.text(
        "INSERT INTO scheduled_item (kind, due_at, status, idempotency_key, municipality_id, "  # noqa: S608
        "young_person_id, meeting_id, payload, attempts, created_at) "
        f"SELECT '{REMINDER_KIND}', {due}, 'pending', "
        f"'{REMINDER_KIND}:' || m.id || ':' || {iso} || '\\:{REMINDER_OFFSET_MINUTES}', "
        f":municipality, m.young_person_id, m.id, {payload}, 0, :now FROM meeting m"
    ).bindparams(_stamp("now"))
    started = _clock()
    with database.engine.begin() as connection:
        values = {
            "municipality": where.municipality_id,
            "staff": where.staff_id,
            "first": first_start,
            "now": now,
        }
        connection.execute(meetings, values)
        connection.execute(reminders, {"municipality": where.municipality_id, "now": now})
    _analyze(database)
    return _clock() - started


def make_due(database: Database, meeting_ids: tuple[int, int], due_at: datetime) -> int:
    """Move meetings ``first..last`` (ids) to start two hours after ``due_at`` and their reminders
    to ``due_at`` (payload and all, as ``move_meeting`` would). Returns reminders moved."""
    due_at = due_at.replace(microsecond=0)
    starts = due_at + timedelta(minutes=REMINDER_OFFSET_MINUTES)
    iso = starts.astimezone(UTC).isoformat()
    first, last = meeting_ids
    dialect = database.dialect
    payload = (
        "jsonb_build_object('starts_at', CAST(:iso AS text), 'offset_minutes', :offset)"
        if dialect == "postgresql"
        else "json_object('starts_at', :iso, 'offset_minutes', :offset)"
    )
    with database.engine.begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE meeting SET starts_at = :starts WHERE id BETWEEN :first AND :last"
            ).bindparams(_stamp("starts")),
            {"starts": starts, "first": first, "last": last},
        )
        result = connection.execute(
            sa.text(
                f"UPDATE scheduled_item SET due_at = :due, payload = {payload} "  # noqa: S608
                "WHERE kind = :kind AND meeting_id BETWEEN :first AND :last"
            ).bindparams(_stamp("due")),
            {
                "due": due_at,
                "iso": iso,
                "offset": REMINDER_OFFSET_MINUTES,
                "kind": REMINDER_KIND,
                "first": first,
                "last": last,
            },
        )
        return int(result.rowcount)


def scratch_copy(database: Database) -> tuple[float, int]:
    """The campaign baseline: a plain ``INSERT ... SELECT`` of every young person's id into a
    scratch table (an integer key and one integer column). Returns (seconds, rows)."""
    key = "SERIAL PRIMARY KEY" if database.dialect == "postgresql" else "INTEGER PRIMARY KEY"
    with database.engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE IF EXISTS bench_scratch"))
        connection.execute(
            sa.text(f"CREATE TABLE bench_scratch (id {key}, young_person_id INTEGER NOT NULL)")
        )
    started = _clock()
    with database.engine.begin() as connection:
        result = connection.execute(
            sa.text("INSERT INTO bench_scratch (young_person_id) SELECT id FROM young_person")
        )
        rows = int(result.rowcount)
    return _clock() - started, rows


def _analyze(database: Database) -> None:
    """Fresh planner statistics after a bulk load, as autovacuum would give them soon after."""
    with database.engine.begin() as connection:
        connection.execute(sa.text("ANALYZE"))
