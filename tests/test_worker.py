from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.metrics import Metrics
from bot.worker import Batched, Defer, Expired, Verdict, Worker
from dialogs.types import ScheduledStatus
from storage import schedule
from storage.db import Database
from storage.models import AuditEvent, ScheduledItem

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _add_items(database: Database, count: int, *, kind: str = "test", due: datetime = NOW) -> None:
    with database.session() as session:
        session.add_all(
            ScheduledItem(kind=kind, due_at=due, idempotency_key=f"{kind}:{i}")
            for i in range(count)
        )


def _statuses(database: Database) -> dict[str, ScheduledStatus]:
    with database.session() as session:
        rows = session.execute(sa.select(ScheduledItem.idempotency_key, ScheduledItem.status))
        return {key: status for key, status in rows.all()}  # noqa: C416 - Row pairs


def test_a_sweep_runs_every_overdue_item_once_however_late(database: Database) -> None:
    _add_items(database, 3, due=NOW - timedelta(days=2))  # two days of downtime
    _add_items(database, 1, kind="later", due=NOW + timedelta(hours=1))
    seen: list[str] = []

    def handler(session: Session, item: ScheduledItem, now: datetime) -> str:
        seen.append(item.idempotency_key)
        return "ok"

    worker = Worker(
        database=database,
        metrics=Metrics(),
        handlers={"test": handler, "later": handler},
        clock=lambda: NOW,
    )
    assert worker.sweep() == 3
    assert worker.sweep() == 0
    assert sorted(seen) == ["test:0", "test:1", "test:2"]
    assert _statuses(database) == {
        "test:0": ScheduledStatus.DONE,
        "test:1": ScheduledStatus.DONE,
        "test:2": ScheduledStatus.DONE,
        "later:0": ScheduledStatus.PENDING,
    }


def test_a_failing_item_is_retried_with_backoff_then_marked_failed(database: Database) -> None:
    _add_items(database, 1)
    clock = [NOW]

    def handler(session: Session, item: ScheduledItem, now: datetime) -> str:
        raise RuntimeError("provider down")

    worker = Worker(
        database=database, metrics=Metrics(), handlers={"test": handler}, clock=lambda: clock[0]
    )
    worker.sweep()
    with database.session() as session:
        item = session.scalars(sa.select(ScheduledItem)).one()
        assert (item.status, item.attempts) == (ScheduledStatus.PENDING, 1)
        assert item.due_at == NOW + timedelta(seconds=30)
        assert item.outcome == "RuntimeError"
    for _ in range(10):
        clock[0] += timedelta(hours=1)
        worker.sweep()
    with database.session() as session:
        item = session.scalars(sa.select(ScheduledItem)).one()
        assert (item.status, item.attempts) == (ScheduledStatus.FAILED, 5)


def test_items_of_a_dead_worker_are_given_back_after_the_lease(database: Database) -> None:
    _add_items(database, 2)
    with database.session() as session:
        claimed = schedule.claim_due(session, now=NOW, worker_id="dead", kinds=["test"])
        assert len(claimed) == 2
    with database.session() as session:
        assert (
            schedule.release_stale(
                session, now=NOW + timedelta(minutes=1), lease=timedelta(minutes=5)
            )
            == 0
        )
        assert (
            schedule.release_stale(
                session, now=NOW + timedelta(minutes=6), lease=timedelta(minutes=5)
            )
            == 2
        )
    assert set(_statuses(database).values()) == {ScheduledStatus.PENDING}


def test_concurrent_workers_never_claim_the_same_item(database: Database) -> None:
    _add_items(database, 300)
    claims: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def claimer(name: str) -> None:
        mine: list[int] = []
        try:
            start.wait()
            while True:
                with database.session() as session:
                    batch = schedule.claim_due(
                        session, now=NOW, worker_id=name, kinds=["test"], limit=7
                    )
                if not batch:
                    break
                mine.extend(item.id for item in batch)
        except BaseException as error:  # surfaced below
            errors.append(error)
        claims[name] = mine

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    every = [item_id for ids in claims.values() for item_id in ids]
    assert len(every) == 300
    assert len(set(every)) == 300


def _audit_rows(database: Database) -> list[str]:
    with database.session() as session:
        return sorted(session.scalars(sa.select(AuditEvent.action)).all())


