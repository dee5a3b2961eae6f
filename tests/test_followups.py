"""Follow-ups through the real worker: meeting reminders, no-shows, sub-goal check-ins, silence
nudges and KUI deadlines, on a controlled clock, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.conversations import Conversations
from bot.followups import FollowUps
from bot.metrics import Metrics
from bot.worker import Worker
from dialogs.engine import Engine
from dialogs.flows import CORE_DIALOGS
from dialogs.types import (
    AlertKind,
    Author,
    Channel,
    Direction,
    GoalStatus,
    HandoffReason,
    Holder,
    MeetingStatus,
    Occupation,
    Purpose,
    Role,
    ScheduledStatus,
    YoungPersonStatus,
)
from storage import outbox, plans
from storage.db import Database
from storage.models import (
    Conversation,
    Goal,
    Handoff,
    KuiCase,
    Meeting,
    Message,
    Municipality,
    ScheduledItem,
    StaffAlert,
    StaffUser,
    SubGoal,
    YoungPerson,
)
from tests.people import add_mads

ZONE = ZoneInfo("Europe/Copenhagen")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Copenhagen
PENDING, DONE, CANCELLED, EXPIRED = (
    ScheduledStatus.PENDING,
    ScheduledStatus.DONE,
    ScheduledStatus.CANCELLED,
    ScheduledStatus.EXPIRED,
)
T = TypeVar("T")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZONE)


class Item(NamedTuple):
    due_at: datetime
    status: ScheduledStatus
    outcome: str | None


@dataclass
class World:
    database: Database
    worker: Worker
    conversations: Conversations
    clock: list[datetime]
    mads_id: int
    karin_id: int
    cora_id: int

    def sweep(self, at: datetime | None = None) -> int:
        if at is not None:
            self.clock[0] = at
        return self.worker.sweep()

    def change(self, work: Callable[[Session, YoungPerson], T], person_id: int | None = None) -> T:
        """Run a plan change in its own transaction, at the clock's time."""
        with self.database.session() as session:
            return work(session, session.get_one(YoungPerson, person_id or self.mads_id))

    def say(self, text: str, person_id: int | None = None) -> list[str]:
        sent = self.conversations.receive(
            young_person_id=person_id or self.mads_id, channel=Channel.SIMULATOR, text=text
        )
        return [s.text for s in sent]

    def meeting(self, starts_at: datetime, person_id: int | None = None, **fields: Any) -> int:
        def create(session: Session, person: YoungPerson) -> int:
            values: dict[str, Any] = {"place": "Torvet 3", "with_whom": "Karin"} | fields
            meeting = plans.create_meeting(
                session, person, starts_at=starts_at, now=self.clock[0], **values
            )
            return meeting.id

        return self.change(create, person_id)

    def on_meeting(self, meeting_id: int, work: Callable[[Session, Meeting], object]) -> None:
        with self.database.session() as session:
            work(session, session.get_one(Meeting, meeting_id))

    def move(self, meeting_id: int, starts_at: datetime) -> None:
        self.on_meeting(
            meeting_id,
            lambda session, meeting: plans.move_meeting(
                session, meeting, starts_at, now=self.clock[0]
            ),
        )

    def mark(self, meeting_id: int, status: MeetingStatus) -> None:
        self.on_meeting(
            meeting_id,
            lambda session, meeting: plans.mark_meeting(
                session, meeting, status, now=self.clock[0]
            ),
        )

    def items(self, kind: str) -> list[Item]:
        with self.database.session() as session:
            rows = session.execute(
                sa.select(ScheduledItem.due_at, ScheduledItem.status, ScheduledItem.outcome)
                .where(ScheduledItem.kind == kind)
                .order_by(ScheduledItem.due_at, ScheduledItem.id)
            ).all()
            return [Item(*row) for row in rows]

    def sent(self, person_id: int | None = None) -> list[str]:
        """Everything the bot wrote to the young person on its own initiative, in order."""
        with self.database.session() as session:
            texts = session.scalars(
                sa.select(Message.text)
                .where(
                    Message.young_person_id == (person_id or self.mads_id),
                    Message.direction == Direction.OUTBOUND,
                    Message.author == Author.BOT,
                )
                .order_by(Message.id)
            ).all()
            return [text or "" for text in texts]

    def alerts(self) -> list[tuple[AlertKind, int]]:
        with self.database.session() as session:
            rows = session.execute(
                sa.select(StaffAlert.kind, StaffAlert.staff_id).order_by(StaffAlert.id)
            ).all()
            return [(kind, staff_id) for kind, staff_id in rows]


