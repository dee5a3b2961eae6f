"""Telling staff about handoffs: an e-mail to whoever should answer, and the coordinators when
nobody has.

``storage.handoffs.open_handoff`` raises the inbox alert and schedules two items in the
transaction that opens the handoff, so a rollback tells nobody and nothing is sent from inside
that transaction. The worker runs them (registered in ``bot/runtime.py``):

- ``handoff_notify`` (due at once): e-mails the assignee (the kontaktperson, or their backup
  while they are away; the coordinators when there is nobody). It expires when the handoff was
  answered or resolved before the worker got to it. A mail server that is down fails the item,
  and the worker tries again with backoff.
- ``handoff_escalate`` (due ``handoff_answer_minutes`` after opening): if nobody has answered
  (``Handoff.first_human_answer_at`` still empty) and the handoff is not resolved, an inbox
  alert and an e-mail for each active coordinator of the municipality; otherwise it expires
  with the reason. If the municipality lengthened its answer time since, it waits until then.

Without SMTP configured only the inbox alerts exist; the items finish saying so. The e-mails
hold no message text and nothing CPR-like: the young person's first name, the reason, and a
link to the conversation on the public base URL, in the reader's own language.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.i18n import translate
from bot.mail import Email, Mailer
from bot.settings import Settings
from bot.worker import Defer, Expired, Handler
from dialogs.i18n import N_
from dialogs.privacy import mask_cpr
from dialogs.types import AlertKind, HandoffPriority, HandoffReason, HandoffStatus
from storage import alerts, handoffs
from storage.models import Handoff, Municipality, ScheduledItem, StaffUser, YoungPerson

NOTIFY = handoffs.NOTIFY
ESCALATE = handoffs.ESCALATE

REASONS: dict[HandoffReason, str] = {
    HandoffReason.ASKED: N_("bad om at tale med en voksen"),
    HandoffReason.NOT_UNDERSTOOD: N_("botten forstod ikke svaret to gange"),
    HandoffReason.DECLINED_MEETING: N_("kan ikke komme til et møde"),
    HandoffReason.CRISIS: N_("skrev noget, der kan være tegn på krise"),
    HandoffReason.CAMPAIGN_REPLY: N_("svarede på en kampagne"),
    HandoffReason.CANNOT_REACH: N_("har ikke svaret botten i længere tid"),
    HandoffReason.NEEDS_HELP: N_("har brug for hjælp til et delmål"),
    HandoffReason.NO_SHOW: N_("kom ikke til et møde"),
}
SUBJECT = N_("{first_name} har brug for dig i Stifinder")
SUBJECT_URGENT = N_("Haster: {first_name} har brug for dig i Stifinder")
GREETING = N_("Hej {name}")
BODY = N_("{first_name} har brug for en voksen. Årsag: {reason}.")
COVERING = N_("Du får denne besked, fordi du dækker for {colleague}, mens vedkommende er væk.")
TO_COORDINATOR = N_(
    "Den unge har ingen kontaktperson, der kan svare lige nu, så du får beskeden som koordinator."
)
LINK = N_("Svar i indbakken: {link}")
NO_CONTENT = N_(
    "Af hensyn til den unge står samtalens indhold ikke i denne e-mail. Log ind i Stifinder for "
    "at læse den."
)
ESCALATION_SUBJECT = N_("Ingen har svaret {first_name} endnu")
ESCALATION_BODY = N_(
    "{first_name} har ventet {minutes} minutter på svar fra en voksen, og ingen har svaret "
    "endnu. Årsag: {reason}."
)
ESCALATION_LINK = N_("Se samtalen: {link}")


class MailNotSentError(RuntimeError):
    """The mail server did not take the e-mail: the worker tries the item again later."""


class Notifier:
    """The worker's handlers for ``handoff_notify`` and ``handoff_escalate``."""

    def __init__(self, settings: Settings, mailer: Mailer | None = None) -> None:
        self.settings = settings
        self.mailer = mailer if mailer is not None else Mailer(settings)

    def handlers(self) -> dict[str, Handler]:
        return {NOTIFY: self.notify, ESCALATE: self.escalate}

    def link(self, young_person_id: int) -> str:
        return f"{self.settings.public_base_url.rstrip('/')}/inbox/{young_person_id}"

    # ------------------------------------------------------------------ the handlers

    def notify(self, session: Session, item: ScheduledItem, now: datetime) -> str:
        handoff, person = _handoff_of(session, item)
        if handoff.status is HandoffStatus.RESOLVED:
            raise Expired("handoff resolved before anyone was e-mailed")
        if handoff.first_human_answer_at is not None:
            raise Expired("handoff answered before anyone was e-mailed")
        staff = _staff(session, item.payload.get("staff_ids", []))
        if not staff:
            raise Expired("nobody to notify")
        if not self.mailer.enabled:
            return f"inbox alert only for {len(staff)} (e-mail is not configured)"
        urgent = bool(item.payload.get("urgent")) or handoff.priority is HandoffPriority.URGENT
        kontaktperson = person.kontaktperson
        for reader in staff:
            language = reader.language
            lines = [translate(language, GREETING, name=reader.name), ""]
            lines.append(
                translate(
                    language,
                    BODY,
                    first_name=_first_name(person),
                    reason=translate(language, REASONS[handoff.reason]),
                )
            )
            if kontaktperson is not None and reader.id == kontaktperson.backup_id:
                lines.append(translate(language, COVERING, colleague=kontaktperson.name))
            elif kontaktperson is None or reader.id != kontaktperson.id:
                lines.append(translate(language, TO_COORDINATOR))
            lines += ["", translate(language, LINK, link=self.link(person.id)), ""]
            lines.append(translate(language, NO_CONTENT))
            subject = translate(
                language, SUBJECT_URGENT if urgent else SUBJECT, first_name=_first_name(person)
            )
            self._send(reader, subject, "\n".join(lines))
        return f"e-mailed {len(staff)}"

    def escalate(self, session: Session, item: ScheduledItem, now: datetime) -> str:
        handoff, person = _handoff_of(session, item)
        if handoff.status is HandoffStatus.RESOLVED:
            raise Expired("handoff resolved in time")
        if handoff.first_human_answer_at is not None:
            answered_in = handoff.first_human_answer_at - handoff.opened_at
            raise Expired(f"answered after {_minutes(answered_in)} min")
        minutes = session.scalar(
            sa.select(Municipality.handoff_answer_minutes).where(
                Municipality.id == person.municipality_id
            )
        )
        due = handoff.opened_at + timedelta(minutes=minutes or 0)
        if now < due:
            raise Defer(due, "the municipality's answer time is longer now")
        coordinators = alerts.coordinator_ids(session, person.municipality_id)
        if not coordinators:
            raise Expired("the municipality has no active coordinator")
        handoffs.raise_alert(
            session,
            kind=AlertKind.HANDOFF_UNANSWERED,
            key=f"handoff_unanswered:{handoff.id}",
            handoff=handoff,
            person=person,
            staff_ids=coordinators,
            now=now,
        )
        if not self.mailer.enabled:
            return f"inbox alert only for {len(coordinators)} coordinators (no e-mail configured)"
        waited = _minutes(now - handoff.opened_at)
        for reader in _staff(session, coordinators):
            language = reader.language
            lines = [translate(language, GREETING, name=reader.name), ""]
            lines.append(
                translate(
                    language,
                    ESCALATION_BODY,
                    first_name=_first_name(person),
                    minutes=waited,
                    reason=translate(language, REASONS[handoff.reason]),
                )
            )
            lines += ["", translate(language, ESCALATION_LINK, link=self.link(person.id)), ""]
            lines.append(translate(language, NO_CONTENT))
            subject = translate(language, ESCALATION_SUBJECT, first_name=_first_name(person))
            self._send(reader, subject, "\n".join(lines))
        return f"coordinators alerted and e-mailed: {len(coordinators)}"

    def _send(self, reader: StaffUser, subject: str, text: str) -> None:
        delivery = self.mailer.send(Email(to=[reader.email], subject=subject, text=text))
        if not delivery.sent:
            # The item's transaction rolls back (alerts included) and the worker retries it.
            raise MailNotSentError(delivery.error or "not sent")


def _handoff_of(session: Session, item: ScheduledItem) -> tuple[Handoff, YoungPerson]:
    handoff = session.get(Handoff, int(item.payload.get("handoff_id", 0)))
    if handoff is None:
        raise Expired("handoff is gone")
    return handoff, session.get_one(YoungPerson, handoff.young_person_id)


def _staff(session: Session, ids: Sequence[int]) -> list[StaffUser]:
    if not ids:
        return []
    return list(
        session.scalars(
            sa.select(StaffUser)
            .where(StaffUser.id.in_(list(ids)), StaffUser.is_active.is_(True))
            .order_by(StaffUser.id)
        ).all()
    )


def _first_name(person: YoungPerson) -> str:
    """The first name alone, with anything CPR-like masked (it was typed by someone)."""
    return mask_cpr(person.first_name.split()[0] if person.first_name.split() else "")


def _minutes(waited: timedelta) -> int:
    return max(0, int(waited.total_seconds() // 60))
