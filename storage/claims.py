"""Claiming rows so that several processes share work and none does it twice.

On PostgreSQL the candidates are read ``FOR UPDATE SKIP LOCKED``: a row another process is
claiming is passed over, not waited for. The claim itself is an ``UPDATE`` guarded by the state
the row must still be in, so it is also safe on SQLite, which has no row locks.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session


def claim_ids(
    session: Session,
    candidates: sa.Select[Any],
    *,
    model: Any,
    guard: sa.ColumnElement[bool],
    values: dict[str, Any],
) -> list[int]:
    """The ids of ``candidates`` that this session moved to ``values`` while ``guard`` held."""
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(of=model, skip_locked=True)
    ids = list(session.scalars(candidates).all())
    if not ids:
        return []
    # One statement for the batch; RETURNING says which rows the guard let through.
    claimed = set(
        session.scalars(
            sa.update(model)
            .where(model.id.in_(ids), guard)
            .values(**values)
            .returning(model.id)
            .execution_options(synchronize_session=False)
        ).all()
    )
    return [row_id for row_id in ids if row_id in claimed]  # in the candidates' order


def update_unlocked(
    session: Session, candidates: sa.Select[Any], *, model: Any, values: dict[str, Any]
) -> int:
    """Update the rows of ``candidates`` that no other transaction holds right now.

    Used to take over the work of a stopped process: a row another process is busy with is
    passed over (it is alive after all), and no two processes wait on each other's rows, so two
    workers doing this at once can never deadlock.
    """
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(of=model, skip_locked=True)
    ids = list(session.scalars(candidates.order_by(model.id)).all())
    if not ids:
        return 0
    result = session.execute(
        sa.update(model)
        .where(model.id.in_(ids))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
