"""The worker: APScheduler drives the clock, the database holds the schedule.

Every ``worker_poll_seconds`` a sweep gives back items of crashed workers, claims due items in
batches and runs the handler registered for each item's kind, each in its own transaction; a
:class:`Batched` handler runs the claimed items of its kind together, in one transaction.
Nothing lives only in the scheduler's memory, and no sweep is ever skipped for being late: the
job runs with ``misfire_grace_time=None`` and ``coalesce=True`` (APScheduler 3 drops a job that
starts more than a second late by default).
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta

import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.orm import Session

from bot.metrics import Metrics
from dialogs.types import ScheduledStatus
from storage import schedule
from storage.db import Database
from storage.models import ScheduledItem, utcnow

log = logging.getLogger(__name__)

# A handler does the item's work inside the given transaction and returns an outcome note. The
# item is closed in that same transaction, so its work and its "done" commit together or not at
# all: a crash in between leaves the item to run again, never half-run.
Handler = Callable[[Session, ScheduledItem, datetime], str | None]


class Expired(Exception):  # noqa: N818 - a verdict, not a failure
    """Raised by a handler when firing late makes no sense (the meeting has passed)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Defer(Exception):  # noqa: N818 - a verdict, not a failure
    """Raised by a handler to run the item later without counting a failed attempt."""

    def __init__(self, until: datetime, reason: str) -> None:
        super().__init__(reason)
        self.until = until
        self.reason = reason


class LostClaimError(RuntimeError):
    """The item was taken over by another worker while this one ran it: roll back."""


# What became of one item of a batch: done with this outcome note, or a verdict.
Verdict = str | None | Expired | Defer
ManyHandler = Callable[[Session, Sequence[ScheduledItem], datetime], Mapping[int, Verdict]]


class Batched:
    """A handler that can also run many items of its kind in one transaction.

    ``many`` returns a verdict for every item, by id. The worker gives it all the items of its
    kind a sweep claimed; called with one item, it is an ordinary :data:`Handler`. If ``many``
    raises, the transaction rolls back and the worker runs the items one by one, so one bad item
    costs the others nothing but time.
    """

    def __init__(self, many: ManyHandler) -> None:
        self.many = many

    def __call__(self, session: Session, item: ScheduledItem, now: datetime) -> str | None:
        verdict = self.many(session, [item], now)[item.id]
        if isinstance(verdict, Expired | Defer):
            raise verdict
        return verdict


