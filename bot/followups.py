"""The worker's follow-ups: meeting reminders, no-show follow-ups, sub-goal check-ins, nudges after
silence, and staff alerts for overdue sub-goals and KUI deadlines.

*When* something is due is decided as the plan changes (``storage/plans.py``). A handler here
decides, when its item fires, whether it still makes sense, and says why not:

- ``Expired(reason)`` when firing now would be wrong: the meeting was cancelled, moved or has
  passed, the sub-goal is done, the young person replied since, a human holds the conversation;
- ``Defer(until, reason)`` when it should wait: quiet hours (the conversation must not move on at
  night), or a question the bot asked less than two hours ago that is still unanswered;
- otherwise it starts the dialog inside the item's own transaction, or raises the staff alerts.

``on_inbound`` is the hook a conversation turn calls after every message from a young person: it
restarts the silence chain from that reply.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from bot.quiet import quiet_hours
from bot.worker import Batched, Defer, Expired, Handler, Verdict
from dialogs.timing import end_of_day
from dialogs.types import (
    AlertKind,
    GoalStatus,
    HandoffPriority,
    HandoffReason,
    Holder,
    MeetingStatus,
    ScheduledStatus,
    YoungPersonStatus,
)
from storage import alerts, handoffs, plans
from storage.models import (
    Conversation,
    Goal,
    KuiCase,
    Meeting,
    ScheduledItem,
    SubGoal,
    YoungPerson,
)

if TYPE_CHECKING:
    from bot.conversations import Conversations, Start

# A check-in, nudge or no-show follow-up waits this long after an unanswered question of the bot's
# (a meeting reminder sent a minute ago), so that "1" is not read as the answer to the wrong one.
BUSY_WINDOW = timedelta(hours=2)
RUNNING = (ScheduledStatus.PENDING, ScheduledStatus.CLAIMED)


class ConversationView(NamedTuple):
    """What the checks read of a conversation, without loading (or locking) the row."""

    holder: Holder
    dialog: str | None
    last_inbound_at: datetime | None
    last_outbound_at: datetime | None


def on_inbound(session: Session, person: YoungPerson, now: datetime) -> None:
    """The young person wrote: the silence chain counts from this reply (only while active)."""
    plans.restart_silence_chain(session, person, reply_at=now, now=now)


class FollowUps:
    def __init__(self, conversations: Conversations) -> None:
        self.conversations = conversations

    def handlers(self) -> dict[str, Handler]:
        """Every kind this module runs, for the worker."""
        found: dict[str, Handler] = {
            plans.MEETING_REMINDER: Batched(self.meeting_reminders),
            plans.NO_SHOW_FOLLOW_UP: self.no_show_follow_up,
            plans.SUB_GOAL_CHECK_IN: self.sub_goal_check_in,
            plans.SUB_GOAL_OVERDUE: self.sub_goal_overdue,
            plans.SILENCE_NUDGE: self.silence_nudge,
            plans.SILENCE_GIVE_UP: self.silence_give_up,
        }
        for kind in plans.KUI_KINDS:
            found[kind] = self.kui_deadline
        return found

    # ------------------------------------------------------------------------- meetings

    def meeting_reminders(
        self, session: Session, items: Sequence[ScheduledItem], now: datetime
    ) -> dict[int, Verdict]:
        """Many meeting reminders at once (a burst after downtime, a morning of meetings): the
        same checks and turns as one by one, with the reads and writes shared."""
        from bot.conversations import Start

        meetings = {
            meeting.id: meeting
            for meeting in session.scalars(
                sa.select(Meeting).where(Meeting.id.in_({item.meeting_id for item in items}))
            )
        }
        people = _people(session, {meeting.young_person_id for meeting in meetings.values()})
        views = _conversation_views(session, people.keys())
        nearer = _nearer_ones_due(
            session,
            items,
            now,
            subject=ScheduledItem.meeting_id,
            anchor="starts_at",
            offset="offset_minutes",
        )
        verdicts: dict[int, Verdict] = {}
        starts: list[tuple[int, Start]] = []
        for item in items:
            try:
                meeting = meetings.get(item.meeting_id or 0)
                if meeting is None:
                    raise Expired("meeting is gone")
                if meeting.status not in plans.COMING:
                    raise Expired(f"meeting {meeting.status.value}")
                if plans.iso(meeting.starts_at) != item.payload.get("starts_at"):
                    raise Expired("meeting moved")
                if now >= meeting.starts_at:
                    raise Expired("meeting has passed")
                if item.id in nearer:
                    raise Expired("a closer reminder is due")
                person = people[meeting.young_person_id]
                _check_reachable(person, views.get(person.id))
                _not_at_night(person, now)
            except (Expired, Defer) as verdict:
                verdicts[item.id] = verdict
                continue
            variables = {
                "meeting_id": meeting.id,
                "meeting_at": plans.iso(meeting.starts_at),
                "place": meeting.place or meeting.link or person.municipality.name,
                "with_whom": meeting.with_whom or _kontaktperson_name(person),
            }
            starts.append((item.id, Start(person.id, "meeting_reminder", variables)))
        sent = self.conversations.start_many([start for _, start in starts], session=session)
        for (item_id, _), messages in zip(starts, sent, strict=True):
            verdicts[item_id] = f"meeting_reminder: {len(messages)} sent"
        return verdicts

    def no_show_follow_up(self, session: Session, item: ScheduledItem, now: datetime) -> str:
        meeting = _meeting(session, item)
        if meeting.status is not MeetingStatus.NO_SHOW:
            raise Expired(f"meeting {meeting.status.value}")
        if plans.iso(meeting.starts_at) != item.payload.get("starts_at"):
            raise Expired("meeting moved")
        if now > plans.meeting_end(meeting) + plans.NO_SHOW_TOO_LATE:
            raise Expired("too long after the meeting")
        person = session.get_one(YoungPerson, meeting.young_person_id)
        conversation = _reachable(session, person)
        _not_busy(conversation, now)
        _not_at_night(person, now)
        variables = {
            "meeting_id": meeting.id,
            "with_whom": meeting.with_whom or _kontaktperson_name(person),
        }
        return self._start(session, person, "no_show_follow_up", variables)

    # ------------------------------------------------------------------------- sub-goals

    def sub_goal_check_in(self, session: Session, item: ScheduledItem, now: datetime) -> str:
        sub_goal, person = _sub_goal(session, item)
        if sub_goal.status not in plans.OPEN_SUB_GOAL:
            raise Expired(f"sub-goal {sub_goal.status.value}")
        assert sub_goal.due_date is not None  # _sub_goal checked it against the payload
        if now >= end_of_day(sub_goal.due_date, plans.zone_of(person.municipality)):
            raise Expired("due date has passed")
        if _nearer_ones_due(
            session,
            [item],
            now,
            subject=ScheduledItem.sub_goal_id,
            anchor="due_date",
            offset="days_before",
        ):
            raise Expired("a later check-in is due")
        conversation = _reachable(session, person)
        _not_busy(conversation, now)
        _not_at_night(person, now)
        variables = {"sub_goal_id": sub_goal.id, "title": sub_goal.title}
        return self._start(session, person, "sub_goal_check_in", variables)

    def sub_goal_overdue(self, session: Session, item: ScheduledItem, now: datetime) -> str:
        sub_goal, person = _sub_goal(session, item)
        if sub_goal.status in (GoalStatus.DONE, GoalStatus.DROPPED):
            raise Expired(f"sub-goal {sub_goal.status.value}")
        if person.status is YoungPersonStatus.CLOSED:
            raise Expired("young person closed")
        assert sub_goal.due_date is not None
        due = sub_goal.due_date.isoformat()
        staff = plans.kontaktperson_ids(person, now) or alerts.coordinator_ids(
            session, person.municipality_id
        )
        raised = alerts.raise_alerts(
            session,
            kind=AlertKind.SUB_GOAL_OVERDUE,
            key=f"{plans.SUB_GOAL_OVERDUE}:{sub_goal.id}:{due}",
            staff_ids=staff,
            person=person,
            due_at=end_of_day(sub_goal.due_date, plans.zone_of(person.municipality)),
            now=now,
            details={"sub_goal_id": sub_goal.id, "title": sub_goal.title, "due_date": due},
        )
        return f"alerted {len(raised)}"

    # ------------------------------------------------------------------------- silence

    def silence_nudge(self, session: Session, item: ScheduledItem, now: datetime) -> str:
        person = _young_person(session, item)
        replied = _replied_since(session, person, item, now)
        if replied is not None:
            return replied
        conversation = _reachable(session, person)
        _not_busy(conversation, now)
        _not_at_night(person, now)
        sent = self._start(session, person, "silence_follow_up", {})
        return f"nudge {item.payload.get('nudge')} of {item.payload.get('of')}: {sent}"

    def silence_give_up(self, session: Session, item: ScheduledItem, now: datetime) -> str:
        person = _young_person(session, item)
        replied = _replied_since(session, person, item, now)
        if replied is not None:
            return replied
        _reachable(session, person)
        since = plans.from_iso(item.payload["reply_at"])
        local = since.astimezone(plans.zone_of(person.municipality))
        handoff = handoffs.open_handoff(
            session,
            person,
            reason=HandoffReason.CANNOT_REACH,
            priority=HandoffPriority.NORMAL,
            now=now,
            note=(
                f"Intet svar siden {local:%d.%m.%Y} trods {item.payload.get('nudges')} "
                "påmindelser fra botten."
            ),
        )
        session.flush()
        return f"handoff {handoff.id}: cannot reach"

    # ------------------------------------------------------------------------- KUI

    def kui_deadline(self, session: Session, item: ScheduledItem, now: datetime) -> str:
        case = session.get(KuiCase, int(item.payload.get("case_id", 0)))
        if case is None:
            raise Expired("KUI case is gone")
        if case.closed_at is not None:
            raise Expired("KUI case closed")
        person = session.get_one(YoungPerson, case.young_person_id)
        contact = item.kind in plans.KUI_CONTACT_KINDS
        if contact:
            met = plans.kui_contact_made(session, case, now=now)
            if met is not None:
                plans.record_kui_contact(session, person, now=now, at=met)
        else:
            met = plans.kui_offer_made(session, case, now=now)
            if met is not None:
                plans.record_kui_offer(session, person, now=now, at=met)
        if met is not None:
            return f"met at {plans.iso(met)}; no alert"
        deadline = case.contact_due_at if contact else case.offer_due_at
        staff = plans.kontaktperson_ids(person, now) + alerts.coordinator_ids(
            session, case.municipality_id
        )
        raised = alerts.raise_alerts(
            session,
            kind=AlertKind(item.kind),
            key=f"{item.kind}:{case.id}",
            staff_ids=staff,
            person=person,
            due_at=deadline,
            now=now,
            details={
                "case_id": case.id,
                "dropped_out_at": plans.iso(case.dropped_out_at),
                "deadline": plans.iso(deadline),
            },
        )
        return f"alerted {len(raised)}"

    # ------------------------------------------------------------------------- helpers

    def _start(
        self, session: Session, person: YoungPerson, dialog: str, variables: dict[str, Any]
    ) -> str:
        sent = self.conversations.start(
            young_person_id=person.id, dialog=dialog, variables=variables, session=session
        )
        return f"{dialog}: {len(sent)} sent"


def _meeting(session: Session, item: ScheduledItem) -> Meeting:
    meeting = session.get(Meeting, item.meeting_id) if item.meeting_id is not None else None
    if meeting is None:
        raise Expired("meeting is gone")
    return meeting


def _young_person(session: Session, item: ScheduledItem) -> YoungPerson:
    person = (
        session.get(YoungPerson, item.young_person_id) if item.young_person_id is not None else None
    )
    if person is None:
        raise Expired("young person is gone")
    return person


def _sub_goal(session: Session, item: ScheduledItem) -> tuple[SubGoal, YoungPerson]:
    sub_goal = session.get(SubGoal, item.sub_goal_id) if item.sub_goal_id is not None else None
    if sub_goal is None:
        raise Expired("sub-goal is gone")
    due = sub_goal.due_date.isoformat() if sub_goal.due_date else None
    if due != item.payload.get("due_date"):
        raise Expired("due date changed")
    goal = session.get_one(Goal, sub_goal.goal_id)
    return sub_goal, session.get_one(YoungPerson, goal.young_person_id)


def _people(session: Session, ids: Collection[int]) -> dict[int, YoungPerson]:
    """Young people by id, with what the checks read of them (municipality, kontaktperson)."""
    found = session.scalars(
        sa.select(YoungPerson)
        .where(YoungPerson.id.in_(ids))
        .options(selectinload(YoungPerson.municipality), selectinload(YoungPerson.kontaktperson))
    )
    return {person.id: person for person in found}


def _nearer_ones_due(
    session: Session,
    items: Sequence[ScheduledItem],
    now: datetime,
    *,
    subject: sa.orm.InstrumentedAttribute[int | None],
    anchor: str,
    offset: str,
) -> set[int]:
    """After downtime several items of one thing may be due at once (the 24-hour and the 2-hour
    reminder; the 3-days-before and the on-the-day check-in): only the nearest one goes out.
    The ids of ``items`` that have a nearer one due.

    ``subject`` is the column naming the thing (the meeting, the sub-goal), ``anchor`` the payload
    key the items must share (the meeting's time, the due date) and ``offset`` how far ahead each
    was.
    """
    kinds = {item.kind for item in items}
    due = session.execute(
        sa.select(ScheduledItem.id, ScheduledItem.kind, subject, ScheduledItem.payload).where(
            ScheduledItem.kind.in_(kinds),
            subject.in_({getattr(item, subject.key) for item in items}),
            ScheduledItem.status.in_(RUNNING),
            ScheduledItem.due_at <= now,
        )
    ).all()
    same: dict[tuple[str, int | None], list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for other_id, kind, thing, payload in due:
        same[kind, thing].append((other_id, payload))
    nearer: set[int] = set()
    for item in items:
        ahead = int(item.payload.get(offset, 0))
        for other_id, payload in same[item.kind, getattr(item, subject.key)]:
            if (
                other_id != item.id
                and payload.get(anchor) == item.payload.get(anchor)
                and int(payload.get(offset, 0)) < ahead
            ):
                nearer.add(item.id)
    return nearer


def _replied_since(
    session: Session, person: YoungPerson, item: ScheduledItem, now: datetime
) -> str | None:
    """If the young person wrote after the reply this chain counts from, the chain is over.

    Normally the newer reply's chain exists already (the turn's hook scheduled it) and this item
    expires. If it does not (a reply that reached no hook, e.g. a picture alone), it is scheduled
    here and the item is done with a note that says so.
    """
    reply_at = plans.from_iso(item.payload["reply_at"])
    latest = person.last_inbound_at
    if latest is None or latest <= reply_at:
        return None
    if plans.has_silence_chain(session, person, latest):
        raise Expired("young person replied since")
    plans.restart_silence_chain(session, person, reply_at=latest, now=now)
    return f"young person replied since; counting from {plans.iso(latest)}"


def _reachable(session: Session, person: YoungPerson) -> ConversationView | None:
    """The conversation's state, if the bot may write to the young person now at all."""
    conversation = _conversation_views(session, [person.id]).get(person.id)
    _check_reachable(person, conversation)
    return conversation