def _young_person(place: Municipality, karin: StaffUser, name: str) -> YoungPerson:
    return YoungPerson(
        municipality=place,
        first_name=name,
        birth_date=date(2008, 6, 1),
        kontaktperson=karin,
        status=YoungPersonStatus.ACTIVE,
        preferred_channel=Channel.SIMULATOR,
    )


@pytest.fixture
def world(database: Database) -> Iterator[World]:
    with database.session() as session:
        mads = add_mads(
            session,
            status=YoungPersonStatus.ACTIVE,
            phone="+4520123456",
            preferred_channel=Channel.SIMULATOR,
            occupation=Occupation.EDUCATION,
        )
        place, karin = mads.municipality, mads.kontaktperson
        assert karin is not None

        def staff(name: str, role: Role, where: Municipality, **fields: Any) -> StaffUser:
            email = f"{name.lower()}@x.dk"
            user = StaffUser(
                name=name, email=email, role=role, password_hash="x", municipality=where, **fields
            )
            session.add(user)
            return user

        cora = staff("Cora", Role.COORDINATOR, place)
        staff("Olga", Role.COORDINATOR, place, is_active=False)  # left the municipality
        elsewhere = Municipality(name="Odense Kommune", slug="odense")
        staff("Otto", Role.COORDINATOR, elsewhere)
        session.flush()
        ids = (mads.id, karin.id, cora.id)
    clock = [NOW]
    conversations = Conversations(
        database=database, engine=Engine(CORE_DIALOGS), clock=lambda: clock[0]
    )
    worker = Worker(
        database=database,
        metrics=Metrics(),
        handlers=FollowUps(conversations).handlers(),
        clock=lambda: clock[0],
        worker_id="test-worker",
    )
    yield World(database, worker, conversations, clock, *ids)


# ------------------------------------------------------------------------- meeting reminders

REMINDER = "Hej Mads. Husk dit møde med Karin onsdag den 25. november kl. 13.00, Torvet 3."
COMING = "Kommer du? Svar 1 for ja, 2 hvis du ikke kan, eller 3 hvis du vil have en ny tid."


def test_reminders_go_out_24_hours_and_2_hours_before_a_meeting(world: World) -> None:
    meeting_id = world.meeting(local(2026, 11, 25, 13))
    assert world.items(plans.MEETING_REMINDER) == [
        Item(utc(2026, 11, 24, 12), PENDING, None),
        Item(utc(2026, 11, 25, 10), PENDING, None),
    ]
    assert world.sweep(utc(2026, 11, 24, 11, 59)) == 0
    assert world.sweep(utc(2026, 11, 24, 12)) == 1
    assert world.sent() == [REMINDER, COMING]
    assert world.say("1") == ["Super, tak! Vi ses."]
    assert world.sweep(utc(2026, 11, 25, 10)) == 1
    assert world.sent()[-2:] == [REMINDER, COMING]
    with world.database.session() as session:
        assert session.get_one(Meeting, meeting_id).status is MeetingStatus.CONFIRMED
    assert [i.status for i in world.items(plans.MEETING_REMINDER)] == [DONE, DONE]


def test_a_meeting_this_afternoon_gets_only_the_2_hour_reminder(world: World) -> None:
    world.meeting(NOW + timedelta(hours=5))
    assert world.items(plans.MEETING_REMINDER) == [Item(NOW + timedelta(hours=3), PENDING, None)]


def test_a_moved_meeting_is_reminded_of_its_new_time_only(world: World) -> None:
    meeting_id = world.meeting(local(2026, 11, 25, 13))
    world.clock[0] = NOW + timedelta(hours=1)
    world.move(meeting_id, local(2026, 11, 27, 10))
    assert world.items(plans.MEETING_REMINDER) == [
        Item(utc(2026, 11, 24, 12), CANCELLED, "meeting moved"),
        Item(utc(2026, 11, 25, 10), CANCELLED, "meeting moved"),
        Item(utc(2026, 11, 26, 9), PENDING, None),
        Item(utc(2026, 11, 27, 7), PENDING, None),
    ]
    assert world.sweep(utc(2026, 11, 25, 12)) == 0  # the old times pass in silence
    assert world.sweep(utc(2026, 11, 26, 9)) == 1
    assert world.sweep(utc(2026, 11, 27, 7)) == 1
    reminders = [text for text in world.sent() if text.startswith("Hej Mads. Husk")]
    assert (
        reminders
        == ["Hej Mads. Husk dit møde med Karin fredag den 27. november kl. 10.00, Torvet 3."] * 2
    )
    assert not any("onsdag" in text for text in world.sent())


