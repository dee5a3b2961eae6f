"""Marking texts for translation without translating them yet.

``N_`` returns its argument unchanged; the Babel extractor collects every ``N_("...")`` into the
catalogs, and the runtime translates the stored message id for each reader.
"""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802 - the gettext convention
    return message
