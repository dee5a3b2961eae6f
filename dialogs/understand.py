"""Tolerant reading of what young people write: case, punctuation, stretched letters ("jaaa"),
slang and small typos, emoji, numbered choices.

Every phrase list comes from a :class:`~dialogs.lexicon.Lexicon`; nothing here knows a language.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

_NUMBERED = re.compile(r"^\s*(\d{1,2})\s*[).:,-]?\s*$")
_SPACES = re.compile(r"\s+")


def _is_emoji(ch: str) -> bool:
    return unicodedata.category(ch) == "So" or 0x1F000 <= ord(ch) <= 0x1FAFF


def normalise(text: str) -> str:
    """Lower case, letters, digits and emoji only, single spaces, stretched letters collapsed.

    Doubled letters are collapsed on both sides of a comparison, so "kommer" still matches
    "kommer" and "jaaaa" matches "ja".
    """
    kept: list[str] = []
    for ch in unicodedata.normalize("NFC", text.casefold()):
        if unicodedata.category(ch) == "Mn":
            continue  # Arabic vowel marks, the dot casefold leaves on Turkish İ
        if ch.isalnum() or _is_emoji(ch):
            if _is_emoji(ch):
                kept.append(f" {ch} ")
            elif not (kept and kept[-1] == ch and ch.isalpha()):
                kept.append(ch)
        elif ch in "\u200d\ufe0f":
            continue  # emoji joiners and variation selectors
        else:
            kept.append(" ")
    return _SPACES.sub(" ", "".join(kept)).strip()


def _distance_at_most_one(a: str, b: str) -> bool:
    """True if one insertion, deletion, substitution or swap of neighbours turns a into b."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and (a[diff[1]] == b[diff[0]])
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def _match(message: str, phrase: str) -> int:
    """2 for the phrase as the message or as whole words in it, 1 for the whole message with one
    typo (phrases of five letters or more), 0 for no match."""
    if not phrase:
        return 0
    if message == phrase or f" {phrase} " in f" {message} ":
        return 2
    return 1 if len(phrase) >= 5 and _distance_at_most_one(message, phrase) else 0


def phrase_matches(message: str, phrase: str) -> bool:
    """Whether a normalised message is, or contains as whole words, a normalised phrase, or is
    the phrase with one typo."""
    return _match(message, phrase) > 0


def best_intent(text: str, intents: Mapping[str, Iterable[str]]) -> str | None:
    """The intent with the best match: exact before typo, then the longest phrase. None when
    nothing matches or two intents tie."""
    message = normalise(text)
    if not message:
        return None
    best: dict[str, tuple[int, int]] = {}
    for intent, phrases in intents.items():
        for phrase in phrases:
            normal = normalise(phrase)
            quality = _match(message, normal)
            if quality:
                best[intent] = max(best.get(intent, (0, 0)), (quality, len(normal)))
    if not best:
        return None
    ranked = sorted(best.items(), key=lambda item: item[1], reverse=True)
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]


def whole_command(text: str, commands: Mapping[str, Iterable[str]]) -> str | None:
    """A command only when the whole message is the command (allowing one typo and politeness).

    "stop" stops; "jeg vil ikke stoppe med at gå til fodbold" does not.
    """
    message = normalise(text)
    if not message:
        return None
    candidates = [message]
    for polite in ("tak", "please", "pls", "plz"):
        shorter = message.removesuffix(f" {polite}").strip()
        if shorter != message:
            candidates.append(shorter)
    normal = {
        command: [normalise(phrase) for phrase in phrases] for command, phrases in commands.items()
    }
    # Every exact match before any typo match, whatever order the commands come in.
    for candidate in candidates:
        for command, phrases in normal.items():
            if candidate in phrases:
                return command
    for candidate in candidates:
        for command, phrases in normal.items():
            if any(len(p) >= 5 and _distance_at_most_one(candidate, p) for p in phrases):
                return command
    return None


def numbered_choice(text: str, count: int) -> int | None:
    """ "2", "2)" or "2." picks the second of ``count`` options (returned 0-based)."""
    match = _NUMBERED.match(text)
    if match is None:
        return None
    number = int(match.group(1))
    return number - 1 if 1 <= number <= count else None


def choose(
    text: str, options: Sequence[Sequence[str]], intents: Mapping[str, Iterable[str]]
) -> int | None:
    """Which option (each a list of intent names) the text picks, by number or by words."""
    numbered = numbered_choice(text, len(options))
    if numbered is not None:
        return numbered
    candidates = {
        f"{index}:{intent}": intents.get(intent, ())
        for index, option in enumerate(options)
        for intent in option
    }
    picked = best_intent(text, candidates)
    return None if picked is None else int(picked.split(":", 1)[0])


def parse_number(text: str, words: Mapping[str, int]) -> int | None:
    message = normalise(text)
    digits = re.findall(r"\d+", message)
    if len(digits) == 1:
        return int(digits[0])
    found = {words[w] for w in message.split() if w in words}
    return found.pop() if len(found) == 1 else None
