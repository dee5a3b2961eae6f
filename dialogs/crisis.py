"""Signs of crisis: suicide, self-harm, violence. Checked on every message, in every language.

Patterns are regular expressions kept in each language's lexicon, written against a lightly
normalised text (lower case, no punctuation, runs of three or more equal letters cut to one).
Exceptions ("jeg er ved at dø af kedsomhed") are removed before the patterns are tried. A false
alarm costs a kind message and a human look; a missed one can cost far more, so the patterns
lean towards alarm.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from dialogs.lexicon import Lexicon

_STRETCH = re.compile(r"(\w)\1{2,}")
_NOT_WORD = re.compile(r"[^\w\s]+")
_SPACES = re.compile(r"\s+")


def light_normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", text.casefold())
    # Arabic vowel marks and the dot casefold leaves on Turkish İ are not letters of the word.
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    text = _NOT_WORD.sub(" ", text)
    text = _STRETCH.sub(r"\1", text)
    return _SPACES.sub(" ", text).strip()


@lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns))


def shows_crisis(text: str, lexicons: Iterable[Lexicon]) -> bool:
    """Whether the text shows signs of crisis in any of the given languages."""
    message = light_normalise(text)
    if not message:
        return False
    for lexicon in lexicons:
        exceptions = _compiled(lexicon.crisis_exceptions)
        cleaned = exceptions.sub(" ", message) if exceptions else message
        found = _compiled(lexicon.crisis)
        if found is not None and found.search(cleaned):
            return True
    return False
