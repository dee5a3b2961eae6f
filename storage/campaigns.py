"""Campaign data: who is in an audience, one run's recipients, and how far a campaign has come.

A run's recipients are written in one ``INSERT ... SELECT`` (each recipient a durable row with the
time its message may go), so a campaign to a hundred thousand young people is queued in one
statement. Sending claims due recipients in batches (``FOR UPDATE SKIP LOCKED`` on PostgreSQL)
and moves each from pending to queued in the transaction that writes its message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from dialogs.types import (
    CampaignStatus,
    Channel,
    DeliveryStatus,
    Direction,
    RecipientStatus,
    YoungPersonStatus,
)
from storage.models import (
    Campaign,
    CampaignRecipient,
    Message,
    YoungPerson,
    YoungPersonTag,
)

NEVER_REACHED = (YoungPersonStatus.OPTED_OUT, YoungPersonStatus.CLOSED)


class AudienceError(ValueError):
    """An audience filter that cannot be used; the message names the field."""


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)


@dataclass(frozen=True)
class Audience:
    """Who a campaign is for. Opted-out and closed young people are never in an audience."""

    min_age: int | None = None
    max_age: int | None = None
    statuses: tuple[YoungPersonStatus, ...] = (YoungPersonStatus.ACTIVE,)
    tags: tuple[str, ...] = ()  # any of these
    kontaktperson_ids: tuple[int, ...] = ()
    channel: Channel | None = None  # reachable on this channel
    # The young person's last message was at least / at most this many days ago.
    min_days_since_contact: int | None = None
    max_days_since_contact: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Audience:
        known = {
            "min_age",
            "max_age",
            "statuses",
            "tags",
            "kontaktperson_ids",
            "channel",
            "min_days_since_contact",
            "max_days_since_contact",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise AudienceError(f"unknown audience field: {unknown[0]}")
        try:
            statuses = tuple(YoungPersonStatus(s) for s in data.get("statuses") or ["active"])
            channel = Channel(data["channel"]) if data.get("channel") else None
        except ValueError as error:
            raise AudienceError(str(error)) from None
        for name in ("min_age", "max_age", "min_days_since_contact", "max_days_since_contact"):
            value = data.get(name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise AudienceError(f"{name} must be a whole number of 0 or more")
        if set(statuses) & set(NEVER_REACHED):
            raise AudienceError("statuses: opted-out and closed young people are never reached")
        audience = cls(
            min_age=data.get("min_age"),
            max_age=data.get("max_age"),
            statuses=statuses,
            tags=tuple(str(t) for t in data.get("tags") or ()),
            kontaktperson_ids=tuple(int(k) for k in data.get("kontaktperson_ids") or ()),
            channel=channel,
            min_days_since_contact=data.get("min_days_since_contact"),
            max_days_since_contact=data.get("max_days_since_contact"),
        )
        if (
            audience.min_age is not None
            and audience.max_age is not None
            and audience.min_age > audience.max_age
        ):
            raise AudienceError("min_age is above max_age")
        return audience

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        data["statuses"] = [s.value for s in self.statuses]
        data["tags"] = list(self.tags)
        data["kontaktperson_ids"] = list(self.kontaktperson_ids)
        data["channel"] = self.channel.value if self.channel else None
        return data

    def conditions(
        self, municipality_id: int, *, today: date, now: datetime, reachable_only: bool = True
    ) -> list[sa.ColumnElement[bool]]:
        """The SQL conditions on ``YoungPerson``. A campaign only ever reaches young people who
        have not opted out or been closed; a list (``reachable_only=False``) may show them, and
        with no status chosen it shows every status."""
        person = YoungPerson
        where: list[sa.ColumnElement[bool]] = [
            person.municipality_id == municipality_id,
            person.erased_at.is_(None),  # an erased young person is in no audience or list
        ]
        if self.statuses or reachable_only:
            where.append(person.status.in_(self.statuses))
        if reachable_only:
            where.append(person.status.not_in(NEVER_REACHED))
        if self.min_age is not None:
            where.append(person.birth_date <= _years_before(today, self.min_age))
        if self.max_age is not None:
            where.append(person.birth_date > _years_before(today, self.max_age + 1))
        if self.tags:
            where.append(
                sa.exists().where(
                    YoungPersonTag.young_person_id == person.id,
                    YoungPersonTag.tag.in_(self.tags),
                )
            )
        if self.kontaktperson_ids:
            where.append(person.kontaktperson_id.in_(self.kontaktperson_ids))
        if self.channel is Channel.SMS:
            where.append(person.phone.is_not(None))
        elif self.channel is Channel.TELEGRAM:
            where.append(person.telegram_chat_id.is_not(None))
            where.append(person.telegram_blocked_at.is_(None))
        if self.min_days_since_contact is not None:
            cutoff = now - timedelta(days=self.min_days_since_contact)
            where.append(sa.or_(person.last_inbound_at.is_(None), person.last_inbound_at <= cutoff))
        if self.max_days_since_contact is not None:
            cutoff = now - timedelta(days=self.max_days_since_contact)
            where.append(person.last_inbound_at >= cutoff)
        return where


def audience_query(
    audience: Audience, municipality_id: int, *, today: date, now: datetime
) -> sa.Select[int]:
    return sa.select(YoungPerson.id).where(
        *audience.conditions(municipality_id, today=today, now=now)
    )


def count_audience(
    session: Session, audience: Audience, municipality_id: int, *, today: date, now: datetime
) -> int:
    query = audience_query(audience, municipality_id, today=today, now=now)
    return int(session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0)


def _spread(dialect: str, start: datetime, seconds_each: float, number: Any) -> Any:
    """``start`` plus ``number`` times ``seconds_each``, as SQL for the dialect."""
    offset = number * seconds_each
    if dialect == "postgresql":
        return sa.literal(start, type_=sa.DateTime(timezone=True)) + sa.func.make_interval(
            0, 0, 0, 0, 0, 0, offset
        )
    # SQLite keeps UTC wall time as text; strftime gives the same shape back.
    naive = start.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    return sa.func.strftime(
        "%Y-%m-%d %H:%M:%f",
        sa.literal(naive),
        sa.literal("+") + sa.cast(offset, sa.String) + " seconds",
    )


def fan_out(
    session: Session,
    campaign: Campaign,
    audience: Audience,
    *,
    run_key: str,
    starts_at: datetime,
    today: date,
    now: datetime,
) -> int:
    """Write one run's recipients in one statement; returns how many were added.

    With a rate, recipient ``n`` is due ``n`` intervals after the start, so any number of workers
    keep to the rate without talking to each other. Running it twice adds nobody twice.
    """
    dialect = session.get_bind().dialect.name
    people = audience_query(audience, campaign.municipality_id, today=today, now=now).subquery()
    number = sa.func.row_number().over(order_by=people.c.id) - 1
    if campaign.rate_per_minute:
        due: Any = _spread(dialect, starts_at, 60.0 / campaign.rate_per_minute, number)
    else:
        due = sa.literal(starts_at, type_=CampaignRecipient.__table__.c.due_at.type)
    select = sa.select(
        sa.literal(campaign.id),
        sa.literal(run_key),
        people.c.id,
        sa.literal(RecipientStatus.PENDING.value),
        due,
        sa.literal(now, type_=CampaignRecipient.__table__.c.updated_at.type),
    ).where(sa.true())  # SQLite needs a WHERE before ON CONFLICT to parse INSERT ... SELECT
    table = sa.table(
        "campaign_recipient",
        *(sa.column(name) for name in ("campaign_id", "run_key", "young_person_id")),
        *(sa.column(name) for name in ("status", "due_at", "updated_at")),
    )
    columns = ["campaign_id", "run_key", "young_person_id", "status", "due_at", "updated_at"]
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(table).from_select(columns, select).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(table).from_select(columns, select).on_conflict_do_nothing()
    result = session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]


def add_recipients(
    session: Session,
    campaign: Campaign,
    rows: Sequence[tuple[int, str, datetime]],
    *,
    now: datetime,
) -> int:
    """Add (young person, run key, due time) recipients one by one; known ones are left alone."""
    added = 0
    for person_id, run_key, due_at in rows:
        exists = session.scalar(
            sa.select(CampaignRecipient.id).where(
                CampaignRecipient.campaign_id == campaign.id,
                CampaignRecipient.run_key == run_key,
                CampaignRecipient.young_person_id == person_id,
            )
        )
        if exists is None:
            session.add(
                CampaignRecipient(
                    campaign_id=campaign.id,
                    run_key=run_key,
                    young_person_id=person_id,
                    due_at=due_at,
                    updated_at=now,
                )
            )
            added += 1
    session.flush()
    return added


def claim_due(
    session: Session, *, now: datetime, limit: int, worker_id: str
) -> list[CampaignRecipient]:
    """Pending recipients of running campaigns whose time has come, locked for this transaction.

    On PostgreSQL the rows stay locked (``SKIP LOCKED`` for everyone else) until the caller's
    transaction ends; the guarded update makes the claim hold on SQLite too.
    """
    query = (
        sa.select(CampaignRecipient.id)
        .join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
        .where(
            CampaignRecipient.status == RecipientStatus.PENDING,
            CampaignRecipient.due_at <= now,
            Campaign.status == CampaignStatus.RUNNING,
        )
        .order_by(CampaignRecipient.due_at, CampaignRecipient.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=CampaignRecipient, skip_locked=True)
    ids = list(session.scalars(query).all())
    if not ids:
        return []
    result = session.execute(
        sa.update(CampaignRecipient)
        .where(
            CampaignRecipient.id.in_(ids),
            CampaignRecipient.status == RecipientStatus.PENDING,
        )
        .values(claimed_by=worker_id, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != len(ids):  # type: ignore[attr-defined]
        # Someone else moved some of them on under us (SQLite): leave the whole batch.
        session.rollback()
        return []
    return list(
        session.scalars(
            sa.select(CampaignRecipient)
            .where(CampaignRecipient.id.in_(ids))
            .order_by(CampaignRecipient.due_at, CampaignRecipient.id)
        ).all()
    )


def skip_pending(
    session: Session,
    *conditions: sa.ColumnElement[bool],
    reason: str,
    now: datetime,
) -> int:
    result = session.execute(
        sa.update(CampaignRecipient)
        .where(CampaignRecipient.status == RecipientStatus.PENDING, *conditions)
        .values(status=RecipientStatus.SKIPPED, skip_reason=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# What a queued recipient's message status means for the campaign.
_AFTER_QUEUED = {
    DeliveryStatus.QUEUED: RecipientStatus.QUEUED,
    DeliveryStatus.SENDING: RecipientStatus.QUEUED,
    DeliveryStatus.UNKNOWN: RecipientStatus.SENT,
    DeliveryStatus.SENT: RecipientStatus.SENT,
    DeliveryStatus.DELIVERED: RecipientStatus.DELIVERED,
    DeliveryStatus.UNDELIVERED: RecipientStatus.FAILED,
    DeliveryStatus.FAILED: RecipientStatus.FAILED,
}


@dataclass
class Progress:
    """Where a campaign's recipients stand; a replied recipient counts as replied only."""

    by_status: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    waiting: dict[str, int] = field(default_factory=dict)  # pending, and why they wait

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_status": dict(sorted(self.by_status.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "waiting": dict(sorted(self.waiting.items())),
        }


