"""Claiming due scheduled items so that several workers share them and none runs twice.

The claim is :func:`storage.claims.claim_ids`: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, and a
guarded ``UPDATE ... WHERE status = 'pending'`` everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialogs.types import ScheduledStatus
from storage.claims import claim_ids
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


def release_stale(session: Session, *, now: datetime, lease: timedelta) -> int:
    """Give back items whose worker died while holding them (claimed longer ago than ``lease``)."""
    result = session.execute(
        sa.update(ScheduledItem)
        .where(
            ScheduledItem.status == ScheduledStatus.CLAIMED,
            ScheduledItem.claimed_at < now - lease,
        )
        .values(status=ScheduledStatus.PENDING, claimed_by=None, claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def finish(
    session: Session,
    item_ids: Sequence[int],
    *,
    status: ScheduledStatus,
    now: datetime,
    outcome: str | None = None,
) -> None:
    session.execute(
        sa.update(ScheduledItem)
        .where(ScheduledItem.id.in_(item_ids))
        .values(status=status, finished_at=now, outcome=outcome)
        .execution_options(synchronize_session=False)
    )


def retry_later(session: Session, item_id: int, *, due_at: datetime, error: str) -> None:
    session.execute(
        sa.update(ScheduledItem)
        .where(ScheduledItem.id == item_id)
        .values(
            status=ScheduledStatus.PENDING,
            due_at=due_at,
            claimed_by=None,
            claimed_at=None,
            outcome=error[:200],
        )
        .execution_options(synchronize_session=False)
    )
