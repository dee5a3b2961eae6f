"""What a dialog is made of, and what the engine hands back.

A dialog is data: named steps, each saying where to go next. The engine reads them; ``dialogs
check`` validates them; ``dialogs draw`` turns them into Mermaid diagrams.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from dialogs.lexicon import Lexicon
from dialogs.types import (
    DreamCategory,
    GoalStatus,
    HandoffPriority,
    HandoffReason,
    Holder,
    MeetingStatus,
    Purpose,
)

# ---------------------------------------------------------------------------------------- steps


class AskKind(StrEnum):
    CHOICE = "choice"  # includes yes/no: options are lists of lexicon intents
    TEXT = "text"
    DATETIME = "datetime"
    NUMBER = "number"


@dataclass(frozen=True)
class Say:
    name: str
    text: str
    next: str


@dataclass(frozen=True)
class Option:
    intents: tuple[str, ...]
    next: str


@dataclass(frozen=True)
class Ask:
    """Ask and wait. A reply that is not understood gets ``rephrase``; a second miss offers a
    person. ``save_as`` keeps the answer (free text, ISO date-time, number or option intent)."""

    name: str
    kind: AskKind
    text: str
    rephrase: str
    options: tuple[Option, ...] = ()
    next: str | None = None  # for text, datetime and number
    save_as: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    timeout: timedelta | None = None
    on_timeout: str | None = None


@dataclass(frozen=True)
class Branch:
    """Go to ``cases[variables[var]]``, or ``default``."""

    name: str
    var: str
    cases: Mapping[str, str]
    default: str


@dataclass(frozen=True)
class SetVar:
    name: str
    var: str
    value: str
    next: str


@dataclass(frozen=True)
class Wait:
    """Wait for any reply (go to ``on_reply``, which reads it) or for ``timeout``."""

    name: str
    timeout: timedelta
    on_reply: str
    on_timeout: str


@dataclass(frozen=True)
class Do:
    """Carry out an effect (a data object; see the effects below) and go on."""

    name: str
    effect: EffectSpec
    next: str


@dataclass(frozen=True)
class HandOff:
    """Open a handoff, tell the young person who answers and when, and end the dialog."""

    name: str
    reason: HandoffReason
    priority: HandoffPriority = HandoffPriority.NORMAL
    note_var: str | None = None


@dataclass(frozen=True)
class End:
    """End the dialog, perhaps with a last word, perhaps going on with another dialog."""

    name: str
    text: str | None = None
    then: str | None = None


Step = Say | Ask | Branch | SetVar | Wait | Do | HandOff | End


@dataclass(frozen=True)
class Dialog:
    name: str
    start: str
    steps: tuple[Step, ...]
    # Variables the dialog must be started with (e.g. the meeting's id and time).
    requires: tuple[str, ...] = ()
    description: str = ""

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"{self.name} has no step {name!r}")


# -------------------------------------------------------------------------------------- effects
# Effect specs sit in dialogs and may name variables; the engine turns them into effects.


@dataclass(frozen=True)
class SaveDreamSpec:
    var: str
    category: DreamCategory | None = None  # None: guess from the words


@dataclass(frozen=True)
class MeetingStatusSpec:
    status: MeetingStatus
    proposal_var: str | None = None


@dataclass(frozen=True)
class SubGoalStatusSpec:
    status: GoalStatus


@dataclass(frozen=True)
class ConsentSpec:
    given: bool


EffectSpec = SaveDreamSpec | MeetingStatusSpec | SubGoalStatusSpec | ConsentSpec


@dataclass(frozen=True)
class SaveDream:
    text: str
    category: DreamCategory


@dataclass(frozen=True)
class SetMeetingStatus:
    meeting_id: int
    status: MeetingStatus
    proposed: str | None = None


@dataclass(frozen=True)
class SetSubGoalStatus:
    sub_goal_id: int
    status: GoalStatus


@dataclass(frozen=True)
class OpenHandoff:
    reason: HandoffReason
    priority: HandoffPriority
    note: str | None = None


@dataclass(frozen=True)
class RecordConsent:
    given: bool


@dataclass(frozen=True)
class OptOut:
    pass


@dataclass(frozen=True)
class OptIn:
    pass


@dataclass(frozen=True)
class ChangeLanguage:
    language: str


@dataclass(frozen=True)
class AlertHuman:
    """A crisis while a human holds the conversation: the human is alerted, at once."""

    reason: HandoffReason


@dataclass(frozen=True)
class ScheduleTimeout:
    due_at: datetime


Effect = (
    SaveDream
    | SetMeetingStatus
    | SetSubGoalStatus
    | OpenHandoff
    | RecordConsent
    | OptOut
    | OptIn
    | ChangeLanguage
    | AlertHuman
    | ScheduleTimeout
)

# ---------------------------------------------------------------------------- state and result


@dataclass(frozen=True)
class State:
    """What the database keeps of a conversation between two messages."""

    holder: Holder = Holder.BOT
    dialog: str | None = None
    step: str | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    misses: int = 0
    language: str = "da"
    opted_out: bool = False

    def at(self, dialog: str | None, step: str | None) -> State:
        return replace(self, dialog=dialog, step=step, misses=0)


@dataclass(frozen=True)
class Outgoing:
    text: str
    purpose: Purpose = Purpose.REPLY


@dataclass(frozen=True)
class Turn:
    state: State
    messages: tuple[Outgoing, ...] = ()
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True)
class MeetingView:
    starts_at: datetime
    place: str | None
    with_whom: str | None


@dataclass(frozen=True)
class PlanView:
    goal: str
    next_sub_goal: str | None
    due: datetime | None


@dataclass(frozen=True)
class Person:
    """What the dialogs may know about the young person and their municipality."""

    first_name: str
    kontaktperson: str | None
    municipality: str
    help_lines: tuple[tuple[str, str], ...]
    next_meeting: MeetingView | None = None
    plan: tuple[PlanView, ...] = ()


@dataclass(frozen=True)
class Context:
    """Everything a turn needs from outside, handed in by the runtime (no I/O here)."""

    now: datetime  # aware, in the municipality's time zone
    person: Person
    lexicons: Mapping[str, Lexicon]  # every shipped language
    translate: Callable[[str, str], str]  # (language, Danish source text) -> text
    format_datetime: Callable[[datetime, str], str]  # (moment, language) -> words
    handoff_eta: Callable[[str], str]  # language -> "i dag inden kl. 15"
    languages: tuple[str, ...] = ("da", "en")

    def lexicon(self, language: str) -> Lexicon:
        return self.lexicons.get(language) or self.lexicons["da"]
