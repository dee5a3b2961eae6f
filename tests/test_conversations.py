"""Conversation turns against a real database: state, effects and the outbox in one transaction."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm.exc import StaleDataError

from bot.channels.simulator import SimulatorChannel
from bot.conversations import DIALOG_TIMEOUT, Conversations, Start, UnknownYoungPerson
from bot.metrics import Metrics
from bot.outbox import Dispatcher
from bot.worker import Worker
from dialogs.engine import Engine
from dialogs.flows import CORE_DIALOGS
from dialogs.types import (
    Channel,
    ConsentKind,
    DeliveryStatus,
    Direction,
    DreamCategory,
    GoalStatus,
    HandoffPriority,
    HandoffReason,
    Holder,
    MeetingStatus,
    OutboxStatus,
    Purpose,
    ScheduledStatus,
    YoungPersonStatus,
)
from storage import conversations as repo
from storage.db import Database
from storage.models import (
    ConsentEvent,
    Conversation,
    Dream,
    Goal,
    Handoff,
    Meeting,
    Message,
    OutboxEntry,
    ScheduledItem,
    StaffUser,
    SubGoal,
    YoungPerson,
)
from tests.people import add_mads, kontaktperson

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 10:00 in Copenhagen, a Monday


@dataclass
class World:
    database: Database
    conversations: Conversations
    dispatcher: Dispatcher
    person_id: int
    karin_id: int
    ali_id: int
    clock: list[datetime]

    def say(self, text: str, person_id: int | None = None) -> list[str]:
        sent = self.conversations.receive(
            young_person_id=person_id or self.person_id, channel=Channel.SIMULATOR, text=text
        )
        return [s.text for s in sent]

    def count(self, model: type) -> int:
        with self.database.session() as session:
            return int(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


@pytest.fixture
def world(database: Database) -> Iterator[World]:
    with database.session() as session:
        person = add_mads(session, phone="+4520123456", preferred_channel=Channel.SIMULATOR)
        karin = person.kontaktperson
        assert karin is not None
        ali = kontaktperson(person.municipality, "Ali Mentor", backup=karin)
        session.add(ali)
        session.flush()
        ids = (person.id, karin.id, ali.id)
    clock = [NOW]
    conversations = Conversations(
        database=database, engine=Engine(CORE_DIALOGS), clock=lambda: clock[0]
    )
    dispatcher = Dispatcher(
        database=database,
        adapters={Channel.SIMULATOR: SimulatorChannel()},
        clock=lambda: clock[0],
    )
    yield World(database, conversations, dispatcher, *ids, clock)
    dispatcher.close()


def test_a_turn_stores_inbound_replies_and_outbox_in_one_go(world: World) -> None:
    replies = world.say("hej, mit cpr er 010203-1234")
    assert replies == [
        "Jeg er en bot, så jeg forstår ikke alt. Skriv HJÆLP for at se, hvad jeg kan, eller "
        "skriv 'tal med en voksen'."
    ]
    with world.database.session() as session:
        messages = session.scalars(sa.select(Message).order_by(Message.id)).all()
        assert [(m.direction, m.text, m.status) for m in messages] == [
            (Direction.INBOUND, "hej, mit cpr er XXXXXX-XXXX", DeliveryStatus.RECEIVED),
            (Direction.OUTBOUND, replies[0], DeliveryStatus.QUEUED),
        ]
        outbound = messages[1:]
        entries = session.scalars(sa.select(OutboxEntry)).all()
        assert [(e.message_id, e.status, e.purpose) for e in entries] == [
            (m.id, OutboxStatus.PENDING, Purpose.REPLY) for m in outbound
        ]
        person = session.get_one(YoungPerson, world.person_id)
        assert person.last_inbound_at == NOW


def test_the_dialog_state_survives_between_turns(world: World) -> None:
    world.conversations.start(young_person_id=world.person_id, dialog="dreams", variables={})
    assert world.say("kok på en restaurant") == ["Hvad er du god til?"]
    with world.database.session() as session:
        conversation = session.scalars(sa.select(Conversation)).one()
        assert (conversation.dialog, conversation.step) == ("dreams", "strengths")
        assert conversation.variables == {"dream": "kok på en restaurant"}
    world.say("at lave mad")
    world.say("en praktikplads")
    with world.database.session() as session:
        dreams = session.scalars(sa.select(Dream).order_by(Dream.id)).all()
        assert [(d.text, d.category) for d in dreams] == [
            ("kok på en restaurant", DreamCategory.JOB),
            ("at lave mad", DreamCategory.OTHER),
            ("en praktikplads", DreamCategory.JOB),
        ]
        assert all(d.message_id is not None for d in dreams)


def test_welcome_consent_makes_an_invited_person_active(world: World) -> None:
    sent = world.conversations.start(
        young_person_id=world.person_id, dialog="welcome", variables={}
    )
    assert [s.purpose for s in sent] == [Purpose.PROACTIVE, Purpose.PROACTIVE]
    with world.database.session() as session:
        timeout = session.scalars(sa.select(ScheduledItem)).one()
        assert (timeout.kind, timeout.payload) == (
            DIALOG_TIMEOUT,
            {"dialog": "welcome", "step": "permission"},
        )
        assert timeout.due_at == NOW + timedelta(days=3)
    world.say("ja")
    with world.database.session() as session:
        person = session.get_one(YoungPerson, world.person_id)
        assert person.status is YoungPersonStatus.ACTIVE
        kinds = session.scalars(sa.select(ConsentEvent.kind)).all()
        assert kinds == [ConsentKind.CONSENT_GIVEN]
        # The answered question's timeout is withdrawn.
        timeouts = sa.select(ScheduledItem.status).where(ScheduledItem.kind == DIALOG_TIMEOUT)
        assert session.scalars(timeouts).all() == [ScheduledStatus.CANCELLED]
        # Now that he is active, the follow-up after silence counts from this reply.
        nudges = sa.select(ScheduledItem.due_at).where(ScheduledItem.kind != DIALOG_TIMEOUT)
        assert min(session.scalars(nudges).all()) == NOW + timedelta(days=3)


def test_a_dialog_timeout_runs_through_the_worker(world: World) -> None:
    world.conversations.start(young_person_id=world.person_id, dialog="welcome", variables={})
    world.clock[0] = NOW + timedelta(days=3, minutes=1)
    worker = Worker(
        database=world.database,
        metrics=Metrics(),
        handlers={DIALOG_TIMEOUT: world.conversations.handle_timeout_item},
        clock=lambda: world.clock[0],
    )
    assert worker.sweep() == 1
    with world.database.session() as session:
        conversation = session.scalars(sa.select(Conversation)).one()
        assert conversation.dialog is None
        item = session.scalars(sa.select(ScheduledItem)).one()
        assert (item.status, item.outcome) == (ScheduledStatus.DONE, "0 sent")


def _meeting(world: World) -> int:
    with world.database.session() as session:
        meeting = Meeting(
            young_person_id=world.person_id,
            starts_at=NOW + timedelta(days=2),
            place="Torvet 3",
            with_whom="Karin",
        )
        session.add(meeting)
        session.flush()
        return meeting.id


def _remind_of_a_meeting(world: World) -> int:
    """A meeting in two days, and its reminder started; returns the meeting's id."""
    meeting_id = _meeting(world)
    world.conversations.start(
        young_person_id=world.person_id,
        dialog="meeting_reminder",
        variables={
            "meeting_id": meeting_id,
            "meeting_at": (NOW + timedelta(days=2)).isoformat(),
            "place": "Torvet 3",
            "with_whom": "Karin",
        },
    )
    return meeting_id