def test_a_batched_kind_runs_the_items_of_a_sweep_together(database: Database) -> None:
    _add_items(database, 5, due=NOW - timedelta(hours=1))
    calls: list[list[str]] = []
    later = NOW + timedelta(hours=3)

    def many(session: Session, items: Sequence[ScheduledItem], now: datetime) -> dict[int, Verdict]:
        calls.append([item.idempotency_key for item in items])
        verdicts: dict[int, Verdict] = {}
        for item in items:
            number = int(item.idempotency_key.split(":")[1])
            session.add(AuditEvent(actor="worker", action=f"ran {number}"))
            verdicts[item.id] = (
                Expired("meeting is gone")
                if number == 1
                else Defer(later, "quiet_hours")
                if number == 2
                else f"done {number}"
            )
        return verdicts

    worker = Worker(
        database=database, metrics=Metrics(), handlers={"test": Batched(many)}, clock=lambda: NOW
    )
    assert worker.sweep() == 5
    assert calls == [[f"test:{i}" for i in range(5)]]  # one call, one transaction
    with database.session() as session:
        rows = session.execute(
            sa.select(
                ScheduledItem.idempotency_key,
                ScheduledItem.status,
                ScheduledItem.outcome,
                ScheduledItem.due_at,
                ScheduledItem.attempts,
            ).order_by(ScheduledItem.id)
        ).all()
    assert [tuple(row) for row in rows] == [
        ("test:0", ScheduledStatus.DONE, "done 0", NOW - timedelta(hours=1), 1),
        ("test:1", ScheduledStatus.EXPIRED, "meeting is gone", NOW - timedelta(hours=1), 1),
        ("test:2", ScheduledStatus.PENDING, "quiet_hours", later, 0),  # a deferral costs nothing
        ("test:3", ScheduledStatus.DONE, "done 3", NOW - timedelta(hours=1), 1),
        ("test:4", ScheduledStatus.DONE, "done 4", NOW - timedelta(hours=1), 1),
    ]
    assert _audit_rows(database) == [f"ran {i}" for i in range(5)]


def test_a_failing_batch_is_run_again_item_by_item_and_only_the_bad_one_retries(
    database: Database,
) -> None:
    _add_items(database, 4)
    sizes: list[int] = []

    def many(session: Session, items: Sequence[ScheduledItem], now: datetime) -> dict[int, Verdict]:
        sizes.append(len(items))
        for item in items:
            session.add(AuditEvent(actor="worker", action=f"ran {item.idempotency_key}"))
            session.flush()  # the batch's work reaches the database before the failure
            if item.idempotency_key == "test:2":
                raise RuntimeError("bad data")
        return {item.id: "ok" for item in items}

    worker = Worker(
        database=database, metrics=Metrics(), handlers={"test": Batched(many)}, clock=lambda: NOW
    )
    worker.sweep()
    assert sizes == [4, 1, 1, 1, 1]
    assert _statuses(database) == {
        "test:0": ScheduledStatus.DONE,
        "test:1": ScheduledStatus.DONE,
        "test:2": ScheduledStatus.PENDING,
        "test:3": ScheduledStatus.DONE,
    }
    # The failed batch left nothing behind: each good item's work is there once.
    assert _audit_rows(database) == ["ran test:0", "ran test:1", "ran test:3"]
    with database.session() as session:
        bad = session.scalars(
            sa.select(ScheduledItem).where(ScheduledItem.idempotency_key == "test:2")
        ).one()
        assert (bad.attempts, bad.due_at, bad.outcome) == (
            1,
            NOW + timedelta(seconds=30),
            "RuntimeError",
        )


def test_a_batch_with_an_item_taken_over_meanwhile_keeps_only_its_own_work(
    database: Database,
) -> None:
    _add_items(database, 3)
    taken: list[int] = []

    def many(session: Session, items: Sequence[ScheduledItem], now: datetime) -> dict[int, Verdict]:
        if not taken:
            # Another worker took item 1 over while this one stalled (in its own transaction).
            with database.session() as other:
                other.execute(
                    sa.update(ScheduledItem)
                    .where(ScheduledItem.idempotency_key == "test:1")
                    .values(claimed_by="other-worker")
                )
            taken.append(1)
        for item in items:
            session.add(AuditEvent(actor="worker", action=f"ran {item.idempotency_key}"))
        return {item.id: "ok" for item in items}

    worker = Worker(
        database=database,
        metrics=Metrics(),
        handlers={"test": Batched(many)},
        clock=lambda: NOW,
        worker_id="this-worker",
    )
    worker.sweep()
    assert _statuses(database) == {
        "test:0": ScheduledStatus.DONE,
        "test:1": ScheduledStatus.CLAIMED,  # the other worker's now, untouched by this one
        "test:2": ScheduledStatus.DONE,
    }
    assert _audit_rows(database) == ["ran test:0", "ran test:2"]


def test_a_running_worker_wakes_when_the_next_item_falls_due_not_at_the_next_poll(
    database: Database,
) -> None:
    ran = threading.Event()
    ran_at: list[datetime] = []

    def handler(session: Session, item: ScheduledItem, now: datetime) -> str:
        ran_at.append(datetime.now(UTC))
        ran.set()
        return "ok"

    due = datetime.now(UTC) + timedelta(seconds=2)
    _add_items(database, 1, due=due)
    worker = Worker(
        database=database, metrics=Metrics(), handlers={"test": handler}, poll_seconds=600
    )
    worker.start()
    try:
        assert ran.wait(timeout=30), "the item waited for the next poll, ten minutes away"
    finally:
        worker.stop()
    assert due <= ran_at[0] < due + timedelta(seconds=5)
    assert _statuses(database) == {"test:0": ScheduledStatus.DONE}
