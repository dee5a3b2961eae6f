"""Dreams and wishes, in the young person's own words, with a short summary back."""

from __future__ import annotations

from dialogs.i18n import N_
from dialogs.model import Ask, AskKind, Dialog, Do, End, SaveDreamSpec, Say
from dialogs.types import DreamCategory

DREAMS = Dialog(
    name="dreams",
    start="dream",
    description="Gather dreams, strengths and what it takes; store each answer.",
    steps=(
        Ask(
            "dream",
            AskKind.TEXT,
            N_("Hvad drømmer du om? Det må gerne være stort eller småt."),
            rephrase=N_("Skriv med dine egne ord, hvad du drømmer om."),
            save_as="dream",
            next="save_dream",
        ),
        Do("save_dream", SaveDreamSpec("dream"), next="strengths"),
        Ask(
            "strengths",
            AskKind.TEXT,
            N_("Hvad er du god til?"),
            rephrase=N_("Skriv bare et par ting, du er god til. Alt tæller."),
            save_as="strengths",
            next="save_good_at",
        ),
        Do("save_good_at", SaveDreamSpec("strengths", DreamCategory.OTHER), next="needs"),
        Ask(
            "needs",
            AskKind.TEXT,
            N_("Hvad skal der til, for at du kommer tættere på din drøm?"),
            rephrase=N_("Skriv bare, hvad der kunne hjælpe dig på vej."),
            save_as="needs",
            next="save_needs",
        ),
        Do("save_needs", SaveDreamSpec("needs"), next="summary"),
        Say(
            "summary",
            N_(
                'Tak, {first_name}. Jeg har gemt dine svar, fx "{dream}". {kontaktperson} kan '
                "se dem, og I kan tale videre om dem næste gang."
            ),
            next="done",
        ),
        End("done"),
    ),
)