def test_meeting_reminder_answers_change_the_meeting(world: World) -> None:
    meeting_id = _remind_of_a_meeting(world)
    assert world.say("1") == ["Super, tak! Vi ses."]
    with world.database.session() as session:
        assert session.get_one(Meeting, meeting_id).status is MeetingStatus.CONFIRMED


def test_new_time_hands_off_with_the_proposal_as_a_note(world: World) -> None:
    meeting_id = _remind_of_a_meeting(world)
    world.say("3")
    world.say("fredag kl 10")
    with world.database.session() as session:
        assert session.get_one(Meeting, meeting_id).status is MeetingStatus.NEW_TIME_WANTED
        handoff = session.scalars(sa.select(Handoff)).one()
        assert (handoff.reason, handoff.assignee_id) == (
            HandoffReason.DECLINED_MEETING,
            world.karin_id,
        )
        assert handoff.note == "2026-11-27T10:00:00+01:00"
        assert session.scalars(sa.select(Conversation.holder)).one() is Holder.WAITING_FOR_HUMAN


def test_sub_goal_of_someone_else_is_never_touched(world: World) -> None:
    with world.database.session() as session:
        other = YoungPerson(
            municipality_id=session.get_one(YoungPerson, world.person_id).municipality_id,
            first_name="Sara",
            birth_date=date(2008, 1, 1),
        )
        session.add(other)
        session.flush()
        theirs = Goal(
            young_person_id=other.id, title="Hendes mål", sub_goals=[SubGoal(title="Hendes delmål")]
        )
        mine = Goal(
            young_person_id=world.person_id,
            title="Mit mål",
            sub_goals=[SubGoal(title="Mit delmål")],
        )
        session.add_all([theirs, mine])
        session.flush()
        their_step, my_step = theirs.sub_goals[0].id, mine.sub_goals[0].id
    # A forged variable pointing at another person's sub-goal changes nothing.
    world.conversations.start(
        young_person_id=world.person_id,
        dialog="sub_goal_check_in",
        variables={"sub_goal_id": their_step, "title": "x"},
    )
    world.say("1")
    world.conversations.start(
        young_person_id=world.person_id,
        dialog="sub_goal_check_in",
        variables={"sub_goal_id": my_step, "title": "Mit delmål"},
    )
    world.say("1")
    with world.database.session() as session:
        assert session.get_one(SubGoal, their_step).status is GoalStatus.PLANNED
        assert session.get_one(SubGoal, my_step).status is GoalStatus.DONE
        assert session.get_one(SubGoal, my_step).completed_at == NOW


