"""The worker: APScheduler drives the clock, the database holds the schedule.

Every ``worker_poll_seconds`` a sweep gives back items of crashed workers, claims due items in
batches and runs the handler registered for each item's kind, each in its own transaction.
Nothing lives only in the scheduler's memory, and no sweep is ever skipped for being late: the
job runs with ``misfire_grace_time=None`` and ``coalesce=True`` (APScheduler 3 drops a job that
starts more than a second late by default).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.orm import Session

from bot.metrics import Metrics
from dialogs.types import ScheduledStatus
from storage import schedule
from storage.db import Database
from storage.models import ScheduledItem, utcnow

log = logging.getLogger(__name__)

# A handler does the item's work inside the given transaction and returns an outcome note.
Handler = Callable[[Session, ScheduledItem, datetime], str | None]

MAX_ATTEMPTS = 5
LEASE = timedelta(minutes=5)
BATCH = 100


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    def __init__(
        self,
        *,
        database: Database,
        metrics: Metrics,
        handlers: Mapping[str, Handler],
        poll_seconds: float = 5.0,
        after_sweep: Sequence[Callable[[], object]] = (),
        worker_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.metrics = metrics
        self.handlers = dict(handlers)
        self.after_sweep = list(after_sweep)
        self.poll_seconds = poll_seconds
        self.worker_id = worker_id or default_worker_id()
        self.clock = clock
        self._scheduler: BackgroundScheduler | None = None

    def sweep(self) -> int:
        """Run every due item once, then the after-sweep tasks (the outbox dispatcher).

        Returns how many scheduled items were finished or rescheduled.
        """
        with self.database.session() as session:
            released = schedule.release_stale(session, now=self.clock(), lease=LEASE)
        if released:
            log.warning("released items of a stopped worker", extra={"count": released})
        handled = 0
        while True:
            with self.database.session() as session:
                items = schedule.claim_due(
                    session,
                    now=self.clock(),
                    worker_id=self.worker_id,
                    kinds=self.handlers,
                    limit=BATCH,
                )
            for item in items:
                self._run(item)
            handled += len(items)
            if len(items) < BATCH:
                break
        for task in self.after_sweep:
            task()
        self.metrics.worker_sweeps.inc()
        self.metrics.worker_last_sweep.set(time.time())
        return handled

    def _run(self, item: ScheduledItem) -> None:
        # Read before the handler runs: a rollback expires the instance.
        item_id, kind, attempts = item.id, item.kind, item.attempts
        handler = self.handlers[kind]
        now = self.clock()
        try:
            with self.database.session() as session:
                session.add(item)
                outcome = handler(session, item, now)
                schedule.finish(
                    session, [item_id], status=ScheduledStatus.DONE, now=now, outcome=outcome
                )
            self.metrics.scheduled_items.labels(kind, "done").inc()
        except Exception as error:
            log.exception("scheduled item failed", extra={"item": item_id, "kind": kind})
            with self.database.session() as session:
                if attempts >= MAX_ATTEMPTS:
                    schedule.finish(
                        session,
                        [item_id],
                        status=ScheduledStatus.FAILED,
                        now=now,
                        outcome=type(error).__name__,
                    )
                    self.metrics.scheduled_items.labels(kind, "failed").inc()
                else:
                    # Exponential backoff: 30 s, 1 min, 2 min, 4 min.
                    delay = timedelta(seconds=30 * 2 ** (attempts - 1))
                    schedule.retry_later(
                        session, item_id, due_at=now + delay, error=type(error).__name__
                    )
                    self.metrics.scheduled_items.labels(kind, "retry").inc()

    def _safe_sweep(self) -> None:
        try:
            self.sweep()
        except Exception:
            # The next sweep tries again; the rows are still there.
            log.exception("sweep failed")

    def start(self) -> None:
        scheduler = BackgroundScheduler(timezone="UTC")
        scheduler.add_job(
            self._safe_sweep,
            "interval",
            seconds=self.poll_seconds,
            id="sweep",
            misfire_grace_time=None,
            coalesce=True,
            max_instances=1,
            next_run_time=self.clock(),
        )
        scheduler.start()
        self._scheduler = scheduler
        log.info("worker started", extra={"worker": self.worker_id, "kinds": sorted(self.handlers)})

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
            log.info("worker stopped", extra={"worker": self.worker_id})

    def run_until(self, stop: threading.Event) -> None:
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()
