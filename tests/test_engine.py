"""The engine, from the outside: a young person writes, the bot answers, effects come out."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from dialogs import model
from dialogs.engine import Engine
from dialogs.flows import CORE_DIALOGS
from dialogs.types import (
    DreamCategory,
    GoalStatus,
    HandoffPriority,
    HandoffReason,
    Holder,
    MeetingStatus,
    Purpose,
)
from tests.dialog_support import MEETING_VARS, NOW, SUB_GOAL_VARS, ZONE, Chat, context

HANDED_OFF = (
    "Jeg har givet Karin besked. Du får svar i dag inden kl. 15.00. Indtil da holder jeg mig i "
    "baggrunden."
)


# ------------------------------------------------------------------------------- welcome


def test_welcome_in_danish_yes_to_contact_and_dreams() -> None:
    chat = Chat()
    assert chat.start("welcome") == [
        "Hej Mads! Jeg er Stifinder, en chatbot fra ungeindsatsen i Aarhus Kommune. Jeg skriver "
        "for Karin. Du kan altid skrive STOP, så stopper jeg.",
        "Må jeg skrive til dig en gang imellem om dine planer og møder? Svar ja eller nej.",
    ]
    assert [m.purpose for m in chat.last.messages] == [Purpose.PROACTIVE, Purpose.PROACTIVE]
    assert chat.effects() == [model.ScheduleTimeout(NOW + timedelta(days=3))]
    assert chat.say("jaaa 👍") == [
        "Tak! Skriv SPROG, hvis du hellere vil skrive på et andet sprog.",
        "Har du lyst til at fortælle mig lidt om, hvad du drømmer om?",
    ]
    assert chat.effects() == [model.RecordConsent(given=True)]
    assert chat.say("jep") == ["Hvad drømmer du om? Det må gerne være stort eller småt."]
    assert (chat.state.dialog, chat.state.step) == ("dreams", "dream")


def test_welcome_in_english_no_to_contact_opts_out() -> None:
    chat = Chat(language="en")
    assert chat.start("welcome")[0].startswith("Hi Mads! I'm Stifinder, a chatbot")
    assert chat.say("no thanks") == [
        "That's completely fine. I won't write again. Text START if you change your mind."
    ]
    assert chat.effects() == [model.RecordConsent(given=False)]
    assert chat.state.opted_out
    assert chat.say("hello?") == []  # nothing more after declining


def test_welcome_not_now_for_dreams() -> None:
    chat = Chat()
    chat.start("welcome")
    chat.say("ja")
    assert chat.say("ikke nu") == ["Helt fint. Skriv bare til mig, hvis der er noget."]
    assert chat.state.dialog is None


def test_welcome_timeout_ends_quietly() -> None:
    chat = Chat()
    chat.start("welcome")
    turn = Engine(CORE_DIALOGS).timeout(chat.state, "welcome", "permission", context())
    assert (turn.messages, turn.state.dialog) == ((), None)


def test_a_timeout_for_a_step_the_dialog_has_left_does_nothing() -> None:
    chat = Chat()
    chat.start("welcome")
    chat.say("ja")
    turn = Engine(CORE_DIALOGS).timeout(chat.state, "welcome", "permission", context())
    assert turn.state == chat.state
    assert turn.messages == ()


# -------------------------------------------------------------------------------- dreams


def test_dreams_in_danish_store_each_answer_with_a_category_and_sum_up() -> None:
    chat = Chat()
    chat.start("dreams")
    assert chat.say("Jeg vil gerne være mekaniker") == ["Hvad er du god til?"]
    assert chat.effects() == [model.SaveDream("Jeg vil gerne være mekaniker", DreamCategory.JOB)]
    assert chat.say("fodbold og biler") == [
        "Hvad skal der til, for at du kommer tættere på din drøm?"
    ]
    assert chat.effects() == [model.SaveDream("fodbold og biler", DreamCategory.OTHER)]
    assert chat.say("at jeg får hjælp til at søge ind på en uddannelse") == [
        'Tak, Mads. Jeg har gemt dine svar, fx "Jeg vil gerne være mekaniker". Karin kan se '
        "dem, og I kan tale videre om dem næste gang."
    ]
    assert chat.effects() == [
        model.SaveDream(
            "at jeg får hjælp til at søge ind på en uddannelse", DreamCategory.EDUCATION
        )
    ]
    assert chat.state.dialog is None
    assert chat.state.variables == {}


def test_dreams_in_english_shorten_a_long_answer_in_the_summary() -> None:
    chat = Chat(language="en")
    assert chat.start("dreams") == ["What do you dream of? It can be big or small."]
    long_dream = "I want to become a nurse and help people who are sick in a big hospital one day"
    chat.say(long_dream)
    chat.say("listening")
    summary = chat.say("a course")
    assert summary == [
        "Thanks, Mads. I've saved your answers, like \"I want to become a nurse and help people "
        'who are sick in...". Karin can see them, and you can talk more about them next time.'
    ]


# ------------------------------------------------------------------------------- meeting


def test_meeting_reminder_confirmed_in_danish() -> None:
    chat = Chat()
    assert chat.start("meeting_reminder", dict(MEETING_VARS)) == [
        "Hej Mads. Husk dit møde med Karin onsdag den 25. november kl. 13.00, Ungdommens Hus.",
        "Kommer du? Svar 1 for ja, 2 hvis du ikke kan, eller 3 hvis du vil have en ny tid.",
    ]
    assert chat.say("1") == ["Super, tak! Vi ses."]
    assert chat.effects() == [model.SetMeetingStatus(7, MeetingStatus.CONFIRMED)]


@pytest.mark.parametrize("answer", ["ja", "jeg kommer", "👍", "jaaa vi ses"])
def test_meeting_confirmations_in_many_words(answer: str) -> None:
    chat = Chat()
    chat.start("meeting_reminder", dict(MEETING_VARS))
    assert chat.say(answer) == ["Super, tak! Vi ses."]


def test_meeting_cannot_come_new_time_hands_off_with_the_proposal() -> None:
    chat = Chat()
    chat.start("meeting_reminder", dict(MEETING_VARS))
    assert chat.say("jeg kan ikke") == ["Øv, men tak fordi du siger det. Vil du have en ny tid?"]
    assert chat.effects() == [model.SetMeetingStatus(7, MeetingStatus.DECLINED)]
    assert chat.say("ja") == [
        "Hvornår passer det dig? Skriv fx 'tirsdag kl 10' eller 'i morgen kl 13'."
    ]
    assert chat.say("hmm engang") == [
        "Det tidspunkt kunne jeg ikke læse. Prøv fx 'fredag kl 13' eller '24/11 kl 10'."
    ]
    assert chat.say("på fredag kl 13") == [HANDED_OFF]
    proposed = datetime(2026, 11, 27, 13, 0, tzinfo=ZONE).isoformat()
    assert chat.effects() == [
        model.SetMeetingStatus(7, MeetingStatus.NEW_TIME_WANTED, proposed),
        model.OpenHandoff(HandoffReason.DECLINED_MEETING, HandoffPriority.NORMAL, proposed),
    ]
    assert chat.state.holder is Holder.WAITING_FOR_HUMAN


def test_meeting_cannot_come_and_no_new_time_hands_off_in_english() -> None:
    chat = Chat(language="en")
    chat.start("meeting_reminder", dict(MEETING_VARS))
    assert chat.say("2") == ["Oh no, but thanks for letting me know. Would you like a new time?"]
    assert chat.say("no") == [
        "I've let Karin know. You'll get an answer today before 3:00 PM. Until then I'll stay "
        "in the background."
    ]
    assert chat.effects()[-1] == model.OpenHandoff(
        HandoffReason.DECLINED_MEETING, HandoffPriority.NORMAL
    )


def test_meeting_new_time_straight_away() -> None:
    chat = Chat()
    chat.start("meeting_reminder", dict(MEETING_VARS))
    assert chat.say("3") == [
        "Hvornår passer det dig? Skriv fx 'tirsdag kl 10' eller 'i morgen kl 13'."
    ]


def test_meeting_reminder_needs_its_variables() -> None:
    with pytest.raises(ValueError, match="meeting_id"):
        Chat().start("meeting_reminder", {"place": "x"})


# ------------------------------------------------------------------------------ sub-goal


@pytest.mark.parametrize(
    ("answer", "status", "reply"),
    [
        ("1", GoalStatus.DONE, "Flot klaret! Det er et rigtig godt skridt."),
        ("klaret", GoalStatus.DONE, "Flot klaret! Det er et rigtig godt skridt."),
        ("jeg er i gang", GoalStatus.UNDER_WAY, "Godt at høre. Jeg spørger igen om lidt tid."),
        ("3", GoalStatus.NEEDS_HELP, HANDED_OFF),
        ("jeg har brug for hjælp", GoalStatus.NEEDS_HELP, HANDED_OFF),
    ],
)
def test_sub_goal_check_in(answer: str, status: GoalStatus, reply: str) -> None:
    chat = Chat()
    assert chat.start("sub_goal_check_in", dict(SUB_GOAL_VARS)) == [
        'Hej Mads. Hvordan går det med "Søge om optagelse"? Svar 1 hvis det er klaret, 2 hvis '
        "du er i gang, eller 3 hvis du har brug for hjælp."
    ]
    assert chat.say(answer) == [reply]
    assert chat.effects()[0] == model.SetSubGoalStatus(3, status)


def test_sub_goal_check_in_in_english() -> None:
    chat = Chat(language="en")
    chat.start("sub_goal_check_in", dict(SUB_GOAL_VARS))
    assert chat.say("working on it") == ["Good to hear. I'll ask again in a little while."]


# ------------------------------------------------------------------------------ silence


def test_silence_follow_up_not_now() -> None:
    chat = Chat()
    assert chat.start("silence_follow_up") == [
        "Hej Mads, det er et stykke tid siden, vi har skrevet. Hvordan går det? Skriv 'ikke "
        "nu', hvis du vil have ro lidt."
    ]
    assert chat.say("ikke nu") == ["Helt i orden. Jeg skriver igen om et stykke tid."]


def test_silence_follow_up_answer_and_ask_for_a_person_in_english() -> None:
    chat = Chat(language="en")
    chat.start("silence_follow_up")
    assert chat.say("bit rough tbh") == ["Thanks for answering. Would you like Karin to text you?"]
    assert chat.say("yes") == [
        "I've let Karin know. You'll get an answer today before 3:00 PM. Until then I'll stay "
        "in the background."
    ]
    assert chat.effects() == [
        model.OpenHandoff(HandoffReason.ASKED, HandoffPriority.NORMAL, "bit rough tbh")
    ]


def test_silence_follow_up_answer_and_no_person() -> None:
    chat = Chat()
    chat.start("silence_follow_up")
    chat.say("det går fint")
    assert chat.say("nej") == ["Okay. Skriv bare, hvis der er noget."]


# ----------------------------------------------------------------------------- interrupts

EVERY_ASK = [
    (dialog.name, step.name)
    for dialog in CORE_DIALOGS
    for step in dialog.steps
    if isinstance(step, model.Ask)
]
VARIABLES = {"meeting_reminder": MEETING_VARS, "sub_goal_check_in": SUB_GOAL_VARS}


@pytest.mark.parametrize(("dialog", "step"), EVERY_ASK)
def test_stop_works_in_every_step(dialog: str, step: str) -> None:
    chat = Chat()
    chat.at(dialog, step, dict(VARIABLES.get(dialog, {})))
    assert chat.say("AFMELD") == [
        "Du er nu afmeldt og får ikke flere beskeder fra mig. Skriv START, hvis du fortryder."
    ]
    assert chat.effects() == [model.OptOut()]
    assert chat.state.opted_out
    assert chat.state.dialog is None
    assert chat.last.messages[0].purpose is Purpose.OPT_OUT


@pytest.mark.parametrize(("dialog", "step"), EVERY_ASK)
def test_asking_for_a_person_works_in_every_step(dialog: str, step: str) -> None:
    chat = Chat()
    chat.at(dialog, step, dict(VARIABLES.get(dialog, {})))
    assert chat.say("kan jeg skrive med min kontaktperson") == [HANDED_OFF]
    assert chat.effects() == [model.OpenHandoff(HandoffReason.ASKED, HandoffPriority.NORMAL)]


@pytest.mark.parametrize(("dialog", "step"), EVERY_ASK)
def test_help_answers_and_asks_the_question_again(dialog: str, step: str) -> None:
    chat = Chat()
    chat.at(dialog, step, dict(VARIABLES.get(dialog, {})))
    question = ENGINE_STEP(dialog, step).text
    replies = chat.say("hvad kan du")
    assert replies[0].startswith("Jeg er Stifinder, en chatbot. Skriv PLAN, MØDE eller KONTAKT.")
    assert len(replies) == 2
    assert replies[1] == chat_render(dialog, step, question)
    assert (chat.state.dialog, chat.state.step) == (dialog, step)


def ENGINE_STEP(dialog: str, step: str) -> model.Ask:  # noqa: N802 - reads like a lookup
    found = Engine(CORE_DIALOGS).dialogs[dialog].step(step)
    assert isinstance(found, model.Ask)
    return found


def chat_render(dialog: str, step: str, text: str) -> str:
    chat = Chat()
    chat.at(dialog, step, dict(VARIABLES.get(dialog, {})))
    replies = chat.say("hvad kan du")
    return replies[1]


def test_stop_then_start_again() -> None:
    chat = Chat()
    chat.say("stop")
    assert chat.say("hej") == []
    assert chat.start("dreams") == []  # nothing proactive after STOP
    assert chat.say("START") == [
        "Velkommen tilbage, Mads. Nu får du beskeder fra mig igen. Skriv STOP for at stoppe."
    ]
    assert chat.effects() == [model.OptIn()]
    assert not chat.state.opted_out


def test_start_over_restarts_the_current_dialog() -> None:
    chat = Chat()
    chat.start("dreams")
    chat.say("blive kok")
    assert chat.say("forfra") == ["Hvad drømmer du om? Det må gerne være stort eller småt."]
    assert chat.state.step == "dream"


def test_change_language_by_menu_and_by_name() -> None:
    chat = Chat()
    chat.start("sub_goal_check_in", dict(SUB_GOAL_VARS))
    menu = chat.say("sprog")
    assert menu[0].startswith(
        "Hvilket sprog vil du skrive på? Svar med et tal: 1) Dansk 2) English"
    )
    assert chat.say("2") == [
        "Great, I'll write in English from now on.",
        "Hi Mads. How is \"Søge om optagelse\" going? Reply 1 if it's done, 2 if you're working "
        "on it, or 3 if you need help.",
    ]
    assert chat.effects() == [model.ChangeLanguage("en")]
    assert chat.say("Dansk")[0] == "Fint, nu skriver jeg på dansk."
    assert chat.state.language == "da"


def test_two_misses_offer_a_person_and_yes_hands_off() -> None:
    chat = Chat()
    chat.start("meeting_reminder", dict(MEETING_VARS))
    assert chat.say("måske?") == ["Svar bare 1 (jeg kommer), 2 (jeg kan ikke) eller 3 (ny tid)."]
    assert chat.say("hvad mener du") == [
        "Jeg forstår dig desværre ikke. Vil du skrive med Karin? Svar ja eller nej."
    ]
    assert chat.say("ja") == [HANDED_OFF]
    assert chat.effects() == [
        model.OpenHandoff(HandoffReason.NOT_UNDERSTOOD, HandoffPriority.NORMAL)
    ]


def test_two_misses_then_no_asks_the_question_again() -> None:
    chat = Chat()
    chat.start("meeting_reminder", dict(MEETING_VARS))
    chat.say("måske?")
    chat.say("hvad mener du")
    assert chat.say("nej") == [
        "Okay, så prøver vi igen.",
        "Kommer du? Svar 1 for ja, 2 hvis du ikke kan, eller 3 hvis du vil have en ny tid.",
    ]
    assert chat.state.misses == 0
    assert chat.say("1") == ["Super, tak! Vi ses."]


def test_idle_messages_get_help_then_an_offer_of_a_person() -> None:
    chat = Chat()
    assert chat.say("asdf") == [
        "Jeg er en bot, så jeg forstår ikke alt. Skriv HJÆLP for at se, hvad jeg kan, eller "
        "skriv 'tal med en voksen'."
    ]
    assert chat.say("qwerty")[0].startswith("Jeg forstår dig desværre ikke.")


def test_thanks_and_hello() -> None:
    chat = Chat()
    assert chat.say("tusind tak!") == ["Det var så lidt. Skriv bare, hvis der er noget."]
    assert chat.say("hej") == ["Hej Mads! Skriv HJÆLP, hvis du vil se, hvad jeg kan."]


# --------------------------------------------------------------------------- self-service


def test_self_service_plan_meeting_and_contact() -> None:
    meeting = model.MeetingView(datetime(2026, 11, 25, 12, 0, tzinfo=ZONE), "Torvet 3", "Karin")
    plan = (
        model.PlanView("Starte på FGU", "Søge om optagelse", datetime(2026, 12, 1, tzinfo=ZONE)),
        model.PlanView("Kørekort", None, None),
    )
    chat = Chat(ctx=context(meeting=meeting, plan=plan))
    assert chat.say("hvornår er mit næste møde?") == [
        "Dit næste møde er onsdag den 25. november kl. 12.00 med Karin, Torvet 3."
    ]
    assert chat.say("hvad er min plan") == [
        "Dit mål: Starte på FGU. Næste skridt: Søge om optagelse, senest tirsdag den 1. "
        "december kl. 00.00.",
        "Dit mål: Kørekort.",
    ]
    assert chat.say("hvem er min kontaktperson") == [
        "Din kontaktperson er Karin. Skriv 'tal med en voksen', hvis du vil skrive med Karin."
    ]


def test_self_service_without_data() -> None:
    chat = Chat(ctx=context(kontaktperson=None))
    assert chat.say("møde") == ["Du har ikke noget møde i kalenderen lige nu."]
    assert chat.say("plan") == [
        "Du har ikke nogen plan her endnu. Den laver du sammen med din kontaktperson."
    ]
    assert chat.say("kontakt") == [
        "Du har ikke fået en kontaktperson endnu. Skriv 'tal med en voksen', så finder vi en."
    ]


# ------------------------------------------------------------------------------ handoff


def test_while_waiting_for_a_human_the_bot_is_silent() -> None:
    chat = Chat()
    chat.say("tal med en voksen")
    assert chat.state.holder is Holder.WAITING_FOR_HUMAN
    assert chat.say("hallo?") == []
    assert chat.say("hjælp") == []
    assert chat.start("dreams") == []  # no proactive dialog interrupts a human


def test_handoff_eta_out_of_office_hours() -> None:
    friday_evening = datetime(2026, 11, 27, 18, 0, tzinfo=ZONE)
    chat = Chat(ctx=context(now=friday_evening))
    assert chat.say("tal med en voksen") == [
        "Jeg har givet Karin besked. Du får svar på mandag i løbet af dagen. Indtil da holder "
        "jeg mig i baggrunden."
    ]


# ------------------------------------------------------------------------------- crisis

CRISIS_REPLY = (
    "Det lyder rigtig hårdt, og godt du skriver. Du kan ringe og tale med nogen med det samme: "
    "Alarm: 112, Livslinien: 70 201 201, BørneTelefonen: 116 111, Lev Uden Vold: 1888. Jeg "
    "giver også Karin besked nu."
)


@pytest.mark.parametrize(("dialog", "step"), [*EVERY_ASK, (None, None)])
def test_crisis_interrupts_every_step(dialog: str | None, step: str | None) -> None:
    chat = Chat()
    if dialog is not None and step is not None:
        chat.at(dialog, step, dict(VARIABLES.get(dialog, {})))
    assert chat.say("jeg vil ikke leve mere") == [CRISIS_REPLY]
    assert chat.last.messages[0].purpose is Purpose.CRISIS
    assert chat.effects() == [model.OpenHandoff(HandoffReason.CRISIS, HandoffPriority.URGENT)]
    assert chat.state.holder is Holder.WAITING_FOR_HUMAN


def test_crisis_while_a_human_holds_alerts_the_human_and_still_answers() -> None:
    chat = Chat()
    chat.state = replace(chat.state, holder=Holder.HUMAN)
    assert chat.say("min far slår mig") == [CRISIS_REPLY]
    assert chat.effects() == [model.AlertHuman(HandoffReason.CRISIS)]
    assert chat.state.holder is Holder.HUMAN


def test_crisis_after_stop_is_still_answered() -> None:
    chat = Chat()
    chat.say("stop")
    assert chat.say("jeg vil dø") == [CRISIS_REPLY]


def test_crisis_reply_uses_the_configured_help_lines_in_english() -> None:
    chat = Chat(language="en")
    reply = chat.say("i want to kill myself")[0]
    assert "Livslinien: 70 201 201" in reply
    assert reply.startswith("That sounds really hard")


def test_right_to_left_texts_isolate_names_and_times() -> None:
    chat = Chat(language="ar")
    replies = chat.start("meeting_reminder", dict(MEETING_VARS))
    assert "\u2068Mads\u2069" in replies[0]
    assert "\u2068Ungdommens Hus\u2069" in replies[0]


# ---------------------------------------------------------------- every kind of step

ALL_STEPS = model.Dialog(
    name="all_steps",
    start="set",
    steps=(
        model.SetVar("set", "mood", "good", next="branch"),
        model.Branch("branch", "mood", {"good": "how_many", "bad": "sorry"}, default="sorry"),
        model.Ask(
            "how_many",
            model.AskKind.NUMBER,
            "Hvor mange dage?",
            rephrase="Skriv et tal fra 1 til 7.",
            minimum=1,
            maximum=7,
            save_as="days",
            next="wait",
        ),
        model.Wait("wait", timedelta(hours=2), on_reply="when", on_timeout="late"),
        model.Ask(
            "when",
            model.AskKind.DATETIME,
            "Hvornår?",
            rephrase="Skriv en dag.",
            save_as="chosen_at",
            next="said",
        ),
        model.Say("said", "Du valgte {chosen} efter {days} dage.", next="then"),
        model.End("then", then="dreams"),
        model.End("late", "For sent."),
        model.End("sorry", "Øv."),
    ),
)


def _all_steps_chat() -> tuple[Chat, Engine]:
    engine = Engine([*CORE_DIALOGS, ALL_STEPS])
    chat = Chat()
    chat.last = engine.start(chat.state, "all_steps", {}, chat.ctx)
    chat.state = chat.last.state
    return chat, engine


def test_set_branch_and_number_steps() -> None:
    chat, engine = _all_steps_chat()
    assert [m.text for m in chat.last.messages] == ["Hvor mange dage?"]
    assert chat.state.variables == {"mood": "good"}
    turn = engine.receive(chat.state, "otte", chat.ctx)
    assert [m.text for m in turn.messages] == ["Skriv et tal fra 1 til 7."]
    turn = engine.receive(turn.state, "tre", chat.ctx)
    assert turn.messages == ()
    assert turn.effects == (model.ScheduleTimeout(NOW + timedelta(hours=2)),)
    assert (turn.state.step, turn.state.variables["days"]) == ("wait", 3)


def test_a_reply_during_a_wait_is_read_by_the_next_step_and_end_then_goes_on() -> None:
    chat, engine = _all_steps_chat()
    waiting = engine.receive(chat.state, "2", chat.ctx).state
    turn = engine.receive(waiting, "i morgen kl 9", chat.ctx)
    assert [m.text for m in turn.messages] == [
        "Du valgte tirsdag den 24. november kl. 09.00 efter 2 dage.",
        "Hvad drømmer du om? Det må gerne være stort eller småt.",
    ]
    assert (turn.state.dialog, turn.state.step) == ("dreams", "dream")


def test_a_wait_that_times_out() -> None:
    chat, engine = _all_steps_chat()
    waiting = engine.receive(chat.state, "2", chat.ctx).state
    turn = engine.timeout(waiting, "all_steps", "wait", chat.ctx)
    assert [(m.text, m.purpose) for m in turn.messages] == [("For sent.", Purpose.PROACTIVE)]
    assert turn.state.dialog is None


def test_a_branch_takes_its_case_or_its_default() -> None:
    branchy = model.Dialog(
        name="branchy",
        start="branch",
        requires=("mood",),
        steps=(
            model.Branch("branch", "mood", {"bad": "sorry"}, default="fine"),
            model.End("sorry", "Øv."),
            model.End("fine", "Fint."),
        ),
    )
    engine = Engine([branchy])
    chat = Chat()
    assert [
        m.text for m in engine.start(chat.state, "branchy", {"mood": "bad"}, chat.ctx).messages
    ] == ["Øv."]
    assert [
        m.text for m in engine.start(chat.state, "branchy", {"mood": "?"}, chat.ctx).messages
    ] == ["Fint."]
