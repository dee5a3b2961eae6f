"""Telegram and SMS end to end: signed webhooks in over HTTP, the real SDKs out to local fakes
that speak the providers' protocols, and the database showing the thread with its statuses."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bot.channels import Delivery, SendResult
from bot.channels.sms import TwilioChannel, twilio_client, twilio_sending_client
from bot.outbox import Limits
from bot.runtime import Runtime
from bot.web.paths import TELEGRAM_PATH, TWILIO_SMS_PATH, TWILIO_STATUS_PATH
from dialogs.types import (
    Author,
    Channel,
    ConsentKind,
    ConsentSource,
    DeliveryStatus,
    Direction,
    HandoffReason,
    OutboxStatus,
    YoungPersonStatus,
)
from storage.db import Database
from storage.models import (
    ConsentEvent,
    Handoff,
    InboundEvent,
    Message,
    OutboxEntry,
    YoungPerson,
)
from tests.app_server import free_port, serving, wait_for
from tests.conftest import make_settings
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio
from tests.people import add_mads, at_any_hour

SECRET = "webhook_Secret-123"
SENDER = "+4570000001"
PHONE = "+4520123456"
CODE = "invite-code-for-mads_123"


@dataclass
class Stack:
    url: str
    runtime: Runtime
    database: Database
    telegram: FakeTelegram
    twilio: FakeTwilio
    person_id: int

    def thread(self) -> list[tuple[Direction, Channel, str, DeliveryStatus]]:
        with self.database.session() as session:
            rows = session.scalars(
                sa.select(Message)
                .where(Message.young_person_id == self.person_id)
                .order_by(Message.id)
            ).all()
            return [(m.direction, m.channel, m.text or "", m.status) for m in rows]

    def sms_in(self, body: str, *, sid: str | None = None, sender: str = PHONE) -> httpx.Response:
        headers, form = self.twilio.signed_inbound(
            self.url + TWILIO_SMS_PATH, from_=sender, to=SENDER, body=body, message_sid=sid
        )
        return httpx.post(self.url + TWILIO_SMS_PATH, data=form, headers=headers)

    def telegram_in(self, update: dict[str, Any], secret: str = SECRET) -> httpx.Response:
        return httpx.post(
            self.url + TELEGRAM_PATH,
            content=json.dumps(update),
            headers={
                "Content-Type": "application/json",
                "X-Telegram-Bot-Api-Secret-Token": secret,
            },
        )


def text_update(update_id: int, chat_id: int, message_id: int, text: str) -> dict[str, Any]:
    """A private text message as Telegram sends it. Message ids count both ways in a chat; the
    tests number the young person's from 1000 so they never meet the fake's own."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "from": {"id": chat_id, "is_bot": False, "first_name": "Mads"},
            "chat": {"id": chat_id, "first_name": "Mads", "type": "private"},
            "date": 1_795_000_000,
            "text": text,
        },
    }


@pytest.fixture
def stack(database: Database) -> Iterator[Stack]:
    with database.session() as session:
        person = add_mads(
            session,
            phone=PHONE,
            status=YoungPersonStatus.ACTIVE,
            preferred_channel=Channel.SMS,
            invite_code=CODE,
            invite_code_expires_at=datetime.now(UTC) + timedelta(days=30),
        )
        person_id = at_any_hour(person).id
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with FakeTelegram() as telegram, FakeTwilio() as twilio:
        settings = make_settings(
            public_base_url=url,
            telegram_bot_token=telegram.token,
            telegram_webhook_secret=SECRET,
            telegram_bot_username=telegram.username,
            telegram_api_base_url=telegram.base_url,
            twilio_account_sid=twilio.account_sid,
            twilio_auth_token=twilio.auth_token,
            twilio_from_number=SENDER,
            twilio_api_base_url=twilio.url,
        )
        runtime = Runtime(settings=settings, database=database)
        with serving(runtime, port):
            yield Stack(url, runtime, database, telegram, twilio, person_id)


# ------------------------------------------------------------------------------------- SMS


