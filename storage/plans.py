"""Plan changes that move the schedule with them: meetings, sub-goals, silence, KUI deadlines.

This module is the only way code should create, move, cancel or mark a meeting, change a
sub-goal's due date or status, or change what a young person is doing (their occupation). Each
change writes the plan and its scheduled items in the caller's transaction, so the two never
disagree. The rules that say *when* something is due live here too, as data: the worker's
handlers (``bot/followups.py``) only decide, when an item fires, whether it still makes sense.

Every item's idempotency key names what it is for (the meeting and its time, the sub-goal and
its due date, the reply a silence chain counts from), so scheduling the same thing twice makes one
item. Re-planning something that was cancelled (a meeting moved away and back) brings its
cancelled item back rather than leaving a key that blocks it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialogs.timing import (
    add_working_days,
    end_of_day,
    is_working_day,
    local_moment,
    previous_working_day,
)
from dialogs.types import (
    AlertKind,
    Author,
    DeliveryStatus,
    Direction,
    GoalStatus,
    MeetingStatus,
    Occupation,
    ScheduledStatus,
    YoungPersonStatus,
)
from storage import schedule
from storage.handoffs import assignee_for
from storage.models import (
    Goal,
    KuiCase,
    Meeting,
    Message,
    Municipality,
    ScheduledItem,
    SubGoal,
    YoungPerson,
)

# ----------------------------------------------------------------------------- kinds

MEETING_REMINDER = "meeting_reminder"
NO_SHOW_FOLLOW_UP = "no_show_follow_up"
SUB_GOAL_CHECK_IN = "sub_goal_check_in"
SUB_GOAL_OVERDUE = "sub_goal_overdue"
SILENCE_NUDGE = "silence_nudge"
SILENCE_GIVE_UP = "silence_give_up"
# KUI items are named after the alert each raises.
KUI_CONTACT_DUE = AlertKind.KUI_CONTACT_DUE.value
KUI_CONTACT_MISSED = AlertKind.KUI_CONTACT_MISSED.value
KUI_OFFER_DUE = AlertKind.KUI_OFFER_DUE.value
KUI_OFFER_MISSED = AlertKind.KUI_OFFER_MISSED.value
KUI_CONTACT_KINDS = (KUI_CONTACT_DUE, KUI_CONTACT_MISSED)
KUI_OFFER_KINDS = (KUI_OFFER_DUE, KUI_OFFER_MISSED)
KUI_KINDS = KUI_CONTACT_KINDS + KUI_OFFER_KINDS
MEETING_KINDS = (MEETING_REMINDER, NO_SHOW_FOLLOW_UP)
SUB_GOAL_KINDS = (SUB_GOAL_CHECK_IN, SUB_GOAL_OVERDUE)
SILENCE_KINDS = (SILENCE_NUDGE, SILENCE_GIVE_UP)

# ----------------------------------------------------------------------------- rules

# A no-show follow-up goes out this long after the meeting ended (or after it was marked, if that
# was later), and not at all once the meeting is this far behind.
NO_SHOW_DELAY = timedelta(hours=2)
NO_SHOW_TOO_LATE = timedelta(days=3)
# Sub-goal check-ins go out at this local time; the overdue check runs when the due day ends.
CHECK_IN_TIME = time(10, 0)
# KUI (15–17-year-olds who drop out): contact within 5 working days, an offer within 30 days.
KUI_AGES = range(15, 18)
KUI_CONTACT_WORKING_DAYS = 5
KUI_OFFER_DAYS = 30
KUI_OFFER_WARNING_DAYS = 5

COMING = (MeetingStatus.PLANNED, MeetingStatus.CONFIRMED)
OPEN_SUB_GOAL = (GoalStatus.PLANNED, GoalStatus.UNDER_WAY, GoalStatus.NEEDS_HELP)
ACTIVE_OCCUPATIONS = (Occupation.EDUCATION, Occupation.JOB, Occupation.ACTIVITY)
# A staff message that never reached the young person is not contact.
NOT_DELIVERED = (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED)


def iso(moment: datetime) -> str:
    """The form a moment takes in keys and payloads: UTC, ISO 8601."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given; use timezone-aware times only")
    return moment.astimezone(UTC).isoformat()


def from_iso(value: object) -> datetime:
    return datetime.fromisoformat(str(value))


@lru_cache(maxsize=16)
def _danish_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("DK", years=year)


