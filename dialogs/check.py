"""Validating dialogs before a young person meets them (``stifinder dialogs check``).

Structure: every target exists, every step can be reached, nothing ends where it should go on.
Texts: every variable is known, every language has a translation, each rendered message stays
within its SMS budget, and no text carries a sensitive word.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from dialogs import replies
from dialogs.lexicon import Lexicon
from dialogs.model import (
    Ask,
    AskKind,
    Branch,
    Dialog,
    Do,
    End,
    HandOff,
    Say,
    SetVar,
    Step,
    Wait,
)
from dialogs.sms import count_segments

# Always available to a text: see the engine's fields().
GLOBAL_FIELDS = frozenset({"first_name", "kontaktperson", "municipality", "help_lines"})
# Fields the engine fills for its own replies.
REPLY_FIELDS = frozenset({"eta", "menu", "goal", "step", "due", "when", "with_whom", "place"})
# Most segments a message may cost: two, or three where the script needs UCS-2.
BUDGET = {"GSM-7": 2, "UCS-2": 3}


@dataclass(frozen=True)
class Problem:
    dialog: str
    step: str
    kind: str  # unknown-target, unreachable, dead-end, unknown-variable, missing-translation,
    # too-long, sensitive-word, bad-placeholder, empty
    detail: str
    language: str | None = None

    def __str__(self) -> str:
        where = f"{self.dialog}.{self.step}" + (f" [{self.language}]" if self.language else "")
        return f"{where}: {self.kind}: {self.detail}"


def _targets(step: Step) -> list[str | None]:
    match step:
        case Say() | SetVar() | Do():
            return [step.next]
        case Ask():
            targets: list[str | None] = [option.next for option in step.options]
            if step.kind is not AskKind.CHOICE or not step.options:
                targets.append(step.next)
            if step.timeout is not None:
                targets.append(step.on_timeout)
            return targets
        case Branch():
            return [*step.cases.values(), step.default]
        case Wait():
            return [step.on_reply, step.on_timeout]
        case HandOff() | End():
            return []
    return []  # pragma: no cover


def _texts(step: Step) -> list[str]:
    match step:
        case Say():
            return [step.text]
        case Ask():
            return [step.text, step.rephrase]
        case End():
            return [step.text] if step.text else []
    return []


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def available_fields(dialog: Dialog) -> frozenset[str]:
    """The fields a text of ``dialog`` may use: the global ones and the dialog's variables."""
    assigned = set(dialog.requires)
    for step in dialog.steps:
        if isinstance(step, Ask) and step.save_as:
            assigned.add(step.save_as)
        if isinstance(step, SetVar):
            assigned.add(step.var)
    # Variables ending in _at also give a formatted field without the suffix.
    return frozenset(GLOBAL_FIELDS | assigned | {v[:-3] for v in assigned if v.endswith("_at")})


def step_texts(step: Step) -> list[tuple[str, str]]:
    """A step's texts with which of them each is: ("text" | "rephrase", Danish source)."""
    match step:
        case Ask():
            return [("text", step.text), ("rephrase", step.rephrase)]
        case Say() | End():
            return [("text", text) for text in _texts(step)]
    return []


def check_structure(dialogs: Iterable[Dialog]) -> list[Problem]:
    problems: list[Problem] = []
    known = {dialog.name for dialog in dialogs}
    for dialog in dialogs:
        names = {step.name for step in dialog.steps}
        if len(names) != len(dialog.steps):
            problems.append(Problem(dialog.name, "-", "duplicate-step", "two steps share a name"))
        if dialog.start not in names:
            problems.append(Problem(dialog.name, dialog.start, "unknown-target", "start step"))
        available = available_fields(dialog)
        for step in dialog.steps:
            for target in _targets(step):
                if target is None:
                    problems.append(Problem(dialog.name, step.name, "dead-end", "no next step"))
                elif target not in names:
                    problems.append(Problem(dialog.name, step.name, "unknown-target", target))
            if isinstance(step, End) and step.then is not None and step.then not in known:
                problems.append(Problem(dialog.name, step.name, "unknown-target", step.then))
            if isinstance(step, Ask) and step.kind is AskKind.CHOICE and not step.options:
                problems.append(
                    Problem(dialog.name, step.name, "dead-end", "a choice without options")
                )
            for text in _texts(step):
                for name in sorted(_fields(text) - available):
                    problems.append(Problem(dialog.name, step.name, "unknown-variable", name))
        reached = {dialog.start}
        frontier = [dialog.start]
        while frontier:
            current = frontier.pop()
            if current not in names:
                continue
            for target in _targets(dialog.step(current)):
                if target is not None and target not in reached:
                    reached.add(target)
                    frontier.append(target)
        for step in dialog.steps:
            if step.name not in reached:
                problems.append(
                    Problem(dialog.name, step.name, "unreachable", "no step leads here")
                )
    return problems