def test_sms_in_and_out_with_delivery_statuses(stack: Stack) -> None:
    stack.twilio.auto_callbacks = ["sent", "delivered"]
    response = stack.sms_in("hvad kan du")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    sent = wait_for(lambda: stack.twilio.messages, what="the reply at Twilio")
    assert [(m["to"], m["from"], m["body"][:27]) for m in sent] == [
        (PHONE, SENDER, "Jeg er Stifinder, en chatbo")
    ]
    wait_for(
        lambda: stack.thread()[-1][3] is DeliveryStatus.DELIVERED, what="the delivered callback"
    )
    thread = stack.thread()
    assert [(d, c, s) for d, c, _, s in thread] == [
        (Direction.INBOUND, Channel.SMS, DeliveryStatus.RECEIVED),
        (Direction.OUTBOUND, Channel.SMS, DeliveryStatus.DELIVERED),
    ]
    with stack.database.session() as session:
        outbound = session.scalars(
            sa.select(Message).where(Message.direction == Direction.OUTBOUND)
        ).one()
        assert outbound.provider_id == sent[0]["sid"]
        assert outbound.segments == 2


def test_a_redelivered_sms_is_stored_and_answered_once(stack: Stack) -> None:
    first = stack.sms_in("hej", sid="SM" + "a" * 32)
    again = stack.sms_in("hej", sid="SM" + "a" * 32)
    assert (first.status_code, again.status_code) == (200, 200)
    wait_for(lambda: stack.twilio.messages, what="the reply")
    stack.runtime.pump.run_once()
    with stack.database.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(InboundEvent)) == 1
    assert len(stack.twilio.messages) == 1
    assert [d for d, *_ in stack.thread()] == [Direction.INBOUND, Direction.OUTBOUND]


def test_cpr_numbers_are_masked_before_anything_is_stored(stack: Stack) -> None:
    stack.sms_in("mit cpr er 0102031234")
    wait_for(lambda: stack.twilio.messages, what="the reply")
    with stack.database.session() as session:
        payload = session.scalars(sa.select(InboundEvent.payload)).one()
        assert payload["Body"] == "mit cpr er XXXXXX-XXXX"
    assert stack.thread()[0][2] == "mit cpr er XXXXXX-XXXX"


@pytest.mark.parametrize(
    ("mangle", "status"),
    [
        ("no-signature", 403),
        ("forged", 403),
        ("other-url", 403),
        ("not-a-form", 400),
        ("no-sid", 400),
        ("too-big", 413),
    ],
)
def test_bad_sms_webhooks_are_refused_and_store_nothing(
    stack: Stack, mangle: str, status: int
) -> None:
    url = stack.url + TWILIO_SMS_PATH
    headers, form = stack.twilio.signed_inbound(url, from_=PHONE, to=SENDER, body="hej")
    content: bytes | None = None
    if mangle == "no-signature":
        del headers["X-Twilio-Signature"]
    elif mangle == "forged":
        form["Body"] = "noget andet"
    elif mangle == "other-url":
        headers["X-Twilio-Signature"] = stack.twilio.sign("https://evil.example/x", form)
    elif mangle == "not-a-form":
        headers["Content-Type"] = "application/json"
        content = json.dumps(form).encode()
    elif mangle == "no-sid":
        del form["MessageSid"]
        headers["X-Twilio-Signature"] = stack.twilio.sign(url, form)
    elif mangle == "too-big":
        form["Body"] = "x" * 70_000
        headers["X-Twilio-Signature"] = stack.twilio.sign(url, form)
    if content is None:
        response = httpx.post(url, data=form, headers=headers)
    else:
        response = httpx.post(url, content=content, headers=headers)
    assert response.status_code == status
    with stack.database.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(InboundEvent)) == 0


def test_a_forged_status_callback_is_refused(stack: Stack) -> None:
    form = {"MessageSid": "SM" + "b" * 32, "MessageStatus": "delivered"}
    headers = {"X-Twilio-Signature": "bm9wZQ=="}
    response = httpx.post(stack.url + TWILIO_STATUS_PATH, data=form, headers=headers)
    assert response.status_code == 403


def test_an_unknown_number_gets_a_polite_reply_once_and_is_kept(stack: Stack) -> None:
    stack.sms_in("hej hvem er det", sender="+4540112233")
    stack.sms_in("hallo?", sender="+4540112233")

    def kept() -> list[str | None]:
        with stack.database.session() as session:
            return list(
                session.scalars(
                    sa.select(Message.text)
                    .where(Message.address == "+4540112233", Message.direction == Direction.INBOUND)
                    .order_by(Message.id)
                ).all()
            )

    wait_for(lambda: len(kept()) == 2, what="both messages kept")
    wait_for(lambda: stack.twilio.messages, what="the reply")
    stack.runtime.pump.run_once()
    assert kept() == ["hej hvem er det", "hallo?"]
    bodies = [m["body"] for m in stack.twilio.messages]
    assert len(bodies) == 1
    assert bodies[0].startswith("Hej! Det her er Stifinder")


