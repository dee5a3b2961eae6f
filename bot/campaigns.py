"""Campaigns: an audience, a message or a dialog, a time — and every recipient reached once.

The life of a campaign:

- ``create`` checks the content and the schedule and stores a draft; ``dry_run`` counts the
  audience and previews the first messages without writing anything.
- ``schedule`` makes it live: a ``campaign_run`` item is due at the start time (or at the next
  time of its cron expression; relative campaigns look ahead for anchors every few minutes).
- A run writes its recipients in one statement (:func:`storage.campaigns.fan_out`), each with
  the time its message may go (spread out when the campaign has a rate).
- ``send_due`` (a worker job) claims due recipients, skips those who opted out or cannot be
  reached, waits out quiet hours, and writes each message into the outbox in the transaction
  that marks the recipient queued. The dispatcher sends it.
- ``pause``, ``resume`` and ``cancel`` act at once; an opt-out skips the young person's pending
  recipients in the same transaction as the opt-out (:mod:`storage.consent`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.orm import Session, selectinload

from bot.conversations import Conversations
from bot.quiet import quiet_hours
from bot.worker import Expired, Handler
from dialogs.engine import Engine
from dialogs.sms import count_segments, sms_text
from dialogs.types import (
    CampaignStatus,
    Channel,
    Holder,
    OutboxStatus,
    Purpose,
    RecipientStatus,
    ScheduledStatus,
    YoungPersonStatus,
)
from storage import campaigns as repo
from storage import outbox, schedule
from storage.campaigns import Audience
from storage.conversations import COMING_MEETING
from storage.db import Database
from storage.models import (
    Campaign,
    CampaignRecipient,
    Conversation,
    Meeting,
    Message,
    Municipality,
    OutboxEntry,
    ScheduledItem,
    YoungPerson,
    utcnow,
)

log = logging.getLogger(__name__)

CAMPAIGN_RUN = "campaign_run"
# Relative campaigns look this far ahead for anchors, this often.
LOOK_AHEAD = timedelta(days=1)
RELATIVE_EVERY = timedelta(minutes=15)
# At most this many campaign messages wait in the outbox at a time: pausing acts within seconds.
OUTBOX_BACKLOG = 400
# How often a running worker looks again whether a full backlog has room.
FEED_PAUSE = 0.05
BATCH = 200
PREVIEWS = 5
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
TEMPLATE_VARIABLES = frozenset({"first_name"})


class CampaignError(ValueError):
    """A campaign that cannot be made as asked; the message says which field and why."""


@dataclass(frozen=True)
class Spec:
    """What a coordinator asks for. Exactly one of ``dialog`` and ``template``; at most one of
    ``cron`` and ``relative``."""

    municipality_id: int
    name: str
    audience: Audience = field(default_factory=Audience)
    dialog: str | None = None
    template: Mapping[str, str] | None = None  # language -> text with {first_name}
    starts_at: datetime | None = None
    cron: str | None = None
    relative: Mapping[str, Any] | None = None  # {"anchor": "meeting", "offset_minutes": -4320}
    rate_per_minute: int | None = None
    created_by_id: int | None = None


@dataclass(frozen=True)
class Preview:
    young_person_id: int
    first_name: str
    language: str
    channel: Channel | None
    text: str | None
    encoding: str | None = None
    segments: int | None = None


@dataclass(frozen=True)
class DryRun:
    count: int
    without_channel: int
    in_quiet_hours: bool
    previews: tuple[Preview, ...]


def render(template: Mapping[str, str], language: str, fallback: str, first_name: str) -> str:
    """The template in the young person's language (else the municipality's, else Danish)."""
    for choice in (language, fallback, "da"):
        if choice in template:
            text = template[choice]
            break
    else:
        text = next(iter(template.values()))
    return text.replace("{first_name}", first_name)


def check_template(template: Mapping[str, str]) -> None:
    if not template:
        raise CampaignError("template: write the message in at least one language")
    for language, text in template.items():
        if not text.strip():
            raise CampaignError(f"template[{language}]: the message is empty")
        for name in _PLACEHOLDER.findall(text):
            if name not in TEMPLATE_VARIABLES:
                raise CampaignError(
                    f"template[{language}]: unknown variable {{{name}}}; only {{first_name}}"
                )


CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field (0 or 7 is Sunday, 1 Monday) in APScheduler 3's day names:
    its own numbers start at Monday, so "1" would otherwise mean Tuesday."""
    if not any(character.isdigit() for character in field):
        return field  # "*", or names such as "mon-fri", which both read alike
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            low, high = span.split("-", 1)
            first, last = int(low), int(high)
        else:
            first = int(span)
            last = 6 if step_text else first
        if not (0 <= first <= 7 and 0 <= last <= 7 and first <= last and step > 0):
            raise ValueError(f"day of week {part!r} is not between 0 and 7")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(CRON_DAYS[day] for day in sorted(days))


