"""Translations from the Babel catalogs in ``locales/``: one translator per reader, never global.

Message ids are the Danish source texts. Catalogs are read from their ``.po`` files at first use,
so no compiled files live in the repository.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
SOURCE_LANGUAGE = "da"


def available_languages() -> list[str]:
    return sorted(p.parent.parent.name for p in LOCALES_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


@lru_cache(maxsize=32)
def translator(language: str) -> NullTranslations:
    """The translator for one language; unknown languages fall back to the Danish source."""
    po_file = LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if language == SOURCE_LANGUAGE or not po_file.exists():
        return NullTranslations()
    with po_file.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


# Extraction keywords (see scripts/i18n): translate:2, translate_plural:2,3, N_.
EXTRACT_KEYWORDS = {"translate": (2,), "translate_plural": (2, 3), "N_": None, "_": None}


def translate(language: str, message: str, /, **params: object) -> str:
    """Translate a Danish source text and fill its ``{named}`` fields."""
    text = translator(language).gettext(message)
    return text.format(**params) if params else text


def translate_plural(language: str, singular: str, plural: str, n: int, /, **params: object) -> str:
    text = translator(language).ngettext(singular, plural, n)
    return text.format(n=n, **params)
