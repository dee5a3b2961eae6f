"""The composition root: settings are read once, and everything else is built from them here."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from bot.channels import ChannelAdapter
from bot.channels.simulator import SimulatorChannel
from bot.conversations import DIALOG_TIMEOUT, Conversations
from bot.metrics import Metrics
from bot.outbox import Dispatcher
from bot.settings import Settings
from bot.worker import Handler, Worker
from dialogs.engine import Engine
from dialogs.flows import CORE_DIALOGS
from dialogs.types import Channel
from storage.db import Database


@dataclass
class Runtime:
    settings: Settings
    database: Database
    metrics: Metrics = field(default_factory=Metrics)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        return cls(settings=settings, database=Database(settings.database_url))

    @cached_property
    def engine(self) -> Engine:
        return Engine(CORE_DIALOGS)

    @cached_property
    def conversations(self) -> Conversations:
        return Conversations(database=self.database, engine=self.engine)

    def adapters(self) -> dict[Channel, ChannelAdapter]:
        return {Channel.SIMULATOR: SimulatorChannel()}

    @cached_property
    def dispatcher(self) -> Dispatcher:
        return Dispatcher(database=self.database, adapters=self.adapters())

    def handlers(self) -> dict[str, Handler]:
        """The scheduled-item kinds this installation runs, by kind."""
        return {DIALOG_TIMEOUT: self.conversations.handle_timeout_item}

    def worker(self) -> Worker:
        return Worker(
            database=self.database,
            metrics=self.metrics,
            handlers=self.handlers(),
            poll_seconds=self.settings.worker_poll_seconds,
            after_sweep=[self.dispatcher.dispatch_due],
        )

    def close(self) -> None:
        if "dispatcher" in self.__dict__:
            self.dispatcher.close()
        self.database.dispose()
