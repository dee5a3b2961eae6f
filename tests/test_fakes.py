"""The fakes speak the real protocols: the real SDKs work against them, faults surface as the
SDKs' own exceptions, and Twilio's callbacks arrive signed as Twilio signs them."""

from __future__ import annotations

import asyncio
import re
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import httpx
import pytest
import requests
from telegram import Bot, Message
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from tests.fakes.http import FakeHTTPServer, Reply, Request
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio, segments

T = TypeVar("T")
DK_MOBILE = "+4520000001"
OUR_NUMBER = "+4570000001"


class Receiver(FakeHTTPServer):
    """Stands in for the app's webhook routes: records what arrives and answers 200."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []

    def handle(self, request: Request) -> Reply:
        self.requests.append(request)
        return Reply(200, b"<Response/>", "text/xml")


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake
    assert fake.errors == []


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake
    assert fake.errors == []


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def with_bot(
    fake: FakeTelegram, use: Callable[[Bot], Awaitable[T]], *, read_timeout: float = 5.0
) -> T:
    """Run ``use(bot)`` with a real, initialised and finally shut down PTB bot."""

    async def scenario() -> T:
        async with fake.bot(read_timeout=read_timeout) as bot:
            return await use(bot)

    return asyncio.run(scenario())


# -- Telegram ------------------------------------------------------------------------------------


def test_ptb_gets_me_and_sends_messages(telegram: FakeTelegram) -> None:
    async def use(bot: Bot) -> list[Message]:
        me = await bot.get_me()
        assert (me.id, me.username, me.is_bot) == (123456789, "stifinder_test_bot", True)
        return [
            await bot.send_message(42, "Hej"),
            await bot.send_message(42, "igen"),
            await bot.send_message(-1001234, "gruppe"),
        ]

    first, second, group = with_bot(telegram, use)

    assert isinstance(first, Message)
    assert (first.message_id, second.message_id, group.message_id) == (1, 2, 1)
    assert (first.chat.id, first.chat.type, first.text) == (42, "private", "Hej")
    assert first.from_user is not None and first.from_user.is_bot
    assert abs(first.date - datetime.now(UTC)) < timedelta(minutes=1)
    assert group.chat.type == "supergroup"
    sent = [(m["chat_id"], m["text"], m["message_id"]) for m in telegram.sent]
    assert sent == [(42, "Hej", 1), (42, "igen", 2), (-1001234, "gruppe", 1)]
    # initialize() calls getMe too; chat_id arrives JSON-encoded and is decoded to an int.
    assert [name for name, _ in telegram.calls] == ["getMe", "getMe"] + ["sendMessage"] * 3
    assert telegram.calls[2][1] == {"chat_id": 42, "text": "Hej"}


def test_ptb_webhook_calls_are_recorded_and_validated(telegram: FakeTelegram) -> None:
    url = "https://stifinder.example/telegram/webhook"

    async def use(bot: Bot) -> None:
        assert await bot.set_webhook(url, secret_token="s3cret_-X", allowed_updates=["message"])
        info = await bot.get_webhook_info()
        assert (info.url, info.allowed_updates) == (url, ("message",))
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        with pytest.raises(BadRequest, match=r"(?i)https url"):
            await bot.set_webhook("http://127.0.0.1/hook")
        with pytest.raises(BadRequest, match=r"(?i)unallowed characters"):
            await bot.set_webhook(url, secret_token="no spaces")
        assert telegram.webhook == {
            "url": url,
            "secret_token": "s3cret_-X",
            "allowed_updates": ["message"],
            "max_connections": 40,
        }
        assert await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""

    with_bot(telegram, use)
    assert telegram.webhook is None


def test_ptb_polls_queued_updates_honouring_offset_and_timeout(telegram: FakeTelegram) -> None:
    telegram.max_poll_seconds = 0.3
    telegram.queue_text(7, "/start abc", first_name="Sara")
    chat = {"id": 8, "type": "private"}
    telegram.queue_update(
        {"update_id": 10, "message": {"message_id": 9, "date": 0, "chat": chat, "text": "hej"}}
    )

    async def use(bot: Bot) -> None:
        updates = await bot.get_updates(timeout=0)
        assert [u.update_id for u in updates] == [1, 10]
        first = updates[0].message
        assert first is not None and first.text == "/start abc"
        assert first.from_user is not None and first.from_user.first_name == "Sara"
        assert first.parse_entities() == {first.entities[0]: "/start"}
        # Confirming by offset forgets them; a long poll waits for the next one to arrive.
        later = threading.Timer(0.1, telegram.queue_text, args=(7, "sent later"))
        later.start()
        started = time.monotonic()
        polled = await bot.get_updates(offset=11, timeout=5)
        later.join()
        assert [u.message.text for u in polled if u.message] == ["sent later"]
        assert time.monotonic() - started < 1
        # With nothing queued the poll ends after max_poll_seconds, not the asked 30 s.
        started = time.monotonic()
        assert await bot.get_updates(offset=polled[0].update_id + 1, timeout=30) == ()
        assert 0.25 < time.monotonic() - started < 2

    with_bot(telegram, use)


def test_ptb_errors_for_wrong_token_unknown_method_and_bad_text(telegram: FakeTelegram) -> None:
    async def wrong_token() -> None:
        async with telegram.bot(token="123456789:not-the-token"):
            pass

    with pytest.raises(InvalidToken):
        asyncio.run(wrong_token())

    async def use(bot: Bot) -> None:
        with pytest.raises(EndPointNotFound):
            await bot.do_api_request("noSuchMethod")
        with pytest.raises(BadRequest, match=r"(?i)message is too long"):
            await bot.send_message(1, "x" * 4097)
        telegram.answer("setMyCommands", True)  # a canned answer for a method not built in
        assert await bot.set_my_commands([("start", "Begin")])

    with_bot(telegram, use)
    assert telegram.sent == []


@pytest.mark.parametrize(
    ("kind", "error", "message", "recorded"),
    [
        ("403", Forbidden, "bot was blocked by the user", 0),
        ("500", NetworkError, "Internal Server Error", 0),
        ("drop_before", NetworkError, "RemoteProtocolError", 0),
        ("drop_after", NetworkError, "RemoteProtocolError", 1),
    ],
)
def test_ptb_raises_its_own_errors_for_faults(
    telegram: FakeTelegram, kind: str, error: type[TelegramError], message: str, recorded: int
) -> None:
    telegram.fail_next("sendMessage", kind)

    async def use(bot: Bot) -> TelegramError:
        with pytest.raises(TelegramError) as raised:
            await bot.send_message(5, "Hej")
        await bot.send_message(5, "next one goes through")
        return raised.value

    raised = with_bot(telegram, use)

    assert type(raised) is error  # exactly: a 500 or a drop is not a TimedOut
    assert message in str(raised)
    assert len(telegram.sent) == recorded + 1
    assert telegram.faults_served == [("sendMessage", kind)]
    assert [name for name, _ in telegram.calls].count("sendMessage") == 2


def test_ptb_retry_after_is_a_timedelta_with_ptb_timedelta(
    telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    telegram.retry_after = 7
    telegram.fail_next("sendMessage", "429")

    with pytest.raises(RetryAfter) as raised:
        with_bot(telegram, lambda bot: bot.send_message(5, "Hej"))

    assert raised.value.retry_after == timedelta(seconds=7)
    assert telegram.sent == []


def test_ptb_429_without_ptb_timedelta_raises_the_deprecation_warning(
    telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PTB 22.8 reads its own deprecated int-valued retry_after while building RetryAfter: with
    # warnings as errors (this project's pytest setting) the 429 becomes this warning instead.
    monkeypatch.delenv("PTB_TIMEDELTA", raising=False)
    telegram.fail_next("sendMessage", "429")

    with warnings.catch_warnings():
        warnings.simplefilter("error", PTBDeprecationWarning)
        with pytest.raises(PTBDeprecationWarning, match="PTB_TIMEDELTA"):
            with_bot(telegram, lambda bot: bot.send_message(5, "Hej"))


def test_ptb_times_out_on_a_slow_answer_that_was_processed(telegram: FakeTelegram) -> None:
    telegram.slow_seconds = 1.0
    telegram.fail_next("sendMessage", "slow")

    with pytest.raises(TimedOut):
        with_bot(telegram, lambda bot: bot.send_message(5, "Hej"), read_timeout=0.2)
    assert [m["text"] for m in telegram.sent] == ["Hej"]

    telegram.slow_seconds = 0.3
    telegram.fail_next("sendMessage", "slow")
    started = time.monotonic()
    message = with_bot(telegram, lambda bot: bot.send_message(5, "patient"))
    assert message.text == "patient"
    assert time.monotonic() - started >= 0.3


def test_ptb_forbidden_for_a_blocked_chat(telegram: FakeTelegram) -> None:
    telegram.block_chat("99")

    async def use(bot: Bot) -> None:
        with pytest.raises(Forbidden, match="blocked"):
            await bot.send_message(99, "Hej")
        await bot.send_message(98, "Hej")
        telegram.unblock_chat(99)
        await bot.send_message(99, "igen")

    with_bot(telegram, use)
    assert [(m["chat_id"], m["message_id"]) for m in telegram.sent] == [(98, 1), (99, 1)]


def test_telegram_fault_rate_is_random_but_reproducible() -> None:
    def outcomes(seed: int) -> list[str]:
        with FakeTelegram() as fake:
            fake.fault_rate(0.5, kinds=["500", "403"], seed=seed)

            async def use(bot: Bot) -> list[str]:
                seen = []
                for number in range(20):
                    try:
                        await bot.send_message(1, f"message {number}")
                        seen.append("ok")
                    except TelegramError as failure:
                        seen.append(type(failure).__name__)
                return seen

            seen = with_bot(fake, use)  # getMe is spared: only sendMessage by default
            assert seen.count("ok") == len(fake.sent)
            return seen

    first = outcomes(seed=7)
    assert set(first) == {"ok", "NetworkError", "Forbidden"}
    assert outcomes(seed=7) == first
    assert outcomes(seed=8) != first


def test_telegram_fake_reads_multipart_forms(telegram: FakeTelegram) -> None:
    # PTB switches to multipart/form-data when it uploads files.
    url = f"{telegram.base_url}{telegram.token}/sendMessage"
    with httpx.Client(trust_env=False) as client:
        response = client.post(
            url, data={"chat_id": "5", "text": "med fil"}, files={"f": ("a.txt", b"x")}
        )
    assert response.json()["result"]["text"] == "med fil"
    assert telegram.sent[0]["chat_id"] == 5


# -- Twilio --------------------------------------------------------------------------------------


def test_twilio_sdk_creates_fetches_and_lists_messages(twilio: FakeTwilio) -> None:
    client = twilio.client()
    message = client.messages.create(
        to=DK_MOBILE,
        from_=OUR_NUMBER,
        body="Hej med dig",
        status_callback="http://127.0.0.1:9/status",
        validity_period=600,
    )

    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert (message.status, message.num_segments, message.direction) == (
        "queued",
        "1",
        "outbound-api",
    )
    assert (message.to, message.from_, message.body) == (DK_MOBILE, OUR_NUMBER, "Hej med dig")
    assert message.error_code is None and message.price is None
    assert abs(message.date_created - datetime.now(UTC)) < timedelta(minutes=1)
    assert client.messages(message.sid).fetch().body == "Hej med dig"
    [recorded] = twilio.messages
    assert recorded["sid"] == message.sid
    assert (recorded["status_callback"], recorded["validity_period"]) == (
        "http://127.0.0.1:9/status",
        "600",
    )

    client.messages.create(to="+4520000002", from_=OUR_NUMBER, body="Til en anden")
    batch = [
        client.messages.create(to="+4520000003", from_=OUR_NUMBER, body=f"nr {n}").sid
        for n in range(5)
    ]
    assert [m.sid for m in client.messages.list(to=DK_MOBILE)] == [message.sid]
    # page_size=2 makes the SDK follow next_page_uri over three pages; newest first.
    assert [m.sid for m in client.messages.list(to="+4520000003", page_size=2)] == batch[::-1]
    minute_ago = datetime.now(UTC) - timedelta(minutes=1)
    assert len(client.messages.list(date_sent_after=minute_ago)) == 7
    assert client.messages.list(date_sent_before=minute_ago) == []


def test_twilio_messaging_service_messages_are_accepted(twilio: FakeTwilio) -> None:
    service = "MG" + "1" * 32
    message = twilio.client().messages.create(
        to=DK_MOBILE, messaging_service_sid=service, body="Hej"
    )
    assert (message.status, message.from_, message.num_segments) == ("accepted", None, "0")
    assert message.messaging_service_sid == service


@pytest.mark.parametrize(
    ("setup", "status", "code", "text"),
    [
        (lambda fake: fake.reject_number(DK_MOBILE, 21610), 400, 21610, "unsubscribed"),
        (lambda fake: fake.reject_number(DK_MOBILE, 21614), 400, 21614, "not a valid mobile"),
        (lambda fake: fake.fail_next("500"), 500, 20500, "internal server error"),
        (lambda fake: fake.fail_next("429"), 429, 20429, "Too Many Requests"),
    ],
)
def test_twilio_errors_are_twilio_rest_exceptions(
    twilio: FakeTwilio, setup: Callable[[FakeTwilio], None], status: int, code: int, text: str
) -> None:
    setup(twilio)
    client = twilio.client()

    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(to=DK_MOBILE, from_=OUR_NUMBER, body="Hej")

    assert (raised.value.status, raised.value.code) == (status, code)
    assert text in raised.value.msg
    assert twilio.messages == []


def test_twilio_checks_credentials_and_sids(twilio: FakeTwilio) -> None:
    with pytest.raises(TwilioRestException) as raised:
        twilio.client(auth_token="wrong").messages.create(to=DK_MOBILE, from_=OUR_NUMBER, body="x")
    assert (raised.value.status, raised.value.code) == (401, 20003)

    client = twilio.client()
    with pytest.raises(TwilioRestException) as raised:
        client.messages("SM" + "0" * 32).fetch()
    assert (raised.value.status, raised.value.code) == (404, 20404)
    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(to=DK_MOBILE, from_=OUR_NUMBER)
    assert (raised.value.status, raised.value.code) == (400, 21602)


@pytest.mark.parametrize(("kind", "recorded"), [("drop_before", 0), ("drop_after", 1)])
def test_twilio_dropped_connections_are_requests_errors(
    twilio: FakeTwilio, kind: str, recorded: int
) -> None:
    twilio.fail_next(kind)
    client = twilio.client()

    with pytest.raises(requests.exceptions.ConnectionError):
        client.messages.create(to=DK_MOBILE, from_=OUR_NUMBER, body="Hej")

    assert len(twilio.messages) == recorded
    assert client.messages.create(to=DK_MOBILE, from_=OUR_NUMBER, body="igen").status == "queued"


def test_twilio_slow_answer_times_out_after_processing(twilio: FakeTwilio) -> None:
    twilio.fail_next("slow")
    with pytest.raises(requests.exceptions.ReadTimeout):
        twilio.client(timeout=0.2).messages.create(to=DK_MOBILE, from_=OUR_NUMBER, body="Hej")
    assert [m["body"] for m in twilio.messages] == ["Hej"]


def test_twilio_faults_can_target_fetch(twilio: FakeTwilio) -> None:
    twilio.fail_next("500", endpoint="fetch")
    client = twilio.client()
    sid = client.messages.create(to=DK_MOBILE, from_=OUR_NUMBER, body="Hej").sid
    with pytest.raises(TwilioRestException):
        client.messages(sid).fetch()
    assert client.messages(sid).fetch().sid == sid
    assert twilio.faults_served == [("fetch", "500")]


def test_twilio_fault_rate_is_random_but_reproducible() -> None:
    def outcomes(seed: int) -> list[str]:
        with FakeTwilio() as fake:
            fake.fault_rate(0.4, kinds=["500", "drop_after"], seed=seed)
            client = fake.client()
            seen = []
            for number in range(20):
                try:
                    client.messages.create(to=DK_MOBILE, from_=OUR_NUMBER, body=f"nr {number}")
                    seen.append("ok")
                except (TwilioRestException, requests.RequestException) as failure:
                    seen.append(type(failure).__name__)
            drops = seen.count("ConnectionError")
            assert len(fake.messages) == seen.count("ok") + drops  # a drop_after was created
            return seen

    first = outcomes(seed=3)
    assert set(first) == {"ok", "TwilioRestException", "ConnectionError"}
    assert outcomes(seed=3) == first


def test_twilio_status_callback_is_signed_like_twilio(
    twilio: FakeTwilio, receiver: Receiver
) -> None:
    url = f"{receiver.url}/twilio/status?tenant=1"  # the query string is signed too
    client = twilio.client()
    sid = client.messages.create(
        to=DK_MOBILE, from_=OUR_NUMBER, body="Hej", status_callback=url
    ).sid

    assert twilio.deliver(sid, "delivered") == 200
    assert twilio.deliver(sid, "undelivered", error_code=30003) == 200

    delivered, undelivered = receiver.requests
    assert delivered.path == "/twilio/status"
    validator = RequestValidator(twilio.auth_token)
    for request in (delivered, undelivered):
        form = request.form()
        assert validator.validate(url, form, request.headers["X-Twilio-Signature"])
        assert form["MessageSid"] == form["SmsSid"] == sid
        assert (form["AccountSid"], form["From"], form["To"]) == (
            twilio.account_sid,
            OUR_NUMBER,
            DK_MOBILE,
        )
        assert form["ApiVersion"] == "2010-04-01"
    assert (delivered.form()["MessageStatus"], delivered.form()["SmsStatus"]) == ("delivered",) * 2
    assert "ErrorCode" not in delivered.form()
    assert undelivered.form()["ErrorCode"] == "30003"
    fetched = client.messages(sid).fetch()
    assert (fetched.status, fetched.error_code) == ("undelivered", 30003)
    assert fetched.date_sent is not None


def test_twilio_auto_callbacks_follow_every_new_message(
    twilio: FakeTwilio, receiver: Receiver
) -> None:
    twilio.auto_callbacks = ["sent", "delivered"]
    client = twilio.client()
    message = client.messages.create(
        to=DK_MOBILE, from_=OUR_NUMBER, body="Hej", status_callback=f"{receiver.url}/status"
    )
    assert message.status == "queued"  # the answer comes before any callback

    callbacks = twilio.wait_for_callbacks(2)

    assert [(c["status"], c["response_status"]) for c in callbacks] == [
        ("sent", 200),
        ("delivered", 200),
    ]
    assert [r.form()["MessageStatus"] for r in receiver.requests] == ["sent", "delivered"]
    assert client.messages(message.sid).fetch().status == "delivered"


def test_twilio_callbacks_to_public_urls_are_routed_but_signed_as_given(
    twilio: FakeTwilio, receiver: Receiver
) -> None:
    public = "https://stifinder.example/twilio/status"
    twilio.callback_routes = {"https://stifinder.example": receiver.url}
    sid = (
        twilio.client()
        .messages.create(to=DK_MOBILE, from_=OUR_NUMBER, body="Hej", status_callback=public)
        .sid
    )

    assert twilio.deliver(sid) == 200

    [request] = receiver.requests
    validator = RequestValidator(twilio.auth_token)
    signature = request.headers["X-Twilio-Signature"]
    assert request.path == "/twilio/status"
    assert validator.validate(public, request.form(), signature)
    assert not validator.validate(f"{receiver.url}/twilio/status", request.form(), signature)


def test_twilio_callbacks_never_leave_loopback(twilio: FakeTwilio) -> None:
    sid = (
        twilio.client()
        .messages.create(
            to=DK_MOBILE, from_=OUR_NUMBER, body="Hej", status_callback="https://example.com/status"
        )
        .sid
    )
    with pytest.raises(ValueError, match=r"tests stay on 127\.0\.0\.1"):
        twilio.deliver(sid)


def test_twilio_callback_that_finds_no_app_is_recorded(twilio: FakeTwilio) -> None:
    with Receiver() as gone:
        url = f"{gone.url}/status"  # nothing listens there once it stopped
    sid = (
        twilio.client()
        .messages.create(to=DK_MOBILE, from_=OUR_NUMBER, body="Hej", status_callback=url)
        .sid
    )

    assert twilio.deliver(sid) is None
    assert "Connection refused" in twilio.callbacks[0]["error"]


def test_signed_inbound_form_validates_and_reaches_the_app(
    twilio: FakeTwilio, receiver: Receiver
) -> None:
    url = f"{receiver.url}/twilio/sms"
    headers, form = twilio.signed_inbound(url, from_=DK_MOBILE, to=OUR_NUMBER, body="STOP")

    with requests.Session() as session:
        session.trust_env = False
        assert session.post(url, data=form, headers=headers).status_code == 200

    [request] = receiver.requests
    arrived = request.form()
    validator = RequestValidator(twilio.auth_token)
    assert validator.validate(url, arrived, request.headers["X-Twilio-Signature"])
    assert not validator.validate(url, arrived | {"Body": "START"}, headers["X-Twilio-Signature"])
    assert arrived["MessageSid"] == arrived["SmsSid"] == arrived["SmsMessageSid"]
    assert arrived["MessageSid"].startswith("SM")
    assert (arrived["From"], arrived["To"], arrived["Body"]) == (DK_MOBILE, OUR_NUMBER, "STOP")
    assert (arrived["NumMedia"], arrived["NumSegments"], arrived["FromCountry"]) == ("0", "1", "DK")
    assert arrived["AccountSid"] == twilio.account_sid
    assert arrived["ApiVersion"] == "2010-04-01"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("Æblegrød på Ærø" * 10, 1),  # Danish letters are GSM-7
        ("€" * 80, 1),  # extension characters take two septets
        ("€" * 81, 2),
        ("a" * 70 + "😀", 2),  # one emoji makes it UCS-2, and takes two units
        ("–" * 70, 1),
    ],
)
def test_segments_follow_gsm7_and_ucs2(body: str, expected: int) -> None:
    assert segments(body) == expected
