"""The no-show follow-up through the pure engine: a kind word, then a new time or a friendly end."""

from __future__ import annotations

from datetime import datetime

import pytest

from dialogs import model
from dialogs.types import HandoffPriority, HandoffReason, Holder, Purpose
from tests.dialog_support import ZONE, Chat

NO_SHOW_VARS = {"meeting_id": 7, "with_whom": "Karin"}
MISSED = (
    "Hej Mads. Vi savnede dig til mødet med Karin. Det sker for alle, og jeg håber, du har "
    "det okay."
)
NEW_TIME = "Skal vi finde en ny tid? Svar ja eller nej."
WHEN = "Hvornår passer det dig? Skriv fx 'tirsdag kl 10' eller 'i morgen kl 13'."
HANDED_OFF = (
    "Jeg har givet Karin besked. Du får svar i dag inden kl. 15.00. Indtil da holder jeg mig i "
    "baggrunden."
)


def started(language: str = "da") -> tuple[Chat, list[str]]:
    chat = Chat(language=language)
    return chat, chat.start("no_show_follow_up", dict(NO_SHOW_VARS))


def test_it_starts_kindly_and_asks_one_question() -> None:
    chat, messages = started()
    assert messages == [MISSED, NEW_TIME]
    assert [m.purpose for m in chat.last.messages] == [Purpose.PROACTIVE, Purpose.PROACTIVE]
    assert chat.effects() == []
    assert (chat.state.dialog, chat.state.step) == ("no_show_follow_up", "new_time")


def test_yes_and_a_time_hands_off_with_the_proposal_and_keeps_the_no_show() -> None:
    chat, _ = started()
    assert chat.say("ja tak") == [WHEN]
    assert chat.effects() == []
    assert chat.say("på fredag kl 13") == [HANDED_OFF]
    proposed = datetime(2026, 11, 27, 13, 0, tzinfo=ZONE).isoformat()
    # The meeting stays a no-show for the figures; the wished time is in the handoff note.
    assert chat.effects() == [
        model.OpenHandoff(HandoffReason.NO_SHOW, HandoffPriority.NORMAL, proposed),
    ]
    assert chat.state.holder is Holder.WAITING_FOR_HUMAN


def test_a_time_it_cannot_read_is_asked_again_without_any_effect() -> None:
    chat, _ = started()
    chat.say("ja")
    assert chat.say("hmm engang") == [
        "Det tidspunkt kunne jeg ikke læse. Prøv fx 'fredag kl 13' eller '24/11 kl 10'."
    ]
    assert chat.effects() == []
    assert chat.state.step == "when"


@pytest.mark.parametrize("answer", ["nej", "nej tak", "ikke nu", "👎"])
def test_no_ends_friendly_without_a_handoff(answer: str) -> None:
    chat, _ = started()
    assert chat.say(answer) == ["Helt i orden. Skriv bare, når du er klar."]
    assert chat.effects() == []
    assert chat.state.holder is Holder.BOT
    assert chat.state.dialog is None
    assert chat.state.variables == {}


def test_asking_for_help_hands_off_as_a_no_show() -> None:
    chat, _ = started()
    assert chat.say("jeg har brug for hjælp") == [HANDED_OFF]
    assert chat.effects() == [model.OpenHandoff(HandoffReason.NO_SHOW, HandoffPriority.NORMAL)]
    assert chat.state.holder is Holder.WAITING_FOR_HUMAN


def test_asking_for_a_person_is_the_global_command() -> None:
    chat, _ = started()
    assert chat.say("tal med en voksen") == [HANDED_OFF]
    assert chat.effects() == [model.OpenHandoff(HandoffReason.ASKED, HandoffPriority.NORMAL)]


def test_an_unclear_answer_gets_the_rephrased_question() -> None:
    chat, _ = started()
    assert chat.say("måske?") == ["Svar ja, hvis du vil have en ny tid, eller nej, hvis ikke."]
    assert chat.effects() == []


def test_it_needs_the_meeting_and_who_it_was_with() -> None:
    with pytest.raises(ValueError, match="with_whom"):
        Chat().start("no_show_follow_up", {"meeting_id": 7})


def test_the_start_is_rendered_in_arabic_with_isolated_names() -> None:
    chat, messages = started("ar")
    assert messages == [
        "مرحبًا \u2068Mads\u2069. افتقدناك في الموعد مع \u2068Karin\u2069. هذا يحدث للجميع، "
        "وأتمنى أن تكون بخير.",
        "هل نحدد موعدًا جديدًا؟ ردّ بنعم أو لا.",
    ]
    assert chat.say("لا") == ["لا مشكلة. اكتب لي عندما تكون مستعدًا."]
    assert chat.effects() == []


def test_english_yes_leads_to_the_time_question() -> None:
    chat, messages = started("en")
    assert messages[0] == (
        "Hi Mads. We missed you at the meeting with Karin. It happens to everyone, and I hope "
        "you're okay."
    )
    assert chat.say("yes") == [
        "When suits you? Text something like 'tuesday at 10' or 'tomorrow at 13'."
    ]