def is_danish_holiday(day: date) -> bool:
    """A Danish public holiday as the ``holidays`` package knows them. Christmas Eve, New Year's
    Eve and Constitution Day are not among them, so they count as working days here."""
    return day in _danish_holidays(day.year)


def zone_of(place: Municipality) -> ZoneInfo:
    return ZoneInfo(place.timezone)


def _person(session: Session, young_person_id: int) -> YoungPerson:
    return session.get_one(YoungPerson, young_person_id)


# ----------------------------------------------------------------------------- scheduling


def schedule_once(
    session: Session, *, kind: str, key: str, due_at: datetime, now: datetime, **fields: Any
) -> bool:
    """Schedule by key; an item with that key that was cancelled is brought back, due anew.

    Items that ran (done, expired, failed) stay as they are: that thing has happened already.
    """
    existing = session.scalar(
        sa.select(ScheduledItem)
        .where(ScheduledItem.idempotency_key == key)
        .execution_options(populate_existing=True)
    )
    if existing is None:
        return schedule.schedule(session, kind=kind, key=key, due_at=due_at, now=now, **fields)
    if existing.status is not ScheduledStatus.CANCELLED:
        return False
    existing.status = ScheduledStatus.PENDING
    existing.due_at = due_at
    existing.payload = dict(fields.get("payload", existing.payload))
    existing.attempts = 0
    existing.claimed_by = None
    existing.claimed_at = None
    existing.finished_at = None
    existing.outcome = None
    session.flush()
    return True


def _cancel(session: Session, *conditions: sa.ColumnElement[bool], now: datetime, why: str) -> int:
    # Pending changes first: the bulk update below must see the plan as it now stands.
    session.flush()
    return schedule.cancel(session, *conditions, now=now, reason=why)


# ----------------------------------------------------------------------------- meetings


def schedule_meeting_reminders(
    session: Session, meeting: Meeting, place: Municipality, *, now: datetime
) -> int:
    """A reminder at each of the municipality's offsets before a coming meeting.

    Offsets whose moment has passed already are skipped: a meeting planned for this afternoon
    gets its 2-hour reminder, not a late 24-hour one.
    """
    if meeting.status not in COMING:
        return 0
    added = 0
    starts = iso(meeting.starts_at)
    for offset in sorted(
        {int(m) for m in place.reminder_offsets_minutes if int(m) > 0}, reverse=True
    ):
        # In UTC: arithmetic on a local time keeps the wall clock across daylight saving.
        due_at = meeting.starts_at.astimezone(UTC) - timedelta(minutes=offset)
        if due_at <= now:
            continue
        added += schedule_once(
            session,
            kind=MEETING_REMINDER,
            key=f"{MEETING_REMINDER}:{meeting.id}:{starts}:{offset}",
            due_at=due_at,
            now=now,
            municipality_id=place.id,
            young_person_id=meeting.young_person_id,
            meeting_id=meeting.id,
            payload={"starts_at": starts, "offset_minutes": offset},
        )
    return added


def create_meeting(
    session: Session,
    person: YoungPerson,
    *,
    starts_at: datetime,
    now: datetime,
    place: str | None = None,
    with_whom: str | None = None,
    link: str | None = None,
    staff_id: int | None = None,
    purpose: str | None = None,
    duration_minutes: int = 60,
) -> Meeting:
    """A new meeting with the young person, and its reminders."""
    iso(starts_at)  # refuses a naive time before anything is written
    meeting = Meeting(
        young_person_id=person.id,
        starts_at=starts_at,
        duration_minutes=duration_minutes,
        place=place,
        link=link,
        with_whom=with_whom,
        staff_id=staff_id,
        purpose=purpose,
        status=MeetingStatus.PLANNED,
        status_changed_at=now,
        created_at=now,
    )
    session.add(meeting)
    session.flush()
    schedule_meeting_reminders(session, meeting, person.municipality, now=now)
    return meeting


def move_meeting(session: Session, meeting: Meeting, starts_at: datetime, *, now: datetime) -> None:
    """A new time: the old reminders are cancelled, new ones scheduled, the status is planned again
    (a confirmation of the old time does not hold for the new one)."""
    iso(starts_at)
    place = _person(session, meeting.young_person_id).municipality
    if starts_at != meeting.starts_at or meeting.status not in COMING:
        _cancel(
            session,
            ScheduledItem.meeting_id == meeting.id,
            ScheduledItem.kind.in_(MEETING_KINDS),
            now=now,
            why="meeting moved",
        )
        meeting.starts_at = starts_at
        meeting.status = MeetingStatus.PLANNED
        meeting.status_changed_at = now
    schedule_meeting_reminders(session, meeting, place, now=now)


