"""LIX against values worked out by hand."""

from __future__ import annotations

import pytest

from dialogs.readability import lix, lix_label, sentences, words


def test_short_words_in_two_sentences() -> None:
    # 6 words, 2 sentences, no word of more than six letters: 6 / 2 + 0 = 3.
    assert lix("Hej Mads. Vi ses i morgen.") == pytest.approx(3.0)


def test_long_words_weigh_in() -> None:
    # 3 words, 1 sentence; "Uddannelsesvejledningen" (23) and "hjælper" (7) are long:
    # 3 / 1 + 100 * 2 / 3 = 69.67.
    assert lix("Uddannelsesvejledningen hjælper dig.") == pytest.approx(3 + 200 / 3)


def test_a_message_without_a_full_stop_is_one_sentence() -> None:
    # 8 words (a time is no word), 1 sentence, "kontaktperson" and "klokken" are long:
    # 8 / 1 + 100 * 2 / 8 = 33.
    assert words("ringer til dig klokken 14.30") == ["ringer", "til", "dig", "klokken"]
    # A time and an address end no sentence; an abbreviation followed by a space does.
    assert sentences("Hej Sara, vi ses 14.30 på stifinder.dk") == 1
    assert sentences("Hej Sara, vi ses kl. 14.30 på stifinder.dk") == 2
    assert lix("Hej Sara, din kontaktperson ringer til dig klokken 14.30") == pytest.approx(33.0)


def test_an_empty_text_scores_nothing() -> None:
    assert lix("") == 0.0
    assert lix("14.30 ... !") == 0.0


def test_labels_follow_the_usual_bands() -> None:
    assert lix_label(3.0) == "let"
    assert lix_label(34.9) == "let"
    assert lix_label(35.0) == "middel"
    assert lix_label(44.9) == "middel"
    assert lix_label(45.0) == "svær"
    assert lix_label(69.7) == "svær"
