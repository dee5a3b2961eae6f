"""Group commit: many concurrent stores, few transactions, each store back only once durable."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.group_writer import GroupWriter
from dialogs.types import Channel
from storage import inbound
from storage.db import Database
from storage.models import InboundEvent


def _row(key: str) -> dict[str, object]:
    return inbound.row(
        channel=Channel.SMS, dedupe_key=key, payload={"Body": key}, now=datetime.now(UTC)
    )


def test_concurrent_stores_are_all_committed_and_repeats_dropped(database: Database) -> None:
    commits: list[int] = []
    sa.event.listen(database.engine, "commit", lambda _connection: commits.append(1))
    writer = GroupWriter(database.engine, inbound.insert_statement(database.dialect))

    async def many() -> None:
        await asyncio.gather(*(writer.store(_row(f"SM{i % 250}")) for i in range(300)))

    try:
        asyncio.run(many())
    finally:
        writer.stop()
    with database.session() as session:
        keys = set(session.scalars(sa.select(InboundEvent.dedupe_key)).all())
    assert keys == {f"SM{i}" for i in range(250)}
    assert len(commits) < 300  # grouped, not one per store


def test_a_failed_commit_reaches_the_waiting_store(database: Database) -> None:
    writer = GroupWriter(database.engine, sa.insert(InboundEvent))  # no ON CONFLICT: repeats fail
    try:
        asyncio.run(writer.store(_row("SM1")))
        with pytest.raises(sa.exc.IntegrityError):
            asyncio.run(writer.store(_row("SM1")))
        asyncio.run(writer.store(_row("SM2")))  # the writer carries on after a failure
    finally:
        writer.stop()
    with database.session() as session:
        assert sorted(session.scalars(sa.select(InboundEvent.dedupe_key)).all()) == ["SM1", "SM2"]


def test_sqlite_wal_is_checkpointed_beside_the_writer(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/wal.db")
    InboundEvent.metadata.create_all(database.engine)
    writer = GroupWriter(database.engine, inbound.insert_statement(database.dialect))

    async def many() -> None:
        await asyncio.gather(*(writer.store(_row(f"SM{i}")) for i in range(500)))

    try:
        asyncio.run(many())
        deadline = datetime.now(UTC).timestamp() + 10
        while writer.checkpoints == 0 and datetime.now(UTC).timestamp() < deadline:
            asyncio.run(asyncio.sleep(0.05))
        assert writer.checkpoints >= 1
    finally:
        writer.stop()
    with database.engine.connect() as connection:
        busy, frames, done = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        assert (busy, frames - done) == (0, 0)
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(InboundEvent)).scalar() == 500
        )
    database.dispose()


def test_on_sqlite_the_writer_waits_out_another_writer_by_trying_again(tmp_path: Path) -> None:
    """Its connection never sleeps in SQLite's busy handler (1, 2, 5 ... 100 ms between tries):
    it takes the write lock with BEGIN IMMEDIATE and tries again itself while another
    connection holds it, and the row is stored once that one commits."""
    database = Database(f"sqlite:///{tmp_path}/locked.db")
    InboundEvent.metadata.create_all(database.engine)
    writer = GroupWriter(database.engine, inbound.insert_statement(database.dialect))
    released: list[float] = []

    async def store_while_locked() -> float:
        with database.engine.connect() as other:
            other.exec_driver_sql("BEGIN IMMEDIATE")  # the worker's turn, say
            stored = asyncio.create_task(writer.store(_row("SM1")))
            await asyncio.sleep(0.3)
            assert not stored.done()  # it waits for the lock, it does not fail
            other.commit()
            released.append(time.monotonic())
        await stored
        return time.monotonic()

    try:
        done = asyncio.run(store_while_locked())
    finally:
        writer.stop()
    assert writer.lock_waits > 0
    assert done >= released[0]
    with database.session() as session:
        assert session.scalars(sa.select(InboundEvent.dedupe_key)).all() == ["SM1"]
    database.dispose()
