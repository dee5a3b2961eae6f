"""The dialog engine: (state, inbound text, context) -> (new state, messages, effects).

Order of reading a message, the same in every step:
1. signs of crisis (always, also while a human holds the conversation or after STOP);
2. stop and start;
3. silence while a human holds the conversation;
4. the answer to a pending offer of a person, or the current question's options;
5. commands: a person, help, language, start over, plan, next meeting, kontaktperson;
6. the current step's answer; a miss gets a rephrased question, a second miss offers a person.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from dialogs import replies, texts
from dialogs.crisis import shows_crisis
from dialogs.model import (
    AlertHuman,
    Ask,
    AskKind,
    Branch,
    ChangeLanguage,
    ConsentSpec,
    Context,
    Dialog,
    Do,
    Effect,
    EffectSpec,
    End,
    HandOff,
    MeetingStatusSpec,
    OpenHandoff,
    OptIn,
    OptOut,
    Outgoing,
    PlanView,
    RecordConsent,
    SaveDream,
    SaveDreamSpec,
    Say,
    ScheduleTimeout,
    SetMeetingStatus,
    SetSubGoalStatus,
    SetVar,
    State,
    Step,
    SubGoalStatusSpec,
    Turn,
    Wait,
)
from dialogs.types import DreamCategory, HandoffPriority, HandoffReason, Holder, Purpose
from dialogs.understand import best_intent, choose, normalise, parse_number, whole_command
from dialogs.when import parse_when

OFFER = "_offer_person"
MENU_SHOWN = "_language_menu"
MAX_STEPS = 50
ECHO_LIMIT = 60
FSI, PDI = "\u2068", "\u2069"  # isolate names and times inside right-to-left text


class _Builder:
    """Collects one turn's messages and effects while steps run."""

    def __init__(self, state: State, ctx: Context) -> None:
        self.state = state
        self.ctx = ctx
        self.messages: list[Outgoing] = []
        self.effects: list[Effect] = []

    # -- text
    def fields(self) -> dict[str, str]:
        ctx, language = self.ctx, self.state.language
        person = ctx.person
        values: dict[str, str] = {
            "first_name": person.first_name,
            "kontaktperson": person.kontaktperson
            or ctx.translate(language, replies.YOUR_KONTAKTPERSON),
            "municipality": person.municipality,
            "help_lines": ", ".join(f"{name}: {number}" for name, number in person.help_lines),
        }
        for key, value in self.state.variables.items():
            if key.startswith("_"):
                continue
            moment = _moment(value) if key.endswith("_at") else None
            if moment is not None:
                values[key[:-3]] = ctx.format_datetime(moment, language)
            # The young person's own words are echoed short, to keep within two SMS.
            values[key] = texts.shorten(str(value), ECHO_LIMIT)
        return values

    def render(self, message: str, **extra: str) -> str:
        language = self.state.language
        text = self.ctx.translate(language, message)
        values = self.fields() | extra
        if self.ctx.lexicon(language).right_to_left:
            values = {k: f"{FSI}{v}{PDI}" for k, v in values.items()}
        return text.format_map(_Missing(values))

    def say(self, message: str, *, purpose: Purpose = Purpose.REPLY, **extra: str) -> None:
        self.messages.append(Outgoing(self.render(message, **extra), purpose))

    def turn(self) -> Turn:
        return Turn(self.state, tuple(self.messages), tuple(self.effects))


