"""What Twilio's error codes mean, in plain words for staff."""

from __future__ import annotations

from bot.i18n import translate
from dialogs.i18n import N_

EXPLANATIONS = {
    "30003": N_("Telefonen kunne ikke nås. Den er måske slukket eller uden dækning."),
    "30005": N_("Nummeret findes ikke, eller teleselskabet kender ikke telefonen."),
    "30006": N_("Nummeret er en fastnettelefon eller kan ikke modtage SMS."),
    "30007": N_("Teleselskabet har filtreret beskeden fra, fordi den lignede spam."),
    "21610": N_("Den unge har skrevet STOP og får ikke SMS fra os."),
    "21614": N_("Nummeret er ikke et mobilnummer."),
}
# Codes that say the phone will not get SMS until someone fixes the number.
PERMANENT = frozenset({"30005", "30006", "21614"})


def explain(code: str | None, language: str) -> str | None:
    if code is None:
        return None
    text = EXPLANATIONS.get(code)
    if text is None:
        return translate(language, N_("SMS'en kunne ikke leveres (fejlkode {code})."), code=code)
    return translate(language, text)
