"""From provider to conversation: store the raw inbound first, process it after.

The webhooks only verify, parse and :meth:`Inbound.store_*` (one insert, committed before the
provider gets its 2xx); :meth:`Inbound.process_pending` turns stored events into conversation
turns, binds Telegram chats from invitation links, and answers senders Stifinder does not know.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from telegram import Update
from telegram.constants import ChatMemberStatus

from bot.channels.sms import TWILIO_STATUS
from bot.conversations import Conversations, UnknownYoungPerson
from bot.i18n import translate
from bot.outbox import rank, stored_rank
from bot.sms_errors import PERMANENT
from dialogs import replies
from dialogs.crisis import shows_crisis
from dialogs.i18n import N_
from dialogs.lexicon import Lexicon
from dialogs.privacy import mask_cpr
from dialogs.types import (
    Author,
    Channel,
    ConsentSource,
    DeliveryStatus,
    Direction,
    InboundStatus,
    Purpose,
    YoungPersonStatus,
)
from storage import consent, outbox
from storage import inbound as events
from storage.db import Database
from storage.models import (
    DEFAULT_HELP_LINES,
    Message,
    Municipality,
    YoungPerson,
    utcnow,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# Marks a stored status callback among the inbound events.
STATUS_CALLBACK = "_status_callback"
# Twilio opts a number out itself on these single words and sends its own confirmation.
TWILIO_STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})

UNKNOWN_SENDER = N_(
    "Hej! Det her er Stifinder, en chatbot fra kommunens ungeindsats. Jeg kender ikke dit "
    "nummer. Skriv gerne til din kontaktperson, eller ring til kommunen."
)
TELEGRAM_NOT_LINKED = N_(
    "Hej! Jeg er Stifinder, en chatbot fra kommunens ungeindsats. Brug linket fra din "
    "kontaktperson for at komme i gang."
)
TELEGRAM_BAD_LINK = N_(
    "Hej! Det link virker desværre ikke (mere). Spørg din kontaktperson om et nyt."
)
TELEGRAM_CHAT_TAKEN = N_(
    "Den her chat er allerede forbundet til en anden. Spørg din kontaktperson, hvis det er en fejl."
)


class Inbound:
    def __init__(
        self,
        *,
        database: Database,
        conversations: Conversations,
        lexicons: Callable[[], Mapping[str, Lexicon]],
        default_language: str = "da",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.conversations = conversations
        self.lexicons = lexicons
        self.default_language = default_language
        self.clock = clock

    # ------------------------------------------------------------------ storing (webhooks)

    def twilio_row(self, form: Mapping[str, str]) -> dict[str, Any]:
        """The event row of an inbound SMS, CPR numbers masked."""
        payload = {
            key: (mask_cpr(value) if key == "Body" else value) for key, value in form.items()
        }
        return events.row(
            channel=Channel.SMS, dedupe_key=form["MessageSid"], payload=payload, now=self.clock()
        )

    def status_row(self, form: Mapping[str, str]) -> dict[str, Any]:
        """A Twilio status callback that came before the send was recorded, kept to apply later."""
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        status = form.get("MessageStatus") or form.get("SmsStatus") or ""
        return events.row(
            channel=Channel.SMS,
            dedupe_key=f"status:{sid}:{status}"[:120],
            payload={**form, STATUS_CALLBACK: "1"},
            now=self.clock(),
        )

    def telegram_row(self, update: Mapping[str, Any]) -> dict[str, Any]:
        """The event row of a Telegram update.

        Update ids restart at random after a week of quiet, so the key also holds the chat and
        the message: a new update can never be mistaken for an old one.
        """
        message = update.get("message") or update.get("edited_message") or {}
        chat = (message.get("chat") or {}).get("id")
        key = f"{update['update_id']}:{chat}:{message.get('message_id')}"
        payload = dict(update)
        if isinstance(message.get("text"), str):
            masked = dict(message, text=mask_cpr(message["text"]))
            payload["message" if "message" in update else "edited_message"] = masked
        return events.row(
            channel=Channel.TELEGRAM, dedupe_key=key, payload=payload, now=self.clock()
        )

    def _store(self, values: dict[str, Any]) -> bool:
        with self.database.session() as session:
            statement = events.insert_statement(self.database.dialect)
            result = session.execute(statement.values(**values))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def store_twilio(self, form: Mapping[str, str]) -> bool:
        """Store an inbound SMS; False when it was seen before (the webhooks group-commit)."""
        return self._store(self.twilio_row(form))

    def store_telegram(self, update: Mapping[str, Any]) -> bool:
        """Store a Telegram update; False when it was seen before."""
        return self._store(self.telegram_row(update))

    # ------------------------------------------------------------------ processing

    def process_pending(self, limit: int = 50) -> int:
        handled = 0
        while True:
            with self.database.session() as session:
                batch = events.claim(session, now=self.clock(), limit=limit)
                work = [(e.id, e.channel, dict(e.payload), e.attempts) for e in batch]
            for event_id, channel, payload, attempts in work:
                # Failures are not counted: the pump must not spin on an event that waits for
                # something else (a status callback for a send not yet recorded).
                handled += self._process(event_id, channel, payload, attempts)
            if len(work) < limit:
                return handled

    def _process(
        self, event_id: int, channel: Channel, payload: dict[str, Any], attempts: int
    ) -> bool:
        try:
            if channel is Channel.SMS and payload.get(STATUS_CALLBACK):
                # The send is recorded within moments; until then, try again on the next round.
                if not apply_twilio_status(self, payload):
                    raise LookupError("no message with this MessageSid yet")
            elif channel is Channel.SMS:
                self._sms(payload)
            elif channel is Channel.TELEGRAM:
                self._telegram(payload)
            status, error = InboundStatus.DONE, None
        except Exception as failure:
            log.exception("inbound event failed", extra={"event": event_id})
            status = InboundStatus.FAILED if attempts >= MAX_ATTEMPTS else InboundStatus.PENDING
            error = type(failure).__name__
        with self.database.session() as session:
            events.finish(session, event_id, status=status, now=self.clock(), error=error)
        return error is None

    # ------------------------------------------------------------------ SMS

    def _sms(self, form: dict[str, Any]) -> None:
        sender = str(form.get("From", ""))
        text = str(form.get("Body", ""))
        sid = str(form["MessageSid"])
        if self._already_stored(Channel.SMS, sid):
            return
        person_id = self._person_by_phone(sender, str(form.get("To", "")))
        if person_id is None:
            self._stranger(Channel.SMS, sender, text, sid)
            return
        if not text.strip() and int(form.get("NumMedia", "0") or 0) > 0:
            self._reply_only(person_id, Channel.SMS, sid, replies.MEDIA_ONLY)
            return
        provider_stop = text.strip().upper() in TWILIO_STOP_WORDS
        self.conversations.receive(
            young_person_id=person_id,
            channel=Channel.SMS,
            text=text,
            provider_id=sid,
            # Twilio confirms its own STOP; a second confirmation would be refused (21610).
            suppress=frozenset({Purpose.OPT_OUT}) if provider_stop else frozenset(),
        )

    def _already_stored(self, channel: Channel, provider_id: str) -> bool:
        """A run that died after storing the message but before closing the event."""
        with self.database.session() as session:
            found = session.scalar(
                sa.select(Message.id).where(
                    Message.channel == channel, Message.provider_id == provider_id
                )
            )
        return found is not None

    def _person_by_phone(self, phone: str, to: str) -> int | None:
        with self.database.session() as session:
            query = sa.select(YoungPerson.id).where(YoungPerson.phone == phone)
            places = [
                place.id
                for place in session.scalars(sa.select(Municipality)).all()
                if (place.sender_settings or {}).get("sms", {}).get("from") == to
            ]
            if places:
                query = query.where(YoungPerson.municipality_id.in_(places))
            found = session.scalars(query.limit(2)).all()
        if len(found) != 1:
            if len(found) > 1:
                log.warning("one phone number, several municipalities: treated as unknown")
            return None
        return int(found[0])

    # ------------------------------------------------------------------ Telegram

    def _telegram(self, payload: dict[str, Any]) -> None:
        update = Update.de_json(payload, None)
        if update.my_chat_member is not None:
            self._membership(update)
            return
        message = update.message
        if message is None or message.chat.type != "private":
            return  # edits, groups and channels are not conversations with a young person
        chat_id = message.chat.id
        provider_id = f"{chat_id}:{message.message_id}"
        if self._already_stored(Channel.TELEGRAM, provider_id):
            return
        text = message.text or message.caption or ""
        if text.startswith("/start"):
            self._start(chat_id, text.removeprefix("/start").strip(), provider_id)
            return
        with self.database.session() as session:
            person_id = session.scalar(
                sa.select(YoungPerson.id).where(YoungPerson.telegram_chat_id == chat_id)
            )
        if person_id is None:
            self._stranger(Channel.TELEGRAM, str(chat_id), text, provider_id, TELEGRAM_NOT_LINKED)
            return
        if not text.strip():
            self._reply_only(person_id, Channel.TELEGRAM, provider_id, replies.MEDIA_ONLY)
            return
        self.conversations.receive(
            young_person_id=person_id, channel=Channel.TELEGRAM, text=text, provider_id=provider_id
        )

    def _membership(self, update: Update) -> None:
        member = update.my_chat_member
        assert member is not None
        blocked = member.new_chat_member.status == ChatMemberStatus.BANNED
        now = self.clock()
        with self.database.session() as session:
            person = session.scalar(
                sa.select(YoungPerson).where(YoungPerson.telegram_chat_id == member.chat.id)
            )
            if person is not None:
                person.telegram_blocked_at = now if blocked else None

    def _start(self, chat_id: int, code: str, provider_id: str) -> None:
        now = self.clock()
        with self.database.session() as session:
            bound = session.scalar(
                sa.select(YoungPerson).where(YoungPerson.telegram_chat_id == chat_id)
            )
            if bound is not None and not code:
                person_id: int | None = bound.id
            elif bound is not None:
                person_id = None if bound.invite_code != code else bound.id
            else:
                person_id = self._bind(session, chat_id, code, now) if code else None
        if person_id is None:
            answer = TELEGRAM_BAD_LINK if code else TELEGRAM_NOT_LINKED
            if bound is not None and code:
                answer = TELEGRAM_CHAT_TAKEN
            self._stranger(
                Channel.TELEGRAM, str(chat_id), f"/start {code}".strip(), provider_id, answer
            )
            return
        if bound is None:
            # The young person opened the bot from their invitation: the welcome is the answer,
            # so it goes at once, also at night.
            self.conversations.start(
                young_person_id=person_id, dialog="welcome", variables={}, purpose=Purpose.REPLY
            )
        else:
            self.conversations.receive(
                young_person_id=person_id,
                channel=Channel.TELEGRAM,
                text="start",
                provider_id=provider_id,
            )

    @staticmethod
    def _bind(session: Any, chat_id: int, code: str, now: datetime) -> int | None:
        """Bind a chat to the invited young person: single use, before the code expires."""
        person = session.scalar(sa.select(YoungPerson).where(YoungPerson.invite_code == code))
        if (
            person is None
            or person.invite_code_used_at is not None
            or (person.invite_code_expires_at is not None and person.invite_code_expires_at < now)
            or person.status in (YoungPersonStatus.OPTED_OUT, YoungPersonStatus.CLOSED)
        ):
            return None
        person.telegram_chat_id = chat_id
        person.invite_code_used_at = now
        person.telegram_blocked_at = None
        person.preferred_channel = Channel.TELEGRAM
        return int(person.id)

    # ------------------------------------------------------------------ strangers

    def _stranger(
        self,
        channel: Channel,
        address: str,
        text: str,
        provider_id: str,
        answer: str = UNKNOWN_SENDER,
    ) -> None:
        """Someone Stifinder does not know: keep the message for a coordinator, answer kindly
        (once a day), and with the help lines at once on signs of crisis."""
        now = self.clock()
        language = self.default_language
        crisis = shows_crisis(text, self.lexicons().values())
        with self.database.session() as session:
            session.add(
                Message(
                    address=address,
                    direction=Direction.INBOUND,
                    channel=channel,
                    author=Author.YOUNG_PERSON,
                    text=mask_cpr(text),
                    provider_id=provider_id,
                    status=DeliveryStatus.RECEIVED,
                    created_at=now,
                )
            )
            answered_lately = session.scalar(
                sa.select(sa.func.count())
                .select_from(Message)
                .where(
                    Message.address == address,
                    Message.direction == Direction.OUTBOUND,
                    Message.created_at > now - timedelta(days=1),
                )
            )
            if crisis:
                lines = ", ".join(
                    f"{line['name']}: {line['number']}" for line in DEFAULT_HELP_LINES
                )
                reply = translate(
                    language,
                    replies.CRISIS,
                    help_lines=lines,
                    kontaktperson=translate(language, replies.YOUR_KONTAKTPERSON),
                )
                purpose = Purpose.CRISIS
            elif answered_lately:
                return
            else:
                reply, purpose = translate(language, answer), Purpose.REPLY
            outbox.enqueue(
                session, channel=channel, text=reply, purpose=purpose, now=now, address=address
            )
        log.info("message from an unknown sender", extra={"channel": channel.value})

    def _reply_only(self, person_id: int, channel: Channel, provider_id: str, text: str) -> None:
        try:
            self.conversations.notice(
                young_person_id=person_id,
                channel=channel,
                provider_id=provider_id,
                reply=text,
            )
        except UnknownYoungPerson:
            log.warning("young person vanished while a message was processed")

    # ------------------------------------------------------------------ provider opt-out

    def provider_opt_out(self, phone: str) -> None:
        """Twilio says the number opted out (error 21610): keep Stifinder in step."""
        now = self.clock()
        with self.database.session() as session:
            for person in session.scalars(sa.select(YoungPerson).where(YoungPerson.phone == phone)):
                if person.status is not YoungPersonStatus.OPTED_OUT:
                    consent.opt_out(
                        session,
                        person,
                        source=ConsentSource.PROVIDER,
                        channel=Channel.SMS,
                        now=now,
                        note="21610",
                    )


def apply_twilio_status(inbound: Inbound, form: Mapping[str, str]) -> bool:
    """Record a signed status callback; False when no message has that id (yet)."""
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    status = TWILIO_STATUS.get(form.get("MessageStatus") or form.get("SmsStatus") or "")
    code = form.get("ErrorCode") or None
    now = inbound.clock()
    with inbound.database.session() as session:
        found = session.execute(
            sa.select(Message.id, Message.young_person_id).where(
                Message.channel == Channel.SMS, Message.provider_id == sid
            )
        ).first()
        if found is None or status is None:
            return False
        message_id, person_id = found
        # Two callbacks of one message (sent, delivered) may be applied at once. Each change is
        # one statement judged on the row as it is when written, so the later status wins
        # whatever order their transactions end in; a status judged on the row as read first
        # could step back (SQLite has no row locks to keep the other out meanwhile).
        this = sa.update(Message).where(Message.id == message_id)
        session.execute(
            this.where(stored_rank(Message.status) <= rank(status)).values(
                status=status, status_changed_at=now
            )
        )
        if status is DeliveryStatus.DELIVERED:
            session.execute(this.where(Message.delivered_at.is_(None)).values(delivered_at=now))
        if status is DeliveryStatus.SENT:
            session.execute(this.where(Message.sent_at.is_(None)).values(sent_at=now))
        if code:
            session.execute(this.values(error_code=code))
        if person_id is not None and code in PERMANENT:
            person = session.get(YoungPerson, person_id)
            if person is not None:
                person.sms_error_code = code
    if code == "21610":
        inbound.provider_opt_out(form.get("To", ""))
    return True