def _moment(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Engine:
    def __init__(self, dialogs: Iterable[Dialog]) -> None:
        self.dialogs: dict[str, Dialog] = {d.name: d for d in dialogs}

    # ------------------------------------------------------------------ entry points

    def receive(self, state: State, text: str, ctx: Context) -> Turn:
        """Answer one message from the young person."""
        out = _Builder(state, ctx)
        lexicons = ctx.lexicons.values()
        if shows_crisis(text, lexicons):
            return self._crisis(out)
        command = self._command(text, ctx, stop_start_only=True)
        if state.opted_out:
            if command == "start":
                return self._opt_in(out)
            return out.turn()  # after STOP we stay silent unless asked to start again
        if command == "stop":
            return self._opt_out(out)
        if state.holder is not Holder.BOT:
            return out.turn()  # a human holds the conversation: the bot stays silent
        if state.variables.get(MENU_SHOWN):
            chosen = self._language_choice(text, ctx)
            if chosen is not None:
                return self._change_language(out, chosen)
        if state.variables.get(OFFER):
            return self._answer_offer(out, text)
        step = self._current(state)
        if isinstance(step, Ask) and step.options:
            picked = self._pick(step, text, ctx, state.language)
            if picked is not None:
                return self._after_choice(out, step, picked)
        command = command or self._command(text, ctx, stop_start_only=False)
        if command is not None:
            return self._run_command(out, command)
        language = self._language_choice(text, ctx, names_only=True)
        if language is not None and language != state.language:
            return self._change_language(out, language)
        return self._answer(out, step, text)

    def start(
        self,
        state: State,
        dialog: str,
        variables: Mapping[str, Any],
        ctx: Context,
        *,
        purpose: Purpose = Purpose.PROACTIVE,
    ) -> Turn:
        """Start a dialog: on the bot's own initiative (outreach, reminder, check-in), or with
        ``purpose=Purpose.REPLY`` as the answer to what the young person just did (opened the
        bot from an invitation link), which is never deferred."""
        out = _Builder(state, ctx)
        if state.opted_out or state.holder is not Holder.BOT:
            return out.turn()
        definition = self.dialogs[dialog]
        missing = [name for name in definition.requires if name not in variables]
        if missing:
            raise ValueError(f"dialog {dialog} needs {', '.join(missing)}")
        out.state = replace(state, variables=dict(variables)).at(dialog, definition.start)
        self._run(out, definition.start, purpose=purpose)
        return out.turn()

    def timeout(self, state: State, dialog: str, step: str, ctx: Context) -> Turn:
        """The wait of ``dialog.step`` ran out; nothing happens if the dialog moved on since."""
        out = _Builder(state, ctx)
        if (state.dialog, state.step) != (dialog, step) or state.holder is not Holder.BOT:
            return out.turn()
        if state.opted_out:
            return out.turn()
        current = self._current(state)
        target = current.on_timeout if isinstance(current, Ask | Wait) else None
        if target is None:
            return out.turn()
        self._run(out, target, purpose=Purpose.PROACTIVE)
        return out.turn()

    # ------------------------------------------------------------------ running steps

    def _current(self, state: State) -> Step | None:
        if state.dialog is None or state.step is None or state.dialog not in self.dialogs:
            return None
        try:
            return self.dialogs[state.dialog].step(state.step)
        except KeyError:
            return None

    def _run(self, out: _Builder, step_name: str | None, *, purpose: Purpose) -> None:
        dialog = self.dialogs[out.state.dialog] if out.state.dialog else None
        for _ in range(MAX_STEPS):
            if dialog is None or step_name is None:
                out.state = out.state.at(None, None)
                return
            step = dialog.step(step_name)
            out.state = replace(out.state, step=step.name)
            match step:
                case Say():
                    out.say(step.text, purpose=purpose)
                    step_name = step.next
                case Ask():
                    out.say(step.text, purpose=purpose)
                    out.state = replace(out.state, misses=0)
                    if step.timeout is not None:
                        out.effects.append(ScheduleTimeout(out.ctx.now + step.timeout))
                    return
                case Wait():
                    out.effects.append(ScheduleTimeout(out.ctx.now + step.timeout))
                    return
                case Branch():
                    value = str(out.state.variables.get(step.var, ""))
                    step_name = step.cases.get(value, step.default)
                case SetVar():
                    self._set(out, step.var, step.value)
                    step_name = step.next
                case Do():
                    out.effects.append(self._effect(out, step.effect))
                    step_name = step.next
                case HandOff():
                    note = out.state.variables.get(step.note_var) if step.note_var else None
                    self._hand_off(out, step.reason, step.priority, note=note)
                    return
                case End():
                    if step.text:
                        out.say(step.text, purpose=purpose)
                    if step.then is not None:
                        dialog = self.dialogs[step.then]
                        out.state = out.state.at(dialog.name, dialog.start)
                        step_name = dialog.start
                        continue
                    out.state = replace(out.state.at(None, None), variables={})
                    return
        raise RuntimeError(f"dialog {dialog.name if dialog else '?'} runs in a circle")

    def _set(self, out: _Builder, var: str, value: Any) -> None:
        variables = dict(out.state.variables)
        variables[var] = value
        out.state = replace(out.state, variables=variables)

    def _clear(self, out: _Builder, *names: str) -> None:
        variables = {k: v for k, v in out.state.variables.items() if k not in names}
        out.state = replace(out.state, variables=variables)

    def _effect(self, out: _Builder, spec: EffectSpec) -> Effect:
        variables = out.state.variables
        match spec:
            case SaveDreamSpec():
                text = str(variables.get(spec.var, ""))
                lexicon = out.ctx.lexicon(out.state.language)
                category = spec.category or texts.guess_category(
                    text, lexicon.dream_categories, fallback=DreamCategory.OTHER
                )
                return SaveDream(text=text, category=category)
            case MeetingStatusSpec():
                proposed = variables.get(spec.proposal_var) if spec.proposal_var else None
                return SetMeetingStatus(
                    meeting_id=int(variables["meeting_id"]),
                    status=spec.status,
                    proposed=str(proposed) if proposed else None,
                )
            case SubGoalStatusSpec():
                return SetSubGoalStatus(int(variables["sub_goal_id"]), spec.status)
            case ConsentSpec():
                if not spec.given:
                    # Saying no to contact is an opt-out: nothing more is sent.
                    out.state = replace(out.state, opted_out=True)
                return RecordConsent(given=spec.given)
        raise TypeError(spec)  # pragma: no cover - the match is exhaustive

    # ------------------------------------------------------------------ answers

    def _pick(self, step: Ask, text: str, ctx: Context, language: str) -> int | None:
        intents = dict(ctx.lexicon("da").intents)
        intents.update(ctx.lexicon(language).intents)
        return choose(text, [option.intents for option in step.options], intents)

    def _after_choice(self, out: _Builder, step: Ask, index: int) -> Turn:
        option = step.options[index]
        if step.save_as:
            self._set(out, step.save_as, option.intents[0])
        self._run(out, option.next, purpose=Purpose.REPLY)
        return out.turn()

    def _answer(self, out: _Builder, step: Step | None, text: str) -> Turn:
        if isinstance(step, Wait):
            target = self.dialogs[str(out.state.dialog)].step(step.on_reply)
            out.state = replace(out.state, step=target.name)
            if isinstance(target, Ask):
                return self._answer(out, target, text)
            self._run(out, target.name, purpose=Purpose.REPLY)
            return out.turn()
        if not isinstance(step, Ask) or step.kind is AskKind.CHOICE:
            return self._miss(out, step)
        value: Any = None
        if step.kind is AskKind.TEXT:
            value = text.strip() or None
        elif step.kind is AskKind.DATETIME:
            when = parse_when(text, out.ctx.now, out.ctx.lexicon(out.state.language).dates)
            value = when.to_datetime(out.ctx.now).isoformat() if when else None
        elif step.kind is AskKind.NUMBER:
            number = parse_number(text, out.ctx.lexicon(out.state.language).dates.numbers)
            low, high = step.minimum, step.maximum
            if (
                number is not None
                and (low is None or number >= low)
                and (high is None or number <= high)
            ):
                value = number
        if value is None:
            return self._miss(out, step)
        if step.save_as:
            self._set(out, step.save_as, value)
        self._run(out, step.next, purpose=Purpose.REPLY)
        return out.turn()

    def _miss(self, out: _Builder, step: Step | None) -> Turn:
        misses = out.state.misses + 1
        out.state = replace(out.state, misses=misses)
        if misses >= 2:
            self._set(out, OFFER, True)
            out.say(replies.OFFER_PERSON)
        elif isinstance(step, Ask):
            out.say(step.rephrase)
        else:
            out.say(replies.NOT_UNDERSTOOD)
        return out.turn()

    def _answer_offer(self, out: _Builder, text: str) -> Turn:
        self._clear(out, OFFER)
        ctx = out.ctx
        intents = {**ctx.lexicon("da").intents, **ctx.lexicon(out.state.language).intents}
        answer = best_intent(text, {"yes": intents.get("yes", ()), "no": intents.get("no", ())})
        if answer == "no":
            out.state = replace(out.state, misses=0)
            self._repeat_question(out, prefix=replies.TRY_AGAIN)
            return out.turn()
        # Yes, or a third message we do not understand: a person is better than a loop.
        self._hand_off(out, HandoffReason.NOT_UNDERSTOOD, HandoffPriority.NORMAL)
        return out.turn()

    def _repeat_question(self, out: _Builder, *, prefix: str | None = None) -> None:
        if prefix:
            out.say(prefix)
        step = self._current(out.state)
        if isinstance(step, Ask):
            out.say(step.text)

    # ------------------------------------------------------------------ interrupts

    def _command(self, text: str, ctx: Context, *, stop_start_only: bool) -> str | None:
        commands: dict[str, list[str]] = {}
        for lexicon in ctx.lexicons.values():
            for name, phrases in lexicon.commands.items():
                if stop_start_only and name not in ("stop", "start"):
                    continue
                commands.setdefault(name, []).extend(phrases)
        return whole_command(text, commands)

    def _run_command(self, out: _Builder, command: str) -> Turn:
        person = out.ctx.person
        if command == "human":
            self._hand_off(out, HandoffReason.ASKED, HandoffPriority.NORMAL)
            return out.turn()
        if command == "start" or command == "restart":
            dialog = self.dialogs.get(out.state.dialog or "")
            if dialog is None:
                out.say(replies.ALREADY_SUBSCRIBED)
                return out.turn()
            out.state = out.state.at(dialog.name, dialog.start)
            self._run(out, dialog.start, purpose=Purpose.REPLY)
            return out.turn()
        if command == "thanks":
            out.say(replies.YOU_ARE_WELCOME)
        elif command == "hello":
            out.say(replies.HELLO)
        elif command == "help":
            out.say(replies.HELP)
        elif command == "language":
            self._set(out, MENU_SHOWN, True)
            menu = " ".join(
                f"{i}) {out.ctx.lexicon(code).name}"
                for i, code in enumerate(out.ctx.languages, start=1)
            )
            out.say(replies.LANGUAGE_MENU, menu=menu)
            return out.turn()
        elif command == "plan":
            if not person.plan:
                out.say(replies.NO_PLAN)
            for item in person.plan:
                self._say_plan(out, item)
        elif command == "next_meeting":
            meeting = person.next_meeting
            if meeting is None:
                out.say(replies.NO_MEETING)
            else:
                out.say(
                    replies.NEXT_MEETING,
                    when=out.ctx.format_datetime(meeting.starts_at, out.state.language),
                    with_whom=meeting.with_whom or out.fields()["kontaktperson"],
                    place=meeting.place or "",
                )
        elif command == "contact":
            if person.kontaktperson:
                out.say(replies.YOUR_CONTACT)
            else:
                out.say(replies.NO_CONTACT)
        self._repeat_question(out)
        return out.turn()

    def _say_plan(self, out: _Builder, item: PlanView) -> None:
        if item.next_sub_goal is None:
            out.say(replies.PLAN_GOAL, goal=item.goal)
        elif item.due is None:
            out.say(
                replies.PLAN_STEP,
                goal=item.goal,
                step=item.next_sub_goal,
            )
        else:
            out.say(
                replies.PLAN_STEP_DUE,
                goal=item.goal,
                step=item.next_sub_goal,
                due=out.ctx.format_datetime(item.due, out.state.language),
            )

    def _language_choice(self, text: str, ctx: Context, *, names_only: bool = False) -> str | None:
        message = normalise(text)
        if not names_only:
            digits = message.strip(" ).")
            if digits.isdigit() and 1 <= int(digits) <= len(ctx.languages):
                return ctx.languages[int(digits) - 1]
        for code in ctx.languages:
            lexicon = ctx.lexicon(code)
            if message in (normalise(lexicon.name), code if not names_only else "\0"):
                return code
        return None

    def _change_language(self, out: _Builder, language: str) -> Turn:
        self._clear(out, MENU_SHOWN)
        out.state = replace(out.state, language=language)
        out.effects.append(ChangeLanguage(language))
        out.say(replies.LANGUAGE_CHANGED)
        self._repeat_question(out)
        return out.turn()

    def _opt_out(self, out: _Builder) -> Turn:
        out.state = replace(out.state.at(None, None), opted_out=True, variables={})
        out.effects.append(OptOut())
        out.say(
            purpose=Purpose.OPT_OUT,
            message=replies.STOPPED,
        )
        return out.turn()

    def _opt_in(self, out: _Builder) -> Turn:
        out.state = replace(out.state, opted_out=False)
        out.effects.append(OptIn())
        out.say(replies.WELCOME_BACK)
        return out.turn()

    def _hand_off(
        self,
        out: _Builder,
        reason: HandoffReason,
        priority: HandoffPriority,
        *,
        note: Any = None,
    ) -> None:
        out.effects.append(OpenHandoff(reason, priority, note=str(note) if note else None))
        out.state = replace(out.state.at(None, None), holder=Holder.WAITING_FOR_HUMAN, variables={})
        out.say(
            replies.HANDED_OFF,
            eta=out.ctx.handoff_eta(out.state.language),
        )

    def _crisis(self, out: _Builder) -> Turn:
        human_holds = out.state.holder is Holder.HUMAN
        out.say(
            purpose=Purpose.CRISIS,
            message=replies.CRISIS,
        )
        if human_holds:
            out.effects.append(AlertHuman(HandoffReason.CRISIS))
        else:
            out.effects.append(OpenHandoff(HandoffReason.CRISIS, HandoffPriority.URGENT))
            out.state = replace(
                out.state.at(None, None), holder=Holder.WAITING_FOR_HUMAN, variables={}
            )
        return out.turn()
