"""Writing an outgoing message: the message row and its outbox row, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialogs.sms import count_segments
from dialogs.types import Author, Channel, DeliveryStatus, Direction, OutboxStatus, Purpose
from storage.db import copy_rows, reserve_ids
from storage.models import Message, OutboxEntry

_MESSAGE = cast(sa.Table, Message.__table__)
_OUTBOX = cast(sa.Table, OutboxEntry.__table__)


def enqueue(
    session: Session,
    *,
    channel: Channel,
    text: str,
    purpose: Purpose,
    now: datetime,
    young_person_id: int | None = None,
    address: str | None = None,
    author: Author = Author.BOT,
    staff_id: int | None = None,
    not_before: datetime | None = None,
) -> Message:
    """A message to a young person (or, with ``address``, to someone not known), to be sent
    from ``not_before`` (default ``now``) on. The SMS segment count is stored with it."""
    message = Message(
        **outgoing_row(
            channel=channel,
            text=text,
            now=now,
            young_person_id=young_person_id,
            address=address,
            author=author,
            staff_id=staff_id,
        )
    )
    session.add(message)
    session.flush()
    session.add(entry_for(message, purpose=purpose, not_before=not_before or now))
    return message


def enqueue_many(
    session: Session,
    messages: Sequence[Message],
    *,
    purpose: Purpose,
    not_before: datetime,
) -> None:
    """Write many outgoing messages and their outbox rows in two batched inserts."""
    enqueue_each(session, [(message, purpose, not_before) for message in messages])


def enqueue_each(session: Session, messages: Sequence[tuple[Message, Purpose, datetime]]) -> None:
    """:func:`enqueue_many` with a purpose and a ``not_before`` for each message.

    The rows go in through Core, not the unit of work (see :func:`insert_rows`). Each message
    gets its ``id``; the objects themselves stay out of the session.
    """
    columns = [column.key for column in _MESSAGE.columns if column.key != "id"]
    rows = [
        ({key: getattr(message, key) for key in columns}, purpose, not_before)
        for message, purpose, not_before in messages
    ]
    for message_id, (message, _, _) in zip(insert_rows(session, rows), messages, strict=True):
        message.id = message_id


def insert_rows(
    session: Session, rows: Sequence[tuple[dict[str, Any], Purpose, datetime]]
) -> list[int]:
    """Outgoing messages given as rows (see :func:`outgoing_row`), each with its outbox row; the
    new message ids, in order.

    On PostgreSQL the message ids are reserved from the sequence and both tables are written with
    ``COPY``; SQLite cannot hand back many new ids in order, so there the messages go in one by
    one and the outbox rows in one ``executemany``.
    """
    if not rows:
        return []
    session.flush()  # what the unit of work holds goes first (an inbound message keeps its place)
    connection = session.connection()
    ids = reserve_ids(session, "message", len(rows))
    if ids is not None:
        copy_rows(
            session,
            _MESSAGE,
            [row | {"id": message_id} for message_id, (row, _, _) in zip(ids, rows, strict=True)],
        )
    else:
        ids = []
        for row, _, _ in rows:
            key = connection.execute(sa.insert(_MESSAGE), row).inserted_primary_key
            assert key is not None  # an INSERT of one row
            ids.append(int(key[0]))
    entries = [
        {
            "message_id": message_id,
            "channel": row["channel"],
            "purpose": purpose,
            "status": OutboxStatus.PENDING,
            "not_before": not_before,
            "attempts": 0,
            "unknown_outcomes": 0,
            "created_at": row["created_at"],
        }
        for message_id, (row, purpose, not_before) in zip(ids, rows, strict=True)
    ]
    if session.get_bind().dialect.name == "postgresql":
        copy_rows(session, _OUTBOX, entries)
    else:
        connection.execute(sa.insert(_OUTBOX), entries)
    return ids


def outgoing_row(
    *,
    channel: Channel,
    text: str,
    now: datetime,
    young_person_id: int | None = None,
    address: str | None = None,
    author: Author = Author.BOT,
    staff_id: int | None = None,
) -> dict[str, Any]:
    """The columns of an outgoing message (every one but the id), for :func:`insert_rows`."""
    return {
        "young_person_id": young_person_id,
        "address": address,
        "direction": Direction.OUTBOUND,
        "channel": channel,
        "author": author,
        "staff_id": staff_id,
        "text": text,
        "provider_id": None,
        "status": DeliveryStatus.QUEUED,
        "error_code": None,
        "segments": count_segments(text).count if channel is Channel.SMS else None,
        "created_at": now,
        "sent_at": None,
        "delivered_at": None,
        "status_changed_at": None,
    }


def entry_for(message: Message, *, purpose: Purpose, not_before: datetime) -> OutboxEntry:
    return OutboxEntry(
        message_id=message.id,
        channel=message.channel,
        purpose=purpose,
        not_before=not_before,
        created_at=message.created_at,
    )
