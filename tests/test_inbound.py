"""Processing stored inbound events, status callbacks and provider error codes."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bot.conversations import Conversations
from bot.inbound import Inbound, apply_twilio_status
from bot.lexicons import all_lexicons
from bot.sms_errors import explain
from dialogs.engine import Engine
from dialogs.flows import CORE_DIALOGS
from dialogs.types import Author, Channel, DeliveryStatus, Direction, InboundStatus, Purpose
from storage.db import Database
from storage.models import InboundEvent, Message, Municipality, OutboxEntry, YoungPerson

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _inbound(database: Database, clock: list[datetime] | None = None) -> Inbound:
    moment = clock or [NOW]
    conversations = Conversations(
        database=database, engine=Engine(CORE_DIALOGS), clock=lambda: moment[0]
    )
    return Inbound(
        database=database,
        conversations=conversations,
        lexicons=all_lexicons,
        clock=lambda: moment[0],
    )


def _person(database: Database, **fields: object) -> int:
    with database.session() as session:
        person = YoungPerson(
            municipality=Municipality(name="Aarhus", slug="aarhus"),
            first_name="Mads",
            birth_date=date(2009, 1, 1),
            **fields,
        )
        session.add(person)
        session.flush()
        return person.id


def _sms_on_its_way(database: Database, sid: str) -> None:
    """An SMS to a young person that Twilio has taken as ``sid`` and not reported on yet."""
    person_id = _person(database, phone="+4520123456")
    with database.session() as session:
        session.add(
            Message(
                young_person_id=person_id,
                direction=Direction.OUTBOUND,
                channel=Channel.SMS,
                author=Author.BOT,
                text="hej",
                provider_id=sid,
                status=DeliveryStatus.SENDING,
            )
        )


def test_status_callbacks_never_step_back(database: Database) -> None:
    _sms_on_its_way(database, "SM1")
    inbound = _inbound(database)
    assert apply_twilio_status(inbound, {"MessageSid": "SM1", "MessageStatus": "delivered"})
    assert apply_twilio_status(inbound, {"MessageSid": "SM1", "MessageStatus": "sent"})
    assert not apply_twilio_status(inbound, {"MessageSid": "SM9", "MessageStatus": "sent"})
    with database.session() as session:
        message = session.scalars(sa.select(Message)).one()
        assert message.status is DeliveryStatus.DELIVERED
        assert message.delivered_at == NOW and message.sent_at == NOW


def test_a_later_status_applied_meanwhile_is_never_stepped_back(database: Database) -> None:
    """The "sent" callback has read the message when "delivered" is applied from another
    connection, before "sent" writes. SQLite takes no row lock, so a status judged on the row
    as it was read would step back to "sent"."""
    _sms_on_its_way(database, "SM1")
    inbound = _inbound(database)
    meanwhile: list[bool] = []

    def deliver() -> None:
        meanwhile.append(
            apply_twilio_status(inbound, {"MessageSid": "SM1", "MessageStatus": "delivered"})
        )

    def after_the_read(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if meanwhile or not statement.lstrip().upper().startswith("SELECT"):
            return
        if "provider_id" not in statement:
            return
        meanwhile.append(True)
        other = threading.Thread(target=deliver)
        other.start()
        other.join(timeout=15)

    sa.event.listen(database.engine, "after_cursor_execute", after_the_read)
    try:
        assert apply_twilio_status(inbound, {"MessageSid": "SM1", "MessageStatus": "sent"})
    finally:
        sa.event.remove(database.engine, "after_cursor_execute", after_the_read)
    assert meanwhile == [True, True]  # "delivered" was applied while "sent" was under way
    with database.session() as session:
        message = session.scalars(sa.select(Message)).one()
        assert message.status is DeliveryStatus.DELIVERED
        assert message.delivered_at == NOW and message.sent_at == NOW


def test_the_welcome_after_an_invitation_link_goes_at_once_also_at_night(
    database: Database,
) -> None:
    """Opening the bot from the invitation is the young person writing: the welcome is the
    answer, not a message on the bot's own initiative that waits for the morning."""
    night = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # 23:30 in Copenhagen: quiet hours
    person_id = _person(
        database, invite_code="kode-til-mads", invite_code_expires_at=night + timedelta(days=30)
    )
    inbound = _inbound(database, [night])
    update = {
        "update_id": 1,
        "message": {
            "message_id": 1001,
            "from": {"id": 555, "is_bot": False, "first_name": "Mads"},
            "chat": {"id": 555, "first_name": "Mads", "type": "private"},
            "date": int(night.timestamp()),
            "text": "/start kode-til-mads",
        },
    }
    assert inbound.store_telegram(update)
    assert inbound.process_pending() == 1
    with database.session() as session:
        assert session.get_one(YoungPerson, person_id).telegram_chat_id == 555
        queued = session.execute(
            sa.select(OutboxEntry.purpose, OutboxEntry.not_before).join(
                Message, Message.id == OutboxEntry.message_id
            )
        ).all()
    assert queued  # the welcome
    assert {purpose for purpose, _ in queued} == {Purpose.REPLY}
    assert {not_before for _, not_before in queued} == {night}


