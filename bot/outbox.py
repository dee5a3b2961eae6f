"""The dispatcher: claims due outbox rows and hands them to their channel's adapter.

Rows are claimed like scheduled items (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a guarded
update everywhere), so several workers share the outbox without sending anything twice. Adapters
run on one event loop owned by the dispatcher, in a thread of its own, so that async SDK clients
keep a single loop for their whole life.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.channels import ChannelAdapter, Delivery, SendResult
from dialogs.types import Channel, DeliveryStatus, OutboxStatus, Purpose, YoungPersonStatus
from storage.db import Database
from storage.models import Message, OutboxEntry, YoungPerson, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_ATTEMPTS = 5
# Crisis help and the one STOP confirmation may reach a young person who has opted out.
ALWAYS_ALLOWED = (Purpose.CRISIS, Purpose.OPT_OUT)


class Dispatcher:
    def __init__(
        self,
        *,
        database: Database,
        adapters: Mapping[Channel, ChannelAdapter],
        worker_id: str = "dispatcher",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.adapters = dict(adapters)
        self.worker_id = worker_id
        self.clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the loop

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="stifinder-dispatch", daemon=True
                )
                self._thread.start()
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=120)

    def close(self) -> None:
        with self._lock:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
                if self._thread is not None:
                    self._thread.join(timeout=10)
                self._loop.close()
                self._loop = None
                self._thread = None

    # ------------------------------------------------------------------ claiming

    def _claim(self, session: Session, *, limit: int, young_person_id: int | None) -> list[int]:
        now = self.clock()
        query = (
            sa.select(OutboxEntry.id)
            .where(
                OutboxEntry.status == OutboxStatus.PENDING,
                OutboxEntry.not_before <= now,
                OutboxEntry.channel.in_(list(self.adapters)),
            )
            .order_by(OutboxEntry.not_before, OutboxEntry.id)
            .limit(limit)
        )
        if young_person_id is not None:
            query = query.join(Message, Message.id == OutboxEntry.message_id).where(
                Message.young_person_id == young_person_id
            )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(of=OutboxEntry, skip_locked=True)
        claimed = []
        for entry_id in session.scalars(query).all():
            result = session.execute(
                sa.update(OutboxEntry)
                .where(OutboxEntry.id == entry_id, OutboxEntry.status == OutboxStatus.PENDING)
                .values(
                    status=OutboxStatus.SENDING,
                    claimed_by=self.worker_id,
                    claimed_at=now,
                    attempts=OutboxEntry.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(entry_id)
        return claimed

    def dispatch_due(self, *, limit: int = 100, young_person_id: int | None = None) -> int:
        """Send what is due; returns how many rows were finished (sent, failed or withheld)."""
        with self.database.session() as session:
            claimed = self._claim(session, limit=limit, young_person_id=young_person_id)
        for entry_id in claimed:
            self._deliver(entry_id)
        return len(claimed)

    # ------------------------------------------------------------------ sending

    def _deliver(self, entry_id: int) -> None:
        with self.database.session() as session:
            entry = session.get_one(OutboxEntry, entry_id)
            message = session.get_one(Message, entry.message_id)
            person = session.get_one(YoungPerson, message.young_person_id)
            if person.status is YoungPersonStatus.OPTED_OUT and entry.purpose not in ALWAYS_ALLOWED:
                entry.status = OutboxStatus.CANCELLED
                entry.last_error = "opted out"
                message.status = DeliveryStatus.FAILED
                message.error_code = "opted_out"
                return
            delivery = Delivery(
                message_id=message.id,
                young_person_id=person.id,
                text=message.text or "",
                phone=person.phone,
                telegram_chat_id=person.telegram_chat_id,
            )
            adapter = self.adapters[entry.channel]
            attempts = entry.attempts
        try:
            result = self._run(adapter.send(delivery))
        except Exception as error:
            log.exception("send failed", extra={"outbox": entry_id, "channel": adapter.channel})
            self._retry_or_fail(entry_id, attempts, type(error).__name__)
            return
        self._record(entry_id, result)

    def _record(self, entry_id: int, result: SendResult) -> None:
        now = self.clock()
        with self.database.session() as session:
            entry = session.get_one(OutboxEntry, entry_id)
            message = session.get_one(Message, entry.message_id)
            failed = result.status in (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED)
            entry.status = OutboxStatus.FAILED if failed else OutboxStatus.SENT
            message.status = result.status
            message.provider_id = result.provider_id
            message.error_code = result.error_code
            message.sent_at = now
            message.status_changed_at = now
            if result.status is DeliveryStatus.DELIVERED:
                message.delivered_at = now

    def _retry_or_fail(self, entry_id: int, attempts: int, error: str) -> None:
        now = self.clock()
        with self.database.session() as session:
            entry = session.get_one(OutboxEntry, entry_id)
            entry.last_error = error[:200]
            if attempts >= MAX_ATTEMPTS:
                entry.status = OutboxStatus.FAILED
                message = session.get_one(Message, entry.message_id)
                message.status = DeliveryStatus.FAILED
                message.status_changed_at = now
            else:
                entry.status = OutboxStatus.PENDING
                entry.not_before = now + timedelta(seconds=2**attempts)
