"""Inbound events: stored once by the webhook, claimed once by a processor."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dialogs.types import Channel, InboundStatus
from storage.claims import claim_ids
from storage.models import InboundEvent

LEASE = timedelta(minutes=5)


def row(
    *, channel: Channel, dedupe_key: str, payload: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "channel": channel,
        "dedupe_key": dedupe_key,
        "payload": payload,
        "status": InboundStatus.PENDING,
        "attempts": 0,
        "received_at": now,
    }


def insert_statement(dialect: str) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING``: an event whose key was seen before is dropped."""
    if dialect == "postgresql":
        return postgresql.insert(InboundEvent).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(InboundEvent).on_conflict_do_nothing()
    raise RuntimeError(f"unsupported database {dialect}")  # pragma: no cover


def store(
    session: Session, *, channel: Channel, dedupe_key: str, payload: dict[str, Any], now: datetime
) -> bool:
    """Insert the event unless its key was seen before; True when it is new."""
    statement = insert_statement(session.get_bind().dialect.name)
    values = row(channel=channel, dedupe_key=dedupe_key, payload=payload, now=now)
    result = session.execute(statement.values(**values))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim(session: Session, *, now: datetime, limit: int = 50) -> list[InboundEvent]:
    """Claim pending events (and those of a processor that died), oldest first."""
    stale = now - LEASE
    query = (
        sa.select(InboundEvent.id)
        .where(
            sa.or_(
                InboundEvent.status == InboundStatus.PENDING,
                sa.and_(
                    InboundEvent.status == InboundStatus.PROCESSING,
                    InboundEvent.claimed_at < stale,
                ),
            )
        )
        .order_by(InboundEvent.id)
        .limit(limit)
    )
    claimed = claim_ids(
        session,
        query,
        model=InboundEvent,
        guard=sa.or_(
            InboundEvent.status == InboundStatus.PENDING,
            InboundEvent.claimed_at < stale,
        ),
        values={
            "status": InboundStatus.PROCESSING,
            "claimed_at": now,
            "attempts": InboundEvent.attempts + 1,
        },
    )
    if not claimed:
        return []
    return list(
        session.scalars(
            sa.select(InboundEvent)
            .where(InboundEvent.id.in_(claimed))
            .order_by(InboundEvent.id)
            .execution_options(populate_existing=True)
        ).all()
    )


def finish(
    session: Session,
    event_id: int,
    *,
    status: InboundStatus,
    now: datetime,
    error: str | None = None,
) -> None:
    session.execute(
        sa.update(InboundEvent)
        .where(InboundEvent.id == event_id)
        .values(status=status, processed_at=now, error=error[:200] if error else None)
        .execution_options(synchronize_session=False)
    )