def test_error_codes_are_explained_in_plain_words() -> None:
    assert (
        explain("30005", "da") == "Nummeret findes ikke, eller teleselskabet kender ikke telefonen."
    )
    assert (
        explain("30007", "en")
        == "The carrier filtered the message out because it looked like spam."
    )
    assert explain("12345", "da") == "SMS'en kunne ikke leveres (fejlkode 12345)."
    assert explain(None, "da") is None


def test_a_picture_alone_gets_a_kind_word(database: Database) -> None:
    person_id = _person(database, phone="+4520123456")
    inbound = _inbound(database)
    inbound.store_twilio(
        {
            "MessageSid": "SM2",
            "From": "+4520123456",
            "To": "+4570000001",
            "Body": "",
            "NumMedia": "1",
        }
    )
    assert inbound.process_pending() == 1
    with database.session() as session:
        texts = session.execute(
            sa.select(Message.direction, Message.text)
            .where(Message.young_person_id == person_id)
            .order_by(Message.id)
        ).all()
    assert [tuple(row) for row in texts] == [
        (Direction.INBOUND, ""),
        (Direction.OUTBOUND, "Jeg kan kun læse tekst. Skriv gerne med ord."),
    ]


def test_blocking_the_bot_in_telegram_marks_the_channel(database: Database) -> None:
    person_id = _person(database, telegram_chat_id=555)
    inbound = _inbound(database)
    member = {
        "chat": {"id": 555, "type": "private", "first_name": "Mads"},
        "from": {"id": 555, "is_bot": False, "first_name": "Mads"},
        "date": 1_795_000_000,
        "old_chat_member": {
            "user": {"id": 1, "is_bot": True, "first_name": "S"},
            "status": "member",
        },
        "new_chat_member": {
            "user": {"id": 1, "is_bot": True, "first_name": "S"},
            "status": "kicked",
            "until_date": 0,
        },
    }
    inbound.store_telegram({"update_id": 9, "my_chat_member": member})
    inbound.process_pending()
    with database.session() as session:
        assert session.get_one(YoungPerson, person_id).telegram_blocked_at == NOW


def test_events_of_a_processor_that_died_are_taken_over(database: Database) -> None:
    _person(database, phone="+4520123456")
    clock = [NOW]
    inbound = _inbound(database, clock)
    inbound.store_twilio({"MessageSid": "SM3", "From": "+4520123456", "Body": "hej"})
    with database.session() as session:
        event = session.scalars(sa.select(InboundEvent)).one()
        event.status = InboundStatus.PROCESSING  # claimed, then the process was killed
        event.claimed_at = NOW
    assert inbound.process_pending() == 0  # within the lease: someone may still be at it
    clock[0] = NOW + timedelta(minutes=6)
    assert inbound.process_pending() == 1
    with database.session() as session:
        assert session.scalars(sa.select(InboundEvent.status)).one() is InboundStatus.DONE
        assert session.scalar(sa.select(sa.func.count()).select_from(Message)) == 2
