"""Claiming due scheduled items so that several workers share them and none runs twice.

The claim is :func:`storage.claims.claim_ids`: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, and a
guarded ``UPDATE ... WHERE status = 'pending'`` everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialogs.types import ScheduledStatus
from storage.claims import claim_ids, update_unlocked
from storage.models import ScheduledItem


def claim_due(
    session: Session,
    *,
    now: datetime,
    worker_id: str,
    kinds: Iterable[str],
    limit: int = 100,
) -> list[ScheduledItem]:
    kinds = list(kinds)
    if not kinds:
        return []
    query = (
        sa.select(ScheduledItem.id)
        .where(
            ScheduledItem.status == ScheduledStatus.PENDING,
            ScheduledItem.due_at <= now,
            ScheduledItem.kind.in_(kinds),
        )
        .order_by(ScheduledItem.due_at, ScheduledItem.id)
        .limit(limit)
    )
    claimed = claim_ids(
        session,
        query,
        model=ScheduledItem,
        guard=ScheduledItem.status == ScheduledStatus.PENDING,
        values={
            "status": ScheduledStatus.CLAIMED,
            "claimed_by": worker_id,
            "claimed_at": now,
            "attempts": ScheduledItem.attempts + 1,
        },
    )
    if not claimed:
        return []
    items = session.scalars(
        sa.select(ScheduledItem)
        .where(ScheduledItem.id.in_(claimed))
        .order_by(ScheduledItem.due_at, ScheduledItem.id)
        .execution_options(populate_existing=True)
    ).all()
    return list(items)


def next_due(session: Session, *, kinds: Iterable[str]) -> datetime | None:
    """When the earliest pending item of ``kinds`` falls due (None if there is none)."""
    return session.scalar(
        sa.select(sa.func.min(ScheduledItem.due_at)).where(
            ScheduledItem.status == ScheduledStatus.PENDING, ScheduledItem.kind.in_(list(kinds))
        )
    )


def release_stale(session: Session, *, now: datetime, lease: timedelta) -> int:
    """Give back items whose worker died while holding them (claimed longer ago than ``lease``)."""
    stale = sa.select(ScheduledItem.id).where(
        ScheduledItem.status == ScheduledStatus.CLAIMED,
        ScheduledItem.claimed_at < now - lease,
    )
    return update_unlocked(
        session,
        stale,
        model=ScheduledItem,
        values={"status": ScheduledStatus.PENDING, "claimed_by": None, "claimed_at": None},
    )


def finish(
    session: Session,
    item_ids: Sequence[int],
    *,
    status: ScheduledStatus,
    now: datetime,
    outcome: str | None = None,
    claimed_by: str | None = None,
) -> int:
    """Close items; with ``claimed_by``, only those this worker still holds.

    The guard is what makes a run count once: if a worker stalled past its lease and another took
    the item over, the first worker's finish touches nothing, and it rolls its work back.
    """
    query = sa.update(ScheduledItem).where(ScheduledItem.id.in_(item_ids))
    if claimed_by is not None:
        query = query.where(
            ScheduledItem.status == ScheduledStatus.CLAIMED,
            ScheduledItem.claimed_by == claimed_by,
        )
    result = session.execute(
        query.values(
            status=status, finished_at=now, outcome=outcome and outcome[:200]
        ).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def schedule(
    session: Session,
    *,
    kind: str,
    key: str,
    due_at: datetime,
    now: datetime,
    **fields: Any,
) -> bool:
    """Add a pending item unless one with ``key`` exists already; True if it was added.

    Keys name what the item is for (``meeting_reminder:12:2026-11-24T09:00:00+00:00:1440``), so
    scheduling the same thing twice, from two processes or after a retry, makes one item.
    """
    exists = session.scalar(sa.select(ScheduledItem.id).where(ScheduledItem.idempotency_key == key))
    if exists is not None:
        return False
    try:
        with session.begin_nested():
            session.add(
                ScheduledItem(
                    kind=kind, idempotency_key=key, due_at=due_at, created_at=now, **fields
                )
            )
    except sa.exc.IntegrityError:
        return False  # another process scheduled it first
    return True


def cancel(
    session: Session, *conditions: sa.ColumnElement[bool], now: datetime, reason: str
) -> int:
    """Cancel every pending item matching ``conditions``."""
    result = session.execute(
        sa.update(ScheduledItem)
        .where(ScheduledItem.status == ScheduledStatus.PENDING, *conditions)
        .values(status=ScheduledStatus.CANCELLED, finished_at=now, outcome=reason[:200])
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def retry_later(
    session: Session, item_id: int, *, due_at: datetime, error: str, counts: bool = True
) -> None:
    """Back to pending at ``due_at``; ``counts=False`` for a deferral that is not a failure."""
    values: dict[str, Any] = {
        "status": ScheduledStatus.PENDING,
        "due_at": due_at,
        "claimed_by": None,
        "claimed_at": None,
        "outcome": error[:200],
    }
    if not counts:
        values["attempts"] = ScheduledItem.attempts - 1
    session.execute(
        sa.update(ScheduledItem)
        .where(ScheduledItem.id == item_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
