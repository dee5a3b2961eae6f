"""Running the dialog engine against the database: one turn, one transaction.

A turn locks the conversation, stores the inbound message (CPR numbers masked), asks the engine,
applies its effects, writes the replies into the outbox and saves the new state — all or nothing.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from bot import followups
from bot.formatting import format_moment, handoff_eta
from bot.i18n import translator
from bot.lexicons import all_lexicons, lexicon_languages
from bot.quiet import quiet_hours
from dialogs import model
from dialogs.engine import Engine
from dialogs.privacy import mask_cpr
from dialogs.sms import sms_text
from dialogs.types import (
    Author,
    CaptureSource,
    Channel,
    ConsentKind,
    ConsentSource,
    DeliveryStatus,
    Direction,
    HandoffPriority,
    Purpose,
    YoungPersonStatus,
)
from storage import consent, handoffs, outbox, plans
from storage import conversations as repo
from storage.db import Database
from storage.models import (
    Conversation,
    Dream,
    Goal,
    Meeting,
    Message,
    ScheduledItem,
    SubGoal,
    YoungPerson,
    utcnow,
)

log = logging.getLogger(__name__)

DIALOG_TIMEOUT = "dialog_timeout"
YOUNG_PERSON = ConsentSource.YOUNG_PERSON


@dataclass(frozen=True)
class Sent:
    """An outgoing message as the caller sees it."""

    message_id: int
    text: str
    purpose: Purpose


class UnknownYoungPerson(LookupError):  # noqa: N818 - reads as what it is
    pass


class Conversations:
    def __init__(
        self,
        *,
        database: Database,
        engine: Engine,
        clock: Callable[[], datetime] = utcnow,
        sms_lookalikes: bool = True,
    ) -> None:
        self.database = database
        self.engine = engine
        self.clock = clock
        self.sms_lookalikes = sms_lookalikes
        # SQLite has no row locks; turns in this process take turns here instead.
        self._sqlite_lock = threading.Lock() if database.dialect == "sqlite" else None

    # ----------------------------------------------------------------- entry points

    def receive(
        self,
        *,
        young_person_id: int,
        channel: Channel,
        text: str,
        provider_id: str | None = None,
        suppress: frozenset[Purpose] = frozenset(),
    ) -> list[Sent]:
        """One message from a young person: store it, answer it, in one transaction.

        Replies whose purpose is in ``suppress`` are left out (Twilio confirms its own STOP).
        """

        def turn(session: Session, person: YoungPerson, conversation: Conversation) -> list[Sent]:
            now = self.clock()
            masked = mask_cpr(text)
            inbound = Message(
                young_person_id=person.id,
                direction=Direction.INBOUND,
                channel=channel,
                author=Author.YOUNG_PERSON,
                text=masked,
                provider_id=provider_id,
                status=DeliveryStatus.RECEIVED,
                created_at=now,
            )
            session.add(inbound)
            session.flush()
            person.last_inbound_at = now
            person.preferred_channel = channel
            conversation.last_inbound_at = now
            ctx = self._context(session, person, now)
            result = self.engine.receive(self._state(person, conversation), masked, ctx)
            if suppress:
                kept = tuple(m for m in result.messages if m.purpose not in suppress)
                result = model.Turn(result.state, kept, result.effects)
            sent = self._apply(session, person, conversation, result, channel, now, inbound)
            followups.on_inbound(session, person, now)  # the silence chain counts from here
            return sent

        return self._in_turn(young_person_id, turn)

    def notice(
        self, *, young_person_id: int, channel: Channel, provider_id: str, reply: str
    ) -> list[Sent]:
        """A message the engine cannot read (a picture alone): keep it, answer with ``reply``."""

        def turn(session: Session, person: YoungPerson, conversation: Conversation) -> list[Sent]:
            now = self.clock()
            session.add(
                Message(
                    young_person_id=person.id,
                    direction=Direction.INBOUND,
                    channel=channel,
                    author=Author.YOUNG_PERSON,
                    text="",
                    provider_id=provider_id,
                    status=DeliveryStatus.RECEIVED,
                    created_at=now,
                )
            )
            person.last_inbound_at = now
            text = translator(person.language).gettext(reply)
            return [self._enqueue(session, person, model.Outgoing(text), channel, now)]

        return self._in_turn(young_person_id, turn)

    def start(
        self,
        *,
        young_person_id: int,
        dialog: str,
        variables: Mapping[str, Any],
        session: Session | None = None,
    ) -> list[Sent]:
        """Start a dialog on the bot's own initiative; nothing is sent to an opted-out person.

        With ``session`` the turn runs inside the caller's transaction (a scheduled item's), so the
        item is closed in the same commit as the messages it caused.
        """

        def turn(session: Session, person: YoungPerson, conversation: Conversation) -> list[Sent]:
            now = self.clock()
            channel = self._channel_for(person)
            if channel is None:
                log.warning("no channel to reach young person", extra={"young_person": person.id})
                return []
            ctx = self._context(session, person, now)
            state = self._state(person, conversation)
            result = self.engine.start(state, dialog, variables, ctx)
            return self._apply(session, person, conversation, result, channel, now, None)

        return self._in_turn(young_person_id, turn, session)

    def timeout(
        self, *, young_person_id: int, dialog: str, step: str, session: Session | None = None
    ) -> list[Sent]:
        def turn(session: Session, person: YoungPerson, conversation: Conversation) -> list[Sent]:
            now = self.clock()
            channel = self._channel_for(person)
            if channel is None:
                return []
            ctx = self._context(session, person, now)
            result = self.engine.timeout(self._state(person, conversation), dialog, step, ctx)
            return self._apply(session, person, conversation, result, channel, now, None)

        return self._in_turn(young_person_id, turn, session)

    def handle_timeout_item(self, session: Session, item: ScheduledItem, now: datetime) -> str:
        """The worker's handler for ``dialog_timeout`` items (runs its own turn)."""
        if item.young_person_id is None:
            return "no young person"
        payload = item.payload
        sent = self.timeout(
            young_person_id=item.young_person_id,
            dialog=str(payload["dialog"]),
            step=str(payload["step"]),
            session=session,
        )
        return f"{len(sent)} sent"

    # ----------------------------------------------------------------- the turn

    def _in_turn(
        self,
        young_person_id: int,
        turn: Callable[[Session, YoungPerson, Conversation], list[Sent]],
        outer: Session | None = None,
    ) -> list[Sent]:
        if outer is not None:
            # The caller's transaction: a lost update rolls all of it back and it runs again.
            if self._sqlite_lock is None:
                return self._turn_in(outer, young_person_id, turn)
            with self._sqlite_lock:
                return self._turn_in(outer, young_person_id, turn)
        for attempt in range(3):
            try:
                if self._sqlite_lock is None:
                    return self._once(young_person_id, turn)
                with self._sqlite_lock:
                    return self._once(young_person_id, turn)
            except StaleDataError:
                # Another process moved this conversation on between our read and our write.
                log.info("conversation changed under us; trying again", extra={"attempt": attempt})
        raise RuntimeError("conversation kept changing; giving up this turn")

    def _once(
        self,
        young_person_id: int,
        turn: Callable[[Session, YoungPerson, Conversation], list[Sent]],
    ) -> list[Sent]:
        with self.database.session() as session:
            return self._turn_in(session, young_person_id, turn)

    @staticmethod
    def _turn_in(
        session: Session,
        young_person_id: int,
        turn: Callable[[Session, YoungPerson, Conversation], list[Sent]],
    ) -> list[Sent]:
        person = session.get(YoungPerson, young_person_id)
        if person is None:
            raise UnknownYoungPerson(young_person_id)
        conversation = repo.lock(session, young_person_id)
        # Read the person again under the lock: a turn that held it may have changed them.
        session.refresh(person)
        return turn(session, person, conversation)

    def _state(self, person: YoungPerson, conversation: Conversation) -> model.State:
        return model.State(
            holder=conversation.holder,
            dialog=conversation.dialog,
            step=conversation.step,
            variables=dict(conversation.variables or {}),
            misses=conversation.misses,
            language=person.language,
            opted_out=person.status is YoungPersonStatus.OPTED_OUT,
        )

    def _context(self, session: Session, person: YoungPerson, now: datetime) -> model.Context:
        place = person.municipality
        zone = ZoneInfo(place.timezone)
        local_now = now.astimezone(zone)
        meeting = repo.next_meeting(session, person.id, now)
        plan = tuple(
            model.PlanView(
                goal=goal.title,
                next_sub_goal=step.title if step else None,
                due=(
                    datetime.combine(step.due_date, datetime.min.time(), tzinfo=zone)
                    if step and step.due_date
                    else None
                ),
            )
            for goal, step in repo.open_goals(session, person.id)
        )
        kontaktperson = person.kontaktperson
        return model.Context(
            now=local_now,
            person=model.Person(
                first_name=person.first_name,
                kontaktperson=kontaktperson.name.split()[0] if kontaktperson else None,
                municipality=place.name,
                help_lines=tuple((line["name"], line["number"]) for line in place.help_lines),
                next_meeting=(
                    model.MeetingView(meeting.starts_at, meeting.place, meeting.with_whom)
                    if meeting
                    else None
                ),
                plan=plan,
            ),
            lexicons=all_lexicons(),
            translate=lambda language, text: translator(language).gettext(text),
            format_datetime=lambda moment, language: format_moment(moment, language, zone),
            handoff_eta=lambda language: handoff_eta(
                local_now,
                language,
                office_start=place.office_hours_start,
                office_end=place.office_hours_end,
            ),
            languages=lexicon_languages(),
        )

    @staticmethod
    def _channel_for(person: YoungPerson) -> Channel | None:
        if person.preferred_channel is not None:
            return person.preferred_channel
        if person.telegram_chat_id is not None:
            return Channel.TELEGRAM
        if person.phone is not None:
            return Channel.SMS
        return None

    # ----------------------------------------------------------------- effects

    def _apply(
        self,
        session: Session,
        person: YoungPerson,
        conversation: Conversation,
        result: model.Turn,
        channel: Channel,
        now: datetime,
        inbound: Message | None,
    ) -> list[Sent]:
        moved = (result.state.dialog, result.state.step) != (conversation.dialog, conversation.step)
        if moved:
            repo.cancel_scheduled(
                session, person.id, now=now, reason="dialog moved on", kind=DIALOG_TIMEOUT
            )
        state = result.state
        conversation.holder = state.holder
        conversation.dialog = state.dialog
        conversation.step = state.step
        conversation.variables = dict(state.variables)
        conversation.misses = state.misses
        person.language = state.language
        for effect in result.effects:
            self._effect(session, person, conversation, effect, channel, now, inbound)
        sent = [self._enqueue(session, person, m, channel, now) for m in result.messages]
        if sent:
            conversation.last_outbound_at = now
        return sent

    def _enqueue(
        self,
        session: Session,
        person: YoungPerson,
        outgoing: model.Outgoing,
        channel: Channel,
        now: datetime,
    ) -> Sent:
        text = outgoing.text
        if channel is Channel.SMS and self.sms_lookalikes:
            text = sms_text(text)
        not_before = now
        if outgoing.purpose is Purpose.PROACTIVE:
            # On the bot's own initiative: never at night. Replies and crisis help go at once.
            not_before = quiet_hours(person.municipality).next_allowed(now)
        message = outbox.enqueue(
            session,
            channel=channel,
            text=text,
            purpose=outgoing.purpose,
            now=now,
            young_person_id=person.id,
            not_before=not_before,
        )
        return Sent(message.id, outgoing.text, outgoing.purpose)

    def _effect(
        self,
        session: Session,
        person: YoungPerson,
        conversation: Conversation,
        effect: model.Effect,
        channel: Channel,
        now: datetime,
        inbound: Message | None,
    ) -> None:
        match effect:
            case model.SaveDream():
                session.add(
                    Dream(
                        young_person_id=person.id,
                        text=mask_cpr(effect.text),
                        category=effect.category,
                        captured_at=now,
                        captured_via=CaptureSource.DIALOG,
                        channel=channel,
                        message_id=inbound.id if inbound else None,
                    )
                )
            case model.SetMeetingStatus():
                meeting = session.get(Meeting, effect.meeting_id)
                if meeting is not None and meeting.young_person_id == person.id:
                    # Through the plan, so the reminders follow the answer at once.
                    plans.mark_meeting(session, meeting, effect.status, now=now)
            case model.SetSubGoalStatus():
                sub_goal = session.get(SubGoal, effect.sub_goal_id)
                goal = session.get(Goal, sub_goal.goal_id) if sub_goal else None
                if sub_goal is not None and goal is not None and goal.young_person_id == person.id:
                    plans.set_sub_goal_status(session, sub_goal, effect.status, now=now)
            case model.OpenHandoff():
                handoffs.open_handoff(
                    session,
                    person,
                    reason=effect.reason,
                    priority=effect.priority,
                    now=now,
                    note=effect.note,
                    trigger_message_id=inbound.id if inbound else None,
                )
            case model.AlertHuman():
                handoffs.open_handoff(
                    session,
                    person,
                    reason=effect.reason,
                    priority=HandoffPriority.URGENT,
                    now=now,
                    trigger_message_id=inbound.id if inbound else None,
                )
            case model.RecordConsent():
                kind = ConsentKind.CONSENT_GIVEN if effect.given else ConsentKind.CONSENT_WITHDRAWN
                consent.record(session, person, kind, source=YOUNG_PERSON, channel=channel, now=now)
                if effect.given and person.status is YoungPersonStatus.INVITED:
                    consent.set_status(person, YoungPersonStatus.ACTIVE, None, now)
                elif not effect.given:
                    consent.stop_everything(session, person, now=now, why="declined contact")
            case model.OptOut():
                consent.opt_out(session, person, source=YOUNG_PERSON, channel=channel, now=now)
            case model.OptIn():
                consent.record(
                    session,
                    person,
                    ConsentKind.OPTED_IN,
                    source=YOUNG_PERSON,
                    channel=channel,
                    now=now,
                )
                consent.set_status(person, YoungPersonStatus.ACTIVE, None, now)
            case model.ChangeLanguage():
                person.language = effect.language
            case model.ScheduleTimeout():
                # The wait belongs to the step the conversation now stands on.
                session.add(
                    ScheduledItem(
                        kind=DIALOG_TIMEOUT,
                        due_at=effect.due_at,
                        idempotency_key=f"{DIALOG_TIMEOUT}:{person.id}:{uuid.uuid4().hex}",
                        municipality_id=person.municipality_id,
                        young_person_id=person.id,
                        payload={"dialog": conversation.dialog, "step": conversation.step},
                    )
                )
