"""A pure engine context for tests: real catalogs, real lexicons, a fixed clock."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, time
from zoneinfo import ZoneInfo

from bot.formatting import format_moment, handoff_eta
from bot.i18n import translator
from bot.lexicons import all_lexicons, lexicon_languages
from dialogs.engine import Engine
from dialogs.flows import CORE_DIALOGS
from dialogs.model import Context, MeetingView, Person, PlanView, State, Turn

ZONE = ZoneInfo("Europe/Copenhagen")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZONE)  # a Monday, inside office hours
HELP_LINES = (
    ("Alarm", "112"),
    ("Livslinien", "70 201 201"),
    ("BørneTelefonen", "116 111"),
    ("Lev Uden Vold", "1888"),
)
ENGINE = Engine(CORE_DIALOGS)
MEETING_VARS = {
    "meeting_id": 7,
    "meeting_at": datetime(2026, 11, 25, 13, 0, tzinfo=ZONE).isoformat(),
    "place": "Ungdommens Hus",
    "with_whom": "Karin",
}
SUB_GOAL_VARS = {"sub_goal_id": 3, "title": "Søge om optagelse"}


def context(
    *,
    now: datetime = NOW,
    kontaktperson: str | None = "Karin",
    meeting: MeetingView | None = None,
    plan: tuple[PlanView, ...] = (),
) -> Context:
    return Context(
        now=now,
        person=Person("Mads", kontaktperson, "Aarhus Kommune", HELP_LINES, meeting, plan),
        lexicons=all_lexicons(),
        translate=lambda language, text: translator(language).gettext(text),
        format_datetime=lambda moment, language: format_moment(moment, language, ZONE),
        handoff_eta=lambda language: handoff_eta(
            now, language, office_start=time(9), office_end=time(15)
        ),
        languages=lexicon_languages(),
    )


def texts(turn: Turn) -> list[str]:
    return [message.text for message in turn.messages]


class Chat:
    """Drives the engine like a young person would, keeping the state between messages."""

    def __init__(self, *, language: str = "da", ctx: Context | None = None) -> None:
        self.state = State(language=language)
        self.ctx = ctx or context()
        self.last: Turn = Turn(self.state)

    def start(self, dialog: str, variables: dict[str, object] | None = None) -> list[str]:
        self.last = ENGINE.start(self.state, dialog, variables or {}, self.ctx)
        self.state = self.last.state
        return texts(self.last)

    def say(self, text: str) -> list[str]:
        self.last = ENGINE.receive(self.state, text, self.ctx)
        self.state = self.last.state
        return texts(self.last)

    def at(self, dialog: str, step: str, variables: dict[str, object] | None = None) -> None:
        self.state = replace(self.state, dialog=dialog, step=step, variables=variables or {})

    def effects(self) -> list[object]:
        return list(self.last.effects)


def joined(messages: Iterable[str]) -> str:
    return " | ".join(messages)