def test_moving_a_meeting_back_brings_its_reminders_back(world: World) -> None:
    first = local(2026, 11, 25, 13)
    meeting_id = world.meeting(first)
    world.move(meeting_id, local(2026, 11, 27, 10))
    world.move(meeting_id, first)
    assert [(i.due_at, i.status) for i in world.items(plans.MEETING_REMINDER)] == [
        (utc(2026, 11, 24, 12), PENDING),
        (utc(2026, 11, 25, 10), PENDING),
        (utc(2026, 11, 26, 9), CANCELLED),
        (utc(2026, 11, 27, 7), CANCELLED),
    ]


def test_a_meeting_changed_behind_the_planner_expires_its_reminder(world: World) -> None:
    meeting_id = world.meeting(local(2026, 11, 25, 13))

    def move_by_hand(session: Session, meeting: Meeting) -> None:
        meeting.starts_at = local(2026, 11, 25, 15)

    world.on_meeting(meeting_id, move_by_hand)
    world.sweep(utc(2026, 11, 24, 12))
    assert world.items(plans.MEETING_REMINDER)[0] == Item(
        utc(2026, 11, 24, 12), EXPIRED, "meeting moved"
    )
    assert world.sent() == []


def test_a_cancelled_meeting_sends_no_reminder(world: World) -> None:
    meeting_id = world.meeting(local(2026, 11, 25, 13))
    world.on_meeting(
        meeting_id, lambda session, meeting: plans.cancel_meeting(session, meeting, now=NOW)
    )
    assert {i.outcome for i in world.items(plans.MEETING_REMINDER)} == {"meeting cancelled"}
    assert {i.status for i in world.items(plans.MEETING_REMINDER)} == {CANCELLED}
    assert world.sweep(utc(2026, 11, 25, 11)) == 0
    assert world.sent() == []


def test_a_declined_meeting_gets_no_second_reminder(world: World) -> None:
    world.meeting(local(2026, 11, 25, 13))
    world.sweep(utc(2026, 11, 24, 12))
    world.say("2")  # can't come: the answer cancels the other reminder at once
    world.sweep(utc(2026, 11, 25, 10))
    assert world.items(plans.MEETING_REMINDER)[1] == Item(
        utc(2026, 11, 25, 10), CANCELLED, "meeting declined"
    )
    assert sum(text.startswith("Hej Mads. Husk") for text in world.sent()) == 1


def test_reminders_of_a_meeting_that_passed_during_downtime_expire(world: World) -> None:
    world.meeting(local(2026, 11, 25, 13))
    assert world.sweep(utc(2026, 11, 25, 12, 5)) == 2  # the worker was down for two days
    assert [(i.status, i.outcome) for i in world.items(plans.MEETING_REMINDER)] == [
        (EXPIRED, "meeting has passed"),
        (EXPIRED, "meeting has passed"),
    ]
    assert world.sent() == []


@pytest.mark.parametrize(
    ("meeting_at", "due", "allowed"),
    [
        # The night the clocks go forward (02:00 → 03:00): 08:00 is 06:00 UTC on the Sunday.
        pytest.param(
            local(2026, 3, 29, 9, 30), utc(2026, 3, 28, 23, 30), utc(2026, 3, 29, 6), id="march"
        ),
        # The night they go back (03:00 → 02:00): 08:00 is 07:00 UTC on the Sunday.
        pytest.param(
            local(2026, 10, 25, 9, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 7), id="october"
        ),
    ],
)
def test_a_reminder_due_at_night_waits_until_8_local_across_daylight_saving(
    world: World, meeting_at: datetime, due: datetime, allowed: datetime
) -> None:
    def eight_hours_ahead(session: Session, person: YoungPerson) -> None:
        person.municipality.reminder_offsets_minutes = [8 * 60]

    world.change(eight_hours_ahead)
    world.clock[0] = meeting_at - timedelta(days=3)
    world.meeting(meeting_at)
    assert world.items(plans.MEETING_REMINDER) == [Item(due, PENDING, None)]
    assert world.sweep(due) == 1
    assert world.items(plans.MEETING_REMINDER) == [Item(allowed, PENDING, "quiet_hours")]
    assert world.sent() == []
    assert world.sweep(allowed - timedelta(minutes=1)) == 0
    assert world.sweep(allowed) == 1
    assert world.items(plans.MEETING_REMINDER)[0].status is DONE
    assert allowed.astimezone(ZONE).hour == 8
    with world.database.session() as session:
        assert session.scalars(sa.select(ScheduledItem.attempts)).one() == 1  # deferral is free
        conversation = session.scalars(sa.select(Conversation)).one()
        assert (conversation.dialog, conversation.step) == ("meeting_reminder", "coming")


