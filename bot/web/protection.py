"""Data protection for a coordinator's own municipality.

- ``GET /data-protection``: the retention setting, the latest nightly runs and erasures (from
  the audit log: counts only, never texts), and a search by first name that leads to a young
  person's access-request export and to their erasure.
- ``POST /data-protection``: change the retention period (1–120 months), audited.
- ``GET /data-protection/erase/{person_id}``: what an erasure removes, named and counted; the
  coordinator types the young person's first name to confirm.
- ``POST /data-protection/erase/{person_id}``: erase (``storage.retention.erase``), audited.

Coordinators only (a kontaktperson or an admin gets 403); a young person outside the
coordinator's municipality, or erased already, answers 404 (``storage.access``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from bot import retention as nightly
from bot.formatting import format_moment
from bot.runtime import Runtime
from bot.web.auth import Refused, SignedIn, check_csrf, is_api_like, private, require_role
from bot.web.pages import Pages
from dialogs.i18n import N_
from dialogs.types import Role
from storage import access, audit, people_view, retention
from storage.models import Municipality, StaffUser, YoungPerson, utcnow

MAX_ID = 2**31 - 1
PersonId = Annotated[int, Path(ge=1, le=MAX_ID)]
Coordinator = Annotated[SignedIn, Depends(require_role(Role.COORDINATOR))]
SHOWN = 20
DONE = {
    "saved": N_("Opbevaringsperioden er gemt."),
    "erased": N_("Den unges personoplysninger er slettet."),
}
KINDS = {
    "retention.run": N_("Natlig oprydning"),
    "young_person.erased": N_("Sletning af en ung"),
}
Message = tuple[str, dict[str, Any]]


def _not_found(request: Request) -> Refused:
    return Refused(
        N_("Siden findes ikke, eller du har ikke adgang til den."),
        api=is_api_like(request),
        status=404,
    )


def _age(birth: date, today: date) -> int:
    had_birthday = (today.month, today.day) >= (birth.month, birth.day)
    return today.year - birth.year - (0 if had_birthday else 1)


def router(runtime: Runtime, pages: Pages) -> APIRouter:
    routes = APIRouter(prefix="/data-protection", dependencies=[Depends(check_csrf)])
    database = runtime.database

    def _place(session: Session, me: SignedIn) -> Municipality:
        return session.get_one(Municipality, me.municipality_id)

    def _page(
        request: Request,
        me: SignedIn,
        *,
        q: str = "",
        months: str | None = None,
        errors: dict[str, Message] | None = None,
        status: int = 200,
    ) -> Response:
        language = pages.language(request)
        now = utcnow()
        with database.session() as session:
            viewer = me.load(session)
            place = _place(session, me)
            zone = ZoneInfo(place.timezone)
            runs = []
            for event in retention.recent_runs(session, place.id):
                details = event.details or {}
                runs.append(
                    {
                        "when": format_moment(event.at, language, zone),
                        "kind": KINDS.get(event.action, event.action),
                        "people": details.get("people", 1),
                        "messages": details.get("messages", 0),
                        "notes": details.get("notes", 0),
                        "dreams": details.get("dreams", 0),
                    }
                )
            found: list[dict[str, Any]] = []
            total = 0
            if q.strip():
                listing = people_view.visible_list(session, viewer, now, search=q)
                total = listing.total
                today = now.astimezone(zone).date()
                found = [
                    {
                        "id": row.id,
                        "name": row.first_name,
                        "age": _age(date.fromisoformat(row.birth_date_iso), today),
                    }
                    for row in listing.rows[:SHOWN]
                ]
                audit.record(
                    session,
                    actor=me.audit_name,
                    action="young_people.listed",
                    staff_id=me.id,
                    municipality_id=place.id,
                    details={"shown": len(found), "searched": True, "page": "data-protection"},
                )
            current = place.retention_months
        response = private(
            pages,
            request,
            "protection.html",
            me=me,
            months=months if months is not None else str(current),
            current=current,
            low=retention.MIN_MONTHS,
            high=retention.MAX_MONTHS,
            runs=runs,
            q=q,
            found=found,
            total=total,
            shown=SHOWN,
            errors=errors or {},
            done=DONE.get(request.query_params.get("done", "")),
        )
        response.status_code = status
        return response

    @routes.get("", response_class=HTMLResponse)
    def protection(
        request: Request, me: Coordinator, q: Annotated[str, Query(max_length=200)] = ""
    ) -> Response:
        return _page(request, me, q=q)

    @routes.post("", response_class=HTMLResponse)
    def save_months(
        request: Request,
        me: Coordinator,
        retention_months: Annotated[str, Form(max_length=20)] = "",
    ) -> Response:
        text = retention_months.strip()
        try:
            months = int(text)
        except ValueError:
            months = 0
        if not retention.MIN_MONTHS <= months <= retention.MAX_MONTHS:
            wrong_months: Message = (
                N_("Skriv et helt antal måneder fra {low} til {high}."),
                {"low": retention.MIN_MONTHS, "high": retention.MAX_MONTHS},
            )
            return _page(
                request, me, months=text, errors={"retention_months": wrong_months}, status=400
            )
        now = utcnow()
        with database.session() as session:
            place = _place(session, me)
            retention.set_months(session, place, months, staff_id=me.id, actor=me.audit_name)
            nightly.schedule_next(session, place, now)
        return RedirectResponse("/data-protection?done=saved", status_code=303)

    # ------------------------------------------------------------------------ erasure

    def _visible(session: Session, request: Request, me: SignedIn, person_id: int) -> YoungPerson:
        if not access.can_see(session, me.load(session), person_id, utcnow()):
            raise _not_found(request)
        return session.get_one(YoungPerson, person_id)

    def _confirm(
        request: Request,
        me: SignedIn,
        person_id: int,
        *,
        typed: str = "",
        errors: dict[str, Message] | None = None,
        status: int = 200,
    ) -> Response:
        with database.session() as session:
            person = _visible(session, request, me, person_id)
            counts = retention.preview(session, person)
            kontaktperson = (
                session.get(StaffUser, person.kontaktperson_id)
                if person.kontaktperson_id is not None
                else None
            )
            audit.record(
                session,
                actor=me.audit_name,
                action="young_person.viewed",
                staff_id=me.id,
                municipality_id=person.municipality_id,
                young_person_id=person.id,
                details={"page": "erase"},
            )
            shown = {
                "id": person.id,
                "name": person.first_name,
                "birth_year": person.birth_date.year,
                "kontaktperson": kontaktperson.name if kontaktperson is not None else None,
            }
        response = private(
            pages,
            request,
            "erase_confirm.html",
            me=me,
            person=shown,
            counts=counts,
            typed=typed,
            errors=errors or {},
        )
        response.status_code = status
        return response

    @routes.get("/erase/{person_id}", response_class=HTMLResponse)
    def erase_form(request: Request, me: Coordinator, person_id: PersonId) -> Response:
        return _confirm(request, me, person_id)

    @routes.post("/erase/{person_id}", response_class=HTMLResponse)
    def erase(
        request: Request,
        me: Coordinator,
        person_id: PersonId,
        confirm_name: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        now = utcnow()
        with database.session() as session:
            person = _visible(session, request, me, person_id)
            if confirm_name.strip().casefold() != person.first_name.strip().casefold():
                wrong = True
            else:
                wrong = False
                retention.erase(
                    session,
                    person,
                    now=now,
                    actor=me.audit_name,
                    staff_id=me.id,
                    reason="request",
                )
        if wrong:
            error: Message = (N_("Skriv den unges fornavn præcis, som det står ovenfor."), {})
            return _confirm(
                request,
                me,
                person_id,
                typed=confirm_name,
                errors={"confirm_name": error},
                status=400,
            )
        return RedirectResponse("/data-protection?done=erased", status_code=303)

    return routes