def test_an_unknown_number_in_crisis_gets_the_help_lines(stack: Stack) -> None:
    stack.sms_in("jeg vil ikke leve mere", sender="+4540112233")
    sent = wait_for(lambda: stack.twilio.messages, what="the crisis reply")
    assert "Livslinien: 70 201 201" in sent[0]["body"]


def test_twilio_stop_opts_out_without_a_second_confirmation(stack: Stack) -> None:
    stack.sms_in("STOP")
    wait_for(
        lambda: any(kind is ConsentKind.OPTED_OUT for kind in _consents(stack)), what="opt-out"
    )
    stack.runtime.pump.run_once()
    assert stack.twilio.messages == []  # Twilio sends its own confirmation
    with stack.database.session() as session:
        person = session.get_one(YoungPerson, stack.person_id)
        assert person.status is YoungPersonStatus.OPTED_OUT


def test_error_21610_at_send_keeps_the_opt_out_in_step(stack: Stack) -> None:
    stack.twilio.reject_number(PHONE, 21610)
    stack.runtime.conversations.start(
        young_person_id=stack.person_id, dialog="silence_follow_up", variables={}
    )
    stack.runtime.pump.run_once()
    with stack.database.session() as session:
        person = session.get_one(YoungPerson, stack.person_id)
        assert person.status is YoungPersonStatus.OPTED_OUT
        event = session.scalars(sa.select(ConsentEvent)).one()
        assert (event.kind, event.source) == (ConsentKind.OPTED_OUT, ConsentSource.PROVIDER)
        message = session.scalars(sa.select(Message)).one()
        assert (message.status, message.error_code) == (DeliveryStatus.FAILED, "21610")


def test_an_undelivered_callback_records_the_error_code(stack: Stack) -> None:
    stack.runtime.conversations.start(
        young_person_id=stack.person_id, dialog="silence_follow_up", variables={}
    )
    stack.runtime.pump.run_once()
    sid = stack.twilio.messages[0]["sid"]
    assert stack.twilio.deliver(sid, "undelivered", 30006) == 204
    with stack.database.session() as session:
        message = session.scalars(sa.select(Message)).one()
        assert (message.status, message.error_code) == (DeliveryStatus.UNDELIVERED, "30006")
        assert session.get_one(YoungPerson, stack.person_id).sms_error_code == "30006"


def _consents(stack: Stack) -> list[ConsentKind]:
    with stack.database.session() as session:
        return list(session.scalars(sa.select(ConsentEvent.kind)).all())


# -------------------------------------------------------------------------------- Telegram


def test_a_deep_link_binds_the_chat_and_starts_the_welcome(stack: Stack) -> None:
    response = stack.telegram_in(text_update(1, 555, 1001, f"/start {CODE}"))
    assert response.status_code == 200
    wait_for(lambda: len(stack.telegram.sent) >= 2, what="the welcome")
    sent = stack.telegram.sent
    assert [m["chat_id"] for m in sent] == [555, 555]
    assert sent[0]["text"].startswith("Hej Mads! Jeg er Stifinder")
    with stack.database.session() as session:
        person = session.get_one(YoungPerson, stack.person_id)
        assert person.telegram_chat_id == 555
        assert person.invite_code_used_at is not None
        assert person.preferred_channel is Channel.TELEGRAM
    stack.telegram_in(text_update(2, 555, 1003, "ja"))
    wait_for(lambda: len(stack.telegram.sent) >= 4, what="the answer to yes")
    assert ConsentKind.CONSENT_GIVEN in _consents(stack)
    assert [(d, c) for d, c, _, _ in stack.thread()][-3:] == [
        (Direction.INBOUND, Channel.TELEGRAM),
        (Direction.OUTBOUND, Channel.TELEGRAM),
        (Direction.OUTBOUND, Channel.TELEGRAM),
    ]