# ------------------------------------------------------------------------- no-show


def test_a_no_show_gets_a_kind_follow_up_two_hours_later_but_not_at_night(world: World) -> None:
    meeting_id = world.meeting(local(2026, 11, 23, 19))  # 19:00–20:00
    world.clock[0] = utc(2026, 11, 23, 19, 30)  # marked at 20:30 local
    world.mark(meeting_id, MeetingStatus.NO_SHOW)
    assert world.items(plans.NO_SHOW_FOLLOW_UP) == [Item(utc(2026, 11, 23, 21, 30), PENDING, None)]
    assert world.sweep(utc(2026, 11, 23, 21, 30)) == 1  # 22:30 local: quiet
    assert world.items(plans.NO_SHOW_FOLLOW_UP) == [
        Item(utc(2026, 11, 24, 7), PENDING, "quiet_hours")
    ]
    world.sweep(utc(2026, 11, 24, 7))
    assert world.sent()[-2:] == [
        "Hej Mads. Vi savnede dig til mødet med Karin. Det sker for alle, og jeg håber, du har "
        "det okay.",
        "Skal vi finde en ny tid? Svar ja eller nej.",
    ]
    assert world.say("ja")[0].startswith("Hvornår passer det dig?")


def test_a_no_show_corrected_to_attended_sends_nothing(world: World) -> None:
    meeting_id = world.meeting(local(2026, 11, 23, 13))
    world.clock[0] = utc(2026, 11, 23, 13, 30)
    world.mark(meeting_id, MeetingStatus.NO_SHOW)
    world.mark(meeting_id, MeetingStatus.ATTENDED)
    assert world.items(plans.NO_SHOW_FOLLOW_UP) == [
        Item(utc(2026, 11, 23, 15, 30), CANCELLED, "meeting attended")
    ]


# ------------------------------------------------------------------------- sub-goals


def _sub_goal(world: World, due: date | None) -> int:
    def create(session: Session, person: YoungPerson) -> int:
        goal = plans.add_goal(session, person, title="Komme i gang med FGU", now=world.clock[0])
        step = plans.add_sub_goal(
            session, goal, title="Søge ind på FGU", due_date=due, now=world.clock[0]
        )
        return step.id

    return world.change(create)


CHECK_IN = (
    'Hej Mads. Hvordan går det med "Søge ind på FGU"? Svar 1 hvis det er klaret, 2 hvis du er i '
    "gang, eller 3 hvis du har brug for hjælp."
)


def test_sub_goal_check_ins_and_an_overdue_alert_for_the_kontaktperson(world: World) -> None:
    _sub_goal(world, date(2026, 11, 27))  # a Friday
    assert world.items(plans.SUB_GOAL_CHECK_IN) == [
        Item(utc(2026, 11, 24, 9), PENDING, None),  # 10:00 local, three days before
        Item(utc(2026, 11, 27, 9), PENDING, None),  # 10:00 local on the day
    ]
    assert world.items(plans.SUB_GOAL_OVERDUE) == [Item(utc(2026, 11, 27, 23), PENDING, None)]
    world.sweep(utc(2026, 11, 24, 9))
    assert world.sent() == [CHECK_IN]
    assert world.say("2") == ["Godt at høre. Jeg spørger igen om lidt tid."]
    world.sweep(utc(2026, 11, 27, 9))
    assert world.sent()[-1] == CHECK_IN
    world.sweep(utc(2026, 11, 27, 23))  # midnight: the due day is over, and it is not done
    assert world.alerts() == [(AlertKind.SUB_GOAL_OVERDUE, world.karin_id)]
    with world.database.session() as session:
        alert = session.scalars(sa.select(StaffAlert)).one()
        assert alert.details["title"] == "Søge ind på FGU"
        assert alert.young_person_id == world.mads_id
    world.sweep(utc(2026, 11, 28, 9))
    assert len(world.alerts()) == 1


