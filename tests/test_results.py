"""The results dashboard against a seeded history whose answers are known by construction, on
both databases: every figure, the period's edges (whole local days in Copenhagen), the
kontaktperson filter, another municipality's data that never counts, the CSV file, the audit
events, bad input and who is refused.

The clock stands still on Friday 20 November 2026 at 12:00 UTC. The period is Monday 2 to
Sunday 15 November, two whole weeks: from 1 November 23:00 UTC (midnight in Copenhagen) to
15 November 23:00 UTC.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

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
    GoalStatus,
    HandoffPriority,
    HandoffReason,
    MeetingStatus,
)
from storage import handoffs, results
from storage.db import Database
from storage.models import (
    AuditEvent,
    ConsentEvent,
    Dream,
    Goal,
    Handoff,
    KuiCase,
    Meeting,
    Message,
    StaffUser,
    SubGoal,
)
from tests.conftest import make_settings
from tests.staff_world import World, build_world, sign_in

ZONE = ZoneInfo("Europe/Copenhagen")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FIRST, LAST = date(2026, 11, 2), date(2026, 11, 15)
START = datetime(2026, 11, 1, 23, 0, tzinfo=UTC)  # 2 November, midnight in Copenhagen
END = datetime(2026, 11, 15, 23, 0, tzinfo=UTC)  # 16 November, midnight in Copenhagen
BEFORE = START - timedelta(microseconds=1)
PERIOD = results.Period.of(FIRST, LAST, ZONE)
QUERY = "from=2026-11-02&to=2026-11-15"


def at(day: int, hour: int = 10) -> datetime:
    """A moment in November 2026 (UTC)."""
    return datetime(2026, 11, day, hour, 0, tzinfo=UTC)


# ------------------------------------------------------------------------------- the history


def seed(session: Session, world: World) -> None:
    """Everything that happened, in and around the period; each line says whether it counts."""
    mads, sara, emil, freja = (world.people[n] for n in ("mads", "sara", "emil", "freja"))

    def message(person: int, direction: Direction, author: Author, **fields: object) -> None:
        status = fields.pop("status", DeliveryStatus.DELIVERED)
        created = fields.pop("created_at", fields.get("sent_at") or NOW)
        session.add(
            Message(
                young_person_id=person,
                direction=direction,
                channel=Channel.SMS,
                author=author,
                text="…",
                status=status,
                created_at=created,
                **fields,
            )
        )

    out, inbound = Direction.OUTBOUND, Direction.INBOUND
    # Reached and replied.
    message(mads, out, Author.BOT, sent_at=START)  # reached, week 1 (the first instant counts)
    message(mads, inbound, Author.YOUNG_PERSON, created_at=at(3))  # replied, week 1
    message(mads, out, Author.BOT, sent_at=at(10))  # reached again, week 2
    message(sara, out, Author.STAFF, sent_at=at(7))  # reached, week 1 (also KUI contact, case B)
    message(sara, out, Author.BOT, sent_at=END - timedelta(seconds=1))  # reached, week 2
    message(sara, inbound, Author.YOUNG_PERSON, created_at=END)  # not: the period has ended
    message(sara, out, Author.BOT, sent_at=BEFORE, created_at=BEFORE)  # not: before the period
    message(emil, out, Author.BOT, sent_at=at(4), status=DeliveryStatus.FAILED)  # not: failed
    message(emil, out, Author.BOT, created_at=at(5), status=DeliveryStatus.QUEUED)  # not sent
    message(emil, inbound, Author.YOUNG_PERSON, created_at=BEFORE)  # not: before the period
    message(emil, inbound, Author.YOUNG_PERSON, created_at=at(12))  # replied, week 2
    message(freja, out, Author.BOT, sent_at=at(5))  # Odense
    message(freja, inbound, Author.YOUNG_PERSON, created_at=at(5))  # Odense

    # Dreams and wishes.
    for person, category, captured in (
        (mads, DreamCategory.EDUCATION, START),
        (mads, DreamCategory.JOB, at(11)),
        (sara, DreamCategory.EDUCATION, at(6)),
        (emil, DreamCategory.HOUSING, END),  # not: the period has ended
        (freja, DreamCategory.LEISURE, at(6)),  # Odense
    ):
        session.add(
            Dream(
                young_person_id=person,
                text="En drøm",
                category=category,
                captured_at=captured,
                captured_via=CaptureSource.DIALOG,
            )
        )

    # Meetings, by when they start.
    for person, status, starts in (
        (mads, MeetingStatus.CONFIRMED, at(4)),
        (mads, MeetingStatus.ATTENDED, at(9)),
        (mads, MeetingStatus.CANCELLED, at(9)),  # not: cancelled
        (sara, MeetingStatus.NO_SHOW, at(12)),
        (sara, MeetingStatus.PLANNED, at(13)),  # counts in the total only
        (emil, MeetingStatus.ATTENDED, END),  # not: the period has ended
        (freja, MeetingStatus.ATTENDED, at(9)),  # Odense
    ):
        session.add(Meeting(young_person_id=person, status=status, starts_at=starts))

    # Goals (each a KUI offer when it comes after a drop-out) and sub-goals.
    def goal(
        person: int, created: datetime, *subs: tuple[GoalStatus, date, datetime | None]
    ) -> None:
        row = Goal(young_person_id=person, title="Mål", created_at=created)
        session.add(row)
        session.flush()
        for status, due, completed in subs:
            session.add(
                SubGoal(
                    goal_id=row.id,
                    title="Skridt",
                    status=status,
                    due_date=due,
                    completed_at=completed,
                )
            )

    goal(
        mads,
        datetime(2026, 10, 20, tzinfo=UTC),
        (GoalStatus.DONE, date(2026, 11, 20), at(6)),  # done in the period
        (GoalStatus.DONE, date(2026, 11, 3), BEFORE),  # not: done before the period
        (GoalStatus.PLANNED, date(2026, 11, 10), None),  # overdue
        (GoalStatus.UNDER_WAY, LAST, None),  # overdue (the last day counts)
        (GoalStatus.DROPPED, date(2026, 11, 10), None),  # not: dropped
        (GoalStatus.PLANNED, date(2026, 11, 16), None),  # not: due after the period
        (GoalStatus.PLANNED, date(2026, 11, 22), None),  # due after today: never overdue yet
    )
    goal(
        sara,
        datetime(2026, 9, 1, tzinfo=UTC),
        (GoalStatus.NEEDS_HELP, FIRST, None),  # overdue (the first day counts)
        (GoalStatus.DONE, date(2026, 11, 5), at(5)),  # done in the period
    )
    goal(freja, at(3), (GoalStatus.DONE, FIRST, at(4)), (GoalStatus.PLANNED, FIRST, None))

    # Handoffs: waits of 10, 20, 30 (Mads, one urgent), 50 minutes (Sara); Emil's unanswered.
    for person, opened, minutes, priority in (
        (mads, START, 10, HandoffPriority.URGENT),
        (mads, at(8), 20, HandoffPriority.NORMAL),
        (mads, at(14), 30, HandoffPriority.NORMAL),
        (sara, at(9), 50, HandoffPriority.NORMAL),
        (emil, at(13), None, HandoffPriority.NORMAL),
        (mads, BEFORE, 1, HandoffPriority.NORMAL),  # not: before the period
        (freja, at(9), 5, HandoffPriority.URGENT),  # Odense
    ):
        session.add(
            Handoff(
                young_person_id=person,
                reason=HandoffReason.ASKED,
                priority=priority,
                opened_at=opened,
                first_human_answer_at=opened + timedelta(minutes=minutes) if minutes else None,
            )
        )

    # KUI cases: contact and offer deadlines.
    def case(
        person: int,
        place: str,
        dropped: datetime,
        contact_due: datetime,
        offer_due: datetime,
        **fields: datetime,
    ) -> None:
        session.add(
            KuiCase(
                young_person_id=person,
                municipality_id=world.places[place],
                dropped_out_at=dropped,
                contact_due_at=contact_due,
                offer_due_at=offer_due,
                **fields,
            )
        )

    late = datetime(2026, 12, 30, tzinfo=UTC)  # an offer deadline after every period here
    # A: contact recorded in time (met).
    case(mads, "aarhus", at(2), at(6, 23), late, contacted_at=at(3))
    # B: contact not recorded yet, but Sara got a staff message on the 7th (met).
    case(sara, "aarhus", at(3), at(10, 23), late)
    # C: no contact at all (missed).
    case(emil, "aarhus", at(4), at(11, 23), late)
    # D: closed on the 10th (back in education) before its contact deadline: not counted.
    case(mads, "aarhus", at(9, 12), at(13, 23), late, closed_at=at(10))
    # E: contact, but after the deadline (missed).
    case(emil, "aarhus", at(7), at(14, 23), late, contacted_at=at(16))
    # F: contact deadline after today (pending, in a later period).
    case(sara, "aarhus", at(17), at(24, 23), late)
    # G: offer deadline in the period; Mads' goal of 20 October is the offer (met).
    case(mads, "aarhus", datetime(2026, 10, 10, tzinfo=UTC), at(1), at(9, 23))
    # H: offer deadline in the period, no goal since (missed).
    case(emil, "aarhus", datetime(2026, 10, 14, tzinfo=UTC), at(1), at(13, 23))
    # Odense: missed, never counted in Aarhus.
    case(freja, "odense", at(9, 12), at(13, 23), at(14, 23))

    # Consent events.
    for person, kind, when in (
        (mads, ConsentKind.OPTED_OUT, at(3)),
        (mads, ConsentKind.OPTED_IN, at(4)),
        (mads, ConsentKind.OPTED_OUT, at(10)),  # Mads counts once
        (sara, ConsentKind.CONSENT_WITHDRAWN, at(12)),
        (emil, ConsentKind.OPTED_OUT, END),  # not: the period has ended
        (freja, ConsentKind.OPTED_OUT, at(4)),  # Odense
    ):
        session.add(
            ConsentEvent(
                young_person_id=person,
                kind=kind,
                source=ConsentSource.YOUNG_PERSON,
                created_at=when,
            )
        )
    session.flush()


@pytest.fixture
def world(database: Database) -> World:
    with database.session() as session:
        built = build_world(session)
        seed(session, built)
    return built


def gather(
    database: Database,
    world: World,
    who: str = "carsten",
    *,
    period: results.Period = PERIOD,
    kontaktperson: str | None = None,
) -> results.Results:
    with database.session() as session:
        viewer = session.get_one(StaffUser, world.staff[who])
        return results.gather(
            session,
            viewer,
            period=period,
            kontaktperson_id=world.staff[kontaktperson] if kontaktperson else None,
            now=NOW,
        )


# ------------------------------------------------------------------------------- the figures


def test_every_figure_of_the_municipality(database: Database, world: World) -> None:
    found = gather(database, world)
    assert found.period == results.Period(FIRST, LAST, START, END)
    assert (found.reach.reached, found.reach.replied) == (2, 2)
    assert found.reach.weeks == [
        results.Week(date(2026, 11, 2), date(2026, 11, 8), reached=2, replied=1),
        results.Week(date(2026, 11, 9), date(2026, 11, 15), reached=2, replied=1),
    ]
    assert found.dreams == results.Dreams(
        total=3,
        young_people=2,
        by_category={
            DreamCategory.EDUCATION: 2,
            DreamCategory.JOB: 1,
            DreamCategory.LEISURE: 0,
            DreamCategory.HOUSING: 0,
            DreamCategory.HEALTH: 0,
            DreamCategory.NETWORK: 0,
            DreamCategory.OTHER: 0,
        },
    )
    assert found.meetings == results.Meetings(total=4, confirmed=1, attended=1, no_show=1)
    assert found.sub_goals == results.SubGoals(done=2, overdue=3)
    assert found.handoffs == results.Handoffs(
        opened=5,
        urgent=1,
        times=handoffs.AnswerTimes(
            opened=5,
            answered=4,
            median=timedelta(minutes=20),
            p90=timedelta(minutes=50),
        ),
    )
    assert found.kui == results.Kui(
        contact=results.Deadlines(due=4, met=2, missed=2, pending=0),
        offer=results.Deadlines(due=2, met=1, missed=1, pending=0),
    )
    assert found.opt_outs == results.OptOuts(opted_out=1, opted_in=1, consent_withdrawn=1)
    # The handoff figures are the municipality's answer times, read the same way.
    with database.session() as session:
        same = handoffs.answer_times(
            session, municipality_id=world.places["aarhus"], start=START, end=END
        )
    assert found.handoffs.times == same


def test_one_kontaktpersons_young_people(database: Database, world: World) -> None:
    karin = gather(database, world, kontaktperson="karin")  # Mads
    assert karin.kontaktperson_id == world.staff["karin"]
    assert (karin.reach.reached, karin.reach.replied) == (1, 1)
    assert [(w.reached, w.replied) for w in karin.reach.weeks] == [(1, 1), (1, 0)]
    assert (karin.dreams.total, karin.dreams.young_people) == (2, 1)
    assert karin.meetings == results.Meetings(total=2, confirmed=1, attended=1, no_show=0)
    assert karin.sub_goals == results.SubGoals(done=1, overdue=2)
    assert karin.handoffs.times == handoffs.AnswerTimes(
        opened=3, answered=3, median=timedelta(minutes=20), p90=timedelta(minutes=30)
    )
    assert karin.handoffs.urgent == 1
    assert karin.kui == results.Kui(
        contact=results.Deadlines(due=1, met=1, missed=0, pending=0),
        offer=results.Deadlines(due=1, met=1, missed=0, pending=0),
    )
    assert karin.opt_outs == results.OptOuts(opted_out=1, opted_in=1, consent_withdrawn=0)

    ali = gather(database, world, kontaktperson="ali")  # Sara
    assert (ali.reach.reached, ali.reach.replied) == (1, 0)
    assert ali.meetings == results.Meetings(total=2, confirmed=0, attended=0, no_show=1)
    assert ali.sub_goals == results.SubGoals(done=1, overdue=1)
    assert ali.handoffs.times == handoffs.AnswerTimes(
        opened=1, answered=1, median=timedelta(minutes=50), p90=timedelta(minutes=50)
    )
    assert ali.kui.contact == results.Deadlines(due=1, met=1, missed=0, pending=0)
    assert ali.opt_outs == results.OptOuts(opted_out=0, opted_in=0, consent_withdrawn=1)

    # Ole is Odense's: none of Aarhus' young people have him.
    ole = gather(database, world, kontaktperson="ole")
    assert (ole.reach.reached, ole.dreams.total, ole.handoffs.opened) == (0, 0, 0)


def test_another_municipality_sees_only_its_own(database: Database, world: World) -> None:
    odense = gather(database, world, "olga")
    assert (odense.reach.reached, odense.reach.replied) == (1, 1)
    assert (odense.dreams.total, odense.dreams.by_category[DreamCategory.LEISURE]) == (1, 1)
    assert odense.meetings == results.Meetings(total=1, confirmed=0, attended=1, no_show=0)
    assert odense.sub_goals == results.SubGoals(done=1, overdue=1)
    assert odense.handoffs.times == handoffs.AnswerTimes(
        opened=1, answered=1, median=timedelta(minutes=5), p90=timedelta(minutes=5)
    )
    assert odense.kui.contact == results.Deadlines(due=1, met=0, missed=1, pending=0)
    assert odense.kui.offer == results.Deadlines(due=1, met=0, missed=1, pending=0)
    assert odense.opt_outs.opted_out == 1
    # An admin sees no young person's data, so counts nothing.
    admin = gather(database, world, "ada")
    assert (admin.reach.reached, admin.handoffs.opened, admin.kui.contact.due) == (0, 0, 0)


def test_a_period_reaching_past_today(database: Database, world: World) -> None:
    later = results.Period.of(date(2026, 11, 15), date(2026, 11, 25), ZONE)
    found = gather(database, world, period=later)
    # Due the 16th (before today) is overdue; due the 22nd is not yet; the 15th is in it too.
    assert found.sub_goals == results.SubGoals(done=0, overdue=2)
    # F: the contact deadline of the 24th has not passed.
    assert found.kui.contact == results.Deadlines(due=1, met=0, missed=0, pending=1)
    # What happened at the old period's end (the 16th, local midnight) is in this one.
    assert (found.reach.replied, found.dreams.total, found.meetings.attended) == (1, 1, 1)
    assert found.opt_outs.opted_out == 1
    assert [(w.first, w.last) for w in found.reach.weeks] == [
        (date(2026, 11, 15), date(2026, 11, 15)),
        (date(2026, 11, 16), date(2026, 11, 22)),
        (date(2026, 11, 23), date(2026, 11, 25)),
    ]
    assert [(w.reached, w.replied) for w in found.reach.weeks] == [(1, 0), (0, 1), (0, 0)]


def test_periods_are_whole_local_days_and_bounded() -> None:
    summer = results.Period.of(date(2026, 7, 1), date(2026, 7, 31), ZONE)
    assert summer.start == datetime(2026, 6, 30, 22, 0, tzinfo=UTC)
    assert summer.end == datetime(2026, 7, 31, 22, 0, tzinfo=UTC)
    default = results.Period.last_days(datetime(2026, 11, 20, 23, 30, tzinfo=UTC), ZONE)
    assert (default.first, default.last) == (date(2026, 10, 23), date(2026, 11, 21))
    with pytest.raises(ValueError, match="ends before"):
        results.Period.of(LAST, FIRST, ZONE)
    with pytest.raises(ValueError, match="at most 366"):
        results.Period.of(date(2026, 1, 1), date(2027, 1, 2), ZONE)


# ------------------------------------------------------------------------------- the pages


@dataclass
class Site:
    app: FastAPI
    runtime: Runtime
    world: World

    def browser(self, who: str | None = None) -> TestClient:
        client = TestClient(self.app)
        if who is not None:
            assert sign_in(client, who).status_code == 303
        return client

    def events(self) -> list[AuditEvent]:
        with self.runtime.database.session() as session:
            return list(
                session.scalars(
                    sa.select(AuditEvent)
                    .where(AuditEvent.action.like("results.%"))
                    .order_by(AuditEvent.id)
                )
            )


@pytest.fixture
def site(database: Database, world: World) -> Iterator[Site]:
    with time_machine.travel(NOW, tick=False):
        runtime = Runtime(settings=make_settings(), database=database)
        app = create_app(runtime)
        with TestClient(app):
            yield Site(app, runtime, world)


def figures(page: str) -> dict[str, str]:
    """The page's figures by key, as shown."""
    found = re.findall(
        r'<tr data-figure="([\w]+)">\s*<th scope="row">[^<]*</th>\s*<td>([^<]*)</td>', page
    )
    return dict(found)


