"""Server-rendered pages: Jinja2 templates with the reader's own translator, per request."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bot.i18n import available_languages, translate

HERE = Path(__file__).parent
RIGHT_TO_LEFT = frozenset({"ar", "fa", "ur"})


class Pages:
    def __init__(self, default_language: str) -> None:
        self.default_language = default_language
        # No gettext is installed on the environment: each render gets its reader's translator.
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
        )

    def language(self, request: Request) -> str:
        """``?lang=`` if it is one we have, else the browser's first match, else the default."""
        known = set(available_languages()) | {"da"}
        asked = request.query_params.get("lang")
        if asked in known:
            return str(asked)
        for part in request.headers.get("accept-language", "").split(","):
            code = part.split(";")[0].strip().split("-")[0].lower()
            if code in known:
                return code
        return self.default_language

    def render(self, request: Request, name: str, **context: object) -> HTMLResponse:
        language = self.language(request)

        def _(message: str, **params: object) -> str:
            return translate(language, message, **params)

        html = self.env.get_template(name).render(
            _=_,
            language=language,
            direction="rtl" if language in RIGHT_TO_LEFT else "ltr",
            **context,
        )
        return HTMLResponse(html)