def test_a_done_sub_goal_is_left_alone(world: World) -> None:
    step_id = _sub_goal(world, date(2026, 11, 27))
    world.sweep(utc(2026, 11, 24, 9))
    world.say("1")  # done, through the check-in itself: what is pending is cancelled at once
    world.sweep(utc(2026, 11, 28, 12))
    assert [(i.status, i.outcome) for i in world.items(plans.SUB_GOAL_CHECK_IN)] == [
        (DONE, "sub_goal_check_in: 1 sent"),
        (CANCELLED, "sub-goal done"),
    ]
    assert world.items(plans.SUB_GOAL_OVERDUE)[0].outcome == "sub-goal done"
    assert world.alerts() == []
    # Marked done by staff: what is pending is cancelled at once.
    other = _sub_goal(world, date(2026, 12, 4))
    with world.database.session() as session:
        plans.set_sub_goal_status(
            session, session.get_one(SubGoal, other), GoalStatus.DROPPED, now=world.clock[0]
        )
        statuses = session.scalars(
            sa.select(ScheduledItem.status).where(ScheduledItem.sub_goal_id == other)
        ).all()
        assert set(statuses) == {CANCELLED}
        assert session.get_one(SubGoal, step_id).status is GoalStatus.DONE


def test_a_new_due_date_replaces_the_check_ins(world: World) -> None:
    step_id = _sub_goal(world, date(2026, 11, 27))
    with world.database.session() as session:
        plans.set_sub_goal_due_date(
            session, session.get_one(SubGoal, step_id), date(2026, 12, 4), now=NOW
        )
    pending = [i.due_at for i in world.items(plans.SUB_GOAL_CHECK_IN) if i.status is PENDING]
    assert pending == [utc(2026, 12, 1, 9), utc(2026, 12, 4, 9)]
    assert world.items(plans.SUB_GOAL_OVERDUE)[-1] == Item(utc(2026, 12, 4, 23), PENDING, None)


# ------------------------------------------------------------------------- silence


NUDGE = (
    "Hej Mads, det er et stykke tid siden, vi har skrevet. Hvordan går det? Skriv 'ikke nu', "
    "hvis du vil have ro lidt."
)


def test_silence_brings_nudges_after_3_7_and_14_days_then_a_person(world: World) -> None:
    world.say("hej")
    assert [i.due_at for i in world.items(plans.SILENCE_NUDGE)] == [
        NOW + timedelta(days=3),
        NOW + timedelta(days=7),
        NOW + timedelta(days=14),
    ]
    # After the last nudge, the first interval again, then a person takes over.
    assert world.items(plans.SILENCE_GIVE_UP) == [Item(NOW + timedelta(days=17), PENDING, None)]
    for days in (3, 7, 14):
        assert world.sweep(NOW + timedelta(days=days)) == 1
        assert world.sent()[-1] == NUDGE
    assert world.sweep(NOW + timedelta(days=17)) == 1
    with world.database.session() as session:
        handoff = session.scalars(sa.select(Handoff)).one()
        assert (handoff.reason, handoff.assignee_id) == (HandoffReason.CANNOT_REACH, world.karin_id)
        assert handoff.note is not None
        assert "23.11.2026" in handoff.note
    assert sum(text == NUDGE for text in world.sent()) == 3
    assert world.sweep(NOW + timedelta(days=60)) == 0  # and the bot stops nudging


def test_a_reply_starts_the_silence_chain_again(world: World) -> None:
    world.say("hej")
    world.sweep(NOW + timedelta(days=3))
    world.clock[0] = NOW + timedelta(days=4)
    world.say("det går fint")
    day = timedelta(days=1)
    assert [(i.due_at, i.status) for i in world.items(plans.SILENCE_NUDGE)] == [
        (NOW + 3 * day, DONE),
        (NOW + 7 * day, CANCELLED),  # counted from the first reply
        (NOW + 7 * day, PENDING),  # counted from the second
        (NOW + 11 * day, PENDING),
        (NOW + 14 * day, CANCELLED),
        (NOW + 18 * day, PENDING),
    ]
    assert world.items(plans.SILENCE_NUDGE)[1].outcome == "young person replied"
    assert world.items(plans.SILENCE_GIVE_UP)[0].status is CANCELLED
    assert world.sweep(NOW + timedelta(days=7)) == 1
    assert sum(text == NUDGE for text in world.sent()) == 2


def test_nudges_stop_while_a_human_holds_the_conversation(world: World) -> None:
    world.say("tal med en voksen")
    world.sweep(NOW + timedelta(days=3))
    assert world.items(plans.SILENCE_NUDGE)[0] == Item(
        NOW + timedelta(days=3), EXPIRED, "a human holds the conversation"
    )
    with world.database.session() as session:
        assert session.scalars(sa.select(Conversation.holder)).one() is Holder.WAITING_FOR_HUMAN


