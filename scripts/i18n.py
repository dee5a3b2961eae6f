"""Extract every translatable text into ``locales/messages.pot`` and merge it into each catalog.

    python scripts/i18n.py          # update the catalogs
    python scripts/i18n.py --check  # exit 1 if the catalogs are not in step with the code
    python scripts/i18n.py --fill en texts.json  # set translations from {"Danish id": "text"}
    python scripts/i18n.py --fill ar texts.json --review  # ... marked for native review
    python scripts/i18n.py --init ar  # start a new language's catalog from the template

Message ids are the Danish source texts; the Danish catalog therefore translates each id to itself.
"""

from __future__ import annotations

import copy
import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "locales"
KEYWORDS = {
    "translate": (2,),
    "translate_plural": (2, 3),
    "N_": None,
    "_": None,
}
STABLE_DATE = datetime(2026, 11, 22, tzinfo=UTC)
METHODS = [
    ("bot/**.py", "python"),
    ("dialogs/**.py", "python"),
    ("storage/**.py", "python"),
    ("bot/web/templates/**.html", "jinja2.ext:babel_extract"),
]


def extract() -> Catalog:
    # A fixed date keeps the files byte-for-byte stable, so --check sees only real changes.
    template = Catalog(
        project="Stifinder",
        charset="utf-8",
        creation_date=STABLE_DATE,
        revision_date=STABLE_DATE,
        language_team="Stifinder",
        last_translator="Stifinder",
    )
    for filename, lineno, message, comments, context in extract_from_dir(
        str(ROOT),
        METHODS,
        keywords=KEYWORDS,
        comment_tags=("TRANSLATORS:",),
        strip_comment_tags=True,
    ):
        if filename.startswith(("tests", "scripts", ".venv")):
            continue
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def _po_bytes(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, omit_header=False, sort_output=True, include_lineno=False)
    return buffer.getvalue()


def updated_catalogs() -> dict[Path, bytes]:
    template = extract()
    out = {LOCALES / "messages.pot": _po_bytes(template)}
    for po_path in sorted(LOCALES.glob("*/LC_MESSAGES/messages.po")):
        language = po_path.parent.parent.name
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        # Each catalog gets its own copy: update() shares the template's message objects.
        # No fuzzy guesses: a new text is plainly missing until someone translates it.
        catalog.update(copy.deepcopy(template), update_header_comment=False, no_fuzzy_matching=True)
        catalog.revision_date = STABLE_DATE
        catalog.creation_date = STABLE_DATE
        # A fuzzy header is left out of the compiled catalog, and with it the charset.
        catalog.fuzzy = False
        catalog.obsolete.clear()
        if language == "da":
            for message in catalog:
                if message.id:
                    message.string = message.id
                    message.flags.discard("fuzzy")
        out[po_path] = _po_bytes(catalog)
    return out


REVIEW_FLAG = "needs-review"


def init(language: str) -> None:
    """Create ``locales/<language>/LC_MESSAGES/messages.po`` from the extracted template."""
    po_path = LOCALES / language / "LC_MESSAGES" / "messages.po"
    if po_path.exists():
        raise SystemExit(f"{po_path} exists already")
    template = extract()
    catalog = Catalog(
        locale=language,
        project="Stifinder",
        charset="utf-8",
        creation_date=STABLE_DATE,
        revision_date=STABLE_DATE,
        language_team="Stifinder",
        last_translator="Stifinder",
        fuzzy=False,
    )
    catalog.update(template, update_header_comment=False)
    po_path.parent.mkdir(parents=True, exist_ok=True)
    po_path.write_bytes(_po_bytes(catalog))


def fill(language: str, translations: dict[str, str], *, review: bool = False) -> int:
    """Set the given translations in one catalog; returns how many ids were not in it."""
    po_path = LOCALES / language / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    unknown = 0
    for message_id, text in translations.items():
        message = catalog.get(message_id)
        if message is None:
            unknown += 1
            sys.stderr.write(f"not in the {language} catalog: {message_id!r}\n")
            continue
        message.string = text
        message.flags.discard("fuzzy")
        if review:
            message.flags.add(REVIEW_FLAG)
        else:
            message.flags.discard(REVIEW_FLAG)
    po_path.write_bytes(_po_bytes(catalog))
    return unknown


def main(argv: list[str]) -> int:
    if argv[:1] == ["--init"]:
        init(argv[1])
        return 0
    if argv[:1] == ["--fill"]:
        language, source = argv[1], Path(argv[2])
        translations = json.loads(source.read_text(encoding="utf-8"))
        return 1 if fill(language, translations, review="--review" in argv) else 0
    stale = []
    for path, content in updated_catalogs().items():
        if path.exists() and path.read_bytes() == content:
            continue
        stale.append(path)
        if "--check" not in argv:
            path.write_bytes(content)
    if "--check" in argv and stale:
        names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
        sys.stderr.write(
            f"catalogs out of step with the code: {names}; run python scripts/i18n.py\n"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