def test_a_used_or_unknown_code_binds_nothing_and_gets_a_friendly_answer(stack: Stack) -> None:
    stack.telegram_in(text_update(1, 555, 1001, f"/start {CODE}"))
    wait_for(lambda: stack.telegram.sent, what="the welcome")
    stack.telegram_in(text_update(2, 777, 1001, f"/start {CODE}"))
    stack.telegram_in(text_update(3, 888, 1001, "/start nope"))
    wait_for(lambda: len([m for m in stack.telegram.sent if m["chat_id"] in (777, 888)]) == 2)
    answers = [m for m in stack.telegram.sent if m["chat_id"] in (777, 888)]
    assert {m["text"] for m in answers} == {
        "Hej! Det link virker desværre ikke (mere). Spørg din kontaktperson om et nyt."
    }
    with stack.database.session() as session:
        assert session.get_one(YoungPerson, stack.person_id).telegram_chat_id == 555


def test_a_repeated_update_is_processed_once(stack: Stack) -> None:
    stack.telegram_in(text_update(1, 555, 1001, f"/start {CODE}"))
    wait_for(lambda: len(stack.telegram.sent) >= 2)
    for _ in range(3):
        assert stack.telegram_in(text_update(2, 555, 1003, "hvad kan du")).status_code == 200

    def helps() -> list[dict[str, Any]]:
        return [m for m in stack.telegram.sent if m["text"].startswith("Jeg er Stifinder, en")]

    wait_for(lambda: len(stack.telegram.sent) >= 4, what="the help and the question again")
    stack.runtime.pump.run_once()
    assert len(helps()) == 1


def test_bad_telegram_webhooks(stack: Stack) -> None:
    update = text_update(1, 555, 1001, "hej")
    assert stack.telegram_in(update, secret="wrong").status_code == 403
    assert stack.telegram_in(update, secret="").status_code == 403
    bad_json = httpx.post(
        stack.url + TELEGRAM_PATH,
        content=b"{not json",
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    assert bad_json.status_code == 400
    assert stack.telegram_in({"update_id": "1"}).status_code == 400
    assert stack.telegram_in({"update_id": 5, "message": {"chat": "x"}}).status_code == 400
    with stack.database.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(InboundEvent)) == 0


def test_long_texts_are_split_for_telegram(stack: Stack) -> None:
    stack.telegram_in(text_update(1, 555, 1001, f"/start {CODE}"))
    wait_for(lambda: len(stack.telegram.sent) >= 2)
    with stack.database.session() as session:
        person = session.get_one(YoungPerson, stack.person_id)
        message = Message(
            young_person_id=person.id,
            direction=Direction.OUTBOUND,
            channel=Channel.TELEGRAM,
            author="staff",
            text=("ord " * 2000).strip(),
            status=DeliveryStatus.QUEUED,
        )
        session.add(message)
        session.flush()
        session.add(OutboxEntry(message_id=message.id, channel=Channel.TELEGRAM))
    before = len(stack.telegram.sent)
    stack.runtime.pump.run_once()  # the pump's own thread may be the one that sends it
    wait_for(lambda: len(stack.telegram.sent) >= before + 2, what="both parts")
    parts = stack.telegram.sent[before:]
    assert [len(p["text"]) <= 4096 for p in parts] == [True, True]
    assert " ".join(p["text"] for p in parts) == ("ord " * 2000).strip()


def test_a_blocked_bot_falls_back_to_sms_and_tells_the_kontaktperson(stack: Stack) -> None:
    stack.telegram_in(text_update(1, 555, 1001, f"/start {CODE}"))
    wait_for(lambda: len(stack.telegram.sent) >= 2)
    stack.telegram.block_chat(555)
    stack.runtime.conversations.start(
        young_person_id=stack.person_id, dialog="silence_follow_up", variables={}
    )
    stack.runtime.pump.run_once()
    sms = wait_for(lambda: stack.twilio.messages, what="the SMS fallback")
    assert sms[0]["body"].startswith("Hej Mads, det er et stykke tid siden")

    def last_entry() -> tuple[Channel, OutboxStatus]:
        with stack.database.session() as session:
            entry = session.scalars(sa.select(OutboxEntry).order_by(OutboxEntry.id.desc())).first()
            assert entry is not None
            return entry.channel, entry.status

    wait_for(lambda: last_entry() == (Channel.SMS, OutboxStatus.SENT), what="the SMS recorded")
    with stack.database.session() as session:
        person = session.get_one(YoungPerson, stack.person_id)
        assert person.telegram_blocked_at is not None
        handoff = session.scalars(sa.select(Handoff)).one()
        assert (handoff.reason, handoff.note) == (
            HandoffReason.CANNOT_REACH,
            "Telegram: blocked; falling back to SMS",
        )
        entry = session.scalars(sa.select(OutboxEntry).order_by(OutboxEntry.id.desc())).first()
        assert entry is not None and (entry.channel, entry.status) == (
            Channel.SMS,
            OutboxStatus.SENT,
        )