def test_a_reply_the_hook_did_not_see_still_ends_the_old_chain(world: World) -> None:
    world.say("hej")

    def wrote_later(session: Session, person: YoungPerson) -> None:
        person.last_inbound_at = NOW + timedelta(days=1)  # e.g. a picture alone

    world.change(wrote_later)
    world.sweep(NOW + timedelta(days=3))
    first = world.items(plans.SILENCE_NUDGE)[0]
    assert first.outcome == "young person replied since; counting from 2026-11-24T09:00:00+00:00"
    assert NUDGE not in world.sent()
    assert world.sweep(NOW + timedelta(days=4)) == 1
    assert world.sent()[-1] == NUDGE


def test_only_active_young_people_are_nudged(world: World) -> None:
    def invited(session: Session, person: YoungPerson) -> None:
        person.status = YoungPersonStatus.INVITED

    world.change(invited)
    world.say("hvem er du?")
    assert world.items(plans.SILENCE_NUDGE) == []


# ------------------------------------------------------------------------- KUI


def _drop_out(world: World, at: datetime) -> int:
    world.clock[0] = at

    def drop(session: Session, person: YoungPerson) -> int:
        case = plans.set_occupation(session, person, Occupation.NONE, now=at)
        assert case is not None
        return case.id

    return world.change(drop)


@pytest.mark.parametrize(
    ("dropped_out", "contact_due", "contact_soon", "offer_due", "offer_soon"),
    [
        # Tuesday before Easter: Maundy Thursday, Good Friday and Easter Monday do not count.
        pytest.param(
            local(2026, 3, 31, 10),
            local(2026, 4, 11, 0),
            local(2026, 4, 9, 9),
            local(2026, 5, 1, 0),
            local(2026, 4, 24, 9),  # the 25th is a Saturday
            id="easter",
        ),
        # Monday before Christmas: Christmas Day and the weekend do not count.
        pytest.param(
            local(2026, 12, 21, 10),
            local(2026, 12, 30, 0),
            local(2026, 12, 28, 9),
            local(2027, 1, 21, 0),
            local(2027, 1, 15, 9),
            id="christmas",
        ),
    ],
)
def test_kui_deadlines_skip_weekends_and_public_holidays(
    world: World,
    dropped_out: datetime,
    contact_due: datetime,
    contact_soon: datetime,
    offer_due: datetime,
    offer_soon: datetime,
) -> None:
    case_id = _drop_out(world, dropped_out)
    with world.database.session() as session:
        case = session.get_one(KuiCase, case_id)
        assert (case.contact_due_at, case.offer_due_at) == (contact_due, offer_due)
        assert case.dropped_out_at == dropped_out
    assert world.items(plans.KUI_CONTACT_DUE) == [Item(contact_soon, PENDING, None)]
    assert world.items(plans.KUI_CONTACT_MISSED) == [Item(contact_due, PENDING, None)]
    assert world.items(plans.KUI_OFFER_DUE) == [Item(offer_soon, PENDING, None)]
    assert world.items(plans.KUI_OFFER_MISSED) == [Item(offer_due, PENDING, None)]


def test_kui_alerts_go_to_the_kontaktperson_and_every_active_coordinator(world: World) -> None:
    _drop_out(world, local(2026, 3, 31, 10))
    both = [world.karin_id, world.cora_id]
    world.sweep(local(2026, 4, 9, 9))
    assert world.alerts() == [(AlertKind.KUI_CONTACT_DUE, staff) for staff in both]
    world.sweep(local(2026, 4, 11, 0))
    assert world.alerts()[2:] == [(AlertKind.KUI_CONTACT_MISSED, staff) for staff in both]
    world.sweep(local(2026, 4, 24, 9))
    assert world.alerts()[4:] == [(AlertKind.KUI_OFFER_DUE, staff) for staff in both]
    with world.database.session() as session:
        due = session.scalars(sa.select(StaffAlert.due_at).order_by(StaffAlert.id)).all()
        assert due[-1] == local(2026, 5, 1, 0)
    # A new goal in the plan is the offer: no "missed" alert.
    world.clock[0] = local(2026, 4, 27, 11)
    world.change(
        lambda session, person: plans.add_goal(session, person, title="FGU", now=world.clock[0])
    )
    assert world.sweep(local(2026, 5, 1, 0)) == 0
    assert world.items(plans.KUI_OFFER_MISSED)[0].outcome == "offer made"
    assert len(world.alerts()) == 6