def all_texts(dialogs: Iterable[Dialog]) -> list[tuple[str, str, str]]:
    """(dialog, step, Danish source text) for every text of the dialogs and the engine."""
    found = [(d.name, s.name, t) for d in dialogs for s in d.steps for t in _texts(s)]
    found += [("replies", _reply_name(text), text) for text in replies.ALL]
    return found


def _reply_name(text: str) -> str:
    for name in dir(replies):
        if getattr(replies, name) == text and name.isupper():
            return name
    return "?"


def check_texts(
    dialogs: Iterable[Dialog],
    *,
    languages: Iterable[str],
    translation: Callable[[str, str], str | None],
    lexicons: Mapping[str, Lexicon],
    samples: Callable[[str], Mapping[str, str]],
) -> list[Problem]:
    """Translations, SMS budget and sensitive words, language by language.

    ``translation(language, text)`` returns the translation or None when missing;
    ``samples(language)`` gives realistic values for every field, to render with.
    """
    problems: list[Problem] = []
    for language in languages:
        values = samples(language)
        sensitive = _sensitive(lexicons.get(language), lexicons.get("da"))
        for dialog, step, source in all_texts(dialogs):
            text = source if language == "da" else translation(language, source)
            if not text:
                problems.append(Problem(dialog, step, "missing-translation", source[:40], language))
                continue
            problems += _rendered(dialog, step, source, text, language, values, sensitive)
    return problems


def check_text(
    text: str,
    *,
    dialog: str,
    step: str,
    source: str,
    language: str,
    allowed: Collection[str],
    lexicons: Mapping[str, Lexicon],
    values: Mapping[str, str],
) -> list[Problem]:
    """The checks of ``check_structure`` and ``check_texts`` on ONE text in one language (a
    municipality's own wording of ``source``): not empty, only the ``allowed`` fields, within the
    SMS budget once rendered with ``values``, no sensitive word."""
    if not text.strip():
        return [Problem(dialog, step, "empty", "no text", language)]
    try:
        unknown = sorted(_fields(text) - set(allowed))
    except ValueError as error:
        return [Problem(dialog, step, "bad-placeholder", str(error), language)]
    if unknown:
        return [Problem(dialog, step, "unknown-variable", name, language) for name in unknown]
    sensitive = _sensitive(lexicons.get(language), lexicons.get("da"))
    return _rendered(dialog, step, source, text, language, values, sensitive)


def _rendered(
    dialog: str,
    step: str,
    source: str,
    text: str,
    language: str,
    values: Mapping[str, str],
    sensitive: re.Pattern[str] | None,
) -> list[Problem]:
    """SMS budget and sensitive words of one translated text."""
    problems: list[Problem] = []
    try:
        rendered = text.format(**values)
    except (KeyError, IndexError, ValueError, AttributeError) as error:
        return [Problem(dialog, step, "bad-placeholder", str(error), language)]
    segments = count_segments(rendered)
    if source not in replies.NO_SEGMENT_BUDGET and segments.count > BUDGET[segments.encoding]:
        problems.append(
            Problem(
                dialog,
                step,
                "too-long",
                f"{segments.count} {segments.encoding} segments ({segments.units} units)",
                language,
            )
        )
    if sensitive is not None:
        # Only the bot's own words count: the young person's name or a place may not.
        own = text
        for name in _fields(text):
            own = own.replace("{" + name + "}", " ")
        hit = sensitive.search(own.casefold())
        if hit:
            problems.append(Problem(dialog, step, "sensitive-word", hit.group(0), language))
    return problems


def _sensitive(*lexicons: Lexicon | None) -> re.Pattern[str] | None:
    words = sorted(
        {w.casefold() for lexicon in lexicons if lexicon for w in lexicon.sensitive_words}
    )
    if not words:
        return None
    return re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in words) + r")(?!\w)")
