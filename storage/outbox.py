"""Writing an outgoing message: the message row and its outbox row, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from dialogs.sms import count_segments
from dialogs.types import Author, Channel, DeliveryStatus, Direction, Purpose
from storage.models import Message, OutboxEntry


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
    message = outgoing(
        channel=channel,
        text=text,
        now=now,
        young_person_id=young_person_id,
        address=address,
        author=author,
        staff_id=staff_id,
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
    session.add_all(messages)
    session.flush()
    session.add_all(entry_for(m, purpose=purpose, not_before=not_before) for m in messages)


def outgoing(
    *,
    channel: Channel,
    text: str,
    now: datetime,
    young_person_id: int | None = None,
    address: str | None = None,
    author: Author = Author.BOT,
    staff_id: int | None = None,
) -> Message:
    """An outgoing message row, not yet added to a session."""
    return Message(
        young_person_id=young_person_id,
        address=address,
        direction=Direction.OUTBOUND,
        channel=channel,
        author=author,
        staff_id=staff_id,
        text=text,
        status=DeliveryStatus.QUEUED,
        segments=count_segments(text).count if channel is Channel.SMS else None,
        created_at=now,
    )


def entry_for(message: Message, *, purpose: Purpose, not_before: datetime) -> OutboxEntry:
    return OutboxEntry(
        message_id=message.id,
        channel=message.channel,
        purpose=purpose,
        not_before=not_before,
        created_at=message.created_at,
    )
