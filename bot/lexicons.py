"""Loading each language's lexicon (``locales/<lang>/lexicon.json``) once per process."""

from __future__ import annotations

import json
from functools import lru_cache

from bot.i18n import LOCALES_DIR
from dialogs.lexicon import Lexicon

# The order of the language menu: Danish first, then the languages young people use most.
SHIPPED = ("da", "en", "ar", "tr", "uk", "so", "fa", "ur", "pl")


@lru_cache(maxsize=1)
def lexicon_languages() -> tuple[str, ...]:
    """The shipped languages that have a lexicon (looked up once: every turn asks)."""
    return tuple(code for code in SHIPPED if (LOCALES_DIR / code / "lexicon.json").exists())


@lru_cache(maxsize=16)
def load_lexicon(language: str) -> Lexicon:
    path = LOCALES_DIR / language / "lexicon.json"
    return Lexicon.from_dict(language, json.loads(path.read_text(encoding="utf-8")))


def all_lexicons() -> dict[str, Lexicon]:
    return {code: load_lexicon(code) for code in lexicon_languages()}
