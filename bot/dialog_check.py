"""``stifinder dialogs check``: the dialogs' structure and texts, in every shipped language."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from bot.formatting import format_moment, handoff_eta
from bot.i18n import translator
from bot.lexicons import all_lexicons, lexicon_languages
from dialogs import texts
from dialogs.check import Problem, check_structure, check_texts
from dialogs.flows import CORE_DIALOGS
from dialogs.model import Dialog
from storage.models import DEFAULT_HELP_LINES

ZONE = ZoneInfo("Europe/Copenhagen")
# A Wednesday afternoon: long weekday and month names, a two-digit hour.
SAMPLE_MOMENT = datetime(2026, 11, 25, 13, 30, tzinfo=ZONE)


def translation(language: str, source: str) -> str | None:
    translated = translator(language).gettext(source)
    return None if translated == source and language != "da" else translated


def samples(language: str) -> dict[str, str]:
    """Realistic, somewhat long values for every field a text may use."""
    moment = format_moment(SAMPLE_MOMENT, language, ZONE)
    lexicons = all_lexicons()
    return {
        "first_name": "Mohammed",
        "kontaktperson": "Christina",
        "municipality": "Ringkøbing-Skjern Kommune",
        "help_lines": ", ".join(f"{line['name']}: {line['number']}" for line in DEFAULT_HELP_LINES),
        "meeting": moment,
        "meeting_at": SAMPLE_MOMENT.isoformat(),
        "when": moment,
        "due": moment,
        "proposed": moment,
        "place": "Ungdommens Hus, Torvet 3",
        "with_whom": "Christina",
        "title": "Søge ind på FGU",
        "goal": "Starte på FGU til sommer",
        "step": "Søge ind på FGU",
        "dream": texts.shorten("Jeg vil gerne være mekaniker og have mit eget værksted", 60),
        "eta": handoff_eta(SAMPLE_MOMENT, language, office_start=time(9), office_end=time(15)),
        "menu": " ".join(
            f"{i}) {lexicons[code].name}" for i, code in enumerate(lexicon_languages(), start=1)
        ),
    }


def run_check(dialogs: tuple[Dialog, ...] = CORE_DIALOGS) -> list[Problem]:
    problems = check_structure(dialogs)
    problems += check_texts(
        dialogs,
        languages=lexicon_languages(),
        translation=translation,
        lexicons=all_lexicons(),
        samples=samples,
    )
    return problems
