"""Small text helpers shared by the engine and the checks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dialogs.types import DreamCategory
from dialogs.understand import normalise


def guess_category(
    text: str, words: Mapping[str, Iterable[str]], *, fallback: DreamCategory
) -> DreamCategory:
    """The dream category whose words occur most often in the text (stems match: "uddan")."""
    message = f" {normalise(text)} "
    scores: dict[str, int] = {}
    for category, stems in words.items():
        for stem in stems:
            normal = normalise(stem)
            if normal and f" {normal}" in message:
                scores[category] = scores.get(category, 0) + 1
    if not scores:
        return fallback
    best = max(scores.items(), key=lambda item: item[1])[0]
    return DreamCategory(best)


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    # Three dots rather than an ellipsis: one character outside GSM-7 doubles an SMS's cost.
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."