def cancel_meeting(session: Session, meeting: Meeting, *, now: datetime) -> None:
    mark_meeting(session, meeting, MeetingStatus.CANCELLED, now=now)


def mark_meeting(
    session: Session, meeting: Meeting, status: MeetingStatus, *, now: datetime
) -> None:
    """Set a meeting's status and what follows from it.

    Coming again (planned, confirmed): its reminders are (re)scheduled. A no-show: reminders are
    cancelled and a kind follow-up is scheduled. Anything else (cancelled, declined, a new time
    wanted, attended): everything pending for the meeting is cancelled.
    """
    meeting.status = status
    meeting.status_changed_at = now
    person = _person(session, meeting.young_person_id)
    if status in COMING:
        _cancel(
            session,
            ScheduledItem.meeting_id == meeting.id,
            ScheduledItem.kind == NO_SHOW_FOLLOW_UP,
            now=now,
            why=f"meeting {status.value}",
        )
        schedule_meeting_reminders(session, meeting, person.municipality, now=now)
        return
    kinds = (MEETING_REMINDER,) if status is MeetingStatus.NO_SHOW else MEETING_KINDS
    _cancel(
        session,
        ScheduledItem.meeting_id == meeting.id,
        ScheduledItem.kind.in_(kinds),
        now=now,
        why=f"meeting {status.value}",
    )
    if status is MeetingStatus.NO_SHOW:
        schedule_no_show_follow_up(session, meeting, person, now=now)


def meeting_end(meeting: Meeting) -> datetime:
    return meeting.starts_at.astimezone(UTC) + timedelta(minutes=meeting.duration_minutes)


def schedule_no_show_follow_up(
    session: Session, meeting: Meeting, person: YoungPerson, *, now: datetime
) -> bool:
    """Two hours after the meeting ended, or after it was marked if that was later; quiet hours
    are the handler's business (it defers). Nothing once the meeting is days behind."""
    due_at = max(meeting_end(meeting), now) + NO_SHOW_DELAY
    if due_at > meeting_end(meeting) + NO_SHOW_TOO_LATE:
        return False
    starts = iso(meeting.starts_at)
    return schedule_once(
        session,
        kind=NO_SHOW_FOLLOW_UP,
        key=f"{NO_SHOW_FOLLOW_UP}:{meeting.id}:{starts}",
        due_at=due_at,
        now=now,
        municipality_id=person.municipality_id,
        young_person_id=person.id,
        meeting_id=meeting.id,
        payload={"starts_at": starts},
    )


# ----------------------------------------------------------------------------- goals, sub-goals


def add_goal(
    session: Session,
    person: YoungPerson,
    *,
    title: str,
    now: datetime,
    description: str | None = None,
    due_date: date | None = None,
    position: int = 0,
) -> Goal:
    """A new goal of the plan; for a young person with an open KUI case it is the new offer."""
    goal = Goal(
        young_person_id=person.id,
        title=title,
        description=description,
        due_date=due_date,
        position=position,
        created_at=now,
        updated_at=now,
    )
    session.add(goal)
    session.flush()
    record_kui_offer(session, person, now=now)
    return goal


def add_sub_goal(
    session: Session,
    goal: Goal,
    *,
    title: str,
    now: datetime,
    due_date: date | None = None,
    position: int = 0,
) -> SubGoal:
    sub_goal = SubGoal(
        goal_id=goal.id,
        title=title,
        due_date=due_date,
        position=position,
        created_at=now,
        updated_at=now,
    )
    session.add(sub_goal)
    session.flush()
    schedule_sub_goal_items(session, sub_goal, now=now)
    return sub_goal


