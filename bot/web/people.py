"""The young people a staff member may see, one young person's page, and the access-request export.

- ``GET /young-people``: the list, searched by first name and filtered by status. Kontaktpersoner
  and coordinators only; an admin gets 403 (admins run accounts and see no young person's data).
- ``GET /young-people/{id}``: the page: profile, channels, dreams and wishes, the plan (goals and
  sub-goals), meetings with their reminders, consent history and the access log. Every view is an
  audit event (``young_person.viewed``).
- ``POST`` under it: add a goal, add or change a sub-goal, mark one done, create, move or cancel a
  meeting. Every change goes through ``storage.plans`` (so reminders and check-ins follow) and is
  an audit event. The router checks the CSRF token of every POST.
- ``GET /young-people/{id}/export.json`` and ``export.csv``: for coordinators of the young
  person's municipality only (a kontaktperson gets 403), built by ``storage.export``; the export
  is an audit event (``young_person.exported``).

Who may see whom is ``storage.access`` alone: a young person outside it answers 404, so their
existence is not revealed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from bot import invitations
from bot.formatting import format_moment
from bot.runtime import Runtime
from bot.web import audience
from bot.web.auth import Refused, SignedIn, check_csrf, is_api_like, private, require_role
from bot.web.forms import parse_day, parse_time
from bot.web.pages import Pages
from dialogs.i18n import N_
from dialogs.types import (
    CaptureSource,
    Channel,
    ConsentKind,
    ConsentSource,
    DreamCategory,
    GoalStatus,
    MeetingStatus,
    Role,
    YoungPersonStatus,
)
from storage import access, audit, export, people_view, plans, roster
from storage.models import Goal, Meeting, SubGoal, YoungPerson, utcnow

MAX_ID = 2**31 - 1
PersonId = Annotated[int, Path(ge=1, le=MAX_ID)]
ItemId = Annotated[int, Path(ge=1, le=MAX_ID)]
Reader = Annotated[SignedIn, Depends(require_role(Role.KONTAKTPERSON, Role.COORDINATOR))]
Coordinator = Annotated[SignedIn, Depends(require_role(Role.COORDINATOR))]
Text = Annotated[str, Form(max_length=2000)]
MAX_TITLE = 200
MAX_SHORT = 200
MIN_DURATION, MAX_DURATION = 5, 8 * 60

STATUS_LABELS = {
    YoungPersonStatus.INVITED: N_("Inviteret"),
    YoungPersonStatus.ACTIVE: N_("Aktiv"),
    YoungPersonStatus.PAUSED: N_("På pause"),
    YoungPersonStatus.OPTED_OUT: N_("Frameldt"),
    YoungPersonStatus.CLOSED: N_("Afsluttet"),
}
GOAL_STATUS_LABELS = {
    GoalStatus.PLANNED: N_("Planlagt"),
    GoalStatus.UNDER_WAY: N_("I gang"),
    GoalStatus.NEEDS_HELP: N_("Brug for hjælp"),
    GoalStatus.DONE: N_("Klaret"),
    GoalStatus.DROPPED: N_("Droppet"),
}
MEETING_STATUS_LABELS = {
    MeetingStatus.PLANNED: N_("Planlagt"),
    MeetingStatus.CONFIRMED: N_("Bekræftet af den unge"),
    MeetingStatus.DECLINED: N_("Den unge kan ikke komme"),
    MeetingStatus.NEW_TIME_WANTED: N_("Den unge ønsker en ny tid"),
    MeetingStatus.ATTENDED: N_("Gennemført"),
    MeetingStatus.NO_SHOW: N_("Den unge kom ikke"),
    MeetingStatus.CANCELLED: N_("Aflyst"),
}
CATEGORY_LABELS = {
    DreamCategory.EDUCATION: N_("Uddannelse"),
    DreamCategory.JOB: N_("Job"),
    DreamCategory.LEISURE: N_("Fritid"),
    DreamCategory.HOUSING: N_("Bolig"),
    DreamCategory.HEALTH: N_("Helbred og trivsel"),
    DreamCategory.NETWORK: N_("Netværk"),
    DreamCategory.OTHER: N_("Andet"),
}
CAPTURE_LABELS = {
    CaptureSource.DIALOG: N_("i samtalen med botten"),
    CaptureSource.STAFF: N_("skrevet af en medarbejder"),
    CaptureSource.IMPORT: N_("importeret"),
}
CHANNEL_LABELS = {
    Channel.SMS: N_("SMS"),
    Channel.TELEGRAM: N_("Telegram"),
    Channel.SIMULATOR: N_("Simulator"),
}
CONSENT_LABELS = {
    ConsentKind.CONSENT_GIVEN: N_("Gav samtykke"),
    ConsentKind.CONSENT_WITHDRAWN: N_("Trak samtykket tilbage"),
    ConsentKind.OPTED_OUT: N_("Frameldte sig"),
    ConsentKind.OPTED_IN: N_("Tilmeldte sig igen"),
}
CONSENT_SOURCE_LABELS = {
    ConsentSource.YOUNG_PERSON: N_("den unge selv"),
    ConsentSource.STAFF: N_("en medarbejder"),
    ConsentSource.PROVIDER: N_("sms-udbyderen"),
    ConsentSource.IMPORT: N_("import"),
}
REMINDER_LABELS = {
    plans.MEETING_REMINDER: N_("Påmindelse"),
    plans.NO_SHOW_FOLLOW_UP: N_("Opfølgning efter udeblivelse"),
    plans.SUB_GOAL_CHECK_IN: N_("Tjek-ind"),
    plans.SUB_GOAL_OVERDUE: N_("Besked til kontaktpersonen, hvis fristen overskrides"),
}
ACTION_LABELS = {
    "young_person.viewed": N_("så den unges side"),
    "young_person.exported": N_("hentede en indsigtsudskrift"),
    "young_person.goal_added": N_("tilføjede et mål"),
    "young_person.sub_goal_added": N_("tilføjede et delmål"),
    "young_person.sub_goal_changed": N_("ændrede et delmål"),
    "young_person.goal_changed": N_("ændrede et mål"),
    "young_person.meeting_created": N_("oprettede et møde"),
    "young_person.meeting_moved": N_("flyttede et møde"),
    "young_person.meeting_cancelled": N_("aflyste et møde"),
    "young_person.imported": N_("importerede den unge"),
    "young_person.updated_by_import": N_("opdaterede den unge ved en import"),
    "young_person.invitation_renewed": N_("fornyede invitationen"),
    "young_person.assigned": N_("skiftede kontaktperson"),
    "young_person.invited_by_sms": N_("sendte en invitation på sms"),
    "young_person.invitation_link_shown": N_("hentede invitationslinket til Telegram"),
    "thread.viewed": N_("så samtalen"),
    "inbox.took_over": N_("overtog samtalen fra botten"),
    "inbox.handed_back": N_("gav samtalen tilbage til botten"),
    "inbox.replied": N_("svarede den unge"),
    "inbox.note_added": N_("skrev en note"),
    "inbox.status_changed": N_("ændrede samtalens status"),
    "inbox.reopened": N_("genåbnede samtalen"),
    "handoff.opened": N_("samtalen blev givet videre til en medarbejder"),
    "handoff.made_urgent": N_("samtalen blev markeret som akut"),
}
# What a redirect after a change may say; ``?done=`` carries only these keys.
DONE = {
    "goal": N_("Målet er tilføjet."),
    "sub_goal": N_("Delmålet er tilføjet. Påmindelserne følger fristen."),
    "sub_goal_changed": N_("Delmålet er gemt."),
    "goal_changed": N_("Målet er gemt."),
    "sub_goal_done": N_("Delmålet er markeret som klaret."),
    "meeting": N_("Mødet er oprettet, og påmindelserne er planlagt."),
    "moved": N_("Mødet er flyttet, og påmindelserne følger med."),
    "cancelled": N_("Mødet er aflyst, og dets påmindelser er stoppet."),
    "assigned": N_("Kontaktpersonen er skiftet."),
    "link": N_("Invitationslinket er klar. Kopiér det, og giv det til den unge."),
    "invited": N_("Invitationen er lagt i kø og sendes på sms."),
    "invited_later": N_(
        "Invitationen er lagt i kø. Det er stille tid nu, så den bliver sendt, når den stille "
        "tid slutter."
    ),
}
COMING = (MeetingStatus.PLANNED, MeetingStatus.CONFIRMED)

Message = tuple[str, dict[str, Any]]


class FormError(Exception):
    """A form field that cannot be used; ``field`` is the element's id on the page."""

    def __init__(self, errors: dict[str, Message], values: dict[str, str], opened: str) -> None:
        super().__init__("form error")
        self.errors = errors
        self.values = values
        self.opened = opened