def _conversation_views(session: Session, people: Collection[int]) -> dict[int, ConversationView]:
    # Columns only: the turn locks and loads the row itself, and must not find a stale copy.
    rows = session.execute(
        sa.select(
            Conversation.young_person_id,
            Conversation.holder,
            Conversation.dialog,
            Conversation.last_inbound_at,
            Conversation.last_outbound_at,
        ).where(Conversation.young_person_id.in_(people))
    ).all()
    return {row[0]: ConversationView(*row[1:]) for row in rows}


def _check_reachable(person: YoungPerson, conversation: ConversationView | None) -> None:
    if person.status is not YoungPersonStatus.ACTIVE:
        raise Expired(f"young person {person.status.value}")
    if conversation is not None and conversation.holder is not Holder.BOT:
        raise Expired("a human holds the conversation")


def _not_busy(conversation: ConversationView | None, now: datetime) -> None:
    """Wait while a question the bot asked recently is still open."""
    if conversation is None or conversation.dialog is None:
        return
    asked = conversation.last_outbound_at
    if asked is None:
        return
    answered = conversation.last_inbound_at
    if answered is not None and answered >= asked:
        return
    until: datetime = asked + BUSY_WINDOW
    if until > now:
        raise Defer(until, "another question is open")


def _not_at_night(person: YoungPerson, now: datetime) -> None:
    quiet = quiet_hours(person.municipality)
    if quiet.is_quiet(now):
        raise Defer(quiet.next_allowed(now), "quiet_hours")


def _kontaktperson_name(person: YoungPerson) -> str:
    staff = person.kontaktperson
    if staff is not None and staff.name.strip():
        return staff.name.split()[0]
    return person.municipality.name
