"""How young people write, per shipped language: the lexicons' own samples must be understood."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.lexicons import all_lexicons, lexicon_languages, load_lexicon
from dialogs.crisis import shows_crisis
from dialogs.understand import best_intent, choose, normalise, numbered_choice, whole_command
from dialogs.when import parse_when

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Europe/Copenhagen"))  # a Monday
LANGUAGES = lexicon_languages()


def _samples(kind: str, language: str) -> dict[str, Any]:
    path = DATA / kind / f"{language}.json"
    assert path.exists(), f"{path} is missing: every shipped language needs its samples"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_all_nine_languages_are_shipped() -> None:
    assert set(LANGUAGES) == {"da", "en", "ar", "tr", "uk", "so", "fa", "ur", "pl"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_yes_no_and_not_now_are_understood(language: str) -> None:
    lexicon = load_lexicon(language)
    samples = _samples("understanding", language)
    wrong = {
        (intent, text): best_intent(text, lexicon.intents)
        for intent in ("yes", "no", "not_now")
        for text in samples[intent]
        if best_intent(text, lexicon.intents) != intent
    }
    assert wrong == {}


@pytest.mark.parametrize("language", LANGUAGES)
def test_commands_are_understood(language: str) -> None:
    lexicon = load_lexicon(language)
    samples = _samples("understanding", language)
    wrong = {
        (command, text): whole_command(text, lexicon.commands)
        for command in ("stop", "human", "help")
        for text in samples[command]
        if whole_command(text, lexicon.commands) != command
    }
    assert wrong == {}


@pytest.mark.parametrize("language", LANGUAGES)
def test_dates_and_times_in_words(language: str) -> None:
    lexicon = load_lexicon(language)
    wrong = {}
    for text, expected in _samples("understanding", language)["dates"]:
        when = parse_when(text, NOW, lexicon.dates)
        got = when.to_datetime(NOW).isoformat() if when else None
        if got != expected:
            wrong[text] = got
    assert wrong == {}


@pytest.mark.parametrize("language", LANGUAGES)
def test_crisis_corpus(language: str) -> None:
    corpus = _samples("crisis", language)
    every = list(all_lexicons().values())
    missed = [text for text in corpus["positive"] if not shows_crisis(text, every)]
    false_alarms = [text for text in corpus["negative"] if shows_crisis(text, every)]
    assert (missed, false_alarms) == ([], [])
    assert len(corpus["positive"]) >= 15
    assert len(corpus["negative"]) >= 10


def test_normalise_handles_case_punctuation_stretching_and_emoji() -> None:
    assert normalise("JAAAA!!! 👍") == "ja 👍"
    assert normalise("  Nej,   tak. ") == "nej tak"
    assert normalise("Kommer") == normalise("kommer")


def test_numbered_choices() -> None:
    assert [numbered_choice(t, 3) for t in ["1", "2)", " 3. ", "4", "12", "x"]] == [
        0,
        1,
        2,
        None,
        None,
        None,
    ]


def test_choice_prefers_the_longest_phrase() -> None:
    intents = load_lexicon("da").intents
    options = [("confirm", "yes"), ("cannot_come", "no"), ("new_time",)]
    assert choose("ja men jeg kan ikke", options, intents) == 1
    assert choose("kan vi finde en ny tid", options, intents) == 2
    assert choose("jaaa jeg kommer", options, intents) == 0
    assert choose("måske", options, intents) is None


def test_stop_only_as_a_whole_message() -> None:
    commands = load_lexicon("da").commands
    assert whole_command("STOP", commands) == "stop"
    assert whole_command("stop tak", commands) == "stop"
    assert whole_command("jeg vil ikke stoppe med fodbold", commands) is None
    assert whole_command("stpo", commands) is None  # too short for typo tolerance
    assert whole_command("afmeldd", commands) == "stop"  # one typo in a long word


def test_exact_words_beat_a_typo_of_a_longer_phrase() -> None:
    # "nomore" is one letter from "nomores"; the exact "nomore" must win.
    intents = {"yes": ("nomore",), "no": ("nomores",)}
    assert best_intent("nomore", intents) == "yes"
    assert whole_command("hjælp", {"contact": ("hjælpe",), "help": ("hjælp",)}) == "help"


def test_vowel_marks_and_the_turkish_dotted_i_are_ignored() -> None:
    assert normalise("نَعَم") == normalise("نعم")
    assert normalise("İSTANBUL") == "istanbul"


def test_numbers_before_units_and_hours_before_the_time_word() -> None:
    from dialogs.lexicon import DateWords

    words = DateWords(
        days=("gün",),
        later=("sonra",),
        time_after=("bje",),
        weekdays=(("a",),) * 5 + (("b",), ("c b",)),
    )
    assert parse_when("3 gün sonra", NOW, words) is not None
    when = parse_when("3 gün sonra 2 bje", NOW, words)
    assert when is not None and when.to_datetime(NOW).isoformat() == "2026-11-26T02:00:00+01:00"
    sunday = parse_when("c b", NOW, words)  # Saturday "b" is inside Sunday "c b"
    assert sunday is not None and sunday.day.isoformat() == "2026-11-29"
