"""Demo data for the embedded default: one municipality, its staff and a handful of young people.

Only for development: the passwords are known, so ``seed`` refuses to run in any other mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from bot.passwords import hash_password
from dialogs.types import (
    Author,
    CaptureSource,
    Channel,
    ConsentKind,
    ConsentSource,
    DeliveryStatus,
    Direction,
    DreamCategory,
    GoalStatus,
    HandoffPriority,
    HandoffReason,
    Holder,
    MeetingStatus,
    Role,
    YoungPersonStatus,
)
from storage import audit, plans
from storage.models import (
    ConsentEvent,
    Conversation,
    Dream,
    Goal,
    Handoff,
    Message,
    Municipality,
    StaffUser,
    SubGoal,
    YoungPerson,
    YoungPersonTag,
)
from storage.staff import municipality_by_slug

DEMO_SLUG = "demo"


@dataclass(frozen=True)
class Login:
    role: Role
    email: str
    password: str


LOGINS = (
    Login(Role.KONTAKTPERSON, "karin@demo.stifinder.dk", "demo-kontaktperson"),
    Login(Role.COORDINATOR, "carsten@demo.stifinder.dk", "demo-koordinator"),
)

# (first name, years old, phone, language, status, tags)
YOUNG_PEOPLE: tuple[tuple[str, int, str, str, YoungPersonStatus, list[str]], ...] = (
    ("Mads", 17, "+4520123401", "da", YoungPersonStatus.ACTIVE, ["fgu"]),
    ("Sara", 19, "+4520123402", "da", YoungPersonStatus.ACTIVE, ["ledig"]),
    ("Yusuf", 16, "+4520123403", "ar", YoungPersonStatus.INVITED, ["fgu", "nyankommet"]),
    ("Olena", 22, "+4520123404", "uk", YoungPersonStatus.ACTIVE, ["ledig"]),
    ("Emma", 18, "+4520123405", "da", YoungPersonStatus.PAUSED, []),
    ("Jonas", 24, "+4520123406", "da", YoungPersonStatus.OPTED_OUT, []),
)


def _birth_date(today: date, years: int) -> date:
    return (
        date(today.year - years, 3, 14)
        if (today.month, today.day) >= (3, 14)
        else date(today.year - years - 1, 3, 14)
    )


def seed(
    session: Session,
    *,
    now: datetime,
    development: bool,
    progress: Callable[[str], None] | None = None,
) -> bool:
    """Create the demo municipality unless it exists; returns whether anything was created."""
    if not development:
        raise RuntimeError("demo data has known passwords and is only for development")
    if municipality_by_slug(session, DEMO_SLUG) is not None:
        return False
    step = progress or (lambda _label: None)
    municipality = Municipality(name="Demo Kommune", slug=DEMO_SLUG)
    session.add(municipality)
    step("municipality")

    karin = StaffUser(
        name="Karin Kontakt",
        email=LOGINS[0].email,
        role=Role.KONTAKTPERSON,
        password_hash=hash_password(LOGINS[0].password),
        municipality=municipality,
    )
    carsten = StaffUser(
        name="Carsten Koordinator",
        email=LOGINS[1].email,
        role=Role.COORDINATOR,
        password_hash=hash_password(LOGINS[1].password),
        municipality=municipality,
    )
    # Ali is on holiday this week; Karin covers for him.
    ali = StaffUser(
        name="Ali Mentor",
        email="ali@demo.stifinder.dk",
        role=Role.KONTAKTPERSON,
        password_hash=hash_password("demo-ikke-i-brug"),
        municipality=municipality,
        absent_from=now - timedelta(days=1),
        absent_until=now + timedelta(days=6),
        backup=karin,
    )
    session.add_all([karin, carsten, ali])
    session.flush()
    step("staff")

    people: list[YoungPerson] = []
    for index, (name, years, phone, language, status, tags) in enumerate(YOUNG_PEOPLE):
        person = YoungPerson(
            municipality=municipality,
            first_name=name,
            birth_date=_birth_date(now.date(), years),
            kontaktperson=ali if index == 3 else karin,
            language=language,
            status=status,
            phone=phone,
            # The demo has no SMS or Telegram account: it talks through the simulator.
            preferred_channel=Channel.SIMULATOR,
            tags=[YoungPersonTag(tag=tag) for tag in tags],
        )
        session.add(person)
        people.append(person)
    session.flush()
    step("young people")

    mads, sara = people[0], people[1]
    for person in people:
        if person.status is not YoungPersonStatus.INVITED:
            session.add(
                ConsentEvent(
                    young_person_id=person.id,
                    kind=ConsentKind.CONSENT_GIVEN,
                    source=ConsentSource.YOUNG_PERSON,
                    channel=Channel.SMS,
                    created_at=now - timedelta(days=30),
                )
            )
    session.add(
        ConsentEvent(
            young_person_id=people[5].id,
            kind=ConsentKind.OPTED_OUT,
            source=ConsentSource.YOUNG_PERSON,
            channel=Channel.SMS,
            note="STOP",
            created_at=now - timedelta(days=3),
        )
    )
    session.add_all(
        [
            Dream(
                young_person_id=mads.id,
                text="Jeg vil gerne være mekaniker og have min egen bil",
                category=DreamCategory.EDUCATION,
                captured_via=CaptureSource.DIALOG,
                channel=Channel.SMS,
            ),
            Dream(
                young_person_id=mads.id,
                text="Spille fodbold igen",
                category=DreamCategory.LEISURE,
                captured_via=CaptureSource.DIALOG,
                channel=Channel.SMS,
            ),
            Dream(
                young_person_id=sara.id,
                text="Et job i en butik og min egen lejlighed",
                category=DreamCategory.JOB,
                captured_via=CaptureSource.STAFF,
                staff_id=karin.id,
            ),
        ]
    )
    # Meetings on the hour, as people book them.
    hour = now.replace(minute=0, second=0, microsecond=0)
    goal = Goal(
        young_person_id=mads.id,
        title="Starte på FGU, motor og mekanik",
        status=GoalStatus.UNDER_WAY,
        due_date=now.date() + timedelta(days=60),
        sub_goals=[
            SubGoal(title="Besøge FGU-skolen", status=GoalStatus.DONE, position=0),
            SubGoal(
                title="Søge om optagelse",
                due_date=now.date() + timedelta(days=10),
                position=1,
            ),
            SubGoal(
                title="Få styr på transport",
                due_date=now.date() + timedelta(days=20),
                position=2,
            ),
        ],
    )
    session.add(goal)
    session.flush()
    # Through the plan's own functions, so the demo's reminders and check-ins are scheduled.
    for sub_goal in goal.sub_goals:
        plans.schedule_sub_goal_items(session, sub_goal, now=now)
    confirmed = plans.create_meeting(
        session,
        mads,
        starts_at=hour + timedelta(days=2, hours=3),
        now=now,
        place="Ungdommens Hus, Torvet 3",
        with_whom="Karin",
        staff_id=karin.id,
        purpose="Opfølgning på planen",
    )
    confirmed.status = MeetingStatus.CONFIRMED
    plans.create_meeting(
        session,
        sara,
        starts_at=hour + timedelta(days=5),
        now=now,
        place="Jobcentret, mødelokale 2",
        with_whom="Karin",
        staff_id=karin.id,
        purpose="Snak om job og bolig",
    )
    step("plans and meetings")

    conversation = Conversation(young_person_id=sara.id, holder=Holder.WAITING_FOR_HUMAN)
    session.add(conversation)
    thread = [
        (
            Author.BOT,
            "Hej Sara 👋 Det er Stifinder, en chatbot fra kommunens ungeindsats. "
            "Hvordan går det med jobsøgningen?",
        ),
        (Author.YOUNG_PERSON, "det går ikke så godt. kan jeg skrive med karin?"),
        (
            Author.BOT,
            "Selvfølgelig. Jeg giver besked til Karin, og hun skriver til dig i dag inden kl. 15.",
        ),
    ]
    messages = []
    for minutes, (author, text) in enumerate(thread):
        inbound = author is Author.YOUNG_PERSON
        message = Message(
            young_person_id=sara.id,
            direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
            channel=Channel.SMS,
            author=author,
            text=text,
            status=DeliveryStatus.RECEIVED if inbound else DeliveryStatus.DELIVERED,
            created_at=now - timedelta(minutes=40 - minutes * 2),
        )
        session.add(message)
        messages.append(message)
    session.flush()
    session.add(
        Handoff(
            young_person_id=sara.id,
            reason=HandoffReason.ASKED,
            priority=HandoffPriority.NORMAL,
            assignee_id=karin.id,
            trigger_message_id=messages[1].id,
            opened_at=now - timedelta(minutes=36),
        )
    )
    audit.record(session, actor="cli", action="demo.seeded", municipality_id=municipality.id)
    step("conversation")
    return True
