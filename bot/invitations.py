"""Inviting a known young person: the Telegram deep link, and an invitation by SMS.

- :func:`telegram_link` is the ``t.me/<bot>?start=<code>`` link that binds a Telegram chat to the
  young person (a fresh code if theirs was used or has expired), or None without a bot username.
- :func:`send_sms_invitation` queues a short first message in the young person's language: that
  it is a bot, from which youth effort and on whose behalf, the Telegram link when Telegram is set
  up, how to choose another language and how to say no (STOP). It goes through the outbox like any
  staff message, as a proactive message: in the municipality's quiet hours it waits for the
  morning. It is refused without a phone number, after an opt-out or a closed course, and within
  24 hours of the last SMS invitation. Each one is an audit event (``young_person.invited_by_sms``).

Nothing is committed here; the caller's transaction holds the message and its audit event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.i18n import translate
from bot.quiet import quiet_hours
from bot.settings import Settings
from dialogs.i18n import N_
from dialogs.types import Author, Channel, Purpose, YoungPersonStatus
from storage import audit, outbox
from storage.invitations import fresh_invite_code
from storage.models import AuditEvent, StaffUser, YoungPerson

SMS_INVITED = "young_person.invited_by_sms"
SMS_AGAIN_AFTER = timedelta(hours=24)

INVITATION = N_(
    "Hej {first_name}! Jeg er Stifinder, en chatbot fra ungeindsatsen i {municipality}. "
    "{sender} har bedt mig skrive til dig, så vi kan holde kontakten om dine planer. "
    "Svar på denne sms, hvis du vil skrive med os."
)
INVITATION_TELEGRAM = N_("Du kan også skrive med mig på Telegram: {link}")
INVITATION_CHOICES = N_(
    "Skriv SPROG for at skrive på et andet sprog. Skriv STOP, hvis du ikke vil have beskeder."
)

NO_PHONE = N_("Vi har ikke et telefonnummer til {name}, så der kan ikke sendes en sms.")
OPTED_OUT = N_("{name} har frameldt beskeder (STOP), så der sendes ingen invitation.")
CLOSED = N_("Forløbet for {name} er lukket, så der sendes ingen invitation.")
TOO_SOON = N_(
    "{name} fik en invitation på sms for mindre end et døgn siden. Vent lidt, før du sender en ny."
)


class InvitationRefused(Exception):  # noqa: N818 - an answer to show, not a fault
    """The invitation cannot be sent; ``message`` is a Danish source text with ``params``."""

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


@dataclass(frozen=True)
class Invited:
    message_id: int
    not_before: datetime  # later than now when quiet hours defer it


def telegram_link(
    session: Session, settings: Settings, person: YoungPerson, *, now: datetime, actor: str
) -> str | None:
    """The person's Telegram invitation link, or None when no Telegram bot is set up."""
    username = settings.telegram_bot_username
    if not username:
        return None
    code = fresh_invite_code(session, person.id, now=now, actor=actor)
    return f"https://t.me/{username}?start={code}"


def current_telegram_link(settings: Settings, person: YoungPerson, now: datetime) -> str | None:
    """The link with the person's current code, if it can still be used (nothing is written)."""
    username = settings.telegram_bot_username
    if not username or person.invite_code is None or person.invite_code_used_at is not None:
        return None
    expires = person.invite_code_expires_at
    if expires is not None and expires <= now:
        return None
    return f"https://t.me/{username}?start={person.invite_code}"


def last_sms_invitation(session: Session, person: YoungPerson) -> datetime | None:
    return session.scalar(
        sa.select(sa.func.max(AuditEvent.at)).where(
            AuditEvent.young_person_id == person.id, AuditEvent.action == SMS_INVITED
        )
    )


def refusal(session: Session, person: YoungPerson, now: datetime) -> InvitationRefused | None:
    """Why an SMS invitation cannot be sent now, or None."""
    if person.status is YoungPersonStatus.OPTED_OUT:
        return InvitationRefused(OPTED_OUT, name=person.first_name)
    if person.status is YoungPersonStatus.CLOSED:
        return InvitationRefused(CLOSED, name=person.first_name)
    if not person.phone:
        return InvitationRefused(NO_PHONE, name=person.first_name)
    last = last_sms_invitation(session, person)
    if last is not None and last > now - SMS_AGAIN_AFTER:
        return InvitationRefused(TOO_SOON, name=person.first_name)
    return None


def invitation_text(
    person: YoungPerson, sender: StaffUser, *, municipality: str, link: str | None
) -> str:
    language = person.language
    parts = [
        translate(
            language,
            INVITATION,
            first_name=person.first_name,
            municipality=municipality,
            sender=sender.name,
        )
    ]
    if link is not None:
        parts.append(translate(language, INVITATION_TELEGRAM, link=link))
    parts.append(translate(language, INVITATION_CHOICES))
    return " ".join(parts)


def send_sms_invitation(
    session: Session, settings: Settings, person: YoungPerson, sender: StaffUser, *, now: datetime
) -> Invited:
    refused = refusal(session, person, now)
    if refused is not None:
        raise refused
    actor = f"staff:{sender.id}"
    link = (
        telegram_link(session, settings, person, now=now, actor=actor)
        if settings.telegram_enabled
        else None
    )
    text = invitation_text(person, sender, municipality=person.municipality.name, link=link)
    not_before = quiet_hours(person.municipality).next_allowed(now)
    message = outbox.enqueue(
        session,
        channel=Channel.SMS,
        text=text,
        purpose=Purpose.PROACTIVE,
        now=now,
        young_person_id=person.id,
        author=Author.STAFF,
        staff_id=sender.id,
        not_before=not_before,
    )
    audit.record(
        session,
        actor=actor,
        action=SMS_INVITED,
        staff_id=sender.id,
        municipality_id=person.municipality_id,
        young_person_id=person.id,
        details={
            "message_id": message.id,
            "telegram_link": link is not None,
            "deferred_until": not_before.isoformat() if not_before > now else None,
        },
    )
    return Invited(message.id, not_before)
