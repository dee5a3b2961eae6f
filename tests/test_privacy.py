from __future__ import annotations

import pytest

from dialogs.privacy import CPR_MASK, mask_cpr, mask_phone, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mit cpr er 010203-1234", f"mit cpr er {CPR_MASK}"),
        ("0102031234", CPR_MASK),
        ("010203 1234 tak", f"{CPR_MASK} tak"),
        ("290200-1234", CPR_MASK),  # 29 February 2000 exists
        ("310203-1234", "310203-1234"),  # 31 February does not
        ("011303-1234", "011303-1234"),  # no 13th month
        ("ring 12345678", "ring 12345678"),  # eight digits are not a CPR number
        ("12345678901", "12345678901"),  # eleven digits are not either
    ],
)
def test_mask_cpr_masks_only_a_valid_date_followed_by_four_digits(text: str, expected: str) -> None:
    assert mask_cpr(text) == expected


def test_mask_phone_keeps_country_code_and_last_two_digits() -> None:
    assert mask_phone("+4520123456") == "+45******56"
    assert mask_phone("20123456") == "******56"


def test_redact_masks_phone_numbers_and_cpr_numbers_in_free_text() -> None:
    assert redact("from +4520123456 cpr 010203-1234") == f"from +45******56 cpr {CPR_MASK}"
