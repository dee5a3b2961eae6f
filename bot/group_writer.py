"""Group commit for webhooks: one writer thread stores what many requests bring, in few commits.

A webhook hands its row to the writer and waits; the writer commits everything queued so far in
one transaction and then wakes each waiting request, so every request still answers 2xx only
after its own row is durable. One commit per batch instead of one per request is what lets a
two-core machine take a thousand messages a second.

On SQLite the writer keeps one connection of its own with automatic WAL checkpoints turned off,
and a second thread checkpoints in the background (``PRAGMA wal_checkpoint(PASSIVE)``, which
never blocks a writer). Otherwise every thousandth page would make one of the writer's commits
copy the WAL into the database and fsync it, and every request waiting on that batch would wait
for the disk: hundreds of milliseconds on a slow one.

Its connection also never waits in SQLite's busy handler: when another connection (the worker's
turn) holds the write lock, the handler sleeps 1, 2, 5, 10 ... up to 100 ms between tries, so a
batch could wait a quarter of a second after the lock was already free. The writer takes the lock
with ``BEGIN IMMEDIATE`` and, while it is held, tries again every half millisecond instead.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

BATCH = 200
CHECKPOINT_SECONDS = 0.5
LOCK_RETRY_SECONDS = 0.0005
LOCK_TIMEOUT_SECONDS = 10.0
_STOP = object()
Waiting = tuple[dict[str, Any], asyncio.Future[None], asyncio.AbstractEventLoop]


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():  # the request went away meanwhile
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class GroupWriter:
    def __init__(self, engine: sa.Engine, statement: Any, *, batch: int = BATCH) -> None:
        self.engine = engine
        self.statement = statement
        self.batch = batch
        self._queue: queue.SimpleQueue[Waiting | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sqlite = engine.dialect.name == "sqlite"
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self.checkpoints = 0
        self.lock_waits = 0  # tries that found the write lock held (SQLite)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="stifinder-group-writer", daemon=True
                )
                self._thread.start()
                if self.sqlite:
                    self._stopping.clear()
                    self._checkpointer = threading.Thread(
                        target=self._checkpoint_loop, name="stifinder-wal-checkpoint", daemon=True
                    )
                    self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        while not self._stopping.is_set():
            if not self._dirty.wait(timeout=CHECKPOINT_SECONDS):
                continue
            self._dirty.clear()
            self.checkpoint()
            self._stopping.wait(timeout=CHECKPOINT_SECONDS)  # at most one checkpoint this often

    def checkpoint(self) -> None:
        """Copy committed WAL pages into the database file, without blocking the writer."""
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            self.checkpoints += 1
        except Exception:
            log.exception("WAL checkpoint failed")

    def _run(self) -> None:
        if not self.sqlite:
            self._serve(None)
            return
        with self.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
            connection.exec_driver_sql("PRAGMA busy_timeout=0")  # see _begin_immediate
            connection.commit()
            try:
                self._serve(connection)
            finally:
                connection.exec_driver_sql("PRAGMA wal_autocheckpoint=1000")
                connection.exec_driver_sql("PRAGMA busy_timeout=10000")
                connection.commit()

    def _begin_immediate(self, connection: sa.Connection) -> None:
        """Take SQLite's write lock now, trying again every half millisecond while another
        connection holds it (up to ``LOCK_TIMEOUT_SECONDS``, then the error goes to the requests).
        """
        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        while True:
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except sa.exc.OperationalError as error:
                connection.rollback()
                if "locked" not in str(error.orig) or time.monotonic() > deadline:
                    raise
                self.lock_waits += 1
            time.sleep(LOCK_RETRY_SECONDS)

    def _commit(self, connection: sa.Connection | None, rows: list[dict[str, Any]]) -> None:
        if connection is None:
            with self.engine.begin() as pooled:
                pooled.execute(self.statement, rows)
            return
        try:
            self._begin_immediate(connection)
            connection.execute(self.statement, rows)
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        self._dirty.set()

    def _serve(self, connection: sa.Connection | None) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[Waiting] = [first]  # type: ignore[list-item]
            stop = False
            while len(batch) < self.batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)  # type: ignore[arg-type]
            error: BaseException | None = None
            try:
                self._commit(connection, [row for row, _, _ in batch])
            except Exception as failure:
                log.exception("group commit failed", extra={"rows": len(batch)})
                error = failure
            for _, future, loop in batch:
                loop.call_soon_threadsafe(_settle, future, error)
            if stop:
                return

    async def store(self, row: dict[str, Any]) -> None:
        """Return once ``row`` is committed; raise what the commit raised."""
        if self._thread is None:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put((row, future, loop))
        await future

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=30)
            self._thread = None
        if self._checkpointer is not None:
            self._stopping.set()
            self._checkpointer.join(timeout=30)
            self._checkpointer = None
            self.checkpoint()
