"""Telegram without a public URL: long-poll ``getUpdates`` and store updates like the webhook.

Runs on an event loop in a thread of its own. The offset only moves past an update once it is
stored, so a crash re-reads it and the event table drops the repeat.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from telegram import Bot
from telegram.error import NetworkError, RetryAfter, TelegramError

from bot.inbound import Inbound
from bot.pump import Pump

log = logging.getLogger(__name__)


class TelegramPoller:
    def __init__(self, bot: Bot, inbound: Inbound, pump: Pump, *, timeout: int = 25) -> None:
        self.bot = bot
        self.inbound = inbound
        self.pump = pump
        self.timeout = timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def poll_once(self, offset: int | None) -> int | None:
        updates = await self.bot.get_updates(
            offset=offset,
            timeout=self.timeout,
            allowed_updates=["message", "my_chat_member"],
        )
        for update in updates:
            await asyncio.to_thread(self.inbound.store_telegram, update.to_dict())
            offset = update.update_id + 1
        if updates:
            self.pump.kick()
        return offset

    async def _run(self) -> None:
        async with self.bot:
            # getUpdates is refused while a webhook is set.
            await self.bot.delete_webhook(drop_pending_updates=False)
            offset: int | None = None
            while not self._stop.is_set():
                try:
                    offset = await self.poll_once(offset)
                except RetryAfter:
                    await asyncio.sleep(5)
                except (NetworkError, TelegramError):
                    log.warning("getUpdates failed; trying again shortly", exc_info=True)
                    await asyncio.sleep(2)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._run()), name="stifinder-telegram-poll", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
