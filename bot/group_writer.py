"""Group commit for webhooks: one writer thread stores what many requests bring, in few commits.

A webhook hands its row to the writer and waits; the writer commits everything queued so far in
one transaction and then wakes each waiting request, so every request still answers 2xx only
after its own row is durable. One commit per batch instead of one per request is what lets a
two-core machine take a thousand messages a second.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

BATCH = 200
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

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="stifinder-group-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
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
                with self.engine.begin() as connection:
                    connection.execute(self.statement, [row for row, _, _ in batch])
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
