"""Every text a reader sees is in the catalogs, translated, with the same placeholders."""

from __future__ import annotations

import re
import string

import pytest
from babel.messages.pofile import read_po

from bot.i18n import LOCALES_DIR, available_languages, translate, translator
from scripts import i18n as catalogs

FIELDS = re.compile(r"\{(\w+)\}")


def _catalog(language: str):  # type: ignore[no-untyped-def]
    with (LOCALES_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=language)


def test_catalogs_are_in_step_with_the_code() -> None:
    assert catalogs.main(["--check"]) == 0


def test_danish_and_english_are_shipped() -> None:
    assert {"da", "en"} <= set(available_languages())


@pytest.mark.parametrize("language", ["da", "en"])
def test_every_text_is_translated_with_the_same_placeholders(language: str) -> None:
    missing, fuzzy, mismatched = [], [], []
    for message in _catalog(language):
        if not message.id:
            continue
        if not message.string:
            missing.append(message.id)
        elif message.fuzzy:
            fuzzy.append(message.id)
        elif set(FIELDS.findall(str(message.id))) != set(FIELDS.findall(str(message.string))):
            mismatched.append(message.id)
    assert (missing, fuzzy, mismatched) == ([], [], [])


def test_placeholders_are_well_formed_format_strings() -> None:
    for message in _catalog("en"):
        if message.id:
            list(string.Formatter().parse(str(message.string)))


def test_translate_fills_fields_and_falls_back_to_danish_for_unknown_languages() -> None:
    assert (
        translate("en", "Kommunen {slug} findes ikke.", slug="x")
        == "The municipality x does not exist."
    )
    assert translate("xx", "Kommunen {slug} findes ikke.", slug="x") == "Kommunen x findes ikke."
    assert translator("en") is translator("en")  # parsed once