def test_a_status_callback_that_overtakes_the_send_is_kept_and_applied(stack: Stack) -> None:
    # A message Twilio knows and Stifinder has not yet recorded (the send's answer is on its way).
    client = stack.twilio.client()
    created = client.messages.create(
        to=PHONE,
        from_=SENDER,
        body="Hej Mads",
        status_callback=stack.url + TWILIO_STATUS_PATH,
    )
    assert stack.twilio.deliver(str(created.sid), "delivered") == 204
    with stack.database.session() as session:
        kept = session.scalars(sa.select(InboundEvent.dedupe_key)).all()
        assert kept == [f"status:{created.sid}:delivered"]
        # Now the send is recorded...
        session.add(
            Message(
                young_person_id=stack.person_id,
                direction=Direction.OUTBOUND,
                channel=Channel.SMS,
                author=Author.BOT,
                text="Hej Mads",
                status=DeliveryStatus.SENT,
                provider_id=str(created.sid),
            )
        )

    # ...and the kept callback is applied on a following round (the pump may hold it just now).
    def applied() -> bool:
        stack.runtime.inbound.process_pending()
        return stack.thread()[-1][3] is DeliveryStatus.DELIVERED

    wait_for(applied, what="the kept callback applied")


def test_the_twilio_client_keeps_a_connection_for_every_send_in_flight() -> None:
    """Fewer pooled connections than sends in flight would open (and, over https, handshake)
    a new connection for each of the others."""
    settings = make_settings(
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token="t" * 32,
        twilio_from_number=SENDER,
    )
    session = twilio_client(settings).http_client.session  # lookups
    for url in ("https://provider.invalid/", "http://127.0.0.1/"):
        pools = session.get_adapter(url).poolmanager.connection_pool_kw
        assert pools["maxsize"] >= Limits().concurrency

    async def sending_limit() -> int:  # sends
        client = twilio_sending_client(settings)()
        try:
            return int(client.http_client.session.connector.limit)
        finally:
            await client.http_client.close()

    assert asyncio.run(sending_limit()) >= Limits().concurrency


def test_the_twilio_client_sends_through_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The proxy variables are read once, when the client is built, and every send uses them."""
    seen: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def proxy() -> None:
        connection, _ = server.accept()
        with connection:
            data = b""
            while b"\r\n\r\n" not in data:
                data += connection.recv(65536)
            seen.append(data.split(b"\r\n", 1)[0])
            body = json.dumps({"sid": "SM" + "1" * 32, "status": "queued"}).encode()
            connection.sendall(
                b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )

    thread = threading.Thread(target=proxy, daemon=True)
    thread.start()
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    settings = make_settings(
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token="t" * 32,
        twilio_from_number=SENDER,
        twilio_api_base_url="http://twilio.invalid",
    )
    channel = TwilioChannel(
        twilio_client(settings),
        from_number=SENDER,
        messaging_service_sid=None,
        status_callback=None,
        sending=twilio_sending_client(settings),
    )
    monkeypatch.delenv("HTTP_PROXY")  # already read
    delivery = Delivery(
        message_id=1, young_person_id=1, text="Hej", phone="+4520000000", telegram_chat_id=None
    )

    async def send_and_close() -> SendResult:
        try:
            return await channel.send(delivery)
        finally:
            await channel.close()

    result = asyncio.run(send_and_close())
    thread.join(timeout=10)
    server.close()
    assert result.provider_id == "SM" + "1" * 32
    assert seen == [
        b"POST http://twilio.invalid/2010-04-01/Accounts/AC"
        + b"0" * 32
        + b"/Messages.json HTTP/1.1"
    ]
