"""The signed-in staff member's own page: who they are, whom they cover for, where they may go.

It shows only what works today; the handoff inbox will add its own links here.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from babel.dates import format_date
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from bot.notify import REASONS
from bot.runtime import Runtime
from bot.web.auth import HOME, Staff, check_csrf, private
from bot.web.pages import Pages
from dialogs.types import AlertKind, HandoffPriority, HandoffReason, Role
from storage import access, handoffs
from storage.models import Municipality, StaffUser, YoungPerson, utcnow


def zone_of(place: Municipality | None, default: str) -> ZoneInfo:
    return ZoneInfo(place.timezone if place is not None else default)


def day_text(day: date | None, language: str) -> str:
    return format_date(day, "long", locale=language) if day is not None else ""


def absence_days(user: StaffUser, zone: ZoneInfo) -> tuple[date | None, date | None]:
    """The absence as the days people speak of: the first day, and the last day included."""
    first = user.absent_from.astimezone(zone).date() if user.absent_from else None
    last = (
        (user.absent_until.astimezone(zone) - timedelta(microseconds=1)).date()
        if user.absent_until
        else None
    )
    return first, last


def absence_range(
    first: date | None, last: date | None, zone: ZoneInfo
) -> tuple[datetime | None, datetime | None]:
    """From the start of ``first`` to the end of ``last`` (included) in the municipality's zone."""
    start = datetime.combine(first, time(0), zone) if first is not None else None
    end = datetime.combine(last + timedelta(days=1), time(0), zone) if last is not None else None
    return start, end


def pages_reason(reason: HandoffReason) -> str:
    """The Danish source text of a handoff's reason; the template translates it."""
    return REASONS[reason]


def router(runtime: Runtime, pages: Pages) -> APIRouter:
    routes = APIRouter(dependencies=[Depends(check_csrf)])
    database = runtime.database
    default_zone = runtime.settings.default_timezone

    @routes.get(HOME, response_class=HTMLResponse)
    def home(request: Request, me: Staff) -> HTMLResponse:
        language = pages.language(request)
        now = utcnow()
        with database.session() as session:
            staff = me.load(session)
            zone = zone_of(staff.municipality, default_zone)
            visible = None
            if staff.role is not Role.ADMIN:
                visible = session.scalar(
                    sa.select(sa.func.count())
                    .select_from(YoungPerson)
                    .where(access.visible_young_people(staff, now), YoungPerson.erased_at.is_(None))
                )
            covering = [
                (colleague.name, day_text(absence_days(colleague, zone)[1], language))
                for colleague in access.covering_for(session, staff, now)
            ]
            first, last = absence_days(staff, zone)
            away = None
            if staff.absent_from is not None and (
                staff.absent_until is None or staff.absent_until > now
            ):
                away = {
                    "first": day_text(first, language),
                    "last": day_text(last, language),
                    "backup": staff.backup.name if staff.backup is not None else None,
                }
            waiting = [
                {
                    "id": alert.young_person_id,
                    "first_name": alert.first_name,
                    "reason": pages_reason(alert.reason),
                    "urgent": alert.priority is HandoffPriority.URGENT,
                    "escalated": alert.kind is AlertKind.HANDOFF_UNANSWERED,
                }
                for alert in handoffs.waiting_alerts(session, staff, now)
            ]
        return private(
            pages,
            request,
            "staff_home.html",
            me=me,
            visible=visible,
            covering=covering,
            away=away,
            waiting=waiting,
        )

    return routes
