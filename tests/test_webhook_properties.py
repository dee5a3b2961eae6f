"""Whatever arrives at a webhook: never a 500, and never a lost valid message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from bot.runtime import Runtime
from bot.web.app import create_app
from bot.web.paths import TELEGRAM_PATH, TWILIO_SMS_PATH
from dialogs.types import Channel
from storage.db import Database
from storage.models import InboundEvent
from tests.conftest import make_settings

TOKEN = "f" * 32
SECRET = "hook_secret"
BASE = "https://stifinder.example.dk"
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=60
)


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    runtime = Runtime(
        settings=make_settings(
            public_base_url=BASE,
            telegram_bot_token="1:x",
            telegram_webhook_secret=SECRET,
            telegram_api_base_url="http://127.0.0.1:9/bot",
            twilio_account_sid="AC" + "0" * 32,
            twilio_auth_token=TOKEN,
            twilio_from_number="+4570000001",
            twilio_api_base_url="http://127.0.0.1:9",
        ),
        database=database,
    )
    # Only the webhooks are under test: nothing is processed or sent.
    runtime.pump.kick = lambda: None  # type: ignore[method-assign]
    with TestClient(create_app(runtime)) as test_client:
        yield test_client


def _stored(database: Database, channel: Channel, key: str) -> bool:
    with database.session() as session:
        return (
            session.scalar(
                sa.select(InboundEvent.id).where(
                    InboundEvent.channel == channel, InboundEvent.dedupe_key == key
                )
            )
            is not None
        )


@PROPERTY
@given(
    form=st.dictionaries(text, text, max_size=8),
    sid=st.one_of(st.none(), st.from_regex(r"SM[0-9a-f]{32}", fullmatch=True)),
    sender=st.one_of(st.none(), text, st.just("+4520123456")),
    body=st.one_of(st.none(), text, st.just("😊 مرحبا 010203-1234"), st.just("x" * 1600)),
    sign=st.booleans(),
)
def test_any_sms_webhook(
    client: TestClient,
    database: Database,
    form: dict[str, str],
    sid: str | None,
    sender: str | None,
    body: str | None,
    sign: bool,
) -> None:
    for key, value in (("MessageSid", sid), ("From", sender), ("Body", body)):
        if value is not None:
            form[key] = value
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if sign:
        headers["X-Twilio-Signature"] = RequestValidator(TOKEN).compute_signature(
            BASE + TWILIO_SMS_PATH, form
        )
    response = client.post(TWILIO_SMS_PATH, data=form, headers=headers)
    valid = sign and bool(form.get("MessageSid")) and bool(form.get("From"))
    if not sign:
        assert response.status_code == 403
    elif valid:
        assert response.status_code == 200
        assert _stored(database, Channel.SMS, form["MessageSid"])
    else:
        assert response.status_code == 400


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)


def test_json_beyond_the_standard_is_refused(client: TestClient) -> None:
    # Python's json module reads Infinity and NaN; JSON (and PostgreSQL's jsonb) do not.
    for number in ("Infinity", "-Infinity", "NaN"):
        response = client.post(
            TELEGRAM_PATH,
            content='{"update_id": 1, "x": ' + number + "}",
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"},
        )
        assert response.status_code == 400


@PROPERTY
@given(payload=json_values)
def test_any_json_at_the_telegram_webhook(client: TestClient, payload: Any) -> None:
    response = client.post(
        TELEGRAM_PATH,
        content=json.dumps(payload),
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"},
    )
    assert response.status_code in (200, 400)


@PROPERTY
@given(
    update_id=st.integers(min_value=1, max_value=2**31),
    chat_id=st.integers(min_value=1, max_value=2**40),
    message_id=st.integers(min_value=1, max_value=2**31),
    words=text,
    extra=st.dictionaries(st.from_regex(r"x_[a-z]{1,8}", fullmatch=True), json_values, max_size=3),
)
def test_every_valid_telegram_message_is_stored(
    client: TestClient,
    database: Database,
    update_id: int,
    chat_id: int,
    message_id: int,
    words: str,
    extra: dict[str, Any],
) -> None:
    update = {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "date": 1_795_000_000,
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "A"},
            "text": words,
            **extra,  # Telegram adds fields without notice
        },
    }
    response = client.post(
        TELEGRAM_PATH,
        content=json.dumps(update),
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    assert response.status_code == 200
    assert _stored(database, Channel.TELEGRAM, f"{update_id}:{chat_id}:{message_id}")
