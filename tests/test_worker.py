from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.metrics import Metrics
from bot.worker import Worker
from dialogs.types import ScheduledStatus
from storage import schedule
from storage.db import Database
from storage.models import ScheduledItem

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