def test_handoff_goes_to_the_backup_while_the_kontaktperson_is_away(world: World) -> None:
    with world.database.session() as session:
        person = session.get_one(YoungPerson, world.person_id)
        person.kontaktperson_id = world.ali_id
        ali = session.get_one(StaffUser, world.ali_id)
        ali.absent_from = NOW - timedelta(days=1)
    replies = world.say("tal med en voksen")
    assert replies == [
        "Jeg har givet Ali besked. Du får svar i dag inden kl. 15.00. Indtil da holder jeg mig "
        "i baggrunden."
    ]
    with world.database.session() as session:
        handoff = session.scalars(sa.select(Handoff)).one()
        assert handoff.assignee_id == world.karin_id


def test_crisis_makes_an_open_handoff_urgent(world: World) -> None:
    world.say("tal med en voksen")
    replies = world.say("jeg vil ikke leve mere")
    assert replies[0].startswith("Det lyder rigtig hårdt")
    with world.database.session() as session:
        handoff = session.scalars(sa.select(Handoff)).one()
        assert (handoff.priority, handoff.reason) == (HandoffPriority.URGENT, HandoffReason.CRISIS)
        entry = session.scalars(
            sa.select(OutboxEntry).where(OutboxEntry.purpose == Purpose.CRISIS)
        ).one()
        assert entry.not_before == NOW


def test_crisis_while_a_human_holds_is_answered_and_escalated(world: World) -> None:
    world.say("tal med en voksen")
    with world.database.session() as session:
        session.scalars(sa.select(Conversation)).one().holder = Holder.HUMAN
    assert world.say("hvornår skriver du?") == []
    replies = world.say("min kæreste slår mig")
    assert len(replies) == 1 and "Livslinien: 70 201 201" in replies[0]
    with world.database.session() as session:
        assert session.scalars(sa.select(Handoff.priority)).one() is HandoffPriority.URGENT
        assert session.scalars(sa.select(Conversation.holder)).one() is Holder.HUMAN


def test_stop_withdraws_everything_pending_and_nothing_else_goes_out(world: World) -> None:
    world.conversations.start(young_person_id=world.person_id, dialog="welcome", variables={})
    assert world.say("STOP")[0].startswith("Du er nu afmeldt")
    with world.database.session() as session:
        person = session.get_one(YoungPerson, world.person_id)
        assert (person.status, person.status_reason) == (YoungPersonStatus.OPTED_OUT, "opted out")
        statuses = session.execute(
            sa.select(OutboxEntry.purpose, OutboxEntry.status).order_by(OutboxEntry.id)
        ).all()
        assert statuses == [
            (Purpose.PROACTIVE, OutboxStatus.CANCELLED),
            (Purpose.PROACTIVE, OutboxStatus.CANCELLED),
            (Purpose.OPT_OUT, OutboxStatus.PENDING),
        ]
        assert session.scalars(sa.select(ScheduledItem.status)).all() == [ScheduledStatus.CANCELLED]
    assert (
        world.conversations.start(young_person_id=world.person_id, dialog="dreams", variables={})
        == []
    )
    assert world.dispatcher.dispatch_due() == 1
    with world.database.session() as session:
        delivered = session.scalars(
            sa.select(Message.text).where(Message.status == DeliveryStatus.DELIVERED)
        ).all()
        assert [(text or "")[:17] for text in delivered] == ["Du er nu afmeldt "]


