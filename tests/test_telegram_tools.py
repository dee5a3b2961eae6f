"""`stifinder telegram set-webhook`, `telegram link` and the polling mode, against the fake."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from typer.testing import CliRunner

from bot.cli import app
from bot.runtime import Runtime
from bot.telegram_polling import TelegramPoller
from storage.db import Database
from storage.models import InboundEvent, Municipality, YoungPerson
from tests.conftest import make_settings
from tests.fakes.telegram import FakeTelegram


def test_set_webhook_registers_the_public_url_and_the_secret(database: Database) -> None:
    with FakeTelegram() as fake:
        settings = make_settings(
            public_base_url="https://stifinder.example.dk",
            telegram_bot_token=fake.token,
            telegram_webhook_secret="the_secret-1",
            telegram_api_base_url=fake.base_url,
        )
        result = CliRunner().invoke(
            app, ["telegram", "set-webhook"], obj=Runtime(settings=settings, database=database)
        )
        assert result.exit_code == 0, result.output
        webhook = fake.webhook
    assert webhook is not None
    assert webhook["url"] == "https://stifinder.example.dk/webhooks/telegram"
    assert webhook["secret_token"] == "the_secret-1"


def test_link_renews_a_used_code(database: Database) -> None:
    with database.session() as session:
        person = YoungPerson(
            municipality=Municipality(name="Aarhus", slug="aarhus"),
            first_name="Mads",
            birth_date=date(2009, 1, 1),
            invite_code="old-code",
            invite_code_used_at=datetime.now(UTC) - timedelta(days=1),
        )
        session.add(person)
    settings = make_settings(telegram_bot_username="stifinder_bot")
    result = CliRunner().invoke(
        app, ["telegram", "link", "--as", "Mads"], obj=Runtime(settings=settings, database=database)
    )
    assert result.exit_code == 0, result.output
    with database.session() as session:
        person = session.scalars(sa.select(YoungPerson)).one()
        assert person.invite_code not in (None, "old-code")
        assert person.invite_code_used_at is None
        assert result.output.strip() == f"https://t.me/stifinder_bot?start={person.invite_code}"


def test_polling_stores_updates_and_moves_the_offset(database: Database) -> None:
    with FakeTelegram() as fake:
        fake.queue_text(555, "hej")
        fake.queue_text(555, "hvad kan du")
        runtime = Runtime(settings=make_settings(), database=database)
        kicks: list[bool] = []
        runtime.pump.kick = lambda: kicks.append(True)  # type: ignore[method-assign]

        async def poll() -> tuple[int | None, int | None]:
            async with fake.bot() as bot:
                poller = TelegramPoller(bot, runtime.inbound, runtime.pump, timeout=0)
                first = await poller.poll_once(None)
                second = await poller.poll_once(first)
                return first, second

        first, second = asyncio.run(poll())
    assert (first, second) == (3, 3)
    assert kicks == [True]
    with database.session() as session:
        keys = session.scalars(sa.select(InboundEvent.dedupe_key).order_by(InboundEvent.id)).all()
    assert [key.split(":")[:2] for key in keys] == [["1", "555"], ["2", "555"]]