def cron_trigger(expression: str, zone: ZoneInfo) -> CronTrigger:
    """A standard five-field crontab expression (minute hour day month weekday)."""
    try:
        fields = expression.split()
        if len(fields) != 5:
            raise ValueError(f"wrong number of fields; got {len(fields)}, expected 5")
        minute, hour, day, month, weekday = fields
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_crontab_weekdays(weekday),
            timezone=zone,
        )
    except ValueError as error:
        raise CampaignError(f"cron: {error}") from None


def next_fire(expression: str, zone: ZoneInfo, after: datetime) -> datetime:
    """The first time of the cron expression strictly after ``after``, in UTC."""
    trigger = cron_trigger(expression, zone)
    moment = trigger.get_next_fire_time(None, after + timedelta(seconds=1))
    if moment is None:
        raise CampaignError("cron: the expression never fires again")
    return moment.astimezone(UTC)  # type: ignore[no-any-return]


class Campaigns:
    def __init__(
        self,
        *,
        database: Database,
        conversations: Conversations,
        engine: Engine,
        clock: Callable[[], datetime] = utcnow,
        worker_id: str = "campaigns",
    ) -> None:
        self.database = database
        self.conversations = conversations
        self.engine = engine
        self.clock = clock
        self.worker_id = worker_id

    # ------------------------------------------------------------------ making one

    def _check(self, session: Session, spec: Spec) -> Municipality:
        place = session.get(Municipality, spec.municipality_id)
        if place is None:
            raise CampaignError("municipality: not found")
        if not spec.name.strip():
            raise CampaignError("name: give the campaign a name")
        if (spec.dialog is None) == (spec.template is None):
            raise CampaignError("content: choose either a dialog or a message")
        if spec.dialog is not None:
            definition = self.engine.dialogs.get(spec.dialog)
            if definition is None:
                raise CampaignError(f"dialog: no dialog called {spec.dialog!r}")
            if definition.requires:
                needs = ", ".join(definition.requires)
                raise CampaignError(f"dialog: {spec.dialog} needs {needs} and cannot be a campaign")
        if spec.template is not None:
            check_template(spec.template)
        if spec.cron and spec.relative:
            raise CampaignError("schedule: choose a time, a recurrence or an offset, not several")
        if spec.cron:
            cron_trigger(spec.cron, ZoneInfo(place.timezone))
        if spec.relative is not None:
            if spec.relative.get("anchor") != "meeting":
                raise CampaignError("relative: the only anchor is 'meeting'")
            if not isinstance(spec.relative.get("offset_minutes"), int):
                raise CampaignError("relative: offset_minutes must be a whole number")
        if spec.rate_per_minute is not None and spec.rate_per_minute < 1:
            raise CampaignError("rate_per_minute: at least 1")
        if spec.starts_at is not None and spec.starts_at.tzinfo is None:
            raise CampaignError("starts_at: give a time with its time zone")
        return place

    def create(self, spec: Spec) -> int:
        with self.database.session() as session:
            self._check(session, spec)
            campaign = Campaign(
                municipality_id=spec.municipality_id,
                name=spec.name.strip(),
                audience=spec.audience.to_dict(),
                content=(
                    {"dialog": spec.dialog}
                    if spec.dialog
                    else {"template": dict(spec.template or {})}
                ),
                starts_at=spec.starts_at,
                cron=spec.cron,
                relative_schedule=dict(spec.relative) if spec.relative else None,
                rate_per_minute=spec.rate_per_minute,
                created_by_id=spec.created_by_id,
                created_at=self.clock(),
            )
            session.add(campaign)
            session.flush()
            return campaign.id

    def dry_run(self, spec: Spec, *, previews: int = PREVIEWS) -> DryRun:
        """How many it would reach and what the first ones would get; writes nothing."""
        now = self.clock()
        with self.database.session() as session:
            place = self._check(session, spec)
            zone = ZoneInfo(place.timezone)
            today = now.astimezone(zone).date()
            count = repo.count_audience(session, spec.audience, place.id, today=today, now=now)
            query = repo.audience_query(spec.audience, place.id, today=today, now=now)
            without = int(
                session.scalar(
                    sa.select(sa.func.count()).where(
                        YoungPerson.id.in_(query),
                        YoungPerson.phone.is_(None),
                        sa.or_(
                            YoungPerson.telegram_chat_id.is_(None),
                            YoungPerson.telegram_blocked_at.is_not(None),
                        ),
                    )
                )
                or 0
            )
            people = session.scalars(
                sa.select(YoungPerson)
                .where(YoungPerson.id.in_(query))
                .order_by(YoungPerson.id)
                .limit(previews)
            ).all()
            shown = tuple(self._preview(person, place, spec) for person in people)
            quiet = quiet_hours(place).is_quiet(spec.starts_at or now)
            session.rollback()
        return DryRun(count, without, quiet, shown)

    def _preview(self, person: YoungPerson, place: Municipality, spec: Spec) -> Preview:
        channel = Conversations._channel_for(person)
        text: str | None = None
        if spec.template is not None:
            text = render(spec.template, person.language, place.default_language, person.first_name)
        if text is not None and channel is Channel.SMS:
            text = sms_text(text)
            segments = count_segments(text)
            return Preview(
                person.id,
                person.first_name,
                person.language,
                channel,
                text,
                segments.encoding,
                segments.count,
            )
        return Preview(person.id, person.first_name, person.language, channel, text)

    # ------------------------------------------------------------------ its life

    def _campaign(self, session: Session, campaign_id: int) -> Campaign:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise CampaignError(f"campaign {campaign_id}: not found")
        return campaign

    def schedule(self, campaign_id: int) -> datetime:
        """Make a draft live; returns when its first run is due."""
        now = self.clock()
        with self.database.session() as session:
            campaign = self._campaign(session, campaign_id)
            if campaign.status is not CampaignStatus.DRAFT:
                raise CampaignError(f"status: only a draft can be scheduled (is {campaign.status})")
            place = session.get_one(Municipality, campaign.municipality_id)
            start = campaign.starts_at or now
            if campaign.cron:
                due = next_fire(campaign.cron, ZoneInfo(place.timezone), max(start, now))
            else:
                due = start
            campaign.status = CampaignStatus.SCHEDULED
            self._schedule_run(session, campaign, due, now)
            return due

    def _schedule_run(
        self, session: Session, campaign: Campaign, due: datetime, now: datetime
    ) -> None:
        schedule.schedule(
            session,
            kind=CAMPAIGN_RUN,
            key=f"{CAMPAIGN_RUN}:{campaign.id}:{due.astimezone(UTC).isoformat()}",
            due_at=due,
            now=now,
            municipality_id=campaign.municipality_id,
            campaign_id=campaign.id,
            payload={"run_at": due.astimezone(UTC).isoformat()},
        )

    def pause(self, campaign_id: int) -> None:
        with self.database.session() as session:
            campaign = self._campaign(session, campaign_id)
            if campaign.status not in (CampaignStatus.SCHEDULED, CampaignStatus.RUNNING):
                raise CampaignError(f"status: cannot pause a campaign that is {campaign.status}")
            campaign.status = CampaignStatus.PAUSED

    def resume(self, campaign_id: int) -> None:
        with self.database.session() as session:
            campaign = self._campaign(session, campaign_id)
            if campaign.status is not CampaignStatus.PAUSED:
                raise CampaignError(f"status: cannot resume a campaign that is {campaign.status}")
            campaign.status = CampaignStatus.RUNNING

    def cancel(self, campaign_id: int) -> int:
        """Stop for good: nothing more is sent. Returns how many recipients were skipped."""
        now = self.clock()
        with self.database.session() as session:
            campaign = self._campaign(session, campaign_id)
            if campaign.status is CampaignStatus.CANCELLED:
                raise CampaignError("status: the campaign is already cancelled")
            # A finished campaign may still have messages waiting in the outbox: they go too.
            campaign.status = CampaignStatus.CANCELLED
            schedule.cancel(
                session, ScheduledItem.campaign_id == campaign.id, now=now, reason="cancelled"
            )
            skipped = repo.skip_pending(
                session,
                CampaignRecipient.campaign_id == campaign.id,
                reason="campaign_cancelled",
                now=now,
            )
            # Messages already queued but not yet sent are withdrawn too.
            waiting = (
                sa.select(OutboxEntry.id)
                .join(CampaignRecipient, CampaignRecipient.message_id == OutboxEntry.message_id)
                .where(
                    CampaignRecipient.campaign_id == campaign.id,
                    OutboxEntry.status == OutboxStatus.PENDING,
                )
            )
            session.execute(
                sa.update(OutboxEntry)
                .where(OutboxEntry.id.in_(waiting))
                .values(status=OutboxStatus.CANCELLED, last_error="campaign_cancelled")
                .execution_options(synchronize_session=False)
            )
            return skipped

    def progress(self, campaign_id: int) -> dict[str, Any]:
        with self.database.session() as session:
            campaign = self._campaign(session, campaign_id)
            data = repo.progress(session, campaign_id).as_dict()
            data["status"] = campaign.status.value
            data["name"] = campaign.name
            return data

    # ------------------------------------------------------------------ runs

    def handlers(self) -> dict[str, Handler]:
        return {CAMPAIGN_RUN: self.handle_run}

    def handle_run(self, session: Session, item: ScheduledItem, now: datetime) -> str:
        """One run: write its recipients, then schedule the next run of a recurring campaign."""
        campaign = session.get(Campaign, item.campaign_id) if item.campaign_id else None
        if campaign is None:
            raise Expired("campaign deleted")
        if campaign.status in (CampaignStatus.CANCELLED, CampaignStatus.FINISHED):
            raise Expired(f"campaign {campaign.status.value}")
        place = session.get_one(Municipality, campaign.municipality_id)
        zone = ZoneInfo(place.timezone)
        audience = Audience.from_dict(campaign.audience)
        run_at = datetime.fromisoformat(str(item.payload.get("run_at", item.due_at.isoformat())))
        if campaign.status is CampaignStatus.SCHEDULED:
            campaign.status = CampaignStatus.RUNNING
        if campaign.relative_schedule:
            added = self._relative(session, campaign, audience, zone, now)
            self._schedule_run(session, campaign, now + RELATIVE_EVERY, now)
            return f"{added} recipients added"
        run_key = "once" if not campaign.cron else run_at.isoformat()[:40]
        # A run caught up after downtime starts now, not in the past: the rate still holds.
        start = max(run_at, now)
        added = repo.fan_out(
            session,
            campaign,
            audience,
            run_key=run_key,
            starts_at=start,
            today=now.astimezone(zone).date(),
            now=now,
        )
        if campaign.cron:
            self._schedule_run(session, campaign, next_fire(campaign.cron, zone, now), now)
        log.info("campaign run", extra={"campaign": campaign.id, "recipients": added})
        return f"{added} recipients added"

    def _relative(
        self,
        session: Session,
        campaign: Campaign,
        audience: Audience,
        zone: ZoneInfo,
        now: datetime,
    ) -> int:
        """Recipients for meetings whose offset time falls within the look-ahead."""
        relative = campaign.relative_schedule or {}
        offset = timedelta(minutes=int(relative.get("offset_minutes", 0)))
        people = repo.audience_query(
            audience, campaign.municipality_id, today=now.astimezone(zone).date(), now=now
        )
        meetings = session.execute(
            sa.select(Meeting.id, Meeting.young_person_id, Meeting.starts_at).where(
                Meeting.young_person_id.in_(people),
                Meeting.status.in_(COMING_MEETING),
                Meeting.starts_at > now,
                Meeting.starts_at <= now + LOOK_AHEAD - offset,
            )
        ).all()
        rows = [
            (person_id, meeting_key(meeting_id, starts_at), max(starts_at + offset, now))
            for meeting_id, person_id, starts_at in meetings
            if starts_at + offset <= now + LOOK_AHEAD
        ]
        return repo.add_recipients(session, campaign, rows, now=now)

    # ------------------------------------------------------------------ sending

    def send_due(
        self,
        *,
        limit: int = BATCH,
        budget: int = 20 * BATCH,
        wait_seconds: float = 0.0,
        on_queued: Callable[[], object] | None = None,
    ) -> int:
        """Queue the messages of due recipients; returns how many recipients were settled.

        With the outbox's campaign backlog full it returns at once, unless ``wait_seconds`` is
        given: a running worker, whose dispatcher drains the outbox in other threads (and other
        processes), then keeps checking every ``FEED_PAUSE`` and tops the backlog up as it
        drains, rather than leaving it empty until its next poll. ``on_queued`` is called after
        each batch is committed (the worker wakes its dispatcher with it).
        """
        settled = 0
        deadline = time.monotonic() + wait_seconds
        while settled < budget:
            if self._backlog() >= OUTBOX_BACKLOG:
                if time.monotonic() + FEED_PAUSE >= deadline:
                    break
                time.sleep(FEED_PAUSE)
                continue
            with self.database.session() as session:
                now = self.clock()
                batch = repo.claim_due(session, now=now, limit=limit, worker_id=self.worker_id)
                # The batch's young people and municipalities in two queries, kept referenced
                # while the batch is settled (the session holds objects only weakly).
                people = session.scalars(
                    sa.select(YoungPerson)
                    .where(YoungPerson.id.in_([r.young_person_id for r in batch]))
                    .options(selectinload(YoungPerson.municipality))
                ).all()
                held = {c.id: c for c in self._campaigns(session, batch)}
                # Young people a staff member is talking with (or about to): left alone.
                with_staff = set(
                    session.scalars(
                        sa.select(Conversation.young_person_id).where(
                            Conversation.young_person_id.in_([r.young_person_id for r in batch]),
                            Conversation.holder != Holder.BOT,
                        )
                    )
                )
                written: list[tuple[CampaignRecipient, Message]] = []
                for recipient in batch:
                    if recipient.young_person_id in with_staff:
                        self._skip(recipient, "with_staff", now)
                        continue
                    message = self._settle(session, recipient, held[recipient.campaign_id], now)
                    if message is not None:
                        written.append((recipient, message))
                # A template's messages go in as two batched inserts, not two per recipient.
                outbox.enqueue_many(
                    session, [m for _, m in written], purpose=Purpose.PROACTIVE, not_before=now
                )
                for recipient, message in written:
                    self._queued(recipient, message.id, now)
                del people
            settled += len(batch)
            if written and on_queued is not None:
                on_queued()
            if len(batch) < limit:
                break
        self._finish_done()
        return settled

    def _backlog(self) -> int:
        with self.database.session() as session:
            waiting = (
                sa.select(OutboxEntry.id)
                .where(
                    OutboxEntry.status == OutboxStatus.PENDING,
                    OutboxEntry.purpose == Purpose.PROACTIVE,
                    OutboxEntry.not_before <= self.clock(),
                )
                .limit(OUTBOX_BACKLOG)
                .subquery()
            )
            return int(session.scalar(sa.select(sa.func.count()).select_from(waiting)) or 0)

    @staticmethod
    def _campaigns(session: Session, batch: list[CampaignRecipient]) -> list[Campaign]:
        ids = {r.campaign_id for r in batch}
        return list(session.scalars(sa.select(Campaign).where(Campaign.id.in_(ids))).all())

    def _settle(
        self, session: Session, recipient: CampaignRecipient, campaign: Campaign, now: datetime
    ) -> Message | None:
        """Skip, defer or start the recipient; a template's message is returned to be written."""
        person = session.get_one(YoungPerson, recipient.young_person_id)
        place = person.municipality
        if person.status in (YoungPersonStatus.OPTED_OUT, YoungPersonStatus.CLOSED):
            self._skip(recipient, person.status.value, now)
            return None
        if recipient.run_key.startswith("m") and not self._meeting_still(session, recipient):
            self._skip(recipient, "meeting_changed", now)
            return None
        channel = Conversations._channel_for(person)
        if channel is None:
            self._skip(recipient, "no_channel", now)
            return None
        quiet = quiet_hours(place)
        if quiet.is_quiet(now):
            recipient.due_at = quiet.next_allowed(now)
            recipient.skip_reason = "quiet_hours"
            recipient.claimed_by = None
            return None
        if "dialog" in campaign.content:
            sent = self.conversations.start(
                young_person_id=person.id,
                dialog=str(campaign.content["dialog"]),
                variables={},
                session=session,
            )
            if not sent:
                self._skip(recipient, "conversation_busy", now)
            else:
                self._queued(recipient, sent[0].message_id, now)
            return None
        text = render(
            campaign.content["template"],
            person.language,
            place.default_language,
            person.first_name,
        )
        if channel is Channel.SMS:
            text = sms_text(text)
        return Message(
            **outbox.outgoing_row(channel=channel, text=text, now=now, young_person_id=person.id)
        )

    @staticmethod
    def _queued(recipient: CampaignRecipient, message_id: int, now: datetime) -> None:
        recipient.status = RecipientStatus.QUEUED
        recipient.skip_reason = None
        recipient.message_id = message_id
        recipient.updated_at = now

    @staticmethod
    def _skip(recipient: CampaignRecipient, reason: str, now: datetime) -> None:
        recipient.status = RecipientStatus.SKIPPED
        recipient.skip_reason = reason
        recipient.updated_at = now

    @staticmethod
    def _meeting_still(session: Session, recipient: CampaignRecipient) -> bool:
        meeting_id, _, stamp = recipient.run_key[1:].partition("@")
        meeting = session.get(Meeting, int(meeting_id))
        return (
            meeting is not None
            and meeting.status in COMING_MEETING
            and meeting_key(meeting.id, meeting.starts_at) == recipient.run_key
            and bool(stamp)
        )

    def _finish_done(self) -> None:
        """A one-off campaign whose run is over and whose recipients are all settled is done."""
        with self.database.session() as session:
            running = session.scalars(
                sa.select(Campaign).where(
                    Campaign.status == CampaignStatus.RUNNING, Campaign.cron.is_(None)
                )
            ).all()
            for campaign in running:
                if campaign.relative_schedule:
                    continue  # runs as long as there are meetings
                pending = session.scalar(
                    sa.select(CampaignRecipient.id)
                    .where(
                        CampaignRecipient.campaign_id == campaign.id,
                        CampaignRecipient.status == RecipientStatus.PENDING,
                    )
                    .limit(1)
                )
                run_left = session.scalar(
                    sa.select(ScheduledItem.id)
                    .where(
                        ScheduledItem.campaign_id == campaign.id,
                        ScheduledItem.status.in_(
                            (ScheduledStatus.PENDING, ScheduledStatus.CLAIMED)
                        ),
                    )
                    .limit(1)
                )
                if pending is None and run_left is None:
                    campaign.status = CampaignStatus.FINISHED


def meeting_key(meeting_id: int, starts_at: datetime) -> str:
    return f"m{meeting_id}@{starts_at.astimezone(UTC):%Y%m%dT%H%M}"


def message_of(session: Session, recipient: CampaignRecipient) -> Message | None:
    return session.get(Message, recipient.message_id) if recipient.message_id else None


def today_in(place: Municipality, now: datetime) -> date:
    return now.astimezone(ZoneInfo(place.timezone)).date()