def schedule_sub_goal_items(session: Session, sub_goal: SubGoal, *, now: datetime) -> int:
    """Check-ins at 10:00 local on each configured day before the due date, and an overdue check
    when the due day ends. Moments already past are skipped."""
    due = sub_goal.due_date
    if due is None or sub_goal.status not in OPEN_SUB_GOAL:
        return 0
    goal = session.get_one(Goal, sub_goal.goal_id)
    person = _person(session, goal.young_person_id)
    place = person.municipality
    zone = zone_of(place)
    fields: dict[str, Any] = {
        "municipality_id": place.id,
        "young_person_id": person.id,
        "sub_goal_id": sub_goal.id,
    }
    added = 0
    days_before = sorted(
        {int(d) for d in place.sub_goal_check_in_days if int(d) >= 0}, reverse=True
    )
    for days in days_before:
        due_at = local_moment(due - timedelta(days=days), CHECK_IN_TIME, zone)
        if due_at <= now:
            continue
        added += schedule_once(
            session,
            kind=SUB_GOAL_CHECK_IN,
            key=f"{SUB_GOAL_CHECK_IN}:{sub_goal.id}:{due.isoformat()}:{days}",
            due_at=due_at,
            now=now,
            payload={"due_date": due.isoformat(), "days_before": days},
            **fields,
        )
    overdue_at = end_of_day(due, zone)
    if overdue_at > now:
        added += schedule_once(
            session,
            kind=SUB_GOAL_OVERDUE,
            key=f"{SUB_GOAL_OVERDUE}:{sub_goal.id}:{due.isoformat()}",
            due_at=overdue_at,
            now=now,
            payload={"due_date": due.isoformat()},
            **fields,
        )
    return added


def set_sub_goal_due_date(
    session: Session, sub_goal: SubGoal, due_date: date | None, *, now: datetime
) -> None:
    """A new (or no) due date: the old check-ins are cancelled and new ones scheduled."""
    if due_date != sub_goal.due_date:
        _cancel(
            session,
            ScheduledItem.sub_goal_id == sub_goal.id,
            ScheduledItem.kind.in_(SUB_GOAL_KINDS),
            now=now,
            why="due date changed",
        )
        sub_goal.due_date = due_date
        sub_goal.updated_at = now
    schedule_sub_goal_items(session, sub_goal, now=now)


def change_goal(
    session: Session,
    goal: Goal,
    *,
    title: str,
    description: str | None,
    status: GoalStatus,
    now: datetime,
) -> None:
    """A goal's words and status. A goal schedules nothing of its own: its sub-goals, each with
    its own status and due date, keep their check-ins."""
    goal.title = title
    goal.description = description
    goal.status = status
    goal.updated_at = now


def set_sub_goal_status(
    session: Session, sub_goal: SubGoal, status: GoalStatus, *, now: datetime
) -> None:
    """Done or dropped: its pending check-ins are cancelled. Open again: they come back."""
    sub_goal.status = status
    sub_goal.completed_at = now if status is GoalStatus.DONE else None
    sub_goal.updated_at = now
    if status in OPEN_SUB_GOAL:
        schedule_sub_goal_items(session, sub_goal, now=now)
        return
    _cancel(
        session,
        ScheduledItem.sub_goal_id == sub_goal.id,
        ScheduledItem.kind.in_(SUB_GOAL_KINDS),
        now=now,
        why=f"sub-goal {status.value}",
    )


# ----------------------------------------------------------------------------- silence


def silence_chain(
    person: YoungPerson, reply_at: datetime
) -> dict[str, tuple[str, datetime, dict[str, Any]]]:
    """The chain that counts from one reply: key → (kind, due time, payload).

    A nudge after each configured number of days; after the last one, the first interval again,
    and then a give-up that hands the young person to a person (cannot reach).
    """
    days = sorted({int(d) for d in person.municipality.silence_follow_up_days if int(d) > 0})
    if not days:
        return {}
    reply = iso(reply_at)
    reply_at = reply_at.astimezone(UTC)
    chain: dict[str, tuple[str, datetime, dict[str, Any]]] = {}
    for number, day in enumerate(days, start=1):
        chain[f"{SILENCE_NUDGE}:{person.id}:{reply}:{day}"] = (
            SILENCE_NUDGE,
            reply_at + timedelta(days=day),
            {"reply_at": reply, "nudge": number, "of": len(days)},
        )
    chain[f"{SILENCE_GIVE_UP}:{person.id}:{reply}"] = (
        SILENCE_GIVE_UP,
        reply_at + timedelta(days=days[-1] + days[0]),
        {"reply_at": reply, "nudges": len(days)},
    )
    return chain


