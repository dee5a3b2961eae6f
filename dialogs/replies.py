"""What the bot says outside the dialogs: interrupts, misses, self-service, handoff, crisis.

Danish source texts; the runtime translates them per conversation. ``dialogs check`` checks
them like the dialogs' own texts.
"""

from __future__ import annotations

from dialogs.i18n import N_

ALREADY_SUBSCRIBED = N_("Du får allerede beskeder fra mig. Skriv HJÆLP for at se, hvad jeg kan.")
CRISIS = N_(
    "Det lyder rigtig hårdt, og godt du skriver. Du kan ringe og tale med nogen med "
    "det samme: {help_lines}. Jeg giver også {kontaktperson} besked nu."
)
HANDED_OFF = N_(
    "Jeg har givet {kontaktperson} besked. Du får svar {eta}. Indtil da holder jeg "
    "mig i baggrunden."
)
HELLO = N_("Hej {first_name}! Skriv HJÆLP, hvis du vil se, hvad jeg kan.")
HELP = N_(
    "Jeg er Stifinder, en chatbot. Skriv PLAN, MØDE eller KONTAKT. Skriv 'tal med en "
    "voksen' for at skrive med {kontaktperson}, SPROG for at skifte sprog, eller STOP"
    " for at stoppe."
)
LANGUAGE_CHANGED = N_("Fint, nu skriver jeg på dansk.")
LANGUAGE_MENU = N_("Hvilket sprog vil du skrive på? Svar med et tal: {menu}")
MEDIA_ONLY = N_("Jeg kan kun læse tekst. Skriv gerne med ord.")
NEXT_MEETING = N_("Dit næste møde er {when} med {with_whom}, {place}.")
NOT_UNDERSTOOD = N_(
    "Jeg er en bot, så jeg forstår ikke alt. Skriv HJÆLP for at se, hvad jeg kan, "
    "eller skriv 'tal med en voksen'."
)
NO_CONTACT = N_(
    "Du har ikke fået en kontaktperson endnu. Skriv 'tal med en voksen', så finder vi en."
)
NO_MEETING = N_("Du har ikke noget møde i kalenderen lige nu.")
NO_PLAN = N_("Du har ikke nogen plan her endnu. Den laver du sammen med {kontaktperson}.")
OFFER_PERSON = N_(
    "Jeg forstår dig desværre ikke. Vil du skrive med {kontaktperson}? Svar ja eller nej."
)
PLAN_GOAL = N_("Dit mål: {goal}.")
PLAN_STEP = N_("Dit mål: {goal}. Næste skridt: {step}.")
PLAN_STEP_DUE = N_("Dit mål: {goal}. Næste skridt: {step}, senest {due}.")
STOPPED = N_("Du er nu afmeldt og får ikke flere beskeder fra mig. Skriv START, hvis du fortryder.")
TRY_AGAIN = N_("Okay, så prøver vi igen.")
WELCOME_BACK = N_(
    "Velkommen tilbage, {first_name}. Nu får du beskeder fra mig igen. Skriv STOP for at stoppe."
)
YOUR_CONTACT = N_(
    "Din kontaktperson er {kontaktperson}. Skriv 'tal med en voksen', hvis du vil "
    "skrive med {kontaktperson}."
)
YOUR_KONTAKTPERSON = N_("din kontaktperson")
YOU_ARE_WELCOME = N_("Det var så lidt. Skriv bare, hvis der er noget.")

# Replies that may be longer than two SMS: what they carry matters more than the cost.
NO_SEGMENT_BUDGET = frozenset({CRISIS, HELP})

ALL: tuple[str, ...] = (
    ALREADY_SUBSCRIBED,
    CRISIS,
    HANDED_OFF,
    HELLO,
    HELP,
    LANGUAGE_CHANGED,
    LANGUAGE_MENU,
    MEDIA_ONLY,
    NEXT_MEETING,
    NOT_UNDERSTOOD,
    NO_CONTACT,
    NO_MEETING,
    NO_PLAN,
    OFFER_PERSON,
    PLAN_GOAL,
    PLAN_STEP,
    PLAN_STEP_DUE,
    STOPPED,
    TRY_AGAIN,
    WELCOME_BACK,
    YOUR_CONTACT,
    YOUR_KONTAKTPERSON,
    YOU_ARE_WELCOME,
)
