"""Phone numbers are stored in E.164, and only numbers that can receive an SMS are accepted."""

from __future__ import annotations

import pytest

from storage.phones import InvalidPhone, normalise_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("20123456", "+4520123456"),
        ("20 12 34 56", "+4520123456"),
        ("20-12-34-56", "+4520123456"),
        (" 20123456 ", "+4520123456"),
        ("+45 20 12 34 56", "+4520123456"),
        ("+4520123456", "+4520123456"),
        ("0045 20 12 34 56", "+4520123456"),
        ("004520123456", "+4520123456"),
        ("(+45) 20.12.34.56", "+4520123456"),
        ("+46 70 123 45 67", "+46701234567"),
        ("+44 7911 123456", "+447911123456"),
    ],
)
def test_valid_numbers_become_e164(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected


def test_region_is_used_for_numbers_without_country_code() -> None:
    assert normalise_phone("070-123 45 67", region="SE") == "+46701234567"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "1234",  # too short
        "12345678",  # no Danish number starts with 1
        "2012345",  # seven digits
        "201234567",  # nine digits
        "112",  # emergency number
        "80 20 12 01",  # toll-free: cannot receive an SMS
        "+44 20 7946 0958",  # British fixed line
        "20 AB CD EF",  # letters are not read as a vanity number
        "ring til mor",
        "20123456 eller 30123456",
    ],
)
def test_invalid_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        normalise_phone(raw)


def test_invalid_phone_is_a_value_error() -> None:
    assert issubclass(InvalidPhone, ValueError)
