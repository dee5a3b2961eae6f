"""The municipality's own wording of the dialogs' texts, per language (coordinators only).

- ``GET /texts?language=ar&review=1``: every text that may be changed, by dialog and step, with
  the shipped text, the municipality's own text and whether a native speaker must still read it.
- ``GET /texts/{language}/{key}``: one text (``key`` is ``dialog.step.text|rephrase``; the
  municipality is always the reader's own, so a key names no other municipality's row).
- ``POST /texts/{language}/{key}``: save after the checks of ``stifinder dialogs check`` (only
  the dialog's fields, the SMS budget, no sensitive word, not empty); a refused text is named
  with its problems and nothing is saved. Saved texts await review unless the saver reviews.
- ``POST /texts/{language}/{key}/review`` and ``/reset``: mark reviewed, back to the shipped text.

Every change is an audit event (``dialog_text.saved``, ``dialog_text.reviewed``,
``dialog_text.reset``). The router checks the CSRF token of every POST.
"""

from __future__ import annotations

from typing import Annotated, Any

from babel import Locale
from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from bot import dialog_texts as texts
from bot.lexicons import lexicon_languages
from bot.runtime import Runtime
from bot.web.auth import Refused, SignedIn, check_csrf, is_api_like, private, require_role
from bot.web.pages import RIGHT_TO_LEFT, Pages
from dialogs.check import Problem
from dialogs.flows import CORE_DIALOGS
from dialogs.i18n import N_
from dialogs.types import Role
from storage import audit, dialog_texts
from storage.models import StaffUser, utcnow

Coordinator = Annotated[SignedIn, Depends(require_role(Role.COORDINATOR))]
Language = Annotated[str, Path(max_length=8)]
Key = Annotated[str, Path(max_length=120)]
Wording = Annotated[str, Form(max_length=texts.MAX_TEXT * 2)]
Flag = Annotated[str, Form(max_length=10)]
Message = tuple[str, dict[str, Any]]

DIALOGS = {
    "welcome": N_("Velkomst"),
    "dreams": N_("Drømme og ønsker"),
    "meeting_reminder": N_("Påmindelse om møde"),
    "sub_goal_check_in": N_("Tjek-ind på delmål"),
    "silence_follow_up": N_("Opfølgning efter stilhed"),
    "no_show_follow_up": N_("Opfølgning efter udeblivelse"),
}
WHICH = {
    "text": N_("Beskeden"),
    "rephrase": N_("Siges igen, når svaret ikke blev forstået"),
}
DONE = {
    "saved": N_(
        "Teksten er gemt. Den venter på gennemlæsning af en, der har sproget som modersmål."
    ),
    "saved_reviewed": N_("Teksten er gemt og markeret som gennemlæst."),
    "reviewed": N_("Teksten er markeret som gennemlæst."),
    "reset": N_("Kommunens egen tekst er slettet. Botten bruger igen den tekst, der følger med."),
}


def _not_found(request: Request) -> Refused:
    return Refused(
        N_("Siden findes ikke, eller du har ikke adgang til den."),
        api=is_api_like(request),
        status=404,
    )


def problem_message(
    problem: Problem, text: texts.EditableText, language: str, wording: str
) -> Message:
    """A checker's problem in plain words for the coordinator."""
    match problem.kind:
        case "empty":
            return N_("Skriv en tekst."), {}
        case "unknown-variable":
            return (
                N_("Feltet {{{name}}} findes ikke i denne dialog. Du kan bruge: {allowed}."),
                {"name": problem.detail, "allowed": _fields_list(text)},
            )
        case "bad-placeholder":
            return (
                N_(
                    "Krøllede parenteser bruges kun om felter, fx {{first_name}}. "
                    "Der er en, der ikke passer: {detail}"
                ),
                {"detail": problem.detail},
            )
        case "too-long":
            count, most = texts.segments(language, wording)
            return (
                N_(
                    "Teksten bliver for lang: {count} SMS'er, når felterne er udfyldt. "
                    "Den må højst fylde {most}."
                ),
                {"count": count, "most": most},
            )
        case "sensitive-word":
            return (
                N_(
                    "Ordet »{word}« må ikke stå i en besked til en ung: det kan afsløre en sag "
                    "eller noget følsomt."
                ),
                {"word": problem.detail},
            )
    return N_("Teksten kan ikke bruges: {detail}"), {"detail": str(problem)}


