"""Phone numbers as Stifinder stores them: E.164, checked with ``phonenumbers`` first."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

# Danish numbers are not split into mobile and fixed-line ranges, so phonenumbers calls nearly all
# of them FIXED_LINE_OR_MOBILE; accepting that type is what lets plain Danish numbers through.
# Toll-free, premium-rate and pure fixed-line numbers cannot receive an SMS and are refused.
_TEXTABLE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})

# Digits and the punctuation people put between them. Letters are refused on purpose: phonenumbers
# would otherwise read "20 AB CD EF" as a vanity number and turn the letters into digits.
_ALLOWED = re.compile(r"[0-9+\-\s().\/]+")


class InvalidPhone(ValueError):  # noqa: N818 - the name callers catch
    """The text is not a phone number that can receive an SMS."""


def normalise_phone(raw: str, region: str = "DK") -> str:
    """Return ``raw`` in E.164 ("+4520123456"), or raise :class:`InvalidPhone`.

    Numbers without a country code are read as numbers of ``region``; "0045" and "45" in front of
    a Danish number are understood as the country code.
    """
    text = raw.strip()
    if not text or not _ALLOWED.fullmatch(text):
        raise InvalidPhone(f"not a phone number: {raw!r}")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        raise InvalidPhone(f"not a phone number: {raw!r}") from error
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"not a valid phone number: {raw!r}")
    if phonenumbers.number_type(number) not in _TEXTABLE_TYPES:
        raise InvalidPhone(f"not a mobile number: {raw!r}")
    formatted: str = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return formatted
