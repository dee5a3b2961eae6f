"""Managing municipalities and staff: admins run accounts, coordinators cover absences.

- An **admin** lists municipalities and creates them, lists staff, creates staff accounts,
  deactivates (never deletes) and reactivates them, lifts a lockout, and sets a kontaktperson's
  absence and backup.
- A **coordinator** sees the staff of their own municipality and sets the absence and backup of
  its kontaktpersoner (holiday cover is daily work); creating, deactivating and reactivating
  accounts stays with the admins, so no one in a municipality can hand out access.
- A **kontaktperson** gets 403 on every page here.

Who may open and change which account is ``storage.access.manageable_staff``; an account outside
it answers 404, so its existence is not revealed. Every change is audited (``storage.staff``).
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from bot.passwords import MIN_LENGTH, hash_password
from bot.runtime import Runtime
from bot.web.auth import Refused, SignedIn, check_csrf, is_api_like, private, require_role
from bot.web.forms import parse_day
from bot.web.pages import Pages
from bot.web.staff import absence_days, absence_range, day_text, zone_of
from dialogs.i18n import N_
from dialogs.types import Role
from storage import access, staff
from storage.models import Municipality, StaffUser, utcnow

MAX_ID = 2**31 - 1
StaffId = Annotated[int, Path(ge=1, le=MAX_ID)]
MunicipalityId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Admin = Annotated[SignedIn, Depends(require_role(Role.ADMIN))]
Manager = Annotated[SignedIn, Depends(require_role(Role.ADMIN, Role.COORDINATOR))]
Text = Annotated[str, Form(max_length=1000)]

ROLE_LABELS = {
    Role.KONTAKTPERSON: N_("Kontaktperson"),
    Role.COORDINATOR: N_("Koordinator"),
    Role.ADMIN: N_("Administrator"),
}
STAFF_LANGUAGES = {"da": N_("Dansk"), "en": N_("Engelsk")}
# What a redirect after a change may say; ``?done=`` carries only these keys.
DONE = {
    "created": N_("Medarbejderen er oprettet."),
    "municipality": N_("Kommunen er oprettet."),
    "absence": N_("Fravær og stedfortræder er gemt."),
    "deactivated": N_("Kontoen er deaktiveret, og alle dens logins er afsluttet."),
    "reactivated": N_("Kontoen er aktiv igen."),
    "unlocked": N_("Kontoen er låst op."),
}

Message = tuple[str, dict[str, Any]]


def _error(error: staff.StaffError) -> Message:
    return (error.message, dict(error.params))


def _not_found(request: Request) -> Refused:
    return Refused(
        N_("Siden findes ikke, eller du har ikke adgang til den."),
        api=is_api_like(request),
        status=404,
    )


def _managed(session: Session, request: Request, me: SignedIn, staff_id: int) -> StaffUser:
    """The account ``me`` may manage, or 404 (its existence is not revealed)."""
    if not access.can_manage(session, me.load(session), staff_id):
        raise _not_found(request)
    return session.get_one(StaffUser, staff_id)


def _redirect(path: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?done={done}", status_code=303)


def router(runtime: Runtime, pages: Pages) -> APIRouter:
    routes = APIRouter(prefix="/admin", dependencies=[Depends(check_csrf)])
    database = runtime.database
    default_zone = runtime.settings.default_timezone

    def _done(request: Request) -> str | None:
        return DONE.get(request.query_params.get("done", ""))

    # ------------------------------------------------------------------------ municipalities

    def _overview(
        request: Request,
        me: SignedIn,
        *,
        errors: dict[str, Message] | None = None,
        values: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        with database.session() as session:
            counts = dict(
                session.execute(
                    sa.select(StaffUser.municipality_id, sa.func.count())
                    .where(StaffUser.is_active.is_(True))
                    .group_by(StaffUser.municipality_id)
                ).all()
            )
            places = [
                {"id": p.id, "name": p.name, "slug": p.slug, "timezone": p.timezone}
                for p in session.scalars(sa.select(Municipality).order_by(Municipality.name))
            ]
        response = private(
            pages,
            request,
            "admin_overview.html",
            me=me,
            places=places,
            counts=counts,
            errors=errors or {},
            values=values or {"timezone": default_zone},
            done=_done(request),
        )
        response.status_code = status
        return response

    @routes.get("", response_class=HTMLResponse)
    def overview(request: Request, me: Admin) -> Response:
        return _overview(request, me)

    @routes.post("/municipalities", response_class=HTMLResponse)
    def create_municipality(
        request: Request, me: Admin, name: Text = "", slug: Text = "", timezone: Text = ""
    ) -> Response:
        values = {"name": name, "slug": slug, "timezone": timezone}
        try:
            with database.session() as session:
                staff.add_municipality(
                    session,
                    name=name,
                    slug=slug,
                    timezone=timezone or default_zone,
                    actor=me.audit_name,
                    by_staff_id=me.id,
                )
        except staff.StaffError as error:
            errors = {error.field or "name": _error(error)}
            return _overview(request, me, errors=errors, values=values, status=400)
        return _redirect("/admin", "municipality")

    # ------------------------------------------------------------------------ staff lists

    @routes.get("/staff", response_class=HTMLResponse)
    def staff_list(request: Request, me: Manager, municipality: MunicipalityId = None) -> Response:
        with database.session() as session:
            viewer = me.load(session)
            if me.role is Role.COORDINATOR:
                municipality = viewer.municipality_id
            place = session.get(Municipality, municipality) if municipality else None
            if municipality and place is None:
                raise _not_found(request)
            query = sa.select(StaffUser).order_by(StaffUser.name, StaffUser.id)
            if place is not None:
                query = query.where(StaffUser.municipality_id == place.id)
            people = list(session.scalars(query))
            manageable = set(
                session.scalars(sa.select(StaffUser.id).where(access.manageable_staff(viewer)))
            )
            names = {p.id: p.name for p in session.scalars(sa.select(Municipality))}
            language = pages.language(request)
            now = utcnow()
            rows = []
            for person in people:
                zone = zone_of(person.municipality, default_zone)
                first, last = absence_days(person, zone)
                rows.append(
                    {
                        "id": person.id,
                        "name": person.name,
                        "email": person.email,
                        "role": ROLE_LABELS[person.role],
                        "municipality": names.get(person.municipality_id or 0),
                        "active": person.is_active,
                        "locked": person.locked_until is not None and now < person.locked_until,
                        "away": person.is_absent(now),
                        "first": day_text(first, language),
                        "last": day_text(last, language),
                        "backup": person.backup.name if person.backup is not None else None,
                        "manageable": person.id in manageable,
                    }
                )
            title_place = place.name if place is not None else None
            can_create = access.can_manage_accounts(viewer)
        return private(
            pages,
            request,
            "admin_staff_list.html",
            me=me,
            rows=rows,
            place_name=title_place,
            place_id=place.id if place is not None else None,
            can_create=can_create,
            done=_done(request),
        )

    # ------------------------------------------------------------------------ new staff

    def _new_form(
        request: Request,
        me: SignedIn,
        *,
        errors: dict[str, Message] | None = None,
        values: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        with database.session() as session:
            places = [
                (p.id, p.name)
                for p in session.scalars(sa.select(Municipality).order_by(Municipality.name))
            ]
        response = private(
            pages,
            request,
            "admin_staff_new.html",
            me=me,
            places=places,
            roles=[(role.value, label) for role, label in ROLE_LABELS.items()],
            languages=list(STAFF_LANGUAGES.items()),
            min_length=MIN_LENGTH,
            errors=errors or {},
            values=values or {},
        )
        response.status_code = status
        return response

    @routes.get("/staff/new", response_class=HTMLResponse)
    def new_staff(request: Request, me: Admin, municipality: MunicipalityId = None) -> Response:
        values = {"municipality": str(municipality)} if municipality else {}
        return _new_form(request, me, values=values)

    @routes.post("/staff", response_class=HTMLResponse)
    def create_staff(
        request: Request,
        me: Admin,
        name: Text = "",
        email: Text = "",
        role: Text = "",
        municipality: Text = "",
        language: Text = "da",
        password: Text = "",
    ) -> Response:
        values = {
            "name": name,
            "email": email,
            "role": role,
            "municipality": municipality,
            "language": language,
        }
        errors: dict[str, Message] = {}
        try:
            chosen_role = Role(role)
        except ValueError:
            errors["role"] = (N_("Vælg en rolle."), {})
        if language not in STAFF_LANGUAGES:
            errors["language"] = (N_("Vælg et sprog."), {})
        if len(password) < MIN_LENGTH:
            errors["password"] = (
                N_("Adgangskoden skal være mindst {n} tegn."),
                {"n": MIN_LENGTH},
            )
        if errors:
            return _new_form(request, me, errors=errors, values=values, status=400)
        new_id = 0
        try:
            with database.session() as session:
                place = None
                if municipality.strip():
                    place = (
                        session.get(Municipality, int(municipality))
                        if municipality.strip().isdigit() and int(municipality) <= MAX_ID
                        else None
                    )
                    if place is None:
                        raise staff.StaffError(N_("Vælg en kommune."), field="municipality")
                user = staff.add_staff(
                    session,
                    name=name,
                    email=email,
                    role=chosen_role,
                    password_hash=hash_password(password),
                    municipality=place,
                    language=language,
                    actor=me.audit_name,
                    by_staff_id=me.id,
                )
                new_id = user.id
        except staff.StaffError as error:
            errors = {error.field or "name": _error(error)}
            return _new_form(request, me, errors=errors, values=values, status=400)
        return _redirect(f"/admin/staff/{new_id}", "created")

    # ------------------------------------------------------------------------ one staff member

    def _member_page(
        request: Request,
        me: SignedIn,
        staff_id: int,
        *,
        errors: dict[str, Message] | None = None,
        values: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        language = pages.language(request)
        now = utcnow()
        with database.session() as session:
            person = _managed(session, request, me, staff_id)
            can_manage_accounts = access.can_manage_accounts(me.load(session))
            zone = zone_of(person.municipality, default_zone)
            first, last = absence_days(person, zone)
            backups: list[tuple[int, str]] = []
            if person.role is Role.KONTAKTPERSON:
                backups = [
                    (b.id, b.name)
                    for b in session.scalars(
                        sa.select(StaffUser)
                        .where(
                            StaffUser.municipality_id == person.municipality_id,
                            StaffUser.role == Role.KONTAKTPERSON,
                            StaffUser.is_active.is_(True),
                            StaffUser.id != person.id,
                        )
                        .order_by(StaffUser.name, StaffUser.id)
                    )
                ]
            member = {
                "id": person.id,
                "name": person.name,
                "email": person.email,
                "role": ROLE_LABELS[person.role],
                "is_kontaktperson": person.role is Role.KONTAKTPERSON,
                "municipality": person.municipality.name if person.municipality else None,
                "municipality_id": person.municipality_id,
                "active": person.is_active,
                "locked": person.locked_until is not None and now < person.locked_until,
                "away": person.is_absent(now),
                "first": day_text(first, language),
                "last": day_text(last, language),
                "backup": person.backup.name if person.backup is not None else None,
                "last_login": day_text(
                    person.last_login_at.astimezone(zone).date() if person.last_login_at else None,
                    language,
                ),
            }
            shown = values or {
                "absent_from": first.isoformat() if first else "",
                "absent_until": last.isoformat() if last else "",
                "backup": str(person.backup_id or ""),
            }
        response = private(
            pages,
            request,
            "admin_staff_member.html",
            me=me,
            member=member,
            backups=backups,
            values=shown,
            errors=errors or {},
            is_self=me.id == staff_id,
            can_manage_accounts=can_manage_accounts,
            done=_done(request),
        )
        response.status_code = status
        return response

    @routes.get("/staff/{staff_id}", response_class=HTMLResponse)
    def member(request: Request, me: Manager, staff_id: StaffId) -> Response:
        return _member_page(request, me, staff_id)

    @routes.post("/staff/{staff_id}/absence", response_class=HTMLResponse)
    def set_absence(
        request: Request,
        me: Manager,
        staff_id: StaffId,
        absent_from: Text = "",
        absent_until: Text = "",
        backup: Text = "",
        clear: Text = "",
    ) -> Response:
        values = {"absent_from": absent_from, "absent_until": absent_until, "backup": backup}
        errors: dict[str, Message] = {}
        first, last = parse_day(absent_from), parse_day(absent_until)
        if clear:
            first = last = None
        else:
            if absent_from.strip() and first is None:
                errors["absent_from"] = (N_("Skriv datoen som dag-måned-år, fx 24-12-2026."), {})
            if absent_until.strip() and last is None:
                errors["absent_until"] = (N_("Skriv datoen som dag-måned-år, fx 24-12-2026."), {})
        if errors:
            return _member_page(request, me, staff_id, errors=errors, values=values, status=400)
        try:
            with database.session() as session:
                person = _managed(session, request, me, staff_id)
                zone = zone_of(person.municipality, default_zone)
                start, end = absence_range(first, last, zone)
                chosen = None
                if backup.strip():
                    chosen = (
                        session.get(StaffUser, int(backup))
                        if backup.strip().isdigit() and int(backup) <= MAX_ID
                        else None
                    )
                    if chosen is None:
                        raise staff.StaffError(
                            N_("Stedfortræderen skal være en aktiv kontaktperson i samme kommune."),
                            field="backup",
                        )
                staff.set_absence(
                    session,
                    person,
                    absent_from=start,
                    absent_until=end,
                    backup=chosen,
                    actor=me.audit_name,
                    by_staff_id=me.id,
                )
        except staff.StaffError as error:
            errors = {error.field or "absence": _error(error)}
            return _member_page(request, me, staff_id, errors=errors, values=values, status=400)
        return _redirect(f"/admin/staff/{staff_id}", "absence")

    def _account_change(request: Request, me: SignedIn, staff_id: int, change: str) -> Response:
        try:
            with database.session() as session:
                person = _managed(session, request, me, staff_id)
                if change == "deactivated":
                    staff.deactivate(
                        session, person, now=utcnow(), actor=me.audit_name, by_staff_id=me.id
                    )
                elif change == "reactivated":
                    staff.reactivate(session, person, actor=me.audit_name, by_staff_id=me.id)
                else:
                    staff.unlock(session, person, actor=me.audit_name, by_staff_id=me.id)
        except staff.StaffError as error:
            return _member_page(
                request, me, staff_id, errors={"account": _error(error)}, status=400
            )
        return _redirect(f"/admin/staff/{staff_id}", change)

    @routes.post("/staff/{staff_id}/deactivate", response_class=HTMLResponse)
    def deactivate(request: Request, me: Admin, staff_id: StaffId) -> Response:
        return _account_change(request, me, staff_id, "deactivated")

    @routes.post("/staff/{staff_id}/reactivate", response_class=HTMLResponse)
    def reactivate(request: Request, me: Admin, staff_id: StaffId) -> Response:
        return _account_change(request, me, staff_id, "reactivated")

    @routes.post("/staff/{staff_id}/unlock", response_class=HTMLResponse)
    def unlock(request: Request, me: Admin, staff_id: StaffId) -> Response:
        return _account_change(request, me, staff_id, "unlocked")

    return routes
