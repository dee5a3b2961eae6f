"""Importing young people in the browser: upload, preview, confirm. Coordinators only, into their
own municipality.

- ``GET /import``: the upload form (a CSV or Excel file).
- ``POST /import``: keeps the file as an ``ImportDraft`` of the coordinator and goes to its preview.
- ``GET /import/{draft_id}``: the preview, made by the CLI's own importer in a dry run: who would
  be created and who updated, and every bad row by its line and field. With errors nothing can be
  imported; the coordinator fixes the file and uploads it again.
- ``POST /import/{draft_id}``: imports all rows in one transaction (or none, if a row has become
  bad since the preview), deletes the draft and shows the result.

A draft belongs to the coordinator who uploaded it (anyone else gets 404), and one older than
an hour is deleted instead of shown. Every preview and import is an audit event.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, File, Path, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from bot.i18n import translate
from bot.runtime import Runtime
from bot.web.auth import Refused, SignedIn, check_csrf, is_api_like, private, require_role
from bot.web.pages import Pages
from dialogs.i18n import N_
from dialogs.types import Role
from storage import audit, importing
from storage.models import ImportDraft, Municipality, utcnow

MAX_ID = 2**31 - 1
DraftId = Annotated[int, Path(ge=1, le=MAX_ID)]
Coordinator = Annotated[SignedIn, Depends(require_role(Role.COORDINATOR))]
DRAFT_LIFETIME = timedelta(hours=1)
SUFFIXES = (".csv", ".xlsx")
MAX_FILENAME = 200

# Field names the preview shows for a changed field of an update.
FIELD_LABELS = {
    "first_name": N_("fornavn"),
    "birth_date": N_("fødselsdato"),
    "kontaktperson_id": N_("kontaktperson"),
    "language": N_("sprog"),
    "external_ref": N_("reference"),
    "tags": N_("mærker"),
}


class _StillBad(Exception):  # noqa: N818 - rolls the import back; the preview says why
    def __init__(self, report: importing.ImportReport) -> None:
        super().__init__("the file has errors")
        self.report = report


def _gone(request: Request) -> Refused:
    return Refused(
        N_(
            "Importen findes ikke, eller den er over en time gammel. Upload filen igen for at se "
            "en ny forhåndsvisning."
        ),
        api=is_api_like(request),
        status=404,
    )


def router(runtime: Runtime, pages: Pages) -> APIRouter:
    routes = APIRouter(prefix="/import", dependencies=[Depends(check_csrf)])
    database = runtime.database

    def _purge(session: Session, now: datetime) -> None:
        session.execute(sa.delete(ImportDraft).where(ImportDraft.created_at < now - DRAFT_LIFETIME))

    def _draft(session: Session, request: Request, me: SignedIn, draft_id: int) -> ImportDraft:
        draft = session.get(ImportDraft, draft_id)
        if draft is None or draft.staff_id != me.id or draft.municipality_id != me.municipality_id:
            raise _gone(request)
        return draft

    def _open(request: Request, me: SignedIn, draft_id: int) -> None:
        """Delete the drafts that are too old (committed on their own), then check the draft."""
        with database.session() as session:
            _purge(session, utcnow())
        with database.session() as session:
            _draft(session, request, me, draft_id)

    def _form(
        request: Request, me: SignedIn, error: str | None, status: int = 200, **params: object
    ) -> Response:
        response = private(
            pages,
            request,
            "import.html",
            me=me,
            error=(error, params) if error is not None else None,
            max_megabytes=importing.MAX_FILE_BYTES // (1024 * 1024),
        )
        response.status_code = status
        return response

    def _errors(report: importing.ImportReport, language: str) -> list[dict[str, Any]]:
        return [
            {
                "line": error.line,
                "field": error.field,
                "message": translate(language, error.message, **error.params),
            }
            for error in report.errors
        ]

    def _rows(report: importing.ImportReport, language: str) -> list[dict[str, Any]]:
        return [
            {
                "line": row.line,
                "name": row.first_name,
                "birth_date": row.birth_date.strftime("%d-%m-%Y"),
                "phone": row.phone,
                "kontaktperson": row.kontaktperson,
                "created": row.created,
                "changed": ", ".join(
                    translate(language, FIELD_LABELS.get(name, name)) for name in row.changed
                ),
            }
            for row in report.planned
        ]

    def _preview(
        request: Request,
        me: SignedIn,
        draft: ImportDraft,
        report: importing.ImportReport,
        *,
        status: int = 200,
    ) -> Response:
        language = pages.language(request)
        response = private(
            pages,
            request,
            "import_preview.html",
            me=me,
            draft_id=draft.id,
            filename=draft.filename,
            errors=_errors(report, language),
            rows=_rows(report, language),
            created=report.created,
            updated=report.updated,
            total_rows=report.total_rows,
            result=False,
        )
        response.status_code = status
        return response

    @routes.get("", response_class=HTMLResponse)
    def upload_form(request: Request, me: Coordinator) -> Response:
        return _form(request, me, None)

    @routes.post("", response_class=HTMLResponse)
    async def upload(
        request: Request, me: Coordinator, file: Annotated[UploadFile | None, File()] = None
    ) -> Response:
        if file is None or not file.filename:
            return _form(request, me, N_("Vælg en fil at importere."), status=400)
        name = PurePath(file.filename).name[:MAX_FILENAME]
        if not name.lower().endswith(SUFFIXES):
            return _form(
                request,
                me,
                N_("Filen skal være en CSV-fil (.csv) eller et Excel-regneark (.xlsx)."),
                status=400,
            )
        content = await file.read(importing.MAX_FILE_BYTES + 1)
        if not content:
            return _form(request, me, N_("Filen er tom."), status=400)
        if len(content) > importing.MAX_FILE_BYTES:
            return _form(
                request,
                me,
                importing.TOO_BIG,
                status=413,
                megabytes=importing.MAX_FILE_BYTES // (1024 * 1024),
            )
        assert me.municipality_id is not None  # a coordinator always has one
        now = utcnow()
        with database.session() as session:
            _purge(session, now)
            draft = ImportDraft(
                municipality_id=me.municipality_id,
                staff_id=me.id,
                filename=name,
                content=content,
                created_at=now,
            )
            session.add(draft)
            session.flush()
            draft_id = draft.id
        return RedirectResponse(f"/import/{draft_id}", status_code=303)

    @routes.get("/{draft_id}", response_class=HTMLResponse)
    def preview(request: Request, me: Coordinator, draft_id: DraftId) -> Response:
        _open(request, me, draft_id)
        with database.session() as session:
            draft = _draft(session, request, me, draft_id)
            place = session.get_one(Municipality, draft.municipality_id)
            report = importing.import_young_people(
                session,
                municipality=place,
                data=draft.content,
                actor=me.audit_name,
                staff_id=me.id,
                dry_run=True,
            )
            audit.record(
                session,
                actor=me.audit_name,
                action="young_people.import_previewed",
                staff_id=me.id,
                municipality_id=place.id,
                details={
                    "draft_id": draft.id,
                    "rows": report.total_rows,
                    "errors": len(report.errors),
                    "would_create": report.created,
                    "would_update": report.updated,
                },
            )
            return _preview(request, me, draft, report)

    @routes.post("/{draft_id}", response_class=HTMLResponse)
    def confirm(request: Request, me: Coordinator, draft_id: DraftId) -> Response:
        _open(request, me, draft_id)
        try:
            with database.session() as session:
                draft = _draft(session, request, me, draft_id)
                place = session.get_one(Municipality, draft.municipality_id)
                content, filename = draft.content, draft.filename
                # The draft goes first: of two confirmations at once, the second deletes nothing
                # (it waits for the first to commit) and imports nothing.
                deleted = session.execute(
                    sa.delete(ImportDraft)
                    .where(ImportDraft.id == draft.id)
                    .execution_options(synchronize_session=False)
                )
                if getattr(deleted, "rowcount", 0) != 1:
                    raise _gone(request)
                session.expunge(draft)
                report = importing.import_young_people(
                    session,
                    municipality=place,
                    data=content,
                    actor=me.audit_name,
                    staff_id=me.id,
                )
                if not report.written:
                    # Good at the preview but not now (e.g. a kontaktperson has left): nothing
                    # is written, the draft stays, and the preview shows what is wrong.
                    raise _StillBad(report)
                audit.record(
                    session,
                    actor=me.audit_name,
                    action="young_people.imported",
                    staff_id=me.id,
                    municipality_id=place.id,
                    details={"created": report.created, "updated": report.updated},
                )
        except _StillBad as bad:
            with database.session() as session:
                draft = _draft(session, request, me, draft_id)
                return _preview(request, me, draft, bad.report, status=400)
        for outcome, count in (("created", report.created), ("updated", report.updated)):
            runtime.metrics.imported_rows.labels(outcome).inc(count)
        return private(
            pages,
            request,
            "import_preview.html",
            me=me,
            draft_id=None,
            filename=filename,
            errors=[],
            rows=_rows(report, pages.language(request)),
            created=report.created,
            updated=report.updated,
            total_rows=report.total_rows,
            result=True,
        )

    return routes