def test_a_message_queued_before_an_opt_out_is_withheld_at_dispatch(world: World) -> None:
    world.conversations.start(young_person_id=world.person_id, dialog="dreams", variables={})
    with world.database.session() as session:
        session.get_one(YoungPerson, world.person_id).status = YoungPersonStatus.OPTED_OUT
    world.dispatcher.dispatch_due()
    with world.database.session() as session:
        entry = session.scalars(sa.select(OutboxEntry)).one()
        assert (entry.status, entry.last_error) == (OutboxStatus.CANCELLED, "opted_out")


def test_dispatch_delivers_simulator_messages(world: World) -> None:
    world.say("hej")
    assert world.dispatcher.dispatch_due() == 1
    with world.database.session() as session:
        message = session.scalars(
            sa.select(Message).where(Message.direction == Direction.OUTBOUND)
        ).one()
        assert (message.status, message.provider_id) == (
            DeliveryStatus.DELIVERED,
            f"sim-{message.id}",
        )
        assert session.scalars(sa.select(OutboxEntry.status)).one() is OutboxStatus.SENT


def test_concurrent_messages_of_one_conversation_are_processed_one_at_a_time(
    world: World,
) -> None:
    world.conversations.start(young_person_id=world.person_id, dialog="dreams", variables={})
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def send(text: str) -> None:
        try:
            barrier.wait()
            world.say(text)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=send, args=(t,)) for t in ("svar et", "svar to")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with world.database.session() as session:
        conversation = session.scalars(sa.select(Conversation)).one()
        # Both answers were taken in turn: one as the dream, one as the strengths.
        assert conversation.step == "needs"
        texts = sorted(session.scalars(sa.select(Dream.text)).all())
        assert texts == ["svar et", "svar to"]


def test_many_dialogs_start_in_one_go_each_turn_as_if_alone(world: World) -> None:
    first = world.conversations.start_many(
        [
            Start(world.person_id, "dreams"),
            Start(world.person_id, "silence_follow_up"),  # the same young person: after the first
        ]
    )
    with world.database.session() as session:
        outgoing = session.scalars(
            sa.select(Message.text)
            .where(Message.direction == Direction.OUTBOUND)
            .order_by(Message.id)
        ).all()
        conversation = session.scalars(sa.select(Conversation)).one()
        assert conversation.dialog == "silence_follow_up"
        assert session.scalar(sa.select(sa.func.count()).select_from(OutboxEntry)) == len(outgoing)
    assert [sent.text for turn in first for sent in turn] == outgoing
    assert [sent.message_id for turn in first for sent in turn] == sorted(
        sent.message_id for turn in first for sent in turn
    )


def test_an_unknown_young_person_in_a_batch_writes_nothing_at_all(world: World) -> None:
    with pytest.raises(UnknownYoungPerson):
        world.conversations.start_many(
            [Start(world.person_id, "dreams"), Start(world.person_id + 999, "dreams")]
        )
    assert world.count(Message) == world.count(Conversation) == world.count(OutboxEntry) == 0


def test_conversations_written_together_are_still_guarded_by_their_versions(
    world: World,
) -> None:
    with world.database.session() as session:
        mads = session.get_one(YoungPerson, world.person_id)
        ali = YoungPerson(
            municipality=mads.municipality, first_name="Ali", birth_date=date(2008, 1, 2)
        )
        session.add(ali)
        session.flush()
        ids = [world.person_id, ali.id]
        repo.lock_many(session, ids)  # creates both conversations
    with pytest.raises(StaleDataError), world.database.session() as session:
        # Read without the row lock (PostgreSQL's lock would make the other writer wait; SQLite
        # has none, and the version is what catches it there).
        read = session.scalars(sa.select(Conversation).order_by(Conversation.id)).all()
        for conversation in read:
            conversation.dialog = "dreams"
        with world.database.session() as other:  # another process moves one on meanwhile
            other.execute(
                sa.update(Conversation)
                .where(Conversation.young_person_id == ali.id)
                .values(version=Conversation.version + 1)
            )
        repo.save_many(session, read, NOW)
    with world.database.session() as session:
        assert session.scalars(sa.select(Conversation.dialog)).all() == [None, None]