@pytest.mark.parametrize("how", ["staff_message", "attended_meeting", "recorded"])
def test_kui_contact_made_means_no_contact_alert(world: World, how: str) -> None:
    case_id = _drop_out(world, local(2026, 3, 31, 10))
    contact_at = local(2026, 4, 1, 13)
    world.clock[0] = contact_at

    def contact(session: Session, person: YoungPerson) -> None:
        if how == "staff_message":
            outbox.enqueue(
                session,
                channel=Channel.SIMULATOR,
                text="Hej Mads, det er Karin. Hvordan går det?",
                purpose=Purpose.STAFF,
                now=contact_at,
                young_person_id=person.id,
                author=Author.STAFF,
                staff_id=person.kontaktperson_id,
            )
        elif how == "attended_meeting":
            meeting = plans.create_meeting(session, person, starts_at=contact_at, now=contact_at)
            plans.mark_meeting(session, meeting, MeetingStatus.ATTENDED, now=contact_at)
        else:
            plans.record_kui_contact(session, person, now=contact_at)

    world.change(contact)
    world.sweep(local(2026, 4, 9, 9))
    world.sweep(local(2026, 4, 11, 0))
    assert world.alerts() == []
    with world.database.session() as session:
        assert session.get_one(KuiCase, case_id).contacted_at == contact_at
    statuses = [i.status for i in world.items(plans.KUI_CONTACT_DUE)]
    statuses += [i.status for i in world.items(plans.KUI_CONTACT_MISSED)]
    if how == "recorded":
        assert statuses == [CANCELLED, CANCELLED]
    else:
        # Found when the warning fires; the "missed" item is withdrawn with it.
        assert statuses == [DONE, CANCELLED]


def test_kui_case_closes_when_back_in_education_and_needs_the_age(world: World) -> None:
    case_id = _drop_out(world, local(2026, 3, 31, 10))
    world.change(
        lambda session, person: plans.set_occupation(
            session, person, Occupation.ACTIVITY, now=local(2026, 4, 2, 10)
        )
    )
    with world.database.session() as session:
        assert session.get_one(KuiCase, case_id).closed_at == local(2026, 4, 2, 10)
    outcomes = {i.outcome for kind in plans.KUI_KINDS for i in world.items(kind)}
    assert outcomes == {"back in activity"}
    assert world.sweep(local(2026, 5, 2, 10)) == 0
    assert world.alerts() == []

    def eighteen(session: Session, person: YoungPerson) -> KuiCase | None:
        person.birth_date = date(2008, 3, 1)
        return plans.set_occupation(session, person, Occupation.NONE, now=local(2026, 4, 3, 10))

    assert world.change(eighteen) is None


# ------------------------------------------------------------------------- downtime


def test_after_downtime_every_overdue_item_fires_exactly_once(world: World) -> None:
    start = utc(2026, 11, 20, 9)  # a Friday; the worker goes down after this
    world.clock[0] = start
    with world.database.session() as session:
        mads = session.get_one(YoungPerson, world.mads_id)
        sara = _young_person(mads.municipality, session.get_one(StaffUser, world.karin_id), "Sara")
        jonas = _young_person(
            mads.municipality, session.get_one(StaffUser, world.karin_id), "Jonas"
        )
        session.add_all([sara, jonas])
        session.flush()
        sara_id, jonas_id = sara.id, jonas.id
    world.meeting(local(2026, 11, 25, 13))
    _sub_goal_for(world, sara_id, date(2026, 11, 25))
    world.say("hej", person_id=jonas_id)
    world.sweep(utc(2026, 11, 25, 11))  # back up on Wednesday
    assert [i.outcome for i in world.items(plans.MEETING_REMINDER)] == [
        "a closer reminder is due",
        "meeting_reminder: 2 sent",
    ]
    assert [i.outcome for i in world.items(plans.SUB_GOAL_CHECK_IN)] == [
        "a later check-in is due",
        "sub_goal_check_in: 1 sent",
    ]
    first_nudge = world.items(plans.SILENCE_NUDGE)[0]
    assert (first_nudge.status, first_nudge.outcome) == (
        DONE,
        "nudge 1 of 3: silence_follow_up: 1 sent",
    )
    assert world.sent() == [REMINDER, COMING]
    assert len(world.sent(sara_id)) == 1
    assert world.sent(jonas_id)[-1] == NUDGE.replace("Mads", "Jonas")
    assert world.sweep() == 0  # nothing runs twice
    with world.database.session() as session:
        pending = session.scalars(
            sa.select(ScheduledItem.kind).where(
                ScheduledItem.status.in_([PENDING, ScheduledStatus.CLAIMED]),
                ScheduledItem.due_at <= world.clock[0],
            )
        ).all()
        assert pending == []