def restart_silence_chain(
    session: Session, person: YoungPerson, *, reply_at: datetime, now: datetime
) -> int:
    """Cancel the pending silence items and count anew from ``reply_at`` (active people only)."""
    chain = silence_chain(person, reply_at) if person.status is YoungPersonStatus.ACTIVE else {}
    conditions = [ScheduledItem.young_person_id == person.id, ScheduledItem.kind.in_(SILENCE_KINDS)]
    if chain:
        conditions.append(ScheduledItem.idempotency_key.not_in(list(chain)))
    _cancel(session, *conditions, now=now, why="young person replied")
    added = 0
    for key, (kind, due_at, payload) in chain.items():
        added += schedule_once(
            session,
            kind=kind,
            key=key,
            due_at=due_at,
            now=now,
            municipality_id=person.municipality_id,
            young_person_id=person.id,
            payload=payload,
        )
    return added


def has_silence_chain(session: Session, person: YoungPerson, reply_at: datetime) -> bool:
    """Whether the chain that counts from ``reply_at`` was scheduled (in whatever state)."""
    keys = list(silence_chain(person, reply_at))
    if not keys:
        return False
    found = session.scalar(
        sa.select(sa.func.count())
        .select_from(ScheduledItem)
        .where(ScheduledItem.idempotency_key.in_(keys))
    )
    return bool(found)


# ----------------------------------------------------------------------------- KUI


def open_kui_case(session: Session, person: YoungPerson) -> KuiCase | None:
    return session.scalar(
        sa.select(KuiCase)
        .where(KuiCase.young_person_id == person.id, KuiCase.closed_at.is_(None))
        .order_by(KuiCase.id.desc())
        .limit(1)
    )


def kui_deadlines(dropped_out_at: datetime, place: Municipality) -> tuple[datetime, datetime]:
    """(contact due, offer due): the end of the 5th working day after the drop-out (weekends and
    Danish public holidays do not count), and the end of the 30th day, in the local zone."""
    zone = zone_of(place)
    day = dropped_out_at.astimezone(zone).date()
    contact_day = add_working_days(day, KUI_CONTACT_WORKING_DAYS, is_danish_holiday)
    return end_of_day(contact_day, zone), end_of_day(day + timedelta(days=KUI_OFFER_DAYS), zone)


def kui_warnings(case: KuiCase, place: Municipality) -> dict[str, datetime]:
    """When each KUI item is due: "contact due soon" at the start of office hours on the working
    day before the contact deadline's day, "offer due soon" at the start of office hours on the
    last working day at least five days before the offer deadline's day, and a "missed" item at
    each deadline."""
    zone = zone_of(place)
    contact_day = (case.contact_due_at.astimezone(zone) - timedelta(microseconds=1)).date()
    offer_day = (case.offer_due_at.astimezone(zone) - timedelta(microseconds=1)).date()
    opens = place.office_hours_start
    offer_warning = offer_day - timedelta(days=KUI_OFFER_WARNING_DAYS)
    if not is_working_day(offer_warning, is_danish_holiday):
        offer_warning = previous_working_day(offer_warning, is_danish_holiday)
    return {
        KUI_CONTACT_DUE: local_moment(
            previous_working_day(contact_day, is_danish_holiday), opens, zone
        ),
        KUI_CONTACT_MISSED: case.contact_due_at,
        KUI_OFFER_DUE: local_moment(offer_warning, opens, zone),
        KUI_OFFER_MISSED: case.offer_due_at,
    }


def set_occupation(
    session: Session, person: YoungPerson, occupation: Occupation, *, now: datetime
) -> KuiCase | None:
    """Record what the young person is doing now; returns the open KUI case, if any.

    A 15–17-year-old going from education, a job, an activity (or unknown) to nothing opens a KUI
    case with its deadlines and warnings; going back to education, a job or an activity closes it.
    """
    previous = person.occupation
    person.occupation = occupation
    if occupation in ACTIVE_OCCUPATIONS:
        close_kui_case(session, person, now=now, why=f"back in {occupation.value}")
        return None
    existing = open_kui_case(session, person)
    if existing is not None or previous is Occupation.NONE:
        return existing
    today = now.astimezone(zone_of(person.municipality)).date()
    if person.age_on(today) not in KUI_AGES:
        return None
    place = person.municipality
    contact_due, offer_due = kui_deadlines(now, place)
    case = KuiCase(
        young_person_id=person.id,
        municipality_id=place.id,
        dropped_out_at=now,
        contact_due_at=contact_due,
        offer_due_at=offer_due,
        created_at=now,
    )
    session.add(case)
    session.flush()
    for kind, due_at in kui_warnings(case, place).items():
        deadline = case.contact_due_at if kind in KUI_CONTACT_KINDS else case.offer_due_at
        schedule_once(
            session,
            kind=kind,
            key=f"{kind}:{case.id}",
            due_at=due_at,
            now=now,
            municipality_id=place.id,
            young_person_id=person.id,
            payload={"case_id": case.id, "deadline": iso(deadline)},
        )
    return case


