"""The dispatcher: claims due outbox rows and hands them to their channel's adapter.

Rows are claimed like scheduled items (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a guarded
update everywhere), so several workers share the outbox without sending anything twice. A batch
is sent concurrently on one event loop owned by the dispatcher (so async SDK clients keep one
loop for their whole life), paced by the providers' rate limits. What an adapter raises decides
what happens next: try again later, reconcile an unknown outcome, fall back from Telegram to SMS,
record an opt-out made at the provider, or give up with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from bot.channels import (
    ChannelAdapter,
    ChannelError,
    Delivery,
    OptedOutAtProvider,
    OutcomeUnknown,
    RetryLater,
    SendResult,
    Unreachable,
)
from bot.metrics import Metrics
from bot.quiet import quiet_hours
from bot.ratelimit import PerKey, TokenBucket
from dialogs.sms import count_segments, sms_text
from dialogs.types import (
    Channel,
    ConsentSource,
    DeliveryStatus,
    HandoffPriority,
    HandoffReason,
    OutboxStatus,
    Purpose,
    YoungPersonStatus,
)
from storage import consent, handoffs
from storage.claims import claim_ids, update_unlocked
from storage.db import Database
from storage.models import Message, OutboxEntry, YoungPerson, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_ATTEMPTS = 8
# A row still "sending" this long after its claim belonged to a process that died mid-send.
SENDING_LEASE = timedelta(minutes=10)
MAX_BACKOFF = timedelta(minutes=10)
# Batches claimed and sending at once: the next is claimed while one is still being sent.
BATCHES_IN_FLIGHT = 2
# Crisis help and the one STOP confirmation may reach a young person who has opted out.
ALWAYS_ALLOWED = (Purpose.CRISIS, Purpose.OPT_OUT)


@dataclass(frozen=True)
class Limits:
    telegram_per_second: float = 30.0
    telegram_per_chat_per_second: float = 1.0
    sms_segments_per_second: float = 10.0
    concurrency: int = 16


@dataclass(frozen=True)
class _Job:
    entry_id: int
    channel: Channel
    delivery: Delivery
    attempts: int
    claimed_at: datetime
    reconcile: bool = False  # look the message up instead of sending it
    since: datetime | None = None  # the earliest the message can have reached the provider


def backoff(attempts: int) -> timedelta:
    """2 s, 4 s, 8 s ... up to ten minutes."""
    return min(timedelta(seconds=2**attempts), MAX_BACKOFF)


class Dispatcher:
    def __init__(
        self,
        *,
        database: Database,
        adapters: Mapping[Channel, ChannelAdapter],
        metrics: Metrics | None = None,
        limits: Limits | None = None,
        worker_id: str = "dispatcher",
        clock: Callable[[], datetime] = utcnow,
        sending_lease: timedelta = SENDING_LEASE,
    ) -> None:
        self.database = database
        self.sending_lease = sending_lease
        self.adapters = dict(adapters)
        self.metrics = metrics or Metrics()
        self.limits = limits or Limits()
        self.worker_id = worker_id
        self.clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._buckets: dict[Channel, TokenBucket] = {}
        self._per_chat: PerKey | None = None
        self._semaphore: asyncio.Semaphore | None = None
        # Called after SMS sends are recorded: a status callback that came in before its send
        # was recorded has been waiting for exactly that (the runtime wakes its pump with it).
        self.on_recorded: Callable[[], object] | None = None

    # ------------------------------------------------------------------ the loop

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._start(coroutine).result()

    def _start(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Run ``coroutine`` on the dispatcher's own event loop (started on first use)."""
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                # Blocking SDK calls (Twilio's) run in this pool: as many as may be in flight,
                # not asyncio's default of a few per CPU.
                self._loop.set_default_executor(
                    ThreadPoolExecutor(
                        max_workers=self.limits.concurrency, thread_name_prefix="stifinder-send"
                    )
                )
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="stifinder-dispatch", daemon=True
                )
                self._thread.start()
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coroutine, loop)

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None:
            return

        async def close_adapters() -> None:
            for adapter in self.adapters.values():
                await adapter.close()

        asyncio.run_coroutine_threadsafe(close_adapters(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)
        loop.close()

    # ------------------------------------------------------------------ one pass

    def dispatch_due(self, *, limit: int = 200, young_person_id: int | None = None) -> int:
        """Send what is due (and settle unknown outcomes); returns how many rows were handled.

        Batches overlap: while one batch is being sent, the next is claimed and its sends join
        the queue for the same ``Limits.concurrency`` slots, and a finished batch is recorded
        while the next one sends. So the slots stay full instead of emptying while a batch's
        slowest send, its recording and the next claim run one after the other.
        """
        handled = 0
        flying: deque[tuple[list[_Job], Future[list[SendResult | Exception | None]]]] = deque()
        more = True
        try:
            while True:
                while more and len(flying) < BATCHES_IN_FLIGHT:
                    jobs = self._prepare(limit=limit, young_person_id=young_person_id)
                    more = len(jobs) >= limit
                    if jobs:
                        flying.append((jobs, self._start(self._send_all(jobs))))
                if not flying:
                    return handled
                jobs, sending = flying.popleft()
                self._record_all(jobs, sending.result())
                handled += len(jobs)
        finally:
            # Only reached with batches left when claiming or recording failed: what was sent
            # is still recorded, rather than looked up at the provider after the lease.
            while flying:
                jobs, sending = flying.popleft()
                self._record_all(jobs, sending.result())

    # ------------------------------------------------------------------ claiming

    def _claim(
        self,
        session: Session,
        status: OutboxStatus,
        *,
        limit: int,
        young_person_id: int | None,
    ) -> list[int]:
        now = self.clock()
        query = (
            sa.select(OutboxEntry.id)
            .where(
                OutboxEntry.status == status,
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
        return claim_ids(
            session,
            query,
            model=OutboxEntry,
            guard=OutboxEntry.status == status,
            values={
                "status": OutboxStatus.SENDING,
                "claimed_by": self.worker_id,
                "claimed_at": now,
                # Settling an unknown outcome is not another attempt at sending.
                "attempts": OutboxEntry.attempts + (0 if status is OutboxStatus.UNKNOWN else 1),
            },
        )

    def _release_stale(self, session: Session) -> None:
        """A process died while sending: it may or may not have gone out, so reconcile it."""
        stale = sa.select(OutboxEntry.id).where(
            OutboxEntry.status == OutboxStatus.SENDING,
            OutboxEntry.claimed_at < self.clock() - self.sending_lease,
        )
        taken = update_unlocked(
            session,
            stale,
            model=OutboxEntry,
            values={
                "status": OutboxStatus.UNKNOWN,
                "unknown_outcomes": OutboxEntry.unknown_outcomes + 1,
                "last_error": "the sending process stopped",
            },
        )
        if taken:
            log.warning("took over sends of a stopped process", extra={"count": taken})

    def _prepare(self, *, limit: int, young_person_id: int | None) -> list[_Job]:
        jobs: list[_Job] = []
        with self.database.session() as session:
            self._release_stale(session)
            unknown = self._claim(
                session, OutboxStatus.UNKNOWN, limit=limit, young_person_id=young_person_id
            )
            pending = self._claim(
                session,
                OutboxStatus.PENDING,
                limit=max(limit - len(unknown), 0),
                young_person_id=young_person_id,
            )
            rows = self._read(session, unknown + pending, populate=True)
            reconciling = set(unknown)
            for entry_id in unknown + pending:
                job = self._job(session, entry_id, reconcile=entry_id in reconciling)
                if job is not None:
                    jobs.append(job)
            del rows
        return jobs

    def _job(self, session: Session, entry_id: int, *, reconcile: bool) -> _Job | None:
        entry = session.get_one(OutboxEntry, entry_id)
        message = session.get_one(Message, entry.message_id)
        person = (
            session.get(YoungPerson, message.young_person_id) if message.young_person_id else None
        )
        if (
            person is not None
            and person.status is YoungPersonStatus.OPTED_OUT
            and entry.purpose not in ALWAYS_ALLOWED
        ):
            self._give_up(entry, message, "opted_out", OutboxStatus.CANCELLED)
            return None
        if person is not None and entry.purpose is Purpose.PROACTIVE and not reconcile:
            # A retry or a slow queue may have carried it into the night: wait for the morning.
            allowed = quiet_hours(person.municipality).next_allowed(self.clock())
            if allowed > self.clock():
                entry.status = OutboxStatus.PENDING
                entry.not_before = allowed
                entry.attempts -= 1
                entry.last_error = "quiet_hours"
                return None
        if (
            entry.channel is Channel.TELEGRAM
            and person is not None
            and person.telegram_blocked_at is not None
            and not reconcile
        ):
            if not self._fall_back_to_sms(entry, message, person):
                self._give_up(entry, message, "telegram_blocked", OutboxStatus.FAILED)
                return None
            if Channel.SMS not in self.adapters:
                entry.status = OutboxStatus.PENDING  # another process can send SMS
                return None
        address = message.address
        delivery = Delivery(
            message_id=message.id,
            young_person_id=person.id if person else None,
            text=message.text or "",
            phone=person.phone if person else (address if entry.channel is Channel.SMS else None),
            telegram_chat_id=(
                person.telegram_chat_id
                if person
                else (int(address) if entry.channel is Channel.TELEGRAM and address else None)
            ),
        )
        return _Job(
            entry_id=entry.id,
            channel=entry.channel,
            delivery=delivery,
            attempts=entry.attempts,
            claimed_at=entry.claimed_at or self.clock(),
            reconcile=reconcile,
            since=message.created_at - timedelta(minutes=1),
        )

    # ------------------------------------------------------------------ sending

    def _bucket(self, channel: Channel) -> TokenBucket:
        bucket = self._buckets.get(channel)
        if bucket is None:
            rate = {
                Channel.TELEGRAM: self.limits.telegram_per_second,
                Channel.SMS: self.limits.sms_segments_per_second,
            }.get(channel, 1000.0)
            bucket = self._buckets[channel] = TokenBucket(rate)
        return bucket

    async def _send_all(self, jobs: list[_Job]) -> list[SendResult | Exception | None]:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.limits.concurrency)
            self._per_chat = PerKey(self.limits.telegram_per_chat_per_second)
        return list(await asyncio.gather(*(self._send_one(job) for job in jobs)))

    async def _send_one(self, job: _Job) -> SendResult | Exception | None:
        adapter = self.adapters[job.channel]
        assert self._semaphore is not None and self._per_chat is not None
        try:
            if job.reconcile:
                # Give the status a little time to appear at the provider.
                since = job.since or job.claimed_at - timedelta(days=1)
                return await adapter.reconcile(job.delivery, since)
            cost = 1.0
            if job.channel is Channel.SMS:
                cost = float(count_segments(job.delivery.text).count or 1)
            if job.channel is Channel.TELEGRAM and job.delivery.telegram_chat_id is not None:
                await self._per_chat.take(job.delivery.telegram_chat_id)
            # A free slot first, then the limiter: nothing waits between the limiter letting a
            # send go and the send, and the send counts in the limit until it is answered.
            async with self._semaphore, self._bucket(job.channel).sending(cost):
                return await adapter.send(job.delivery)
        except Exception as error:
            return error

    # ------------------------------------------------------------------ results

    def _record_all(self, jobs: list[_Job], outcomes: list[SendResult | Exception | None]) -> None:
        """Record a batch's outcomes in one transaction; if that fails, one by one."""
        pairs = list(zip(jobs, outcomes, strict=True))
        try:
            with self.database.session() as session:
                held, _rows = self._hold(session, jobs)
                for job, outcome in pairs:
                    if job.entry_id in held:
                        self._record(session, job, outcome)
            if self.on_recorded is not None and any(
                job.channel is Channel.SMS and isinstance(outcome, SendResult)
                for job, outcome in pairs
            ):
                self.on_recorded()
            return
        except Exception:
            log.exception("recording a batch failed; recording one by one")
        for job, outcome in pairs:
            try:
                with self.database.session() as session:
                    held, _rows = self._hold(session, [job])
                    if held:
                        self._record(session, job, outcome)
            except Exception:
                # Left "sending": after the lease it is looked up at the provider, not resent.
                log.exception("recording a send failed", extra={"outbox": job.entry_id})

    def _hold(self, session: Session, jobs: list[_Job]) -> tuple[set[int], list[object]]:
        """Lock the batch's rows that are still ours, and read them in a few queries.

        A row another process took over (its lease ran out while the send was slow) is left to
        that process, which looks the message up at the provider. Rows of others are skipped, not
        waited for, so two dispatchers never wait on each other.
        """
        ids = [job.entry_id for job in jobs]
        query = (
            sa.select(OutboxEntry)
            .where(
                OutboxEntry.id.in_(ids),
                OutboxEntry.status == OutboxStatus.SENDING,
                OutboxEntry.claimed_by == self.worker_id,
            )
            .order_by(OutboxEntry.id)
            .execution_options(populate_existing=True)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        entries = session.scalars(query).all()
        claimed = {job.entry_id: job.claimed_at for job in jobs}
        held = {e.id for e in entries if e.claimed_at == claimed[e.id]}
        if len(held) < len(ids):
            log.warning(
                "sends taken over by another process", extra={"count": len(ids) - len(held)}
            )
        return held, self._read(session, list(held), populate=False)

    @staticmethod
    def _read(session: Session, entry_ids: list[int], *, populate: bool) -> list[object]:
        """Load a batch's entries, messages and young people (with their municipalities) in a few
        queries, so the per-row code after it finds them in the session. The caller keeps the
        returned list while it works: the session holds its objects only weakly."""
        if not entry_ids:
            return []
        options = {"populate_existing": True} if populate else {}
        entries = session.scalars(
            sa.select(OutboxEntry).where(OutboxEntry.id.in_(entry_ids)).execution_options(**options)
        ).all()
        messages = session.scalars(
            sa.select(Message)
            .where(Message.id.in_([e.message_id for e in entries]))
            .execution_options(**options)
        ).all()
        ids = {m.young_person_id for m in messages if m.young_person_id is not None}
        people = session.scalars(
            sa.select(YoungPerson)
            .where(YoungPerson.id.in_(ids))
            .options(selectinload(YoungPerson.municipality))
            .execution_options(**options)
        ).all()
        return [*entries, *messages, *people]

    def _record(self, session: Session, job: _Job, outcome: SendResult | Exception | None) -> None:
        now = self.clock()
        entry = session.get_one(OutboxEntry, job.entry_id)
        message = session.get_one(Message, entry.message_id)
        person = (
            session.get(YoungPerson, message.young_person_id) if message.young_person_id else None
        )
        channel = job.channel.value
        if job.reconcile and outcome is None:
            # The provider has no trace of it (or cannot tell): send it again.
            entry.status = OutboxStatus.PENDING
            entry.not_before = now
            self.metrics.outbox_resent_after_unknown.labels(channel).inc()
            return
        if isinstance(outcome, SendResult):
            self._sent(entry, message, outcome, now)
            self.metrics.outbox_sent.labels(channel).inc()
            return
        assert isinstance(outcome, Exception)
        self._failed(session, entry, message, person, outcome, job, now)

    def _sent(
        self, entry: OutboxEntry, message: Message, result: SendResult, now: datetime
    ) -> None:
        failed = result.status in (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED)
        entry.status = OutboxStatus.FAILED if failed else OutboxStatus.SENT
        entry.last_error = None
        message.provider_id = result.provider_id or message.provider_id
        message.error_code = result.error_code
        message.sent_at = message.sent_at or now
        message.status_changed_at = now
        # A status callback may already have said more than the send did; never step back.
        if rank(result.status) >= rank(message.status):
            message.status = result.status
        if result.status is DeliveryStatus.DELIVERED:
            message.delivered_at = message.delivered_at or now

    def _failed(
        self,
        session: Session,
        entry: OutboxEntry,
        message: Message,
        person: YoungPerson | None,
        error: Exception,
        job: _Job,
        now: datetime,
    ) -> None:
        channel = job.channel.value
        detail = f"{type(error).__name__}: {error}"[:200]
        entry.last_error = detail
        code = error.code if isinstance(error, ChannelError) else None
        if isinstance(error, OutcomeUnknown):
            entry.status = OutboxStatus.UNKNOWN
            entry.unknown_outcomes += 1
            entry.not_before = now + timedelta(seconds=2)
            self.metrics.outbox_unknown.labels(channel).inc()
            log.warning("send outcome unknown", extra={"outbox": entry.id, "channel": channel})
            return
        if isinstance(error, OptedOutAtProvider) and person is not None:
            self._give_up(entry, message, code or "opted_out", OutboxStatus.FAILED)
            if person.status is not YoungPersonStatus.OPTED_OUT:
                consent.opt_out(
                    session,
                    person,
                    source=ConsentSource.PROVIDER,
                    channel=job.channel,
                    now=now,
                    note=code,
                )
            return
        if isinstance(error, Unreachable) and person is not None:
            self._unreachable(session, entry, message, person, job.channel, code, now)
            return
        if job.reconcile:
            # The lookup failed: still unknown, look again later; sending again could double it.
            entry.status = OutboxStatus.UNKNOWN
            entry.not_before = now + backoff(job.attempts)
            return
        if isinstance(error, RetryLater) or not isinstance(error, ChannelError):
            if not isinstance(error, ChannelError):
                log.error("adapter failed unexpectedly", exc_info=error, extra={"outbox": entry.id})
            if job.attempts >= MAX_ATTEMPTS:
                self._give_up(entry, message, code or "gave_up", OutboxStatus.FAILED)
                self.metrics.outbox_failed.labels(channel).inc()
                return
            after = error.after if isinstance(error, RetryLater) and error.after else 0.0
            entry.status = OutboxStatus.PENDING
            entry.not_before = now + max(timedelta(seconds=after), backoff(job.attempts))
            self.metrics.outbox_retried.labels(channel).inc()
            return
        self._give_up(entry, message, code or "rejected", OutboxStatus.FAILED)
        self.metrics.outbox_failed.labels(channel).inc()

    def _unreachable(
        self,
        session: Session,
        entry: OutboxEntry,
        message: Message,
        person: YoungPerson,
        channel: Channel,
        code: str | None,
        now: datetime,
    ) -> None:
        if channel is Channel.TELEGRAM:
            person.telegram_blocked_at = now
            note = "Telegram: blocked"
            if self._fall_back_to_sms(entry, message, person):
                entry.not_before = now
                entry.status = OutboxStatus.PENDING
                note += "; falling back to SMS"
        else:
            person.sms_error_code = code
            note = f"SMS: error {code}"
        if entry.status is not OutboxStatus.PENDING:
            self._give_up(entry, message, code or "unreachable", OutboxStatus.FAILED)
        # The kontaktperson hears of it in the inbox.
        handoffs.open_handoff(
            session,
            person,
            reason=HandoffReason.CANNOT_REACH,
            priority=HandoffPriority.NORMAL,
            now=now,
            note=note,
            actor="dispatcher",
        )

    @staticmethod
    def _fall_back_to_sms(entry: OutboxEntry, message: Message, person: YoungPerson) -> bool:
        if not person.phone or person.sms_error_code:
            return False
        entry.channel = Channel.SMS
        message.channel = Channel.SMS
        message.text = sms_text(message.text or "")
        message.segments = count_segments(message.text).count
        return True

    @staticmethod
    def _give_up(entry: OutboxEntry, message: Message, code: str, status: OutboxStatus) -> None:
        entry.status = status
        entry.last_error = entry.last_error or code
        message.status = DeliveryStatus.FAILED
        message.error_code = code[:16]


_ORDER = [
    DeliveryStatus.QUEUED,
    DeliveryStatus.SENDING,
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
]


def rank(status: DeliveryStatus) -> int:
    if status in (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED):
        return len(_ORDER)
    return _ORDER.index(status) if status in _ORDER else 0


def stored_rank(
    status: sa.ColumnElement[DeliveryStatus] | InstrumentedAttribute[DeliveryStatus],
) -> sa.ColumnElement[int]:
    """:func:`rank` of a stored status, in SQL: for an update that must not step a status back
    whatever else changed the row since it was read."""
    return sa.case(*((status == each, rank(each)) for each in DeliveryStatus), else_=0)
