"""Text rules that protect young people: CPR numbers and phone numbers never leave in full.

A CPR number is a valid DDMMYY date followed by four digits, written with or without a dash or a
space. Young people sometimes type theirs; it is masked before it is stored or logged.
"""

from __future__ import annotations

import re
from datetime import date

_CPR = re.compile(r"(?<!\d)(\d{2})(\d{2})(\d{2})[- ]?(\d{4})(?!\d)")
_PHONE = re.compile(r"\+?\d[\d ]{6,}\d")

CPR_MASK = "XXXXXX-XXXX"


def _is_date(day: str, month: str, year: str) -> bool:
    # The century is unknown from six digits alone; 2000 is a leap year, so 29 February passes.
    try:
        date(2000 + int(year), int(month), int(day))
    except ValueError:
        try:
            date(1900 + int(year), int(month), int(day))
        except ValueError:
            return False
    return True


def mask_cpr(text: str) -> str:
    """Replace every CPR-like number (valid date + four digits) with a fixed mask."""

    def replace(match: re.Match[str]) -> str:
        day, month, year, _ = match.groups()
        return CPR_MASK if _is_date(day, month, year) else match.group(0)

    return _CPR.sub(replace, text)


def mask_phone(phone: str) -> str:
    """Show only the last two digits of a phone number: ``+4512345678`` → ``+45******78``."""
    digits = phone.strip()
    if len(digits) <= 5:
        return "*" * len(digits)
    keep_start = 3 if digits.startswith("+") else 0
    return digits[:keep_start] + "*" * (len(digits) - keep_start - 2) + digits[-2:]


def redact(text: str) -> str:
    """Mask CPR numbers and phone numbers in free text (used on every log line)."""
    masked = mask_cpr(text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0).replace(" ", "")), masked)
