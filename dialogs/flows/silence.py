"""Follow-up after silence: a friendly nudge, with a way to say "not now"."""

from __future__ import annotations

from dialogs.i18n import N_
from dialogs.model import Ask, AskKind, Dialog, End, HandOff, Option
from dialogs.types import HandoffReason

SILENCE_FOLLOW_UP = Dialog(
    name="silence_follow_up",
    start="nudge",
    description="A nudge after days without a reply.",
    steps=(
        Ask(
            "nudge",
            AskKind.TEXT,
            N_(
                "Hej {first_name}, det er et stykke tid siden, vi har skrevet. Hvordan går det? "
                "Skriv 'ikke nu', hvis du vil have ro lidt."
            ),
            rephrase=N_("Skriv bare et par ord om, hvordan det går, eller 'ikke nu'."),
            options=(Option(("not_now",), "rest"),),
            save_as="how_it_goes",
            next="offer",
        ),
        End("rest", N_("Helt i orden. Jeg skriver igen om et stykke tid.")),
        Ask(
            "offer",
            AskKind.CHOICE,
            N_("Tak fordi du svarer. Vil du have, at {kontaktperson} skriver til dig?"),
            rephrase=N_("Svar ja, hvis {kontaktperson} skal skrive til dig, eller nej, hvis ikke."),
            options=(Option(("yes",), "hand_off"), Option(("no", "not_now"), "fine")),
        ),
        HandOff("hand_off", HandoffReason.ASKED, note_var="how_it_goes"),
        End("fine", N_("Okay. Skriv bare, hvis der er noget.")),
    ),
)
