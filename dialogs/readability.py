"""LIX, the Scandinavian readability index, for a staff member writing to young people.

LIX = words / sentences + 100 × long words / words, where a long word has more than six letters.
The usual Danish scale reads below 35 as easy, 35 to 44 as middling and 45 or more as hard
(a text for a 17-year-old should stay in the first band).
"""

from __future__ import annotations

import re

from dialogs.i18n import N_

# A word is a run of letters (with inner apostrophes or hyphens); numbers are not words.
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
# A sentence ends at . ! ? or : followed by a space or the end ("14.30" and "stifinder.dk" do
# not end one; an abbreviation such as "kl." does, as in the usual hand count), or at a blank line.
_SENTENCE_END = re.compile(r"[.!?:]+(?=\s|$)|\n\s*\n")
LONG = 6
EASY_BELOW = 35.0
HARD_FROM = 45.0


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def sentences(text: str) -> int:
    """How many sentences hold at least one word; a last sentence needs no full stop."""
    return sum(1 for part in _SENTENCE_END.split(text) if part and _WORD.search(part))


def lix(text: str) -> float:
    """The LIX of ``text``; 0.0 for a text without words."""
    found = words(text)
    if not found:
        return 0.0
    long_words = sum(1 for word in found if sum(ch.isalpha() for ch in word) > LONG)
    return len(found) / max(sentences(text), 1) + 100 * long_words / len(found)


def lix_label(score: float) -> str:
    """A plain label for the score, as a message id: "let", "middel" or "svær"."""
    if score < EASY_BELOW:
        return N_("let")
    if score < HARD_FROM:
        return N_("middel")
    return N_("svær")