def _fields_list(text: texts.EditableText) -> str:
    return ", ".join("{" + name + "}" for name in sorted(text.allowed))


def _language_name(code: str, reader: str) -> str:
    return Locale.parse(code).get_display_name(reader) or code


def router(runtime: Runtime, pages: Pages) -> APIRouter:
    routes = APIRouter(prefix="/texts", dependencies=[Depends(check_csrf)])
    database = runtime.database

    def _municipality(session: Session, request: Request, me: SignedIn) -> tuple[StaffUser, int]:
        staff = me.load(session)
        if staff.municipality_id is None:
            raise _not_found(request)
        return staff, staff.municipality_id

    def _text(request: Request, language: str, key: str) -> texts.EditableText:
        found = texts.find(key)
        if found is None or language not in lexicon_languages():
            raise _not_found(request)
        return found

    def _languages(reader: str) -> list[tuple[str, str]]:
        return [(code, _language_name(code, reader)) for code in lexicon_languages()]

    def _names(session: Session, ids: set[int | None]) -> dict[int, str]:
        return {
            staff.id: staff.name
            for staff in (session.get(StaffUser, i) for i in ids if i is not None)
            if staff is not None
        }

    # ------------------------------------------------------------------------ the list

    @routes.get("", response_class=HTMLResponse)
    def text_list(
        request: Request,
        me: Coordinator,
        language: Annotated[str, Query(max_length=8)] = "da",
        review: Annotated[str, Query(max_length=10)] = "",
    ) -> Response:
        reader = pages.language(request)
        if language not in lexicon_languages():
            language = "da"
        only_review = bool(review)
        with database.session() as session:
            _, municipality_id = _municipality(session, request, me)
            own = {
                row.source: row
                for row in dialog_texts.overrides(session, municipality_id, language)
            }
        editable = {text.source: text for text in texts.editable_texts()}
        groups = []
        waiting = 0
        counted: set[str] = set()
        for dialog in CORE_DIALOGS:
            rows = []
            for place_text in texts.editable_texts():
                for place in place_text.places:
                    if place.dialog != dialog.name:
                        continue
                    row = own.get(place_text.source)
                    needs = texts.needs_review(language, place_text.source, row)
                    if needs and place_text.source not in counted:
                        waiting += 1
                        counted.add(place_text.source)
                    if only_review and not needs:
                        continue
                    rows.append(
                        {
                            "key": place.key,
                            "step": place.step,
                            "which": WHICH[place.which],
                            "shipped": texts.shipped(language, place_text.source),
                            "own": row.text if row else None,
                            "needs_review": needs,
                            "reviewed": row is not None and row.reviewed_at is not None,
                        }
                    )
            if rows:
                groups.append(
                    {
                        "name": dialog.name,
                        "label": DIALOGS.get(dialog.name, dialog.name),
                        "rows": rows,
                    }
                )
        return private(
            pages,
            request,
            "texts.html",
            me=me,
            groups=groups,
            chosen=language,
            text_direction="rtl" if language in RIGHT_TO_LEFT else "ltr",
            languages=_languages(reader),
            only_review=only_review,
            waiting=waiting,
            total=len(editable),
            done=DONE.get(request.query_params.get("done", "")),
        )

    # ------------------------------------------------------------------------ one text

    def _edit_page(
        request: Request,
        me: SignedIn,
        language: str,
        text: texts.EditableText,
        *,
        wording: str | None = None,
        errors: list[Message] | None = None,
        reviewed_checked: bool = False,
        status: int = 200,
    ) -> Response:
        reader = pages.language(request)
        with database.session() as session:
            _, municipality_id = _municipality(session, request, me)
            row = dialog_texts.get(session, municipality_id, language, text.source)
            names = _names(session, {row.updated_by_id, row.reviewed_by_id}) if row else {}
            own: dict[str, Any] | None = None
            if row is not None:
                own = {
                    "text": row.text,
                    "updated_by": names.get(row.updated_by_id or 0, ""),
                    "reviewed_by": names.get(row.reviewed_by_id or 0, ""),
                    "reviewed": row.reviewed_at is not None,
                }
        shipped = texts.shipped(language, text.source)
        current = wording if wording is not None else (own["text"] if own else shipped)
        count, most = texts.segments(language, current)
        response = private(
            pages,
            request,
            "text_edit.html",
            me=me,
            key=text.key,
            chosen=language,
            chosen_name=_language_name(language, reader),
            text_direction="rtl" if language in RIGHT_TO_LEFT else "ltr",
            places=[
                {"dialog": DIALOGS.get(p.dialog, p.dialog), "step": p.step, "which": WHICH[p.which]}
                for p in text.places
            ],
            source=text.source,
            shipped=shipped,
            shipped_needs_review=text.source in texts.catalog_needs_review(language),
            own=own,
            wording=current,
            fields=sorted(text.allowed),
            segments=count,
            most=most,
            errors=errors or [],
            reviewed_checked=reviewed_checked,
            max_text=texts.MAX_TEXT,
        )
        response.status_code = status
        return response

    @routes.get("/{language}/{key}", response_class=HTMLResponse)
    def text_edit(request: Request, me: Coordinator, language: Language, key: Key) -> Response:
        text = _text(request, language, key)
        return _edit_page(request, me, language, text)

    def _back(language: str, done: str) -> RedirectResponse:
        return RedirectResponse(f"/texts?language={language}&done={done}", status_code=303)

    def _audit(
        session: Session,
        me: SignedIn,
        municipality_id: int,
        action: str,
        language: str,
        text: texts.EditableText,
        **extra: object,
    ) -> None:
        audit.record(
            session,
            actor=me.audit_name,
            action=action,
            staff_id=me.id,
            municipality_id=municipality_id,
            details={"language": language, "key": text.key, "source": text.source} | extra,
        )

    @routes.post("/{language}/{key}", response_class=HTMLResponse)
    def text_save(
        request: Request,
        me: Coordinator,
        language: Language,
        key: Key,
        text: Wording = "",
        reviewed: Flag = "",
    ) -> Response:
        found = _text(request, language, key)
        wording = text.strip().replace("\r\n", "\n")
        problems = (
            texts.check(found, language, wording)
            if len(wording) <= texts.MAX_TEXT
            else [Problem(found.places[0].dialog, found.places[0].step, "too-long", "", language)]
        )
        if problems:
            errors: list[Message] = []
            for problem in problems:
                message = problem_message(problem, found, language, wording)
                if message not in errors:
                    errors.append(message)
            return _edit_page(
                request,
                me,
                language,
                found,
                wording=text,
                errors=errors,
                reviewed_checked=bool(reviewed),
                status=400,
            )
        with database.session() as session:
            staff, municipality_id = _municipality(session, request, me)
            dialog_texts.save(
                session,
                municipality_id=municipality_id,
                language=language,
                source=found.source,
                text=wording,
                staff_id=staff.id,
                reviewed=bool(reviewed),
                now=utcnow(),
            )
            _audit(
                session,
                me,
                municipality_id,
                "dialog_text.saved",
                language,
                found,
                reviewed=bool(reviewed),
            )
        return _back(language, "saved_reviewed" if reviewed else "saved")

    @routes.post("/{language}/{key}/review", response_class=HTMLResponse)
    def text_review(request: Request, me: Coordinator, language: Language, key: Key) -> Response:
        found = _text(request, language, key)
        with database.session() as session:
            staff, municipality_id = _municipality(session, request, me)
            row = dialog_texts.get(session, municipality_id, language, found.source)
            if row is None:
                raise _not_found(request)
            dialog_texts.mark_reviewed(session, row, staff_id=staff.id, now=utcnow())
            _audit(session, me, municipality_id, "dialog_text.reviewed", language, found)
        return _back(language, "reviewed")

    @routes.post("/{language}/{key}/reset", response_class=HTMLResponse)
    def text_reset(request: Request, me: Coordinator, language: Language, key: Key) -> Response:
        found = _text(request, language, key)
        with database.session() as session:
            _, municipality_id = _municipality(session, request, me)
            if not dialog_texts.delete(session, municipality_id, language, found.source):
                raise _not_found(request)
            _audit(session, me, municipality_id, "dialog_text.reset", language, found)
        return _back(language, "reset")

    return routes
