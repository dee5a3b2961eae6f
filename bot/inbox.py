"""The handoff inbox's actions: take over, reply, hand back to the bot.

Each action runs in one transaction with the young person's conversation locked (as a turn locks
it), so a message arriving at the same moment is answered either before or after the change,
never half-way. The caller has checked that the staff member may see the young person.

- **Take over**: the conversation's holder becomes ``HUMAN`` and ``held_by`` the staff member;
  the engine then stays silent on every message except crisis help, and the unresolved handoffs
  are assigned to the one who took over.
- **Reply**: a staff message on the young person's channel through the outbox (author staff),
  never to an opted-out or closed young person. It takes the conversation over when the bot
  holds it (so the bot does not talk over the human), and records the first human answer of
  every unresolved handoff.
- **Hand back**: the bot holds the conversation again and the unresolved handoffs are resolved.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from dialogs.i18n import N_
from dialogs.privacy import mask_cpr
from dialogs.types import (
    Author,
    Channel,
    HandoffStatus,
    Holder,
    Purpose,
    YoungPersonStatus,
)
from storage import audit, inbox, outbox
from storage import conversations as repo
from storage.db import Database
from storage.models import Conversation, Message, StaffUser, YoungPerson, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_REPLY = 1600  # ten SMS segments

OPTED_OUT = N_(
    "{name} har frameldt beskeder (STOP), så svaret er ikke sendt. Kontakt {name} på en anden "
    "måde, hvis det er nødvendigt."
)
CLOSED = N_("Forløbet for {name} er lukket, så svaret er ikke sendt.")
NO_CHANNEL = N_(
    "Vi har hverken et telefonnummer eller en Telegram-forbindelse til {name}, så svaret kan "
    "ikke sendes."
)


class ActionRefused(Exception):  # noqa: N818 - an answer to show, not a fault
    """The action cannot be done; ``message`` is a Danish source text with ``params``."""

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


@dataclass(frozen=True)
class Replied:
    message_id: int
    channel: Channel
    took_over: bool


def channel_for(person: YoungPerson) -> Channel | None:
    """The channel the young person last wrote on, else Telegram, else SMS (as the bot does)."""
    if person.preferred_channel is not None:
        return person.preferred_channel
    if person.telegram_chat_id is not None:
        return Channel.TELEGRAM
    if person.phone is not None:
        return Channel.SMS
    return None


class Inbox:
    def __init__(self, database: Database) -> None:
        self.database = database

    def _locked(self, young_person_id: int, work: Callable[[Session, Conversation], T]) -> T:
        for attempt in range(3):
            try:
                with self.database.session() as session:
                    conversation = repo.lock(session, young_person_id)
                    return work(session, conversation)
            except StaleDataError:
                log.info("conversation changed under us; trying again", extra={"attempt": attempt})
        raise RuntimeError("conversation kept changing; giving up")

    def take_over(self, staff_id: int, young_person_id: int) -> None:
        def work(session: Session, conversation: Conversation) -> None:
            staff = session.get_one(StaffUser, staff_id)
            person = session.get_one(YoungPerson, young_person_id)
            _take(session, staff, person, conversation)

        self._locked(young_person_id, work)

    def reply(self, staff_id: int, young_person_id: int, text: str) -> Replied:
        def work(session: Session, conversation: Conversation) -> Replied:
            now = utcnow()
            staff = session.get_one(StaffUser, staff_id)
            person = session.get_one(YoungPerson, young_person_id)
            if person.status is YoungPersonStatus.OPTED_OUT:
                raise ActionRefused(OPTED_OUT, name=person.first_name)
            if person.status is YoungPersonStatus.CLOSED:
                raise ActionRefused(CLOSED, name=person.first_name)
            channel = channel_for(person)
            if channel is None:
                raise ActionRefused(NO_CHANNEL, name=person.first_name)
            took_over = conversation.holder is not Holder.HUMAN
            if took_over:
                _take(session, staff, person, conversation)
            message: Message = outbox.enqueue(
                session,
                channel=channel,
                text=mask_cpr(text),
                purpose=Purpose.STAFF,
                now=now,
                young_person_id=person.id,
                author=Author.STAFF,
                staff_id=staff.id,
            )
            conversation.last_outbound_at = now
            answered = inbox.record_first_answer(session, person.id, now)
            audit.by_staff(
                session,
                staff,
                "inbox.replied",
                person,
                details={
                    "message_id": message.id,
                    "channel": channel.value,
                    "first_answer_of": [h.id for h in answered],
                },
            )
            return Replied(message.id, channel, took_over)

        return self._locked(young_person_id, work)

    def hand_back(self, staff_id: int, young_person_id: int) -> None:
        def work(session: Session, conversation: Conversation) -> None:
            now = utcnow()
            staff = session.get_one(StaffUser, staff_id)
            person = session.get_one(YoungPerson, young_person_id)
            resolved = inbox.unresolved(session, person.id)
            for handoff in resolved:
                handoff.status = HandoffStatus.RESOLVED
                handoff.snoozed_until = None
                handoff.resolved_at = now
                handoff.resolved_by_id = staff.id
            conversation.holder = Holder.BOT
            conversation.held_by_id = None
            conversation.dialog = None
            conversation.step = None
            conversation.variables = {}
            conversation.misses = 0
            audit.by_staff(
                session,
                staff,
                "inbox.handed_back",
                person,
                details={"resolved": [h.id for h in resolved]},
            )

        self._locked(young_person_id, work)


def _take(
    session: Session, staff: StaffUser, person: YoungPerson, conversation: Conversation
) -> None:
    previous = conversation.holder
    conversation.holder = Holder.HUMAN
    conversation.held_by_id = staff.id
    handoffs = inbox.unresolved(session, person.id)
    for handoff in handoffs:
        handoff.assignee_id = staff.id
    audit.by_staff(
        session,
        staff,
        "inbox.took_over",
        person,
        details={"from": previous.value, "handoffs": [h.id for h in handoffs]},
    )
