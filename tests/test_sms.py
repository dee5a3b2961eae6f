from __future__ import annotations

import pytest

from dialogs.sms import Segments, count_segments, to_gsm7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Segments("GSM-7", 0, 0)),
        ("a" * 160, Segments("GSM-7", 160, 1)),
        ("a" * 161, Segments("GSM-7", 161, 2)),
        ("a" * 306, Segments("GSM-7", 306, 2)),
        ("a" * 307, Segments("GSM-7", 307, 3)),
        ("Hej Søren, kommer du på mødet i Århus?", Segments("GSM-7", 38, 1)),
        ("€" * 80, Segments("GSM-7", 160, 1)),  # two septets each
        ("€" * 81, Segments("GSM-7", 162, 2)),
        ("a" * 69 + "👍", Segments("UCS-2", 71, 2)),  # emoji: two UTF-16 units
        ("ş" * 70, Segments("UCS-2", 70, 1)),
        ("ş" * 71, Segments("UCS-2", 71, 2)),
        ("مرحبا" * 27, Segments("UCS-2", 135, 3)),
    ],
)
def test_count_segments(text: str, expected: Segments) -> None:
    assert count_segments(text) == expected


def test_one_curly_quote_makes_the_whole_text_ucs2_and_normalising_keeps_it_gsm7() -> None:
    text = "Det er \u201cfint\u201d \u2013 vi ses"
    assert count_segments(text).encoding == "UCS-2"
    assert to_gsm7(text) == 'Det er "fint" - vi ses'
    assert count_segments(to_gsm7(text)).encoding == "GSM-7"