def read_csv(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_the_page_shows_every_figure_and_is_audited(site: Site) -> None:
    client = site.browser("carsten")
    page = client.get(f"/results?{QUERY}")
    assert page.status_code == 200
    shown = figures(page.text)
    assert shown["reached"] == "2"
    assert shown["replied"] == "2"
    assert shown["dreams_education"] == "2"
    assert (shown["confirmed"], shown["attended"], shown["no_show"]) == ("1", "1", "1")
    assert (shown["done"], shown["overdue"]) == ("2", "3")
    assert (shown["opened"], shown["answered"]) == ("5", "4")
    assert (shown["median"], shown["p90"]) == ("20 min.", "50 min.")
    assert (shown["contact_met"], shown["contact_missed"], shown["offer_met"]) == ("2", "2", "1")
    assert shown["opted_out"] == "1"
    assert "2. november 2026 til og med 15. november 2026" in page.text
    # The charts are the server's own SVG, each with its numbers as its text alternative.
    assert page.text.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 5
    assert 'aria-label="Drømme og ønsker. Uddannelse: 2; Job: 1; Fritid: 0;' in page.text
    assert "Mads" not in page.text and "Sara" not in page.text
    assert page.headers["cache-control"] == "no-store"
    [event] = site.events()
    assert (event.action, event.staff_id, event.young_person_id) == (
        "results.viewed",
        site.world.staff["carsten"],
        None,
    )
    assert event.municipality_id == site.world.places["aarhus"]
    assert event.details == {"from": "2026-11-02", "to": "2026-11-15", "kontaktperson_id": None}


def test_the_default_period_is_the_last_30_days_and_a_filter_is_kept(site: Site) -> None:
    client = site.browser("carsten")
    page = client.get("/results").text
    assert 'id="from" name="from" type="date" value="2026-10-22"' in page
    assert 'id="to" name="to" type="date" value="2026-11-20"' in page
    assert figures(page)["replied"] == "3"  # Emil's message before the 2nd is in it now
    karin = site.world.staff["karin"]
    page = client.get(f"/results?{QUERY}&kontaktperson={karin}").text
    assert f'<option value="{karin}" selected>Karin Kontakt</option>' in page
    assert "Ole Kontakt" not in page  # Odense's kontaktperson is no choice
    assert "som Karin Kontakt er kontaktperson for" in page
    assert figures(page)["reached"] == "1"
    assert f"/results.csv?from=2026-11-02&amp;to=2026-11-15&amp;kontaktperson={karin}" in page


def test_the_csv_has_every_figure_with_the_period_and_the_filter(site: Site) -> None:
    with site.runtime.database.session() as session:
        # A name a spreadsheet would run as a formula.
        session.get_one(StaffUser, site.world.staff["karin"]).name = "=Karin+1"
    client = site.browser("carsten")
    karin = site.world.staff["karin"]
    everyone = client.get(f"/results.csv?{QUERY}")
    assert everyone.status_code == 200
    assert everyone.headers["content-type"] == "text/csv; charset=utf-8"
    assert everyone.headers["content-disposition"] == (
        'attachment; filename="stifinder-resultater-2026-11-02-2026-11-15.csv"'
    )
    rows = read_csv(everyone.content)
    assert rows[0] == ["section", "figure", "value", "label"]
    assert rows[1:5] == [
        ["period", "from", "2026-11-02", "Fra og med"],
        ["period", "to", "2026-11-15", "Til og med"],
        ["filter", "kontaktperson", "all", "Kontaktperson"],
        ["filter", "kontaktperson_id", "", "Kontaktperson"],
    ]
    values = {(section, figure): value for section, figure, value, _ in rows[5:]}
    assert values == {
        ("reach", "reached"): "2",
        ("reach", "replied"): "2",
        ("dreams", "dreams"): "3",
        ("dreams", "dream_young_people"): "2",
        ("dreams", "dreams_education"): "2",
        ("dreams", "dreams_job"): "1",
        ("dreams", "dreams_leisure"): "0",
        ("dreams", "dreams_housing"): "0",
        ("dreams", "dreams_health"): "0",
        ("dreams", "dreams_network"): "0",
        ("dreams", "dreams_other"): "0",
        ("meetings", "meetings"): "4",
        ("meetings", "confirmed"): "1",
        ("meetings", "attended"): "1",
        ("meetings", "no_show"): "1",
        ("sub_goals", "done"): "2",
        ("sub_goals", "overdue"): "3",
        ("handoffs", "opened"): "5",
        ("handoffs", "urgent"): "1",
        ("handoffs", "answered"): "4",
        ("handoffs", "median_minutes"): "20.0",
        ("handoffs", "p90_minutes"): "50.0",
        ("kui", "contact_due"): "4",
        ("kui", "contact_met"): "2",
        ("kui", "contact_missed"): "2",
        ("kui", "contact_pending"): "0",
        ("kui", "offer_due"): "2",
        ("kui", "offer_met"): "1",
        ("kui", "offer_missed"): "1",
        ("kui", "offer_pending"): "0",
        ("opt_outs", "opted_out"): "1",
        ("opt_outs", "opted_in"): "1",
        ("opt_outs", "consent_withdrawn"): "1",
        ("weeks", "reached 2026-11-02/2026-11-08"): "2",
        ("weeks", "replied 2026-11-02/2026-11-08"): "1",
        ("weeks", "reached 2026-11-09/2026-11-15"): "2",
        ("weeks", "replied 2026-11-09/2026-11-15"): "1",
    }
    labels = {figure: label for _, figure, _, label in rows[5:]}
    assert labels["contact_met"] == "Kontakt inden 5 arbejdsdage: Overholdt"
    assert labels["reached 2026-11-02/2026-11-08"] == "uge 45: Unge nået"

    filtered = read_csv(client.get(f"/results.csv?{QUERY}&kontaktperson={karin}").content)
    assert filtered[3:5] == [
        ["filter", "kontaktperson", "'=Karin+1", "Kontaktperson"],
        ["filter", "kontaktperson_id", str(karin), "Kontaktperson"],
    ]
    assert ["reach", "reached", "1", "Unge nået"] in filtered
    english = client.get(f"/results.csv?{QUERY}&lang=en").content
    assert ["reach", "reached", "2", "Young people reached"] in read_csv(english)

    events = site.events()
    assert [e.action for e in events] == ["results.exported"] * 3
    assert {e.young_person_id for e in events} == {None}
    assert events[1].details == {
        "from": "2026-11-02",
        "to": "2026-11-15",
        "kontaktperson_id": karin,
    }


BAD_INPUT = [
    ("from=i+går", "from", "Skriv startdatoen som en dato, fx 01-11-2026."),
    ("to=31-02-2026", "to", "Skriv slutdatoen som en dato, fx 30-11-2026."),
    ("from=2026-11-15&to=2026-11-02", "to", "Slutdatoen ligger før startdatoen."),
    ("from=2025-11-01&to=2026-11-15", "to", "En periode kan højst være 366 dage."),
    ("kontaktperson=OLE", "kontaktperson", "Vælg en kontaktperson fra listen."),
    ("kontaktperson=abc", "kontaktperson", "Vælg en kontaktperson fra listen."),
]


def test_bad_input_is_named_and_nothing_is_read(site: Site) -> None:
    client = site.browser("carsten")
    for query, field, message in BAD_INPUT:
        query = query.replace("OLE", str(site.world.staff["ole"]))
        page = client.get(f"/results?{query}")
        assert page.status_code == 400, query
        assert f'<a href="#{field}">{message}</a>' in page.text, query
        assert f'id="{field}-error"' in page.text
        assert "data-figure" not in page.text
        download = client.get(f"/results.csv?{query}")
        assert download.status_code == 400
        assert download.text == message + "\n"
    assert site.events() == []


def test_only_a_coordinator_may_see_results(site: Site) -> None:
    for who in ("karin", "ali", "ada", "ole"):
        client = site.browser(who)
        for path in ("/results", "/results.csv"):
            assert client.get(path).status_code == 403, (who, path)
    signed_out = site.browser().get("/results", follow_redirects=False)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"].startswith("/sign-in")
    assert site.events() == []
    # Olga sees Odense's figures only, and may not filter on Aarhus' kontaktpersoner.
    olga = site.browser("olga")
    assert figures(olga.get(f"/results?{QUERY}").text)["reached"] == "1"
    refused = olga.get(f"/results.csv?{QUERY}&kontaktperson={site.world.staff['karin']}")
    assert refused.status_code == 400


def test_the_navigation_offers_results_to_coordinators_only(site: Site) -> None:
    assert 'href="/results"' in site.browser("carsten").get("/staff").text
    for who in ("karin", "ada"):
        assert 'href="/results"' not in site.browser(who).get("/staff").text
