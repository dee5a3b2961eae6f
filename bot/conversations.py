"""Running the dialog engine against the database: one turn, one transaction.

A turn locks the conversation, stores the inbound message (CPR numbers masked), asks the engine,
applies its effects, writes the replies into the outbox and saves the new state — all or nothing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from bot import followups
from bot.dialog_texts import MunicipalityTexts, Translate
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
    Holder,
    Purpose,
    ScheduledStatus,
    YoungPersonStatus,
)
from storage import consent, handoffs, inbox, outbox, plans
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
T = TypeVar("T")
_SCHEDULED = cast(sa.Table, ScheduledItem.__table__)

DIALOG_TIMEOUT = "dialog_timeout"
YOUNG_PERSON = ConsentSource.YOUNG_PERSON


@dataclass(frozen=True)
class Sent:
    """An outgoing message as the caller sees it."""

    message_id: int
    text: str
    purpose: Purpose


@dataclass(frozen=True)
class Start:
    """A dialog to start on the bot's own initiative (see :meth:`Conversations.start_many`)."""

    young_person_id: int
    dialog: str
    variables: Mapping[str, Any] = field(default_factory=dict)
    # REPLY when the young person just asked for it (opened the bot from an invitation link):
    # then it is an answer, and quiet hours do not hold it back.
    purpose: Purpose = Purpose.PROACTIVE


@dataclass(frozen=True)
class _Turn:
    """A turn the engine has decided, to be written."""

    person: YoungPerson
    conversation: Conversation
    result: model.Turn
    channel: Channel


