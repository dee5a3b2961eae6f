"""Campaigns end to end on both databases: audience, preview, runs, rate, quiet hours, recurrence,
pause, cancel and opt-out, with a controlled clock and the real worker and dispatcher."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bot.campaigns import (
    CAMPAIGN_RUN,
    OUTBOX_BACKLOG,
    CampaignError,
    Campaigns,
    Spec,
    next_fire,
)
from bot.channels.simulator import SimulatorChannel
from bot.conversations import Conversations
from bot.metrics import Metrics
from bot.outbox import Dispatcher
from bot.worker import Worker
from dialogs.engine import Engine
from dialogs.flows import CORE_DIALOGS
from dialogs.types import (
    CampaignStatus,
    Channel,
    Direction,
    Holder,
    OutboxStatus,
    RecipientStatus,
    ScheduledStatus,
    YoungPersonStatus,
)
from storage.campaigns import Audience, AudienceError
from storage.db import Database
from storage.models import (
    CampaignRecipient,
    Conversation,
    Meeting,
    Message,
    Municipality,
    OutboxEntry,
    ScheduledItem,
    YoungPerson,
    YoungPersonTag,
)
from tests.people import kontaktperson

MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 10:00 in Copenhagen
HELLO = {"da": "Hej {first_name}, vi holder åbent hus i dag.", "en": "Hi {first_name}, open day."}


@dataclass
class World:
    database: Database
    campaigns: Campaigns
    conversations: Conversations
    worker: Worker
    clock: list[datetime]
    place_id: int
    karin_id: int
    ali_id: int
    ids: dict[str, int]

    def at(self, moment: datetime) -> None:
        self.clock[0] = moment

    def spec(self, **fields: object) -> Spec:
        values: dict[str, object] = {
            "municipality_id": self.place_id,
            "name": "Åbent hus",
            "template": HELLO,
        }
        values.update(fields)
        return Spec(**values)  # type: ignore[arg-type]

    def launch(self, **fields: object) -> int:
        campaign_id = self.campaigns.create(self.spec(**fields))
        self.campaigns.schedule(campaign_id)
        return campaign_id

    def texts_to(self, name: str) -> list[str]:
        with self.database.session() as session:
            return [
                text or ""
                for text in session.scalars(
                    sa.select(Message.text)
                    .where(
                        Message.young_person_id == self.ids[name],
                        Message.direction == Direction.OUTBOUND,
                    )
                    .order_by(Message.id)
                ).all()
            ]

    def recipients(self, campaign_id: int) -> dict[str, tuple[RecipientStatus, str | None]]:
        names = {v: k for k, v in self.ids.items()}
        with self.database.session() as session:
            rows = session.execute(
                sa.select(
                    CampaignRecipient.young_person_id,
                    CampaignRecipient.status,
                    CampaignRecipient.skip_reason,
                ).where(CampaignRecipient.campaign_id == campaign_id)
            ).all()
        return {names[p]: (status, reason) for p, status, reason in rows}


PEOPLE: dict[str, dict[str, object]] = {
    # name: birth date, kontaktperson, tags, language, channel facts, status, last reply
    "Mads": {"birth_date": date(2009, 3, 1), "tags": ["fgu"], "phone": "+4520000001"},
    "Sara": {"birth_date": date(2005, 6, 15), "tags": ["fgu", "job"], "language": "en"},
    "Omar": {"birth_date": date(2001, 1, 20), "tags": ["job"], "telegram_chat_id": 4242},
    "Ida": {"birth_date": date(2008, 11, 23), "status": YoungPersonStatus.INVITED},
    "Noah": {"birth_date": date(2006, 2, 2), "status": YoungPersonStatus.OPTED_OUT},
    "Liv": {"birth_date": date(2004, 4, 4), "last_inbound_days": 2},
}


@pytest.fixture
def world(database: Database) -> Iterator[World]:
    clock = [MONDAY]
    with database.session() as session:
        place = Municipality(name="Aarhus Kommune", slug="aarhus")
        karin = kontaktperson(place)
        ali = kontaktperson(place, "Ali Mentor")
        session.add_all([place, karin, ali])
        session.flush()
        ids: dict[str, int] = {}
        for name, facts in PEOPLE.items():
            facts = dict(facts)
            tags = cast(list[str], facts.pop("tags", []))
            days = cast(int | None, facts.pop("last_inbound_days", None))
            person = YoungPerson(
                municipality=place,
                first_name=name,
                kontaktperson=ali if name == "Sara" else karin,
                status=facts.pop("status", YoungPersonStatus.ACTIVE),
                preferred_channel=Channel.SIMULATOR,
                last_inbound_at=MONDAY - timedelta(days=days) if days is not None else None,
                **facts,
            )
            person.tags = [YoungPersonTag(tag=t) for t in tags]
            session.add(person)
            session.flush()
            ids[name] = person.id
        place_id, karin_id, ali_id = place.id, karin.id, ali.id
    engine = Engine(CORE_DIALOGS)
    conversations = Conversations(database=database, engine=engine, clock=lambda: clock[0])
    campaigns = Campaigns(
        database=database, conversations=conversations, engine=engine, clock=lambda: clock[0]
    )
    dispatcher = Dispatcher(
        database=database, adapters={Channel.SIMULATOR: SimulatorChannel()}, clock=lambda: clock[0]
    )
    worker = Worker(
        database=database,
        metrics=Metrics(),
        handlers=campaigns.handlers(),
        after_sweep=[campaigns.send_due, dispatcher.dispatch_due],
        worker_id="test-worker",
        clock=lambda: clock[0],
    )
    yield World(database, campaigns, conversations, worker, clock, place_id, karin_id, ali_id, ids)
    dispatcher.close()


def _count(world: World, audience: dict[str, object]) -> int:
    return world.campaigns.dry_run(world.spec(audience=Audience.from_dict(audience))).count


def test_the_audience_filters_count_who_they_should(world: World) -> None:
    # Active by default; the opted-out Noah is never in an audience.
    assert _count(world, {}) == 4
    assert _count(world, {"statuses": ["active", "invited"]}) == 5
    assert _count(world, {"min_age": 18, "max_age": 22}) == 2  # Sara 21, Liv 22
    assert _count(world, {"max_age": 18, "statuses": ["active", "invited"]}) == 2  # Mads, Ida
    assert _count(world, {"tags": ["fgu"]}) == 2
    assert _count(world, {"kontaktperson_ids": [world.ali_id]}) == 1
    assert _count(world, {"channel": "telegram"}) == 1
    assert _count(world, {"channel": "sms"}) == 1
    assert _count(world, {"min_days_since_contact": 7}) == 3  # never wrote, or long ago
    assert _count(world, {"max_days_since_contact": 7}) == 1  # Liv wrote two days ago


def test_age_is_counted_on_the_day_of_the_run(world: World) -> None:
    # Ida turns 18 on the Monday the campaign runs.
    audience = {"min_age": 18, "max_age": 18, "statuses": ["invited"]}
    assert _count(world, audience) == 1
    world.at(MONDAY - timedelta(days=1))
    assert _count(world, audience) == 0


def test_bad_audience_and_content_get_clear_errors(world: World) -> None:
    with pytest.raises(AudienceError, match="unknown audience field: colour"):
        Audience.from_dict({"colour": "blue"})
    with pytest.raises(AudienceError, match="opted-out"):
        Audience.from_dict({"statuses": ["opted_out"]})
    with pytest.raises(AudienceError, match="min_age is above max_age"):
        Audience.from_dict({"min_age": 20, "max_age": 18})
    with pytest.raises(CampaignError, match=r"unknown variable \{cpr\}"):
        world.campaigns.create(world.spec(template={"da": "Hej {cpr}"}))
    with pytest.raises(CampaignError, match="either a dialog or a message"):
        world.campaigns.create(world.spec(dialog="dreams"))
    with pytest.raises(CampaignError, match="meeting_reminder needs meeting_id"):
        world.campaigns.create(world.spec(template=None, dialog="meeting_reminder"))
    with pytest.raises(CampaignError, match="cron"):
        world.campaigns.create(world.spec(cron="every monday"))
    with world.database.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(CampaignRecipient)) == 0


def test_a_dry_run_previews_in_each_language_and_writes_nothing(world: World) -> None:
    result = world.campaigns.dry_run(world.spec(audience=Audience.from_dict({"tags": ["fgu"]})))
    assert result.count == 2
    texts = {p.first_name: p.text for p in result.previews}
    assert texts == {
        "Mads": "Hej Mads, vi holder åbent hus i dag.",
        "Sara": "Hi Sara, open day.",
    }
    assert result.in_quiet_hours is False
    with world.database.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0


def test_a_campaign_reaches_each_recipient_exactly_once(world: World) -> None:
    campaign_id = world.launch()
    assert world.worker.sweep() == 1  # the run
    world.worker.sweep()
    world.worker.sweep()
    for name in ("Mads", "Omar", "Liv"):
        assert world.texts_to(name) == [f"Hej {name}, vi holder åbent hus i dag."]
    assert world.texts_to("Sara") == ["Hi Sara, open day."]
    assert world.texts_to("Ida") == world.texts_to("Noah") == []
    progress = world.campaigns.progress(campaign_id)
    assert progress["by_status"] == {"delivered": 4}
    assert progress["status"] == CampaignStatus.FINISHED.value
    # A reply is counted as replied.
    world.at(MONDAY + timedelta(minutes=5))
    world.conversations.receive(
        young_person_id=world.ids["Mads"], channel=Channel.SIMULATOR, text="fedt, jeg kommer"
    )
    assert world.campaigns.progress(campaign_id)["by_status"] == {"delivered": 3, "replied": 1}


def test_a_rate_spreads_the_recipients_due_times(world: World) -> None:
    campaign_id = world.launch(rate_per_minute=30)  # one every two seconds
    world.worker.sweep_items()
    with world.database.session() as session:
        due = session.scalars(
            sa.select(CampaignRecipient.due_at)
            .where(CampaignRecipient.campaign_id == campaign_id)
            .order_by(CampaignRecipient.due_at)
        ).all()
    assert [d - MONDAY for d in due] == [timedelta(seconds=s) for s in (0, 2, 4, 6)]
    world.campaigns.send_due()
    assert len(world.recipients(campaign_id)) == 4
    queued = [s for s, _ in world.recipients(campaign_id).values() if s is RecipientStatus.QUEUED]
    assert len(queued) == 1
    world.at(MONDAY + timedelta(seconds=6))
    world.campaigns.send_due()
    assert all(s is RecipientStatus.QUEUED for s, _ in world.recipients(campaign_id).values())


def test_a_run_in_quiet_hours_waits_for_the_morning(world: World) -> None:
    evening = datetime(2026, 11, 23, 21, 30, tzinfo=UTC)  # 22:30 in Copenhagen
    world.at(evening)
    campaign_id = world.launch()
    world.worker.sweep()
    assert set(world.recipients(campaign_id).values()) == {(RecipientStatus.PENDING, "quiet_hours")}
    assert world.campaigns.progress(campaign_id)["waiting"] == {"quiet_hours": 4}
    assert world.texts_to("Mads") == []
    world.at(datetime(2026, 11, 24, 6, 59, tzinfo=UTC))  # 07:59
    world.worker.sweep()
    assert world.texts_to("Mads") == []
    world.at(datetime(2026, 11, 24, 7, 0, tzinfo=UTC))  # 08:00: the first allowed minute
    world.worker.sweep()
    world.worker.sweep()
    assert world.texts_to("Mads") == ["Hej Mads, vi holder åbent hus i dag."]
    assert world.campaigns.progress(campaign_id)["by_status"] == {"delivered": 4}


def test_opting_out_skips_what_is_pending_at_once(world: World) -> None:
    campaign_id = world.launch(starts_at=MONDAY + timedelta(hours=1))
    world.at(MONDAY + timedelta(hours=1))
    world.worker.sweep_items()  # recipients written, nothing sent yet
    world.conversations.receive(
        young_person_id=world.ids["Omar"], channel=Channel.SIMULATOR, text="STOP"
    )
    assert world.recipients(campaign_id)["Omar"] == (RecipientStatus.SKIPPED, "opted_out")
    world.worker.sweep()
    assert "Hej Omar" not in " ".join(world.texts_to("Omar"))


def test_a_young_person_a_staff_member_is_talking_with_is_left_out(world: World) -> None:
    with world.database.session() as session:
        session.add(Conversation(young_person_id=world.ids["Liv"], holder=Holder.HUMAN))
    campaign_id = world.launch()
    world.worker.sweep()
    world.worker.sweep()
    assert world.texts_to("Liv") == []
    assert world.recipients(campaign_id)["Liv"] == (RecipientStatus.SKIPPED, "with_staff")
    assert world.texts_to("Mads") == ["Hej Mads, vi holder åbent hus i dag."]


def test_pause_resume_and_cancel(world: World) -> None:
    campaign_id = world.launch(rate_per_minute=1)  # one a minute
    world.worker.sweep()
    assert world.texts_to("Mads") == ["Hej Mads, vi holder åbent hus i dag."]
    world.campaigns.pause(campaign_id)
    world.at(MONDAY + timedelta(minutes=1))
    world.worker.sweep()
    assert world.texts_to("Sara") == []
    world.campaigns.resume(campaign_id)
    world.worker.sweep()
    assert world.texts_to("Sara") == ["Hi Sara, open day."]
    assert world.campaigns.cancel(campaign_id) == 2
    world.at(MONDAY + timedelta(minutes=10))
    world.worker.sweep()
    statuses = world.recipients(campaign_id)
    assert statuses["Omar"] == statuses["Liv"] == (RecipientStatus.SKIPPED, "campaign_cancelled")
    assert world.texts_to("Omar") == world.texts_to("Liv") == []
    with pytest.raises(CampaignError, match="already cancelled"):
        world.campaigns.cancel(campaign_id)


def test_cancel_withdraws_messages_queued_but_not_sent(world: World) -> None:
    campaign_id = world.launch()
    world.worker.sweep_items()
    world.campaigns.send_due()  # queued in the outbox, not dispatched
    world.campaigns.cancel(campaign_id)
    with world.database.session() as session:
        statuses = set(session.scalars(sa.select(OutboxEntry.status)).all())
    assert statuses == {OutboxStatus.CANCELLED}


def test_a_weekly_campaign_keeps_its_local_hour_across_the_clock_change(world: World) -> None:
    world.at(datetime(2026, 10, 12, 9, 0, tzinfo=UTC))
    campaign_id = world.launch(cron="0 10 * * mon")  # Mondays at 10:00 in Copenhagen
    with world.database.session() as session:
        due = session.scalar(
            sa.select(ScheduledItem.due_at).where(ScheduledItem.kind == CAMPAIGN_RUN)
        )
    assert due == datetime(2026, 10, 19, 8, 0, tzinfo=UTC)  # summer time: 10:00 is 08:00 UTC
    world.at(due)
    world.worker.sweep()
    with world.database.session() as session:
        pending = session.scalars(
            sa.select(ScheduledItem.due_at).where(ScheduledItem.status == ScheduledStatus.PENDING)
        ).all()
    # After the last Sunday of October, 10:00 in Copenhagen is 09:00 UTC.
    assert pending == [datetime(2026, 10, 26, 9, 0, tzinfo=UTC)]
    world.at(pending[0])
    world.worker.sweep()
    world.worker.sweep()
    assert world.texts_to("Mads") == ["Hej Mads, vi holder åbent hus i dag."] * 2
    assert world.campaigns.progress(campaign_id)["by_status"] == {"delivered": 8}


def test_after_downtime_a_missed_run_fires_once(world: World) -> None:
    campaign_id = world.launch(starts_at=MONDAY - timedelta(days=2))
    world.worker.sweep()
    world.worker.sweep()
    assert world.texts_to("Mads") == ["Hej Mads, vi holder åbent hus i dag."]
    with world.database.session() as session:
        runs = session.scalars(sa.select(ScheduledItem.status)).all()
    assert runs == [ScheduledStatus.DONE]
    assert world.campaigns.progress(campaign_id)["total"] == 4


def test_a_campaign_relative_to_meetings_follows_a_moved_meeting(world: World) -> None:
    with world.database.session() as session:
        meeting = Meeting(
            young_person_id=world.ids["Mads"],
            starts_at=MONDAY + timedelta(days=2, hours=1),
            place="Jobcentret",
        )
        session.add(meeting)
        session.flush()
        meeting_id = meeting.id
    campaign_id = world.launch(
        relative={"anchor": "meeting", "offset_minutes": -24 * 60},
        template={"da": "Hej {first_name}, husk i morgen."},
    )
    world.worker.sweep()
    assert world.recipients(campaign_id) == {}  # the day-before time is not within a day yet
    world.at(MONDAY + timedelta(days=1))
    world.worker.sweep()
    assert world.recipients(campaign_id) == {"Mads": (RecipientStatus.PENDING, None)}
    with world.database.session() as session:
        session.get_one(Meeting, meeting_id).starts_at = MONDAY + timedelta(days=5)
    world.at(MONDAY + timedelta(days=1, hours=1))
    world.worker.sweep()
    assert world.recipients(campaign_id) == {"Mads": (RecipientStatus.SKIPPED, "meeting_changed")}
    assert world.texts_to("Mads") == []


def test_a_campaign_can_start_a_dialog(world: World) -> None:
    campaign_id = world.launch(
        template=None, dialog="dreams", audience=Audience.from_dict({"tags": ["job"]})
    )
    world.worker.sweep()
    world.worker.sweep()
    assert world.recipients(campaign_id) == {
        "Sara": (RecipientStatus.QUEUED, None),
        "Omar": (RecipientStatus.QUEUED, None),
    }
    with world.database.session() as session:
        person = session.get_one(YoungPerson, world.ids["Omar"])
        assert person.id == world.ids["Omar"]
    assert world.texts_to("Omar")  # the dialog's first question went out


def test_only_the_owners_municipality_is_in_the_audience(world: World) -> None:
    with world.database.session() as session:
        other = Municipality(name="Odense Kommune", slug="odense")
        session.add(other)
        session.add(
            YoungPerson(
                municipality=other,
                first_name="Emil",
                birth_date=date(2007, 1, 1),
                status=YoungPersonStatus.ACTIVE,
                preferred_channel=Channel.SIMULATOR,
            )
        )
    assert _count(world, {}) == 4


EVERY_DAY = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}


@pytest.mark.parametrize(
    ("expression", "weekdays"),
    [
        ("0 9 * * 1", {"Monday"}),
        ("0 9 * * 0", {"Sunday"}),
        ("0 9 * * 7", {"Sunday"}),
        ("0 9 * * 1-5", {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}),
        ("0 9 * * */3", {"Sunday", "Wednesday", "Saturday"}),
        ("0 9 * * 5,6", {"Friday", "Saturday"}),
        ("0 9 * * sat", {"Saturday"}),
        ("0 9 * * *", EVERY_DAY),
    ],
)
def test_cron_weekdays_are_read_as_crontab_reads_them(expression: str, weekdays: set[str]) -> None:
    zone = ZoneInfo("Europe/Copenhagen")
    moment = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # a Sunday
    seen = set()
    for _ in range(14):
        moment = next_fire(expression, zone, moment)
        local = moment.astimezone(zone)
        assert (local.hour, local.minute) == (9, 0)
        seen.add(local.strftime("%A"))
    assert seen == weekdays


@pytest.mark.parametrize("expression", ["0 9 * * 8", "0 9 * * 5-2", "0 9 * *", "61 9 * * 1"])
def test_a_cron_expression_that_cannot_be_read_is_refused(expression: str) -> None:
    with pytest.raises(CampaignError, match="cron"):
        next_fire(expression, ZoneInfo("Europe/Copenhagen"), datetime(2026, 11, 22, tzinfo=UTC))


def test_a_running_worker_tops_the_backlog_up_as_other_workers_drain_it(world: World) -> None:
    """Without waiting, queuing stops while the outbox holds OUTBOX_BACKLOG campaign messages;
    a running worker's campaign job waits for the dispatchers (its own and other workers') to
    drain them and queues the rest at once, waking its dispatcher after each batch."""
    extra = 900
    with world.database.session() as session:
        session.add_all(
            YoungPerson(
                municipality_id=world.place_id,
                first_name=f"U{n}",
                birth_date=date(2006, 1, 1),
                status=YoungPersonStatus.ACTIVE,
                phone=f"+4530{n:06d}",
            )
            for n in range(extra)
        )
    campaign_id = world.launch()
    world.worker.sweep_items()  # the run: every recipient pending
    with world.database.session() as session:
        total = int(
            session.scalar(
                sa.select(sa.func.count())
                .select_from(CampaignRecipient)
                .where(CampaignRecipient.campaign_id == campaign_id)
            )
            or 0
        )
    assert total > extra

    def queued() -> int:
        with world.database.session() as session:
            return int(
                session.scalar(
                    sa.select(sa.func.count())
                    .select_from(CampaignRecipient)
                    .where(CampaignRecipient.status != RecipientStatus.PENDING)
                )
                or 0
            )

    world.campaigns.send_due()
    first = queued()
    assert OUTBOX_BACKLOG <= first < total  # stopped at the backlog

    drained = threading.Event()

    def drain() -> None:  # another worker's dispatcher, sending what is queued
        while not drained.is_set():
            with world.database.session() as session:
                session.execute(
                    sa.update(OutboxEntry)
                    .where(OutboxEntry.status == OutboxStatus.PENDING)
                    .values(status=OutboxStatus.SENT)
                )
            time.sleep(0.05)

    wakes: list[int] = []
    drainer = threading.Thread(target=drain)
    drainer.start()
    try:
        started = time.monotonic()
        settled = world.campaigns.send_due(
            wait_seconds=30, on_queued=lambda: wakes.append(queued())
        )
        elapsed = time.monotonic() - started
    finally:
        drained.set()
        drainer.join()
    assert queued() == total
    assert settled == total - first
    assert elapsed < 15  # it returned when nothing was left, not at its deadline
    assert len(wakes) >= 2 and wakes == sorted(wakes)  # woken after each committed batch