def _not_found(request: Request) -> Refused:
    return Refused(
        N_("Siden findes ikke, eller du har ikke adgang til den."),
        api=is_api_like(request),
        status=404,
    )


def _zone(person: YoungPerson) -> ZoneInfo:
    return ZoneInfo(person.municipality.timezone)


def language_name(code: str, language: str) -> str:
    try:
        name = Locale.parse(code).get_display_name(language)
    except (ValueError, UnknownLocaleError):
        return code
    return f"{name} ({code})" if name else code


def csv_bytes(rows: list[tuple[str, str, str, str]]) -> bytes:
    """UTF-8 with a byte-order mark, so Excel reads æøå; CRLF line ends as RFC 4180 has them."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(export.CSV_COLUMNS)
    writer.writerows(rows)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def router(runtime: Runtime, pages: Pages) -> APIRouter:
    routes = APIRouter(prefix="/young-people", dependencies=[Depends(check_csrf)])
    database = runtime.database

    # ------------------------------------------------------------------------ helpers

    def _visible(session: Session, request: Request, me: SignedIn, person_id: int) -> YoungPerson:
        """The young person, if ``me`` may see them now; else 404."""
        if not access.can_see(session, me.load(session), person_id, utcnow()):
            raise _not_found(request)
        return session.get_one(YoungPerson, person_id)

    def _record(
        session: Session,
        me: SignedIn,
        person: YoungPerson,
        action: str,
        **details: object,
    ) -> None:
        audit.record(
            session,
            actor=me.audit_name,
            action=action,
            staff_id=me.id,
            municipality_id=person.municipality_id,
            young_person_id=person.id,
            details=export.plain(dict(details)),
        )

    def _moment(moment: datetime, language: str, zone: ZoneInfo) -> str:
        return format_moment(moment, language, zone)

    def _short(moment: datetime | None, language: str, zone: ZoneInfo) -> str:
        if moment is None:
            return ""
        local = moment.astimezone(zone)
        day = format_date(local.date(), "medium", locale=language)
        at = format_time(local.time(), "short", locale=language)
        return f"{day} {at}".replace("\u202f", " ")

    def _day(day: date | None, language: str) -> str:
        return str(format_date(day, "long", locale=language)) if day is not None else ""

    def _page(
        request: Request,
        me: SignedIn,
        person_id: int,
        *,
        errors: dict[str, Message] | None = None,
        values: dict[str, str] | None = None,
        opened: str = "",
        status: int = 200,
    ) -> Response:
        language = pages.language(request)
        now = utcnow()
        with database.session() as session:
            person = _visible(session, request, me, person_id)
            zone = _zone(person)
            view = people_view.profile(session, person)
            today = now.astimezone(zone).date()
            names = people_view.staff_names(
                session,
                [d.staff_id for d in view.dreams] + [c.staff_id for c in view.consent],
            )
            context = {
                "person": {
                    "id": person.id,
                    "name": person.first_name,
                    "age": person.age_on(today),
                    "birth_date": _day(person.birth_date, language),
                    "status": STATUS_LABELS[person.status],
                    "status_since": _short(person.status_changed_at, language, zone),
                    "opted_out": person.status is YoungPersonStatus.OPTED_OUT,
                    "kontaktperson": (
                        person.kontaktperson.name if person.kontaktperson is not None else None
                    ),
                    "municipality": person.municipality.name,
                    "language": language_name(person.language, language),
                    "phone": person.phone,
                    "telegram": person.telegram_chat_id is not None,
                    "telegram_blocked": _short(person.telegram_blocked_at, language, zone),
                    "sms_error": person.sms_error_code,
                    "invited": person.invite_code is not None
                    and person.invite_code_used_at is None,
                    "preferred": (
                        CHANNEL_LABELS[person.preferred_channel]
                        if person.preferred_channel is not None
                        else None
                    ),
                    "last_inbound": _short(person.last_inbound_at, language, zone),
                    "tags": person.tag_names,
                },
                "dreams": [
                    {
                        "text": d.text,
                        "category": CATEGORY_LABELS[d.category],
                        "when": _short(d.captured_at, language, zone),
                        "how": CAPTURE_LABELS[d.captured_via],
                        "channel": CHANNEL_LABELS[d.channel] if d.channel is not None else None,
                        "staff": names.get(d.staff_id) if d.staff_id is not None else None,
                    }
                    for d in view.dreams
                ],
                "goals": [
                    {
                        "id": g.goal.id,
                        "title": g.goal.title,
                        "description": g.goal.description,
                        "status": GOAL_STATUS_LABELS[g.goal.status],
                        "status_value": g.goal.status.value,
                        "due": _day(g.goal.due_date, language),
                        "sub_goals": [
                            {
                                "id": s.sub_goal.id,
                                "title": s.sub_goal.title,
                                "status": GOAL_STATUS_LABELS[s.sub_goal.status],
                                "status_value": s.sub_goal.status.value,
                                "open": s.sub_goal.status in plans.OPEN_SUB_GOAL,
                                "due": _day(s.sub_goal.due_date, language),
                                "due_iso": (
                                    s.sub_goal.due_date.isoformat() if s.sub_goal.due_date else ""
                                ),
                                "overdue": s.sub_goal.due_date is not None
                                and s.sub_goal.due_date < today
                                and s.sub_goal.status in plans.OPEN_SUB_GOAL,
                                "done_at": _short(s.sub_goal.completed_at, language, zone),
                                "reminders": [
                                    {
                                        "what": REMINDER_LABELS.get(i.kind, i.kind),
                                        "when": _moment(i.due_at, language, zone),
                                    }
                                    for i in s.reminders
                                ],
                            }
                            for s in g.sub_goals
                        ],
                    }
                    for g in view.goals
                ],
                "meetings": [
                    {
                        "id": m.meeting.id,
                        "when": _moment(m.meeting.starts_at, language, zone),
                        "date_iso": m.meeting.starts_at.astimezone(zone).date().isoformat(),
                        "time_iso": m.meeting.starts_at.astimezone(zone).strftime("%H:%M"),
                        "minutes": m.meeting.duration_minutes,
                        "place": m.meeting.place,
                        "purpose": m.meeting.purpose,
                        "with_whom": m.meeting.with_whom,
                        "status": MEETING_STATUS_LABELS[m.meeting.status],
                        "coming": m.meeting.status in COMING and m.meeting.starts_at > now,
                        "changeable": m.meeting.status
                        not in (MeetingStatus.CANCELLED, MeetingStatus.ATTENDED),
                        "reminders": [
                            {
                                "what": REMINDER_LABELS.get(i.kind, i.kind),
                                "when": _moment(i.due_at, language, zone),
                            }
                            for i in m.reminders
                        ],
                    }
                    for m in view.meetings
                ],
                "consent": [
                    {
                        "what": CONSENT_LABELS[c.kind],
                        "when": _short(c.created_at, language, zone),
                        "source": CONSENT_SOURCE_LABELS[c.source],
                        "channel": CHANNEL_LABELS[c.channel] if c.channel is not None else None,
                        "staff": names.get(c.staff_id) if c.staff_id is not None else None,
                    }
                    for c in view.consent
                ],
                "access_log": [
                    {
                        "who": line.staff_name or line.event.actor,
                        "when": _short(line.event.at, language, zone),
                        "what": ACTION_LABELS.get(line.event.action),
                        "action": line.event.action,
                    }
                    for line in view.access_log
                ],
                "access_log_total": view.access_log_total,
                "can_export": me.role is Role.COORDINATOR,
                "can_assign": me.role is Role.COORDINATOR,
                "kontaktperson_id": person.kontaktperson_id,
                "assignable": (
                    [
                        (s.id, s.name)
                        for s in roster.kontaktpersoner(session, person.municipality_id)
                    ]
                    if me.role is Role.COORDINATOR
                    else []
                ),
                "invite": _invite_context(session, person, now, language, zone),
                "goal_statuses": list(GOAL_STATUS_LABELS.items()),
                "today_iso": today.isoformat(),
            }
            # Every display of a young person's data is a read in the access log, form errors too.
            _record(session, me, person, "young_person.viewed", page="young_person")
        response = private(
            pages,
            request,
            "young_person.html",
            me=me,
            errors=errors or {},
            values=values or {},
            opened=opened,
            done=DONE.get(request.query_params.get("done", "")),
            **context,
        )
        response.status_code = status
        return response

    def _invite_context(
        session: Session, person: YoungPerson, now: datetime, language: str, zone: ZoneInfo
    ) -> dict[str, Any]:
        settings = runtime.settings
        refused = invitations.refusal(session, person, now)
        last = invitations.last_sms_invitation(session, person)
        return {
            "telegram": bool(settings.telegram_bot_username),
            "link": invitations.current_telegram_link(settings, person, now),
            "connected": person.telegram_chat_id is not None,
            "sms_refused": (refused.message, dict(refused.params)) if refused else None,
            "last_sms": _short(last, language, zone),
        }

    def _back(person_id: int, done: str, anchor: str) -> RedirectResponse:
        return RedirectResponse(f"/young-people/{person_id}?done={done}#{anchor}", status_code=303)

    def _meeting_time(
        person: YoungPerson, day_text: str, time_text: str, prefix: str, now: datetime
    ) -> datetime | dict[str, Message]:
        errors: dict[str, Message] = {}
        day = parse_day(day_text)
        at = parse_time(time_text)
        if day is None:
            errors[f"{prefix}-date"] = (N_("Skriv en dato, fx 24-12-2026."), {})
        if at is None:
            errors[f"{prefix}-time"] = (N_("Skriv et klokkeslæt, fx 14:30."), {})
        if day is None or at is None:
            return errors
        starts = datetime.combine(day, at, _zone(person)).astimezone(UTC)
        if starts <= now:
            return {f"{prefix}-date": (N_("Tidspunktet er allerede passeret. Vælg et senere."), {})}
        return starts

    def _owned(session: Session, request: Request, model: Any, item_id: int, person_id: int) -> Any:
        item = session.get(model, item_id)
        owner = None
        if isinstance(item, SubGoal):
            owner = session.get_one(Goal, item.goal_id).young_person_id
        elif item is not None:
            owner = item.young_person_id
        if item is None or owner != person_id:
            raise _not_found(request)
        return item

    # ------------------------------------------------------------------------ list

    def _list(
        request: Request,
        me: SignedIn,
        *,
        assign_error: Message | None = None,
        assign_done: Message | None = None,
        picked: Sequence[int] = (),
        status_code: int = 200,
    ) -> Response:
        params = request.query_params
        q = params.get("q", "")[:200]
        assigned = params.get("assigned", "")
        if assign_done is None and assigned.isdigit() and len(assigned) < 6:
            assign_done = (N_("{n} unge har fået en ny kontaktperson."), {"n": int(assigned)})
        language = pages.language(request)
        now = utcnow()
        with database.session() as session:
            viewer = me.load(session)
            assert viewer.municipality_id is not None  # kontaktpersoner and coordinators have one
            offered = audience.choices(
                session, viewer.municipality_id, STATUS_LABELS, reachable_only=False
            )
            coordinator = me.role is Role.COORDINATOR
            assignable = offered.kontaktpersoner if coordinator else []
            if not coordinator:
                # A kontaktperson sees only their own young people: no one else's to filter on.
                # Nor tags of young people they do not see.
                offered = audience.Choices(
                    [],
                    people_view.visible_tags(session, viewer, now),
                    offered.statuses,
                    offered.channels,
                )
            form = audience.read_audience(
                params, kontaktperson_ids=offered.kontaktperson_ids, reachable_only=False
            )
            zone = ZoneInfo(
                viewer.municipality.timezone
                if viewer.municipality is not None
                else runtime.settings.default_timezone
            )
            today = now.astimezone(zone).date()
            listing = people_view.visible_list(
                session, viewer, now, search=q, audience=form.audience, today=today
            )
            rows = [
                {
                    "id": row.id,
                    "name": row.first_name,
                    "age": _age(date.fromisoformat(row.birth_date_iso), today),
                    "status": STATUS_LABELS[row.status],
                    "kontaktperson": row.kontaktperson,
                    "language": language_name(row.language, language),
                    "picked": row.id in picked,
                }
                for row in listing.rows
            ]
            audit.record(
                session,
                actor=me.audit_name,
                action="young_people.listed",
                staff_id=me.id,
                municipality_id=me.municipality_id,
                details={
                    "shown": len(rows),
                    "searched": bool(q.strip()),
                    "filters": form.audience.to_dict() if form.audience is not None else None,
                },
            )
        filtered = bool(q.strip()) or form.chosen
        response = private(
            pages,
            request,
            "people_list.html",
            me=me,
            rows=rows,
            total=listing.total,
            limit=people_view.MAX_LIST,
            q=q,
            form=form,
            choices=offered,
            filtered=filtered,
            assignable=assignable,
            assign_error=assign_error,
            assign_done=assign_done,
            query=str(request.url.query),
        )
        response.status_code = status_code
        return response

    @routes.get("", response_class=HTMLResponse)
    def young_people(request: Request, me: Reader) -> Response:
        return _list(request, me)

    @routes.post("/assign", response_class=HTMLResponse)
    def assign_many(
        request: Request,
        me: Coordinator,
        person: Annotated[list[str] | None, Form()] = None,
        kontaktperson: Annotated[str, Form(max_length=20)] = "",
        back: Text = "",
    ) -> Response:
        raw_ids = [value.strip() for value in person or []]
        raw_staff = kontaktperson.strip()
        picked = [int(v) for v in raw_ids if v.isdigit() and 0 < int(v) <= MAX_ID]
        now = utcnow()
        try:
            if len(picked) != len(raw_ids) or len(picked) > people_view.MAX_LIST:
                raise roster.AssignRefused(roster.NOBODY_CHOSEN)
            if not raw_staff.isdigit() or int(raw_staff) > MAX_ID:
                raise roster.AssignRefused(roster.NOT_A_KONTAKTPERSON)
            with database.session() as session:
                viewer = me.load(session)
                assert viewer.municipality_id is not None
                chosen = [
                    session.get_one(YoungPerson, person_id)
                    for person_id in dict.fromkeys(picked)
                    if access.can_see(session, viewer, person_id, now)
                ]
                if len(chosen) != len(set(picked)):
                    raise _not_found(request)
                changed = roster.assign_many(
                    session,
                    chosen,
                    int(raw_staff),
                    municipality_id=viewer.municipality_id,
                    actor=viewer,
                    now=now,
                )
        except roster.AssignRefused as refused:
            return _list(
                request,
                me,
                assign_error=(refused.message, dict(refused.params)),
                picked=picked,
                status_code=400,
            )
        # Back to the same filtered list; only its query string is kept, never a path.
        kept = [(key, value) for key, value in parse_qsl(back) if key != "assigned"]
        query = urlencode([*kept, ("assigned", str(changed))])
        return RedirectResponse(f"/young-people?{query}", status_code=303)

    # ------------------------------------------------------------------------ the page

    @routes.get("/{person_id}", response_class=HTMLResponse)
    def young_person(request: Request, me: Reader, person_id: PersonId) -> Response:
        return _page(request, me, person_id)

    def _change(
        request: Request, me: SignedIn, person_id: int, work: Any, done: str, anchor: str
    ) -> Response:
        """Run ``work(session, person, now)`` for a visible young person; a FormError re-renders
        the page with the errors (400)."""
        try:
            with database.session() as session:
                person = _visible(session, request, me, person_id)
                work(session, person, utcnow())
        except FormError as error:
            return _page(
                request,
                me,
                person_id,
                errors=error.errors,
                values=error.values,
                opened=error.opened,
                status=400,
            )
        return _back(person_id, done, anchor)

    @routes.post("/{person_id}/goals", response_class=HTMLResponse)
    def add_goal(
        request: Request,
        me: Reader,
        person_id: PersonId,
        title: Text = "",
        description: Text = "",
    ) -> Response:
        def work(session: Session, person: YoungPerson, now: datetime) -> None:
            values = {"goal-title": title, "goal-description": description}
            if not title.strip():
                raise FormError({"goal-title": (N_("Skriv målet."), {})}, values, "goal-new")
            if len(title.strip()) > MAX_TITLE:
                raise FormError(
                    {"goal-title": (N_("Højst {n} tegn."), {"n": MAX_TITLE})}, values, "goal-new"
                )
            position = people_view.goal_count(session, person.id)
            goal = plans.add_goal(
                session,
                person,
                title=title.strip(),
                description=description.strip() or None,
                now=now,
                position=position,
            )
            _record(session, me, person, "young_person.goal_added", goal_id=goal.id)

        return _change(request, me, person_id, work, "goal", "plan")

    @routes.post("/{person_id}/goals/{goal_id}", response_class=HTMLResponse)
    def change_goal(
        request: Request,
        me: Reader,
        person_id: PersonId,
        goal_id: ItemId,
        title: Text = "",
        description: Text = "",
        status: Text = "",
    ) -> Response:
        def work(session: Session, person: YoungPerson, now: datetime) -> None:
            goal: Goal = _owned(session, request, Goal, goal_id, person.id)
            prefix = f"goal-{goal.id}"
            values = {
                f"{prefix}-title": title,
                f"{prefix}-description": description,
                f"{prefix}-status": status,
            }
            errors: dict[str, Message] = {}
            if not title.strip():
                errors[f"{prefix}-title"] = (N_("Skriv målet."), {})
            elif len(title.strip()) > MAX_TITLE:
                errors[f"{prefix}-title"] = (N_("Højst {n} tegn."), {"n": MAX_TITLE})
            new_status = next((s for s in GoalStatus if s.value == status), None)
            if new_status is None:
                errors[f"{prefix}-status"] = (N_("Vælg en status."), {})
            if errors or new_status is None:
                raise FormError(errors, values, prefix)
            before = goal.status
            plans.change_goal(
                session,
                goal,
                title=title.strip(),
                description=description.strip() or None,
                status=new_status,
                now=now,
            )
            _record(
                session,
                me,
                person,
                "young_person.goal_changed",
                goal_id=goal.id,
                status=new_status.value,
                status_before=before.value,
            )

        return _change(request, me, person_id, work, "goal_changed", f"goal-{goal_id}")

    def _sub_goal_fields(
        prefix: str, title: str, due_date: str, values: dict[str, str], opened: str
    ) -> tuple[str, date | None]:
        errors: dict[str, Message] = {}
        if not title.strip():
            errors[f"{prefix}-title"] = (N_("Skriv delmålet."), {})
        elif len(title.strip()) > MAX_TITLE:
            errors[f"{prefix}-title"] = (N_("Højst {n} tegn."), {"n": MAX_TITLE})
        due = parse_day(due_date) if due_date.strip() else None
        if due_date.strip() and due is None:
            errors[f"{prefix}-due"] = (N_("Skriv en dato, fx 24-12-2026."), {})
        if errors:
            raise FormError(errors, values, opened)
        return title.strip(), due

    @routes.post("/{person_id}/goals/{goal_id}/sub-goals", response_class=HTMLResponse)
    def add_sub_goal(
        request: Request,
        me: Reader,
        person_id: PersonId,
        goal_id: ItemId,
        title: Text = "",
        due_date: Text = "",
    ) -> Response:
        def work(session: Session, person: YoungPerson, now: datetime) -> None:
            goal: Goal = _owned(session, request, Goal, goal_id, person.id)
            prefix = f"sub-goal-new-{goal.id}"
            values = {f"{prefix}-title": title, f"{prefix}-due": due_date}
            clean, due = _sub_goal_fields(prefix, title, due_date, values, prefix)
            sub_goal = plans.add_sub_goal(
                session,
                goal,
                title=clean,
                due_date=due,
                now=now,
                position=len(goal.sub_goals),
            )
            _record(
                session,
                me,
                person,
                "young_person.sub_goal_added",
                goal_id=goal.id,
                sub_goal_id=sub_goal.id,
                due_date=due,
            )

        return _change(request, me, person_id, work, "sub_goal", f"goal-{goal_id}")

    @routes.post("/{person_id}/sub-goals/{sub_goal_id}", response_class=HTMLResponse)
    def change_sub_goal(
        request: Request,
        me: Reader,
        person_id: PersonId,
        sub_goal_id: ItemId,
        title: Text = "",
        due_date: Text = "",
        status: Text = "",
    ) -> Response:
        def work(session: Session, person: YoungPerson, now: datetime) -> None:
            sub_goal: SubGoal = _owned(session, request, SubGoal, sub_goal_id, person.id)
            prefix = f"sub-goal-{sub_goal.id}"
            values = {
                f"{prefix}-title": title,
                f"{prefix}-due": due_date,
                f"{prefix}-status": status,
            }
            try:
                new_status = GoalStatus(status)
            except ValueError:
                raise FormError(
                    {f"{prefix}-status": (N_("Vælg en status."), {})}, values, prefix
                ) from None
            clean, due = _sub_goal_fields(prefix, title, due_date, values, prefix)
            changed: dict[str, object] = {}
            if clean != sub_goal.title:
                # The title schedules nothing; the due date and status go through the plan.
                sub_goal.title = clean
                sub_goal.updated_at = now
                changed["title"] = True
            if due != sub_goal.due_date:
                changed["due_date"] = due
            if new_status is not sub_goal.status:
                changed["status"] = new_status
            # Closing: the status first (its check-ins go), then the date (nothing to schedule).
            # Open: the date first, then the status, so check-ins are only made for the new date.
            if new_status in plans.OPEN_SUB_GOAL:
                plans.set_sub_goal_due_date(session, sub_goal, due, now=now)
                if new_status is not sub_goal.status:
                    plans.set_sub_goal_status(session, sub_goal, new_status, now=now)
            else:
                if new_status is not sub_goal.status:
                    plans.set_sub_goal_status(session, sub_goal, new_status, now=now)
                plans.set_sub_goal_due_date(session, sub_goal, due, now=now)
            _record(
                session,
                me,
                person,
                "young_person.sub_goal_changed",
                sub_goal_id=sub_goal.id,
                **changed,
            )

        return _change(request, me, person_id, work, "sub_goal_changed", f"sub-goal-{sub_goal_id}")

    @routes.post("/{person_id}/sub-goals/{sub_goal_id}/done", response_class=HTMLResponse)
    def sub_goal_done(
        request: Request, me: Reader, person_id: PersonId, sub_goal_id: ItemId
    ) -> Response:
        def work(session: Session, person: YoungPerson, now: datetime) -> None:
            sub_goal: SubGoal = _owned(session, request, SubGoal, sub_goal_id, person.id)
            if sub_goal.status is not GoalStatus.DONE:
                plans.set_sub_goal_status(session, sub_goal, GoalStatus.DONE, now=now)
                _record(
                    session,
                    me,
                    person,
                    "young_person.sub_goal_changed",
                    sub_goal_id=sub_goal.id,
                    status=GoalStatus.DONE,
                )

        return _change(request, me, person_id, work, "sub_goal_done", f"sub-goal-{sub_goal_id}")

    # ------------------------------------------------------------------------ meetings

    @routes.post("/{person_id}/meetings", response_class=HTMLResponse)
    def create_meeting(
        request: Request,
        me: Reader,
        person_id: PersonId,
        day: Text = "",
        at: Text = "",
        minutes: Text = "60",
        place: Text = "",
        purpose: Text = "",
    ) -> Response:
        def work(session: Session, person: YoungPerson, now: datetime) -> None:
            values = {
                "meeting-date": day,
                "meeting-time": at,
                "meeting-minutes": minutes,
                "meeting-place": place,
                "meeting-purpose": purpose,
            }
            found = _meeting_time(person, day, at, "meeting", now)
            errors = found if isinstance(found, dict) else {}
            duration = int(minutes) if minutes.strip().isdigit() else 0
            if not MIN_DURATION <= duration <= MAX_DURATION:
                errors["meeting-minutes"] = (
                    N_("Skriv en varighed mellem {low} og {high} minutter."),
                    {"low": MIN_DURATION, "high": MAX_DURATION},
                )
            for key, text in (("meeting-place", place), ("meeting-purpose", purpose)):
                if len(text.strip()) > MAX_SHORT:
                    errors[key] = (N_("Højst {n} tegn."), {"n": MAX_SHORT})
            if errors or isinstance(found, dict):
                raise FormError(errors, values, "meeting-new")
            meeting = plans.create_meeting(
                session,
                person,
                starts_at=found,
                now=now,
                place=place.strip() or None,
                purpose=purpose.strip() or None,
                with_whom=me.name,
                staff_id=me.id,
                duration_minutes=duration,
            )
            _record(
                session,
                me,
                person,
                "young_person.meeting_created",
                meeting_id=meeting.id,
                starts_at=found,
            )

        return _change(request, me, person_id, work, "meeting", "meetings")

    @routes.post("/{person_id}/meetings/{meeting_id}/move", response_class=HTMLResponse)
    def move_meeting(
        request: Request,
        me: Reader,
        person_id: PersonId,
        meeting_id: ItemId,
        day: Text = "",
        at: Text = "",
    ) -> Response:
        def work(session: Session, person: YoungPerson, now: datetime) -> None:
            meeting: Meeting = _owned(session, request, Meeting, meeting_id, person.id)
            prefix = f"meeting-{meeting.id}"
            values = {f"{prefix}-date": day, f"{prefix}-time": at}
            if meeting.status in (MeetingStatus.CANCELLED, MeetingStatus.ATTENDED):
                raise FormError(
                    {
                        f"{prefix}-date": (
                            N_("Et aflyst eller gennemført møde kan ikke flyttes."),
                            {},
                        )
                    },
                    values,
                    prefix,
                )
            found = _meeting_time(person, day, at, prefix, now)
            if isinstance(found, dict):
                raise FormError(found, values, prefix)
            before = meeting.starts_at
            plans.move_meeting(session, meeting, found, now=now)
            _record(
                session,
                me,
                person,
                "young_person.meeting_moved",
                meeting_id=meeting.id,
                starts_at=found,
                was=before,
            )

        return _change(request, me, person_id, work, "moved", f"meeting-{meeting_id}")

    @routes.post("/{person_id}/meetings/{meeting_id}/cancel", response_class=HTMLResponse)
    def cancel_meeting(
        request: Request, me: Reader, person_id: PersonId, meeting_id: ItemId
    ) -> Response:
        def work(session: Session, person: YoungPerson, now: datetime) -> None:
            meeting: Meeting = _owned(session, request, Meeting, meeting_id, person.id)
            if meeting.status is MeetingStatus.CANCELLED:
                return
            plans.cancel_meeting(session, meeting, now=now)
            _record(session, me, person, "young_person.meeting_cancelled", meeting_id=meeting.id)

        return _change(request, me, person_id, work, "cancelled", f"meeting-{meeting_id}")

    # ------------------------------------------------------------------------ kontaktperson

    @routes.post("/{person_id}/kontaktperson", response_class=HTMLResponse)
    def assign(
        request: Request, me: Coordinator, person_id: PersonId, kontaktperson: Text = ""
    ) -> Response:
        def work(session: Session, person: YoungPerson, now: datetime) -> None:
            values = {"kontaktperson": kontaktperson}
            wanted = kontaktperson.strip()
            try:
                if not wanted.isdigit() or int(wanted) > MAX_ID:
                    raise roster.AssignRefused(roster.NOT_A_KONTAKTPERSON)
                roster.assign(session, person, int(wanted), actor=me.load(session), now=now)
            except roster.AssignRefused as refused:
                raise FormError(
                    {"kontaktperson": (refused.message, dict(refused.params))},
                    values,
                    "kontaktperson",
                ) from None

        return _change(request, me, person_id, work, "assigned", "kontaktperson-form")

    # ------------------------------------------------------------------------ invitations

    @routes.post("/{person_id}/invitation/telegram", response_class=HTMLResponse)
    def invitation_link(request: Request, me: Reader, person_id: PersonId) -> Response:
        def work(session: Session, person: YoungPerson, now: datetime) -> None:
            link = invitations.telegram_link(
                session, runtime.settings, person, now=now, actor=me.audit_name
            )
            if link is None:
                raise FormError(
                    {"invite-link": (N_("Telegram er ikke sat op i Stifinder."), {})},
                    {},
                    "invitation",
                )
            _record(session, me, person, "young_person.invitation_link_shown")

        return _change(request, me, person_id, work, "link", "invitation")

    @routes.post("/{person_id}/invitation/sms", response_class=HTMLResponse)
    def invitation_sms(request: Request, me: Reader, person_id: PersonId) -> Response:
        deferred: list[bool] = []

        def work(session: Session, person: YoungPerson, now: datetime) -> None:
            try:
                invited = invitations.send_sms_invitation(
                    session, runtime.settings, person, me.load(session), now=now
                )
            except invitations.InvitationRefused as refused:
                raise FormError(
                    {"invite-sms": (refused.message, dict(refused.params))}, {}, "invitation"
                ) from None
            deferred.append(invited.not_before > now)

        response = _change(request, me, person_id, work, "invited", "invitation")
        if deferred == [True]:
            return _back(person_id, "invited_later", "invitation")
        return response

    # ------------------------------------------------------------------------ export

    def _export(request: Request, me: SignedIn, person_id: int, kind: str) -> Response:
        now = utcnow()
        with database.session() as session:
            person = _visible(session, request, me, person_id)
            data = export.gather(session, person.id, now=now)
            _record(session, me, person, "young_person.exported", format=kind)
        stamp = now.strftime("%Y%m%d-%H%M%S")
        filename = f"stifinder-ung-{person_id}-{stamp}.{kind}"
        if kind == "json":
            body = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
            media = "application/json; charset=utf-8"
        else:
            body = csv_bytes(export.flat_rows(data))
            media = "text/csv; charset=utf-8"
        return Response(
            body,
            media_type=media,
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Cache-Control": "no-store",
            },
        )

    @routes.get("/{person_id}/export.json")
    def export_json(request: Request, me: Coordinator, person_id: PersonId) -> Response:
        return _export(request, me, person_id, "json")

    @routes.get("/{person_id}/export.csv")
    def export_csv(request: Request, me: Coordinator, person_id: PersonId) -> Response:
        return _export(request, me, person_id, "csv")

    return routes


def _age(birth: date, today: date) -> int:
    had_birthday = (today.month, today.day) >= (birth.month, birth.day)
    return today.year - birth.year - (0 if had_birthday else 1)
