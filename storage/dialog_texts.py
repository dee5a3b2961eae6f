"""A municipality's own wording of the dialogs' texts (``dialog_text_override``).

A row is one Danish source text in one language for one municipality. Every function takes the
municipality's id, so a caller can only reach its own rows. Saving a text clears its review
unless the saver reviews it; marking it reviewed leaves ``updated_at`` alone, since the text
did not change.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import DialogTextOverride

Stamp = tuple[int, datetime]


def overrides(
    session: Session, municipality_id: int, language: str | None = None
) -> list[DialogTextOverride]:
    query = sa.select(DialogTextOverride).where(
        DialogTextOverride.municipality_id == municipality_id
    )
    if language is not None:
        query = query.where(DialogTextOverride.language == language)
    return list(session.scalars(query.order_by(DialogTextOverride.language, DialogTextOverride.id)))


def get(
    session: Session, municipality_id: int, language: str, source: str
) -> DialogTextOverride | None:
    return session.scalar(
        sa.select(DialogTextOverride).where(
            DialogTextOverride.municipality_id == municipality_id,
            DialogTextOverride.language == language,
            DialogTextOverride.source == source,
        )
    )


def save(
    session: Session,
    *,
    municipality_id: int,
    language: str,
    source: str,
    text: str,
    staff_id: int,
    reviewed: bool,
    now: datetime,
) -> DialogTextOverride:
    """Create or replace the municipality's text; reviewed by ``staff_id`` only if ``reviewed``.

    Two coordinators saving the same new text at once both succeed, and the later save wins:
    the row is inserted unless it exists by then, then read and written.
    """
    row = get(session, municipality_id, language, source)
    if row is None:
        insert = (
            postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        )
        key = {"municipality_id": municipality_id, "language": language, "source": source}
        session.execute(
            insert(DialogTextOverride).on_conflict_do_nothing(index_elements=list(key)),
            [{**key, "text": text, "updated_at": now}],
        )
        row = session.scalars(
            sa.select(DialogTextOverride).filter_by(**key).execution_options(populate_existing=True)
        ).one()
    row.text = text
    row.updated_by_id = staff_id
    row.updated_at = now
    row.reviewed_by_id = staff_id if reviewed else None
    row.reviewed_at = now if reviewed else None
    session.flush()
    return row


def delete(session: Session, municipality_id: int, language: str, source: str) -> bool:
    """Back to the shipped text; False when the municipality had no text of its own."""
    row = get(session, municipality_id, language, source)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def mark_reviewed(
    session: Session, row: DialogTextOverride, *, staff_id: int, now: datetime
) -> None:
    session.execute(
        sa.update(DialogTextOverride)
        .where(DialogTextOverride.id == row.id)
        # Keep updated_at: the text is the same, only its review is new.
        .values(reviewed_by_id=staff_id, reviewed_at=now, updated_at=DialogTextOverride.updated_at)
    )
    session.refresh(row)


def stamps(session: Session, municipality_ids: Collection[int]) -> dict[int, Stamp]:
    """How many texts each municipality has and when the newest changed: a cheap question
    that tells a cache whether its copy of a municipality's texts is still good."""
    if not municipality_ids:
        return {}
    rows = session.execute(
        sa.select(
            DialogTextOverride.municipality_id,
            sa.func.count(),
            sa.func.max(DialogTextOverride.updated_at),
        )
        .where(DialogTextOverride.municipality_id.in_(set(municipality_ids)))
        .group_by(DialogTextOverride.municipality_id)
    ).all()
    return {mid: (int(count), newest) for mid, count, newest in rows}


def text_map(session: Session, municipality_id: int) -> dict[tuple[str, str], str]:
    """(language, source) -> the municipality's text, for every text it has."""
    rows = session.execute(
        sa.select(
            DialogTextOverride.language, DialogTextOverride.source, DialogTextOverride.text
        ).where(DialogTextOverride.municipality_id == municipality_id)
    ).all()
    return {(language, source): text for language, source, text in rows}