def _sub_goal_for(world: World, person_id: int, due: date) -> None:
    def create(session: Session, person: YoungPerson) -> None:
        goal = Goal(young_person_id=person.id, title="Mål", created_at=world.clock[0])
        session.add(goal)
        session.flush()
        plans.add_sub_goal(session, goal, title="Søge ind", due_date=due, now=world.clock[0])

    world.change(create, person_id)


def test_every_kind_scheduled_here_has_a_handler() -> None:
    conversations = Conversations(database=Database("sqlite://"), engine=Engine(CORE_DIALOGS))
    kinds = {
        plans.MEETING_REMINDER,
        plans.NO_SHOW_FOLLOW_UP,
        *plans.SUB_GOAL_KINDS,
        *plans.SILENCE_KINDS,
        *plans.KUI_KINDS,
    }
    assert set(FollowUps(conversations).handlers()) == kinds
    assert all(len(kind) <= 40 for kind in kinds)  # the column's width


# ------------------------------------------------------------------------- bursts


def test_a_burst_of_reminders_runs_in_batches_with_each_ones_own_verdict(world: World) -> None:
    names = [f"Ung{number:02d}" for number in range(40)]
    with world.database.session() as session:
        mads = session.get_one(YoungPerson, world.mads_id)
        karin = session.get_one(StaffUser, world.karin_id)
        people = [_young_person(mads.municipality, karin, name) for name in names]
        session.add_all(people)
        session.flush()
        ids = {person.first_name: person.id for person in people}
    for name in names:
        world.meeting(local(2026, 11, 25, 13), person_id=ids[name])
    world.meeting(local(2026, 11, 25, 14), person_id=ids["Ung01"])  # a second meeting, same day
    with world.database.session() as session:
        session.get_one(YoungPerson, ids["Ung02"]).status = YoungPersonStatus.OPTED_OUT
        session.add(Conversation(young_person_id=ids["Ung03"], holder=Holder.HUMAN))
        moved = session.scalars(
            sa.select(Meeting).where(Meeting.young_person_id == ids["Ung04"])
        ).one()
        moved.starts_at = local(2026, 11, 26, 9)  # behind the planner's back
    statements = [0]

    def count(*_: object) -> None:
        statements[0] += 1

    sa.event.listen(world.database.engine, "before_cursor_execute", count)
    try:
        assert world.sweep(utc(2026, 11, 24, 13, 30)) == 41  # both of Ung01's are due
    finally:
        sa.event.remove(world.database.engine, "before_cursor_execute", count)
    with world.database.session() as session:
        rows = session.execute(
            sa.select(Meeting.young_person_id, ScheduledItem.outcome)
            .join(Meeting, Meeting.id == ScheduledItem.meeting_id)
            .where(ScheduledItem.status.in_([DONE, EXPIRED]))
            .order_by(ScheduledItem.due_at, ScheduledItem.id)
        ).all()
    outcomes = {name: [o for p, o in rows if p == ids[name]] for name in names}
    assert outcomes["Ung01"] == ["meeting_reminder: 2 sent", "meeting_reminder: 2 sent"]
    assert outcomes["Ung02"] == ["young person opted_out"]
    assert outcomes["Ung03"] == ["a human holds the conversation"]
    assert outcomes["Ung04"] == ["meeting moved"]
    sent = {name: world.sent(ids[name]) for name in names}
    for name in [*names[5:], "Ung00"]:
        assert outcomes[name] == ["meeting_reminder: 2 sent"]
        assert sent[name] == [REMINDER.replace("Mads", name), COMING]  # each their own
    assert sent["Ung01"] == [
        REMINDER.replace("Mads", "Ung01"),
        COMING,
        REMINDER.replace("Mads", "Ung01").replace("13.00", "14.00"),
        COMING,
    ]
    assert sent["Ung02"] == sent["Ung03"] == sent["Ung04"] == []
    # One by one a reminder took 23 statements; together they share the reads and writes.
    limit = 1.5 if world.database.dialect == "postgresql" else 3.5
    assert statements[0] / 41 < limit, statements[0]