def progress(session: Session, campaign_id: int) -> Progress:
    result = Progress()

    def add(bucket: dict[str, int], key: str, count: int) -> None:
        bucket[key] = bucket.get(key, 0) + count

    rows = session.execute(
        sa.select(
            CampaignRecipient.status,
            CampaignRecipient.skip_reason,
            sa.func.count(),
        )
        .where(
            CampaignRecipient.campaign_id == campaign_id,
            CampaignRecipient.status != RecipientStatus.QUEUED,
        )
        .group_by(CampaignRecipient.status, CampaignRecipient.skip_reason)
    ).all()
    for status, reason, count in rows:
        add(result.by_status, status.value, count)
        if status is RecipientStatus.SKIPPED:
            add(result.skipped, reason or "unknown", count)
        elif status is RecipientStatus.PENDING:
            add(result.waiting, reason or "due_time", count)
    sent = aliased(Message)
    reply = (
        sa.select(Message.id)
        .where(
            Message.young_person_id == CampaignRecipient.young_person_id,
            Message.direction == Direction.INBOUND,
            Message.created_at > sent.created_at,
        )
        .exists()
    )
    queued = session.execute(
        sa.select(sent.status, reply, sa.func.count())
        .select_from(CampaignRecipient)
        .join(sent, sent.id == CampaignRecipient.message_id)
        .where(
            CampaignRecipient.campaign_id == campaign_id,
            CampaignRecipient.status == RecipientStatus.QUEUED,
        )
        .group_by(sent.status, reply)
    ).all()
    for delivery, replied, count in queued:
        effective = RecipientStatus.REPLIED if replied else _AFTER_QUEUED[delivery]
        add(result.by_status, effective.value, count)
    orphans = session.scalar(
        sa.select(sa.func.count()).where(
            CampaignRecipient.campaign_id == campaign_id,
            CampaignRecipient.status == RecipientStatus.QUEUED,
            CampaignRecipient.message_id.is_(None),
        )
    )
    if orphans:  # the message was erased since
        add(result.by_status, RecipientStatus.SENT.value, int(orphans))
    return result