MAX_ATTEMPTS = 5
LEASE = timedelta(minutes=5)
BATCH = 250
IN_FLIGHT = 2  # batches of one sweep worked on at once
WAKE_GAP = timedelta(milliseconds=50)


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
        running: Sequence[Callable[[], object]] | None = None,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        lease: timedelta = LEASE,
    ) -> None:
        self.database = database
        self.lease = lease
        self.metrics = metrics
        self.handlers = dict(handlers)
        self.after_sweep = list(after_sweep)
        # What a started worker runs as its own jobs: the after-sweep tasks unless told otherwise
        # (a task may wait for work that another job does, which a one-thread sweep cannot).
        self.running = list(after_sweep if running is None else running)
        self.poll_seconds = poll_seconds
        self.worker_id = worker_id or default_worker_id()
        self.clock = clock
        self._scheduler: BackgroundScheduler | None = None
        self._wake_lock = threading.Lock()

    def sweep(self) -> int:
        """Run every due item once, then the after-sweep tasks (campaigns, the outbox), in turn.

        Returns how many scheduled items were finished or rescheduled. A running worker does the
        same in separate jobs (see :meth:`start`), so a long send never holds up a reminder.
        """
        handled = self.sweep_items()
        for task in self.after_sweep:
            task()
        return handled

    def sweep_items(self) -> int:
        with self.database.session() as session:
            released = schedule.release_stale(session, now=self.clock(), lease=self.lease)
        if released:
            log.warning("released items of a stopped worker", extra={"count": released})
        handled = 0
        # A batch waits on the database for much of its time: the next one is claimed and
        # worked on meanwhile, in a second thread, so the two overlap (each its own transaction).
        with ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="stifinder-batch") as pool:
            running: set[Future[None]] = set()
            while True:
                with self.database.session() as session:
                    items = schedule.claim_due(
                        session,
                        now=self.clock(),
                        worker_id=self.worker_id,
                        kinds=self.handlers,
                        limit=BATCH,
                    )
                by_kind: dict[str, list[ScheduledItem]] = defaultdict(list)
                for item in items:
                    by_kind[item.kind].append(item)
                for kind, group in by_kind.items():
                    handler = self.handlers[kind]
                    if isinstance(handler, Batched) and len(group) > 1:
                        while len(running) >= IN_FLIGHT:
                            done, running = wait(running, return_when=FIRST_COMPLETED)
                            for future in done:
                                future.result()
                        running.add(pool.submit(self._run_many, handler, kind, group))
                    else:
                        for item in group:
                            self._run(item)
                handled += len(items)
                if len(items) < BATCH:
                    break
            for future in running:
                future.result()
        self.metrics.worker_sweeps.inc()
        self.metrics.worker_last_sweep.set(time.time())
        self._wake_for_next(handled)
        return handled

    def _wake_for_next(self, handled: int) -> None:
        """Move the next sweep forward to when the next item falls due, if that comes before the
        next poll: a reminder due at 10:00:00 runs at 10:00:00, not up to a poll later.

        Items another process adds after this look are found by the regular poll.
        """
        if self._scheduler is None:
            return
        with self.database.session() as session:
            due = schedule.next_due(session, kinds=self.handlers)
        now = self.clock()
        if due is None or (due <= now and not handled):
            return  # nothing ahead, or rows another worker holds right now: the poll will do
        # Not sooner than a moment from now: this sweep must have ended, or the next is skipped.
        when = max(due, now + WAKE_GAP)
        # Under the lock stop() takes first: a scheduler shutting down holds its job store while
        # it waits for this job, and asking it for the job then would never return.
        with self._wake_lock:
            scheduler = self._scheduler
            job = scheduler.get_job("sweep") if scheduler is not None else None
            if job is not None and job.next_run_time is not None and when < job.next_run_time:
                job.modify(next_run_time=when)

    def _run(self, item: ScheduledItem) -> None:
        # Read before the handler runs: a rollback expires the instance.
        item_id, kind, attempts = item.id, item.kind, item.attempts
        handler = self.handlers[kind]
        now = self.clock()
        try:
            with self.database.session() as session:
                session.add(item)
                outcome = handler(session, item, now)
                self._close(session, item_id, ScheduledStatus.DONE, now, outcome)
            self.metrics.scheduled_items.labels(kind, "done").inc()
        except Expired as verdict:
            with self.database.session() as session:
                self._close(session, item_id, ScheduledStatus.EXPIRED, now, verdict.reason)
            self.metrics.scheduled_items.labels(kind, "expired").inc()
        except Defer as verdict:
            with self.database.session() as session:
                schedule.retry_later(
                    session, item_id, due_at=verdict.until, error=verdict.reason, counts=False
                )
            self.metrics.scheduled_items.labels(kind, "deferred").inc()
        except LostClaimError:
            log.warning("item taken over by another worker", extra={"item": item_id, "kind": kind})
            self.metrics.scheduled_items.labels(kind, "lost").inc()
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

    def _run_many(self, handler: Batched, kind: str, items: Sequence[ScheduledItem]) -> None:
        ids = [item.id for item in items]
        now = self.clock()
        try:
            with self.database.session() as session:
                session.add_all(items)
                verdicts = handler.many(session, items, now)
                counted = self._close_many(session, ids, verdicts, now)
        except Exception as error:
            # Nothing of the batch was written: run each item alone, so that a failure is
            # retried (and counted) for its own item only, and a lost claim is seen per item.
            log.warning(
                "batch failed; running its items one by one",
                extra={"kind": kind, "items": len(ids), "error": type(error).__name__},
            )
            with self.database.session() as session:
                again = session.scalars(
                    sa.select(ScheduledItem).where(ScheduledItem.id.in_(ids))
                ).all()
            for item in sorted(again, key=lambda item: ids.index(item.id)):
                self._run(item)
            return
        for result, number in counted.items():
            self.metrics.scheduled_items.labels(kind, result).inc(number)

    def _close_many(
        self, session: Session, ids: Sequence[int], verdicts: Mapping[int, Verdict], now: datetime
    ) -> dict[str, int]:
        """Close a batch's items by verdict, in a statement per distinct outcome."""
        closing: dict[tuple[ScheduledStatus, str | None], list[int]] = defaultdict(list)
        counted: dict[str, int] = defaultdict(int)
        for item_id in ids:
            verdict = verdicts[item_id]
            if isinstance(verdict, Defer):
                schedule.retry_later(
                    session, item_id, due_at=verdict.until, error=verdict.reason, counts=False
                )
                counted["deferred"] += 1
            elif isinstance(verdict, Expired):
                closing[ScheduledStatus.EXPIRED, verdict.reason].append(item_id)
                counted["expired"] += 1
            else:
                closing[ScheduledStatus.DONE, verdict].append(item_id)
                counted["done"] += 1
        for (status, outcome), closed in closing.items():
            finished = schedule.finish(
                session, closed, status=status, now=now, outcome=outcome, claimed_by=self.worker_id
            )
            if finished != len(closed):
                raise LostClaimError(closed)
        return counted

    def _close(
        self,
        session: Session,
        item_id: int,
        status: ScheduledStatus,
        now: datetime,
        outcome: str | None,
    ) -> None:
        closed = schedule.finish(
            session, [item_id], status=status, now=now, outcome=outcome, claimed_by=self.worker_id
        )
        if not closed:
            raise LostClaimError(item_id)

    @staticmethod
    def _safely(task: Callable[[], object], name: str) -> Callable[[], None]:
        def run() -> None:
            try:
                task()
            except Exception:
                # The next run tries again; the rows are still there.
                log.exception("worker job failed", extra={"job": name})

        return run

    def start(self) -> None:
        """One APScheduler job per kind of work, each on its own thread, never two at once.

        Every job runs with ``misfire_grace_time=None`` and ``coalesce=True``: a job that starts
        late runs once, never skipped.
        """
        scheduler = BackgroundScheduler(
            timezone="UTC", executors={"default": {"type": "threadpool", "max_workers": 8}}
        )
        jobs: list[tuple[str, Callable[[], object]]] = [("sweep", self.sweep_items)]
        jobs += [
            (getattr(task, "__name__", f"task{number}"), task)
            for number, task in enumerate(self.running)
        ]
        for name, task in jobs:
            scheduler.add_job(
                self._safely(task, name),
                "interval",
                seconds=self.poll_seconds,
                id=name,
                misfire_grace_time=None,
                coalesce=True,
                max_instances=1,
                next_run_time=self.clock(),
            )
        scheduler.start()
        self._scheduler = scheduler
        log.info("worker started", extra={"worker": self.worker_id, "kinds": sorted(self.handlers)})

    def stop(self) -> None:
        with self._wake_lock:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=True)
            log.info("worker stopped", extra={"worker": self.worker_id})

    def run_until(self, stop: threading.Event) -> None:
        self.start()
        # What start-up built stays out of the collector's walks (a full one took ~100 ms and
        # held up sends in flight, so a second could carry one request too many).
        gc.collect()
        gc.freeze()
        try:
            stop.wait()
        finally:
            self.stop()