def close_kui_case(session: Session, person: YoungPerson, *, now: datetime, why: str) -> int:
    cases = session.scalars(
        sa.select(KuiCase).where(KuiCase.young_person_id == person.id, KuiCase.closed_at.is_(None))
    ).all()
    for case in cases:
        case.closed_at = now
    if cases:
        _cancel(
            session,
            ScheduledItem.young_person_id == person.id,
            ScheduledItem.kind.in_(KUI_KINDS),
            now=now,
            why=why,
        )
    return len(cases)


def record_kui_contact(
    session: Session, person: YoungPerson, *, now: datetime, at: datetime | None = None
) -> KuiCase | None:
    """Contact was made (e.g. a phone call): the contact warnings are cancelled."""
    case = open_kui_case(session, person)
    if case is None:
        return None
    if case.contacted_at is None:
        case.contacted_at = at or now
    _cancel(
        session,
        ScheduledItem.young_person_id == person.id,
        ScheduledItem.kind.in_(KUI_CONTACT_KINDS),
        now=now,
        why="contact made",
    )
    return case


def record_kui_offer(
    session: Session, person: YoungPerson, *, now: datetime, at: datetime | None = None
) -> KuiCase | None:
    """A new offer was made (a new goal, an activity): the offer warnings are cancelled."""
    case = open_kui_case(session, person)
    if case is None:
        return None
    if case.offered_at is None:
        case.offered_at = at or now
    _cancel(
        session,
        ScheduledItem.young_person_id == person.id,
        ScheduledItem.kind.in_(KUI_OFFER_KINDS),
        now=now,
        why="offer made",
    )
    return case


def kui_contact_made(session: Session, case: KuiCase, *, now: datetime) -> datetime | None:
    """When contact was made since the drop-out: recorded, a staff message sent to the young
    person, or a meeting with them attended. Found contact is written to the case."""
    if case.contacted_at is not None:
        return case.contacted_at
    message_at = session.scalar(
        sa.select(sa.func.min(Message.created_at)).where(
            Message.young_person_id == case.young_person_id,
            Message.direction == Direction.OUTBOUND,
            Message.author == Author.STAFF,
            Message.status.not_in(NOT_DELIVERED),
            Message.created_at >= case.dropped_out_at,
            Message.created_at <= now,
        )
    )
    meeting_at = session.scalar(
        sa.select(sa.func.min(Meeting.starts_at)).where(
            Meeting.young_person_id == case.young_person_id,
            Meeting.status == MeetingStatus.ATTENDED,
            Meeting.starts_at >= case.dropped_out_at,
            Meeting.starts_at <= now,
        )
    )
    found = [moment for moment in (message_at, meeting_at) if moment is not None]
    if not found:
        return None
    case.contacted_at = min(found)
    return case.contacted_at


def kui_offer_made(session: Session, case: KuiCase, *, now: datetime) -> datetime | None:
    """When an offer was made since the drop-out: recorded, or a new goal in the plan."""
    if case.offered_at is not None:
        return case.offered_at
    goal_at = session.scalar(
        sa.select(sa.func.min(Goal.created_at)).where(
            Goal.young_person_id == case.young_person_id,
            Goal.created_at >= case.dropped_out_at,
            Goal.created_at <= now,
        )
    )
    if goal_at is None:
        return None
    case.offered_at = goal_at
    return case.offered_at


# ----------------------------------------------------------------------------- staff alerts


def kontaktperson_ids(person: YoungPerson, now: datetime) -> list[int]:
    """The kontaktperson, and their backup while they are away."""
    ids: list[int] = []
    staff = person.kontaktperson
    if staff is not None and staff.is_active:
        ids.append(staff.id)
    standing_in = assignee_for(person, now)
    if standing_in is not None and standing_in not in ids:
        ids.append(standing_in)
    return ids