@dataclass(frozen=True)
class _Queued:
    """An outgoing message built, not written yet."""

    row: dict[str, Any]
    text: str
    purpose: Purpose
    not_before: datetime


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
        self.own_texts = MunicipalityTexts()  # the municipalities' own wording of the dialogs
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
            turn = _Turn(person, conversation, result, channel)
            [sent] = self._apply_all(session, [turn], now, inbound)
            followups.on_inbound(session, person, now)  # the silence chain counts from here
            inbox.reopen_on_inbound(session, person, conversation, now)  # their handoff reopens
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
            inbox.reopen_on_inbound(session, person, conversation, now)
            if conversation.holder is not Holder.BOT:
                return []  # a human holds (or is awaited): the bot stays silent
            text = translator(person.language).gettext(reply)
            queued = self._queue(person, model.Outgoing(text), channel, now)
            [sent] = self._write(session, [[queued]])
            return sent

        return self._in_turn(young_person_id, turn)

    def start(
        self,
        *,
        young_person_id: int,
        dialog: str,
        variables: Mapping[str, Any],
        session: Session | None = None,
        purpose: Purpose = Purpose.PROACTIVE,
    ) -> list[Sent]:
        """Start a dialog on the bot's own initiative (or as the answer to what the young person
        just did, with ``purpose=Purpose.REPLY``); nothing is sent to an opted-out person.

        With ``session`` the turn runs inside the caller's transaction (a scheduled item's), so the
        item is closed in the same commit as the messages it caused.
        """
        [sent] = self.start_many(
            [Start(young_person_id, dialog, variables, purpose)], session=session
        )
        return sent

    def start_many(
        self, starts: Sequence[Start], *, session: Session | None = None
    ) -> list[list[Sent]]:
        """Start many dialogs in one transaction; the messages of each, in the order given.

        Every young person's turn is the same as :meth:`start` alone, but the reads and writes
        are shared: the conversations are locked and the context read in a few statements for all
        of them, and the messages are written in one batch. A young person named twice has the
        second turn after the first. Raises :class:`UnknownYoungPerson` for an id that does not
        exist, and then nothing of the batch is written.
        """
        return self._locked(lambda session: self._start_in(session, starts), session)

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
            [sent] = self._apply_all(
                session, [_Turn(person, conversation, result, channel)], now, None
            )
            return sent

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
        def work(session: Session) -> list[Sent]:
            person, conversation = self._load(session, [young_person_id])[young_person_id]
            return turn(session, person, conversation)

        return self._locked(work, outer)

    def _locked(self, work: Callable[[Session], T], outer: Session | None) -> T:
        """Run ``work`` in the caller's transaction, or in its own (tried again if another
        process moved a conversation on between our read and our write)."""
        guard = self._sqlite_lock or contextlib.nullcontext()
        if outer is not None:
            # The caller's transaction: a lost update rolls all of it back and it runs again.
            with guard:
                return work(outer)
        for attempt in range(3):
            try:
                with guard, self.database.session() as session:
                    return work(session)
            except StaleDataError:
                log.info("conversation changed under us; trying again", extra={"attempt": attempt})
        raise RuntimeError("conversation kept changing; giving up this turn")

    @staticmethod
    def _load(
        session: Session, young_person_ids: Collection[int]
    ) -> dict[int, tuple[YoungPerson, Conversation]]:
        """The young people with their conversations, locked, for a turn each."""
        wanted = set(young_person_ids)
        known = set(session.scalars(sa.select(YoungPerson.id).where(YoungPerson.id.in_(wanted))))
        if unknown := wanted - known:
            raise UnknownYoungPerson(min(unknown))
        conversations = repo.lock_many(session, wanted)
        # Read the people under the lock: a turn that held it may have changed them.
        people = session.scalars(
            sa.select(YoungPerson)
            .where(YoungPerson.id.in_(wanted))
            .options(
                selectinload(YoungPerson.municipality), selectinload(YoungPerson.kontaktperson)
            )
            .execution_options(populate_existing=True)
        )
        return {person.id: (person, conversations[person.id]) for person in people}

    def _start_in(self, session: Session, starts: Sequence[Start]) -> list[list[Sent]]:
        now = self.clock()
        results: list[list[Sent]] = [[] for _ in starts]
        waiting = list(enumerate(starts))
        while waiting:
            # One turn per young person per round; a second one waits for the next round.
            this_round: list[tuple[int, Start]] = []
            seen: set[int] = set()
            later: list[tuple[int, Start]] = []
            for index, start in waiting:
                (later if start.young_person_id in seen else this_round).append((index, start))
                seen.add(start.young_person_id)
            loaded = self._load(session, seen)
            contexts = self._contexts(session, [person for person, _ in loaded.values()], now)
            turns: list[tuple[int, _Turn]] = []
            for index, start in this_round:
                person, conversation = loaded[start.young_person_id]
                channel = self._channel_for(person)
                if channel is None:
                    log.warning(
                        "no channel to reach young person", extra={"young_person": person.id}
                    )
                    continue
                state = self._state(person, conversation)
                result = self.engine.start(
                    state, start.dialog, start.variables, contexts[person.id], purpose=start.purpose
                )
                turns.append((index, _Turn(person, conversation, result, channel)))
            written = self._apply_all(session, [turn for _, turn in turns], now, None)
            for (index, _), sent in zip(turns, written, strict=True):
                results[index] = sent
            waiting = later
        return results

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
        return self._contexts(session, [person], now)[person.id]

    def _contexts(
        self, session: Session, people: Iterable[YoungPerson], now: datetime
    ) -> dict[int, model.Context]:
        """What the engine knows of each young person, read for all of them at once."""
        people = list(people)
        ids = [person.id for person in people]
        meetings = repo.next_meetings(session, ids, now)
        goals = repo.open_goals_of(session, ids)
        translators = self.own_texts.translators(session, {p.municipality_id for p in people})
        return {
            person.id: self._context_of(
                person,
                now,
                meetings.get(person.id),
                goals.get(person.id, []),
                translators[person.municipality_id],
            )
            for person in people
        }

    def _context_of(
        self,
        person: YoungPerson,
        now: datetime,
        meeting: Meeting | None,
        goals: Sequence[tuple[Goal, SubGoal | None]],
        translate: Translate,
    ) -> model.Context:
        place = person.municipality
        zone = ZoneInfo(place.timezone)
        local_now = now.astimezone(zone)
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
            for goal, step in goals
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
            translate=translate,
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

    def _apply_all(
        self, session: Session, turns: Sequence[_Turn], now: datetime, inbound: Message | None
    ) -> list[list[Sent]]:
        """Write decided turns: state, effects and messages; the messages of all in one batch."""
        moved = [
            turn.person.id
            for turn in turns
            if (turn.result.state.dialog, turn.result.state.step)
            != (turn.conversation.dialog, turn.conversation.step)
        ]
        # Before the turns' own effects, which may schedule the new step's wait.
        repo.cancel_scheduled(
            session, moved, now=now, reason="dialog moved on", kind=DIALOG_TIMEOUT
        )
        waits: list[dict[str, Any]] = []
        queued = [self._apply(session, turn, now, inbound, waits) for turn in turns]
        repo.save_many(session, [turn.conversation for turn in turns], now)
        if waits:
            session.connection().execute(sa.insert(_SCHEDULED), waits)
        return self._write(session, queued)

    def _apply(
        self,
        session: Session,
        turn: _Turn,
        now: datetime,
        inbound: Message | None,
        waits: list[dict[str, Any]],
    ) -> list[_Queued]:
        person, conversation, result, channel = (
            turn.person,
            turn.conversation,
            turn.result,
            turn.channel,
        )
        state = result.state
        conversation.holder = state.holder
        conversation.dialog = state.dialog
        conversation.step = state.step
        conversation.variables = dict(state.variables)
        conversation.misses = state.misses
        person.language = state.language
        for effect in result.effects:
            self._effect(session, person, conversation, effect, channel, now, inbound, waits)
        queued = [self._queue(person, m, channel, now) for m in result.messages]
        if queued:
            conversation.last_outbound_at = now
        return queued

    @staticmethod
    def _write(session: Session, queued: Sequence[Sequence[_Queued]]) -> list[list[Sent]]:
        """Every queued message and its outbox row, in two batched inserts."""
        ids = iter(
            outbox.insert_rows(
                session, [(q.row, q.purpose, q.not_before) for batch in queued for q in batch]
            )
        )
        return [[Sent(next(ids), q.text, q.purpose) for q in batch] for batch in queued]

    def _queue(
        self, person: YoungPerson, outgoing: model.Outgoing, channel: Channel, now: datetime
    ) -> _Queued:
        text = outgoing.text
        if channel is Channel.SMS and self.sms_lookalikes:
            text = sms_text(text)
        not_before = now
        if outgoing.purpose is Purpose.PROACTIVE:
            # On the bot's own initiative: never at night. Replies and crisis help go at once.
            not_before = quiet_hours(person.municipality).next_allowed(now)
        row = outbox.outgoing_row(channel=channel, text=text, now=now, young_person_id=person.id)
        return _Queued(row, outgoing.text, outgoing.purpose, not_before)

    def _effect(
        self,
        session: Session,
        person: YoungPerson,
        conversation: Conversation,
        effect: model.Effect,
        channel: Channel,
        now: datetime,
        inbound: Message | None,
        waits: list[dict[str, Any]],
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
                # The wait belongs to the step the conversation now stands on; the turns' waits
                # are written together (see _apply_all).
                waits.append(
                    {
                        "kind": DIALOG_TIMEOUT,
                        "due_at": effect.due_at,
                        "idempotency_key": f"{DIALOG_TIMEOUT}:{person.id}:{uuid.uuid4().hex}",
                        "municipality_id": person.municipality_id,
                        "young_person_id": person.id,
                        "payload": {"dialog": conversation.dialog, "step": conversation.step},
                        "status": ScheduledStatus.PENDING,
                        "attempts": 0,
                        "created_at": now,
                    }
                )
