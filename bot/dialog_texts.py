"""A municipality's own wording of the dialogs' texts: which texts may be changed, the checks a
new wording must pass, whether a text still needs a native speaker's review, and the translator
that puts the municipality's texts in front of the catalogs during a conversation turn.

Only the texts of the dialogs' own steps may be changed. Left out, and always as shipped:
the bot's own replies (``dialogs.replies``: crisis help, the STOP and START confirmations, help,
the handoff notice and the rest), and the welcome's legal texts — the first message (who writes,
that it is a bot, how to stop), the question for permission, and the goodbye to a young person
who says no (how to start again).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache

from babel.messages.pofile import read_po
from sqlalchemy.orm import Session

from bot.dialog_check import samples
from bot.i18n import LOCALES_DIR, SOURCE_LANGUAGE, translator
from bot.lexicons import all_lexicons
from dialogs import replies
from dialogs.check import BUDGET, Problem, available_fields, check_text, step_texts
from dialogs.flows import CORE_DIALOGS
from dialogs.sms import count_segments
from storage import dialog_texts
from storage.models import DialogTextOverride

Translate = Callable[[str, str], str]
# The welcome's legal texts: what the bot is, permission, how to stop and to start again.
LOCKED_STEPS = frozenset({("welcome", "hello"), ("welcome", "permission"), ("welcome", "goodbye")})
REVIEW_FLAGS = frozenset({"needs-review", "fuzzy"})
MAX_TEXT = 1600


@dataclass(frozen=True)
class Place:
    """Where a text stands: a dialog, a step, and which of the step's texts."""

    dialog: str
    step: str
    which: str  # "text" or "rephrase" (said again when the answer was not understood)

    @property
    def key(self) -> str:
        return f"{self.dialog}.{self.step}.{self.which}"


@dataclass(frozen=True)
class EditableText:
    source: str  # the Danish message id
    places: tuple[Place, ...]  # one text may stand in more than one dialog
    allowed: frozenset[str]  # the fields every dialog it stands in can fill (no ids)

    @property
    def key(self) -> str:
        return self.places[0].key


@cache
def editable_texts() -> tuple[EditableText, ...]:
    """Every text a municipality may change, in the order of the dialogs and their steps."""
    places: dict[str, list[Place]] = {}
    allowed: dict[str, frozenset[str]] = {}
    locked: set[str] = set(replies.ALL)
    for dialog in CORE_DIALOGS:
        # Ids and raw ISO moments are for the engine; a text says the formatted moment.
        fields = frozenset(f for f in available_fields(dialog) if not f.endswith(("_id", "_at")))
        for step in dialog.steps:
            for which, source in step_texts(step):
                if (dialog.name, step.name) in LOCKED_STEPS:
                    locked.add(source)
                places.setdefault(source, []).append(Place(dialog.name, step.name, which))
                allowed[source] = allowed.get(source, fields) & fields
    return tuple(
        EditableText(source, tuple(where), allowed[source])
        for source, where in places.items()
        if source not in locked
    )


@cache
def _by_key() -> dict[str, EditableText]:
    return {place.key: text for text in editable_texts() for place in text.places}


def find(key: str) -> EditableText | None:
    """The text at ``dialog.step.which``; None for a text that may not be changed."""
    return _by_key().get(key)


@cache
def _editable_sources() -> frozenset[str]:
    return frozenset(text.source for text in editable_texts())


# ------------------------------------------------------------------------------ the catalogs


def shipped(language: str, source: str) -> str:
    """The text as shipped in ``language`` (the Danish source where no translation exists)."""
    return translator(language).gettext(source)


@lru_cache(maxsize=16)
def catalog_needs_review(language: str) -> frozenset[str]:
    """Sources whose shipped translation a native speaker has not read yet: marked
    ``needs-review`` (``scripts/i18n.py --fill --review``) or fuzzy, or not translated at all."""
    if language == SOURCE_LANGUAGE:
        return frozenset()
    po_file = LOCALES_DIR / language / "LC_MESSAGES" / "messages.po"
    if not po_file.exists():
        return _editable_sources()
    with po_file.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    found = set()
    for source in _editable_sources():
        message = catalog.get(source)
        if message is None or not message.string or REVIEW_FLAGS & set(message.flags):
            found.add(source)
    return frozenset(found)


def needs_review(language: str, source: str, own: DialogTextOverride | None) -> bool:
    """The municipality's own text until it is reviewed; else the shipped one, as marked."""
    if own is not None:
        return own.reviewed_at is None
    return source in catalog_needs_review(language)


# ------------------------------------------------------------------------------ the checks


def check(text: EditableText, language: str, wording: str) -> list[Problem]:
    """``stifinder dialogs check`` on one wording of ``text`` in ``language``."""
    place = text.places[0]
    return check_text(
        wording,
        dialog=place.dialog,
        step=place.step,
        source=text.source,
        language=language,
        allowed=text.allowed,
        lexicons=all_lexicons(),
        values=samples(language),
    )


def segments(language: str, wording: str) -> tuple[int, int]:
    """(segments, most allowed) of the wording rendered with realistic values."""
    try:
        rendered = wording.format(**samples(language))
    except (KeyError, IndexError, ValueError, AttributeError):
        rendered = wording
    counted = count_segments(rendered)
    return counted.count, BUDGET[counted.encoding]


def check_municipality(rows: Iterable[DialogTextOverride]) -> list[Problem]:
    """The checks on every text of one municipality (``dialogs check --municipality``); a text
    whose Danish source no longer stands in an editable place is named, it is not used."""
    problems: list[Problem] = []
    for row in rows:
        text = next((t for t in editable_texts() if t.source == row.source), None)
        if text is None:
            problems.append(
                Problem("-", "-", "not-editable", row.source[:40] + " (not used)", row.language)
            )
            continue
        problems += check(text, row.language, row.text)
    return problems


# ------------------------------------------------------------------------------ the translator


def _shipped_translate(language: str, source: str) -> str:
    return translator(language).gettext(source)


def translate_with(own: Mapping[tuple[str, str], str]) -> Translate:
    """A translator that says a municipality's own texts, and the catalogs' everywhere else."""
    if not own:
        return _shipped_translate

    def translate(language: str, source: str) -> str:
        return own.get((language, source)) or translator(language).gettext(source)

    return translate


class MunicipalityTexts:
    """The municipalities' own texts for conversation turns, read once and kept while unchanged.

    Each turn (or batch of turns) asks the database one cheap question, how many texts each
    municipality has and when the newest changed; only when that changed are the texts read
    again. Texts that may not be changed are dropped on reading, whatever the table holds.
    """

    def __init__(self) -> None:
        self._cache: dict[int, tuple[dialog_texts.Stamp, Translate]] = {}
        self._lock = threading.Lock()

    def translators(
        self, session: Session, municipality_ids: Collection[int]
    ) -> dict[int, Translate]:
        wanted = set(municipality_ids)
        stamps = dialog_texts.stamps(session, wanted)
        found: dict[int, Translate] = {}
        for municipality_id in wanted:
            stamp = stamps.get(municipality_id)
            if stamp is None:
                found[municipality_id] = _shipped_translate
                continue
            cached = self._cache.get(municipality_id)
            if cached is None or cached[0] != stamp:
                editable = _editable_sources()
                own = {
                    key: text
                    for key, text in dialog_texts.text_map(session, municipality_id).items()
                    if key[1] in editable
                }
                cached = (stamp, translate_with(own))
                with self._lock:
                    self._cache[municipality_id] = cached
            found[municipality_id] = cached[1]
        return found
