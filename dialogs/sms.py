"""How many SMS segments a text costs: GSM-7 (160, or 153 per part) or UCS-2 (70, or 67).

One character outside the GSM-7 alphabet (an emoji, a curly quote, Arabic) makes the whole
message UCS-2. Characters of the GSM-7 extension table take two septets.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

# Characters that look alike and keep a text in GSM-7 when replaced.
GSM7_LOOKALIKES = {
    "\u2018": "'",  # left single quote
    "\u2019": "'",  # right single quote / apostrophe
    "\u201a": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2026": "...",
    "\u00a0": " ",  # no-break space
    "\u2009": " ",
    "\u202f": " ",
}


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    count: int


GSM7 = GSM7_BASIC | GSM7_EXTENSION
_LOOKALIKES = str.maketrans(GSM7_LOOKALIKES)


def is_gsm7(text: str) -> bool:
    return set(text) <= GSM7


def count_segments(text: str) -> Segments:
    if is_gsm7(text):
        units = len(text) + sum(text.count(ch) for ch in GSM7_EXTENSION.intersection(text))
        single, part = 160, 153
        encoding = "GSM-7"
    else:
        # Characters beyond the Basic Multilingual Plane (most emoji) take two UTF-16 units.
        units = len(text.encode("utf-16-le", "surrogatepass")) // 2
        single, part = 70, 67
        encoding = "UCS-2"
    if units == 0:
        return Segments(encoding, 0, 0)
    count = 1 if units <= single else -(-units // part)
    return Segments(encoding, units, count)


def to_gsm7(text: str) -> str:
    """Replace look-alike characters (curly quotes, dashes) so the text can stay in GSM-7."""
    return text.translate(_LOOKALIKES)


def sms_text(text: str) -> str:
    """The text with look-alikes replaced, when that keeps the whole message in GSM-7."""
    plain = to_gsm7(text)
    return plain if is_gsm7(plain) else text
