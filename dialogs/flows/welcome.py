"""Outreach and welcome: who writes and why, that this is a bot, permission, language, stop."""

from __future__ import annotations

from datetime import timedelta

from dialogs.i18n import N_
from dialogs.model import Ask, AskKind, ConsentSpec, Dialog, Do, End, Option, Say

WELCOME = Dialog(
    name="welcome",
    start="hello",
    description="First contact: introduce the bot, ask permission, offer dreams.",
    steps=(
        Say(
            "hello",
            N_(
                "Hej {first_name}! Jeg er Stifinder, en chatbot fra ungeindsatsen i "
                "{municipality}. Jeg skriver for {kontaktperson}. Du kan altid skrive STOP, "
                "så stopper jeg."
            ),
            next="permission",
        ),
        Ask(
            "permission",
            AskKind.CHOICE,
            N_("Må jeg skrive til dig en gang imellem om dine planer og møder? Svar ja eller nej."),
            rephrase=N_("Skriv bare ja, hvis jeg må skrive til dig, eller nej, hvis jeg ikke må."),
            options=(Option(("yes",), "consent"), Option(("no",), "declined")),
            timeout=timedelta(days=3),
            on_timeout="quiet",
        ),
        Do("consent", ConsentSpec(given=True), next="languages"),
        Say(
            "languages",
            N_("Tak! Skriv SPROG, hvis du hellere vil skrive på et andet sprog."),
            next="offer_dreams",
        ),
        Ask(
            "offer_dreams",
            AskKind.CHOICE,
            N_("Har du lyst til at fortælle mig lidt om, hvad du drømmer om?"),
            rephrase=N_(
                "Svar ja, hvis du vil fortælle om dine drømme, eller nej, hvis det skal vente."
            ),
            options=(Option(("yes",), "to_dreams"), Option(("no", "not_now"), "later")),
        ),
        End("to_dreams", then="dreams"),
        End("later", N_("Helt fint. Skriv bare til mig, hvis der er noget.")),
        Do("declined", ConsentSpec(given=False), next="goodbye"),
        End(
            "goodbye",
            N_(
                "Det er helt i orden. Så skriver jeg ikke mere. Skriv START, hvis du skifter "
                "mening."
            ),
        ),
        End("quiet"),
    ),
)
