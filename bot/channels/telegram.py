"""Telegram through python-telegram-bot: sending, and what its errors mean for the dispatcher."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

import httpx
from telegram import Bot
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from bot.channels import (
    Delivery,
    OutcomeUnknown,
    Rejected,
    RetryLater,
    SendResult,
    Unreachable,
)
from bot.settings import Settings
from dialogs.types import Channel, DeliveryStatus

# PTB 22 is moving time periods from int to timedelta and warns on every RetryAfter until told
# to use the new form; opting in here keeps its 429s plain exceptions.
os.environ.setdefault("PTB_TIMEDELTA", "1")

LIMIT = 4096  # characters in one Telegram message
T = TypeVar("T")

# Errors raised before the request reached Telegram: safe to send again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def split_text(text: str, limit: int = LIMIT) -> list[str]:
    """Split at paragraph, line or word boundaries so that no part is longer than ``limit``."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut <= limit // 2:
            cut = limit  # one very long word: cut it
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not parts:
        parts.append(rest)
    return parts


def _retry_after(error: RetryAfter) -> float:
    value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramChannel:
    channel = Channel.TELEGRAM

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self._initialised = False
        self._init_lock: asyncio.Lock | None = None

    async def _ready(self) -> None:
        if self._init_lock is None:
            self._init_lock = asyncio.Lock()
        async with self._init_lock:
            if not self._initialised:
                await self.bot.initialize()  # getMe
                self._initialised = True

    async def _call(self, request: Callable[[], Awaitable[T]]) -> T:
        try:
            await self._ready()
            return await request()
        except RetryAfter as error:
            raise RetryLater(str(error), after=_retry_after(error), code="429") from error
        except Forbidden as error:
            raise Unreachable(str(error), code="403") from error
        except BadRequest as error:
            if "chat not found" in str(error).lower():
                raise Unreachable(str(error), code="400") from error
            raise Rejected(str(error), code="400") from error
        except (TimedOut, NetworkError) as error:
            cause = error.__cause__
            if cause is None or isinstance(cause, _NOT_SENT):
                # An HTTP error answer (5xx), or no connection at all: nothing was sent.
                raise RetryLater(str(error)) from error
            # The request went out and the answer never came (a read timeout, a dropped
            # connection): Telegram may have delivered it.
            raise OutcomeUnknown(str(error)) from error
        except TelegramError as error:
            # Everything else Telegram says (5xx and the like) is worth another try.
            raise RetryLater(str(error)) from error

    async def send(self, delivery: Delivery) -> SendResult:
        chat_id = delivery.telegram_chat_id
        if chat_id is None:
            raise Unreachable("no Telegram chat for this young person")
        first: str | None = None
        for part in split_text(delivery.text):
            message = await self._call(
                lambda part=part: self.bot.send_message(chat_id=chat_id, text=part)  # type: ignore[misc]
            )
            first = first or f"{chat_id}:{message.message_id}"
        return SendResult(DeliveryStatus.SENT, provider_id=first)

    async def reconcile(self, delivery: Delivery, since: datetime) -> SendResult | None:
        # The Bot API cannot tell whether a message went out: the caller resends and counts it.
        return None

    async def close(self) -> None:
        if self._initialised:
            await self.bot.shutdown()
            self._initialised = False


def telegram_bot(settings: Settings) -> Bot:
    assert settings.telegram_bot_token is not None
    timeout = settings.provider_timeout_seconds
    return Bot(
        settings.telegram_bot_token.get_secret_value(),
        base_url=settings.telegram_api_base_url,
        request=HTTPXRequest(read_timeout=timeout, write_timeout=timeout, connection_pool_size=32),
    )
