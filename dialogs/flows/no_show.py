"""Follow-up after a missed meeting: no blame, just an open door to a new time."""

from __future__ import annotations

from dialogs.flows.meeting import ask_new_time
from dialogs.i18n import N_
from dialogs.model import Ask, AskKind, Dialog, End, HandOff, Option, Say
from dialogs.types import HandoffReason

NO_SHOW_FOLLOW_UP = Dialog(
    name="no_show_follow_up",
    start="missed",
    requires=("meeting_id", "with_whom"),
    description="A kind word after a missed meeting, and an offer of a new time.",
    steps=(
        # No question here: the next message asks one, and "okay" would read as its answer.
        Say(
            "missed",
            N_(
                "Hej {first_name}. Vi savnede dig til mødet med {with_whom}. Det sker for alle, "
                "og jeg håber, du har det okay."
            ),
            next="new_time",
        ),
        Ask(
            "new_time",
            AskKind.CHOICE,
            N_("Skal vi finde en ny tid? Svar ja eller nej."),
            rephrase=N_("Svar ja, hvis du vil have en ny tid, eller nej, hvis ikke."),
            options=(
                Option(("yes", "new_time"), "when"),
                Option(("no", "not_now"), "later"),
                # Someone who missed a meeting and asks for help gets a person, not a rephrase.
                Option(("need_help",), "help"),
            ),
        ),
        End("later", N_("Helt i orden. Skriv bare, når du er klar.")),
        HandOff("help", HandoffReason.NO_SHOW),
        # The meeting stays marked no-show (the figures count it); the wish goes in the note.
        ask_new_time(next="agree"),
        HandOff("agree", HandoffReason.NO_SHOW, note_var="proposed_at"),
    ),
)
