"""Consent and opt-out: the append-only record and what an opt-out stops at once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from dialogs.types import Channel, ConsentKind, ConsentSource, YoungPersonStatus
from storage import campaigns
from storage import conversations as repo
from storage.models import CampaignRecipient, ConsentEvent, YoungPerson


def record(
    session: Session,
    person: YoungPerson,
    kind: ConsentKind,
    *,
    source: ConsentSource,
    channel: Channel | None,
    now: datetime,
    note: str | None = None,
) -> None:
    session.add(
        ConsentEvent(
            young_person_id=person.id,
            kind=kind,
            source=source,
            channel=channel,
            note=note,
            created_at=now,
        )
    )


def set_status(
    person: YoungPerson, status: YoungPersonStatus, reason: str | None, now: datetime
) -> None:
    person.status = status
    person.status_reason = reason
    person.status_changed_at = now


def stop_everything(session: Session, person: YoungPerson, *, now: datetime, why: str) -> None:
    """Opted out or declined: the status changes and everything pending is withdrawn at once."""
    set_status(person, YoungPersonStatus.OPTED_OUT, why, now)
    repo.cancel_scheduled(session, person.id, now=now, reason=why)
    repo.cancel_outbox(session, person.id, reason=why)
    campaigns.skip_pending(
        session, CampaignRecipient.young_person_id == person.id, reason="opted_out", now=now
    )


def opt_out(
    session: Session,
    person: YoungPerson,
    *,
    source: ConsentSource,
    channel: Channel | None,
    now: datetime,
    note: str | None = None,
) -> None:
    record(
        session, person, ConsentKind.OPTED_OUT, source=source, channel=channel, now=now, note=note
    )
    stop_everything(session, person, now=now, why="opted out")
