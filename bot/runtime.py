"""The composition root: settings are read once, and everything else is built from them here."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.metrics import Metrics
from bot.settings import Settings
from bot.worker import Handler, Worker
from storage.db import Database


@dataclass
class Runtime:
    settings: Settings
    database: Database
    metrics: Metrics = field(default_factory=Metrics)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        return cls(settings=settings, database=Database(settings.database_url))

    def handlers(self) -> dict[str, Handler]:
        """The scheduled-item kinds this installation runs, by kind."""
        return {}

    def worker(self) -> Worker:
        return Worker(
            database=self.database,
            metrics=self.metrics,
            handlers=self.handlers(),
            poll_seconds=self.settings.worker_poll_seconds,
        )
