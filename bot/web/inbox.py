"""The handoff inbox: what needs attention, a young person's conversation, and its actions.

- ``GET /inbox`` (``?view=attention|open|pending|snoozed|resolved``): the list, scoped by
  ``storage.access`` (a kontaktperson their own young people and those they cover for, a
  coordinator their municipality; admins have no inbox).
- ``GET /inbox/{id}``: the whole thread with delivery status and plain-language reasons for
  failed SMS, the handoffs, the private notes and the reply box (``?canned=`` fills it with a
  canned reply). Every view is an audit event (``thread.viewed``).
- ``POST /inbox/{id}/take-over | reply | hand-back | notes | status``: CSRF-checked by the
  router, permission-checked here; a young person outside the reader's scope answers 404, so
  their existence is not revealed. Every change is audited.
- ``GET/POST /canned-replies``: a coordinator manages their municipality's canned replies.

Hooks for live updates: the list is ``<section id="inbox-list" data-live="inbox">``, the thread
``<ol id="thread" data-live="thread" data-young-person="{id}">``; both can be re-fetched whole.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from babel.dates import format_datetime, format_timedelta
from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from bot import sms_errors
from bot.i18n import available_languages, translate
from bot.inbox import MAX_REPLY, ActionRefused, Inbox
from bot.runtime import Runtime
from bot.web.auth import Refused, SignedIn, check_csrf, is_api_like, private, require_role
from bot.web.pages import Pages
from bot.web.staff import zone_of
from dialogs.i18n import N_
from dialogs.privacy import mask_cpr
from dialogs.types import (
    Author,
    Channel,
    DeliveryStatus,
    Direction,
    HandoffReason,
    HandoffStatus,
    Holder,
    Role,
    YoungPersonStatus,
)
from storage import audit, inbox
from storage.models import CannedReply, Conversation, Handoff, StaffUser, YoungPerson, utcnow
from storage.models import Message as ChatMessage

MAX_ID = 2**31 - 1
MAX_NOTE = 4000
MAX_SNOOZE = timedelta(days=90)
YoungPersonId = Annotated[int, Path(ge=1, le=MAX_ID)]
ReplyId = Annotated[int, Path(ge=1, le=MAX_ID)]
Reader = Annotated[SignedIn, Depends(require_role(Role.KONTAKTPERSON, Role.COORDINATOR))]
Coordinator = Annotated[SignedIn, Depends(require_role(Role.COORDINATOR))]
LongText = Annotated[str, Form(max_length=MAX_NOTE * 2)]
Short = Annotated[str, Form(max_length=1000)]

VIEWS = [
    (inbox.View.ATTENTION, N_("Kræver opmærksomhed")),
    (inbox.View.OPEN, N_("Åbne")),
    (inbox.View.PENDING, N_("Afventer den unge")),
    (inbox.View.SNOOZED, N_("Udsat")),
    (inbox.View.RESOLVED, N_("Løst")),
]
REASONS = {
    HandoffReason.ASKED: N_("Bad om at tale med en voksen"),
    HandoffReason.NOT_UNDERSTOOD: N_("Botten forstod ikke"),
    HandoffReason.DECLINED_MEETING: N_("Kan ikke komme til mødet"),
    HandoffReason.CRISIS: N_("Tegn på krise"),
    HandoffReason.CAMPAIGN_REPLY: N_("Svar på en kampagne"),
    HandoffReason.CANNOT_REACH: N_("Kan ikke nås"),
    HandoffReason.NEEDS_HELP: N_("Har brug for hjælp med et delmål"),
    HandoffReason.NO_SHOW: N_("Udeblev fra et møde"),
}
STATUSES = {
    HandoffStatus.OPEN: N_("Åben"),
    HandoffStatus.PENDING: N_("Afventer den unge"),
    HandoffStatus.SNOOZED: N_("Udsat"),
    HandoffStatus.RESOLVED: N_("Løst"),
}
DELIVERY = {
    DeliveryStatus.QUEUED: N_("I kø"),
    DeliveryStatus.SENDING: N_("Sendes"),
    DeliveryStatus.SENT: N_("Sendt"),
    DeliveryStatus.DELIVERED: N_("Leveret"),
    DeliveryStatus.UNDELIVERED: N_("Ikke leveret"),
    DeliveryStatus.FAILED: N_("Fejlede"),
    DeliveryStatus.UNKNOWN: N_("Ukendt"),
    DeliveryStatus.RECEIVED: N_("Modtaget"),
}
HOLDERS = {
    Holder.BOT: N_("Botten svarer."),
    Holder.WAITING_FOR_HUMAN: N_("Botten er stille og venter på, at en medarbejder tager over."),
    Holder.HUMAN: N_("{name} har overtaget samtalen. Botten er stille, undtagen ved krise."),
}
CHANNELS = {Channel.SMS: "SMS", Channel.TELEGRAM: "Telegram", Channel.SIMULATOR: N_("Simulator")}
NOT_DELIVERED = N_("Beskeden kunne ikke leveres.")
DONE = {
    "took_over": N_("Du har overtaget samtalen. Botten er stille, indtil du giver den tilbage."),
    "replied": N_("Svaret er lagt i kø til afsendelse."),
    "replied_took_over": N_(
        "Svaret er lagt i kø til afsendelse, og du har overtaget samtalen, så botten er stille."
    ),
    "handed_back": N_("Samtalen er givet tilbage til botten, og henvendelserne er løst."),
    "note": N_("Noten er gemt. Den unge kan ikke se den."),
    "status": N_("Status er ændret."),
    "canned_created": N_("Standardsvaret er oprettet."),
    "canned_updated": N_("Standardsvaret er gemt."),
}

Message = tuple[str, dict[str, Any]]


def _not_found(request: Request) -> Refused:
    return Refused(
        N_("Siden findes ikke, eller du har ikke adgang til den."),
        api=is_api_like(request),
        status=404,
    )


def waiting_text(since: datetime, now: datetime, language: str) -> str:
    return format_timedelta(
        max(now - since, timedelta(minutes=1)), granularity="minute", locale=language
    )


def moment_text(moment: datetime | None, zone: ZoneInfo, language: str) -> str:
    if moment is None:
        return ""
    return format_datetime(moment.astimezone(zone), "short", locale=language)


def _snooze_until(value: str, zone: ZoneInfo, now: datetime) -> datetime | None:
    """A ``datetime-local`` value (2026-12-01T09:00) in the municipality's zone."""
    try:
        local = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if local.tzinfo is not None or not 2000 <= local.year <= 2200:
        return None
    return local.replace(tzinfo=zone)


def router(runtime: Runtime, pages: Pages) -> APIRouter:
    routes = APIRouter(dependencies=[Depends(check_csrf)])
    database = runtime.database
    default_zone = runtime.settings.default_timezone
    actions = Inbox(database)

    def _done(request: Request) -> str | None:
        return DONE.get(request.query_params.get("done", ""))

    def _person(
        session: Session, request: Request, me: SignedIn, young_person_id: int
    ) -> tuple[StaffUser, YoungPerson]:
        staff = me.load(session)
        person = inbox.visible_person(session, staff, young_person_id, utcnow())
        if person is None:
            raise _not_found(request)
        return staff, person

    # ------------------------------------------------------------------------ the list

    @routes.get("/inbox", response_class=HTMLResponse)
    def inbox_list(
        request: Request, me: Reader, view: Annotated[str, Query(max_length=20)] = "attention"
    ) -> Response:
        language = pages.language(request)
        try:
            chosen = inbox.View(view)
        except ValueError:
            chosen = inbox.View.ATTENTION
        now = utcnow()
        with database.session() as session:
            staff = me.load(session)
            rows = inbox.needs_attention(session, staff, now, chosen)
            zone = zone_of(staff.municipality, default_zone)
            audit.record(
                session,
                actor=me.audit_name,
                action="inbox.listed",
                staff_id=me.id,
                municipality_id=me.municipality_id,
                details={"view": chosen.value, "young_people": [r.young_person_id for r in rows]},
            )
        shown = [
            {
                "id": row.young_person_id,
                "first_name": row.first_name,
                "kind": row.kind.value,
                "reason": REASONS.get(row.reason) if row.reason else None,
                "status": STATUSES.get(row.status) if row.status else None,
                "status_key": row.status.value if row.status else None,
                "waiting": waiting_text(row.waiting_since, now, language),
                "since": row.waiting_since.isoformat(),
                "since_text": moment_text(row.waiting_since, zone, language),
                "assignee": row.assignee,
                "snippet": row.snippet,
                "from_young_person": row.snippet_author is Author.YOUNG_PERSON,
                "failure": (
                    sms_errors.explain(row.error_code, language)
                    or translate(language, NOT_DELIVERED)
                    if row.kind is inbox.Kind.FAILED or row.error_code
                    else None
                ),
                "snoozed_until": moment_text(row.snoozed_until, zone, language),
            }
            for row in rows
        ]
        return private(
            pages, request, "inbox.html", me=me, rows=shown, views=VIEWS, view=chosen.value
        )

    # ------------------------------------------------------------------------ one thread

    def _thread_page(
        request: Request,
        me: SignedIn,
        young_person_id: int,
        *,
        errors: dict[str, Message] | None = None,
        values: dict[str, str] | None = None,
        status: int = 200,
        canned: int | None = None,
    ) -> Response:
        language = pages.language(request)
        now = utcnow()
        values = dict(values or {})
        with database.session() as session:
            staff, person = _person(session, request, me, young_person_id)
            zone = zone_of(person.municipality, default_zone)
            conversation = session.scalar(
                sa.select(Conversation).where(Conversation.young_person_id == person.id)
            )
            holder = conversation.holder if conversation is not None else Holder.BOT
            held_by = (
                session.get(StaffUser, conversation.held_by_id)
                if conversation is not None and conversation.held_by_id is not None
                else None
            )
            messages = inbox.thread(session, person.id)
            authors = _names(session, {m.staff_id for m in messages if m.staff_id})
            shown_messages = [_message(m, authors, zone, language) for m in messages]
            handoffs = _handoffs(session, person.id, zone, language, now)
            notes = [
                {
                    "text": note.text,
                    "author": name,
                    "at": moment_text(note.created_at, zone, language),
                    "iso": note.created_at.isoformat(),
                }
                for note, name in inbox.notes(session, person.id)
            ]
            replies = inbox.canned_replies(session, person.municipality_id)
            if canned is not None and "reply" not in values:
                chosen = inbox.canned_reply(session, person.municipality_id, canned)
                if chosen is not None and chosen.active:
                    values["reply"] = inbox.canned_text(chosen, person.language)
            audit.record(
                session,
                actor=me.audit_name,
                action="thread.viewed",
                staff_id=me.id,
                municipality_id=person.municipality_id,
                young_person_id=person.id,
            )
            context = {
                "person": {
                    "id": person.id,
                    "first_name": person.first_name,
                    "language": person.language,
                    "opted_out": person.status is YoungPersonStatus.OPTED_OUT,
                    "closed": person.status is YoungPersonStatus.CLOSED,
                    "kontaktperson": person.kontaktperson.name if person.kontaktperson else None,
                },
                "holder": holder.value,
                "holder_text": HOLDERS[holder],
                "held_by": held_by.name if held_by is not None else "",
                "held_by_me": held_by is not None and held_by.id == staff.id,
                "messages": shown_messages,
                "handoffs": handoffs,
                "has_unresolved": any(h["unresolved"] for h in handoffs),
                "current_status": handoffs[0]["status_key"] if handoffs else "",
                "notes": notes,
                "canned": [(r.id, r.title, inbox.canned_text(r, person.language)) for r in replies],
                "canned_chosen": str(canned or ""),
                "statuses": [(s.value, STATUSES[s]) for s in HandoffStatus],
            }
        response = private(
            pages,
            request,
            "conversation.html",
            me=me,
            errors=errors or {},
            values=values,
            done=_done(request),
            **context,
        )
        response.status_code = status
        return response

    @routes.get("/inbox/{young_person_id}", response_class=HTMLResponse)
    def thread(
        request: Request,
        me: Reader,
        young_person_id: YoungPersonId,
        canned: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    ) -> Response:
        return _thread_page(request, me, young_person_id, canned=canned)

    def _check(request: Request, me: SignedIn, young_person_id: int) -> None:
        with database.session() as session:
            _person(session, request, me, young_person_id)

    def _back(young_person_id: int, done: str) -> RedirectResponse:
        return RedirectResponse(f"/inbox/{young_person_id}?done={done}", status_code=303)

    @routes.post("/inbox/{young_person_id}/take-over")
    def take_over(request: Request, me: Reader, young_person_id: YoungPersonId) -> Response:
        _check(request, me, young_person_id)
        actions.take_over(me.id, young_person_id)
        return _back(young_person_id, "took_over")

    @routes.post("/inbox/{young_person_id}/hand-back")
    def hand_back(request: Request, me: Reader, young_person_id: YoungPersonId) -> Response:
        _check(request, me, young_person_id)
        actions.hand_back(me.id, young_person_id)
        return _back(young_person_id, "handed_back")

    @routes.post("/inbox/{young_person_id}/reply", response_class=HTMLResponse)
    def reply(
        request: Request, me: Reader, young_person_id: YoungPersonId, text: LongText = ""
    ) -> Response:
        _check(request, me, young_person_id)
        values = {"reply": text}
        error: Message | None = None
        if not text.strip():
            error = (N_("Skriv et svar, før du sender."), {})
        elif len(text) > MAX_REPLY:
            error = (N_("Svaret må højst være {n} tegn."), {"n": MAX_REPLY})
        if error is None:
            try:
                sent = actions.reply(me.id, young_person_id, text.strip())
            except ActionRefused as refused:
                error = (refused.message, dict(refused.params))
            else:
                runtime.pump.kick()  # send it now, not at the worker's next sweep
                return _back(young_person_id, "replied_took_over" if sent.took_over else "replied")
        return _thread_page(
            request, me, young_person_id, errors={"reply": error}, values=values, status=400
        )

    @routes.post("/inbox/{young_person_id}/notes", response_class=HTMLResponse)
    def add_note(
        request: Request, me: Reader, young_person_id: YoungPersonId, text: LongText = ""
    ) -> Response:
        error: Message | None = None
        if not text.strip():
            error = (N_("Skriv noten, før du gemmer."), {})
        elif len(text) > MAX_NOTE:
            error = (N_("Noten må højst være {n} tegn."), {"n": MAX_NOTE})
        if error is not None:
            _check(request, me, young_person_id)
            return _thread_page(
                request,
                me,
                young_person_id,
                errors={"note": error},
                values={"note": text},
                status=400,
            )
        with database.session() as session:
            staff, person = _person(session, request, me, young_person_id)
            inbox.add_note(
                session,
                young_person=person,
                author=staff,
                text=mask_cpr(text.strip()),
                now=utcnow(),
            )
        return _back(young_person_id, "note")

    @routes.post("/inbox/{young_person_id}/status", response_class=HTMLResponse)
    def set_status(
        request: Request,
        me: Reader,
        young_person_id: YoungPersonId,
        status: Short = "",
        until: Short = "",
    ) -> Response:
        values = {"status": status, "until": until}
        now = utcnow()
        error: tuple[str, Message] | None = None
        try:
            chosen = HandoffStatus(status)
        except ValueError:
            chosen = None
            error = ("status", (N_("Vælg en status."), {}))
        with database.session() as session:
            staff, person = _person(session, request, me, young_person_id)
            zone = zone_of(person.municipality, default_zone)
            moment = None
            if chosen is HandoffStatus.SNOOZED:
                moment = _snooze_until(until, zone, now)
                if moment is None:
                    error = (
                        "until",
                        (N_("Vælg dato og klokkeslæt for, hvornår den skal åbne igen."), {}),
                    )
                elif moment <= now:
                    error = ("until", (N_("Tidspunktet skal ligge ude i fremtiden."), {}))
                elif moment > now + MAX_SNOOZE:
                    error = (
                        "until",
                        (N_("Man kan højst udsætte {days} dage."), {"days": MAX_SNOOZE.days}),
                    )
            if error is None and chosen is not None:
                changed = inbox.set_status(
                    session,
                    young_person=person,
                    staff=staff,
                    status=chosen,
                    now=now,
                    snoozed_until=moment,
                )
                if not changed:
                    error = (
                        "status",
                        (
                            N_("{name} har ingen henvendelse, hvis status kan ændres."),
                            {"name": person.first_name},
                        ),
                    )
        if error is not None:
            return _thread_page(
                request,
                me,
                young_person_id,
                errors={error[0]: error[1]},
                values=values,
                status=400,
            )
        return _back(young_person_id, "status")

    # ------------------------------------------------------------------------ canned replies

    def _languages() -> list[str]:
        return [code for code in available_languages() if code != "da"]

    def _canned_page(
        request: Request,
        me: SignedIn,
        *,
        errors: dict[str, Message] | None = None,
        values: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        with database.session() as session:
            staff = me.load(session)
            replies = [
                {
                    "id": r.id,
                    "title": r.title,
                    "text": r.text,
                    "translations": dict(r.translations),
                    "active": r.active,
                }
                for r in (
                    inbox.canned_replies(session, staff.municipality_id, active_only=False)
                    if staff.municipality_id is not None
                    else []
                )
            ]
        response = private(
            pages,
            request,
            "canned_replies.html",
            me=me,
            replies=replies,
            languages=_languages(),
            errors=errors or {},
            values=values or {},
            done=_done(request),
        )
        response.status_code = status
        return response

    @routes.get("/canned-replies", response_class=HTMLResponse)
    def canned_list(request: Request, me: Coordinator) -> Response:
        return _canned_page(request, me)

    async def _translations(request: Request) -> dict[str, str]:
        form = await request.form()
        found: dict[str, str] = {}
        for code in _languages():
            value = form.get(f"text_{code}")
            if isinstance(value, str) and value.strip():
                found[code] = value.strip()[:MAX_REPLY]
        return found

    def _canned_errors(title: str, text: str) -> dict[str, Message]:
        errors: dict[str, Message] = {}
        if not title.strip():
            errors["title"] = (N_("Giv standardsvaret en titel."), {})
        elif len(title.strip()) > 120:
            errors["title"] = (N_("Titlen må højst være {n} tegn."), {"n": 120})
        if not text.strip():
            errors["text"] = (N_("Skriv teksten på dansk."), {})
        elif len(text) > MAX_REPLY:
            errors["text"] = (N_("Teksten må højst være {n} tegn."), {"n": MAX_REPLY})
        return errors

    @routes.post("/canned-replies", response_class=HTMLResponse)
    async def canned_create(
        request: Request, me: Coordinator, title: Short = "", text: LongText = ""
    ) -> Response:
        translations = await _translations(request)
        errors = _canned_errors(title, text)
        if errors:
            values = {"title": title, "text": text} | {
                f"text_{k}": v for k, v in translations.items()
            }
            return _canned_page(request, me, errors=errors, values=values, status=400)
        with database.session() as session:
            staff = me.load(session)
            if staff.municipality_id is None:
                raise _not_found(request)
            reply = CannedReply(
                municipality_id=staff.municipality_id,
                title=title.strip(),
                text=text.strip(),
                translations=translations,
                created_by_id=staff.id,
                active=True,
            )
            session.add(reply)
            session.flush()
            audit.record(
                session,
                actor=me.audit_name,
                action="canned_reply.created",
                staff_id=me.id,
                municipality_id=staff.municipality_id,
                details={"canned_reply_id": reply.id},
            )
        return RedirectResponse("/canned-replies?done=canned_created", status_code=303)

    @routes.post("/canned-replies/{reply_id}", response_class=HTMLResponse)
    async def canned_update(
        request: Request,
        me: Coordinator,
        reply_id: ReplyId,
        title: Short = "",
        text: LongText = "",
        active: Short = "",
    ) -> Response:
        translations = await _translations(request)
        errors = _canned_errors(title, text)
        with database.session() as session:
            staff = me.load(session)
            reply = (
                inbox.canned_reply(session, staff.municipality_id, reply_id)
                if staff.municipality_id is not None
                else None
            )
            if reply is None:
                raise _not_found(request)
            if not errors:
                reply.title = title.strip()
                reply.text = text.strip()
                reply.translations = translations
                reply.active = bool(active)
                audit.record(
                    session,
                    actor=me.audit_name,
                    action="canned_reply.updated",
                    staff_id=me.id,
                    municipality_id=staff.municipality_id,
                    details={"canned_reply_id": reply.id, "active": reply.active},
                )
        if errors:
            keyed = {f"{key}_{reply_id}": message for key, message in errors.items()}
            return _canned_page(request, me, errors=keyed, status=400)
        return RedirectResponse("/canned-replies?done=canned_updated", status_code=303)

    return routes


def _names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(
        session.execute(sa.select(StaffUser.id, StaffUser.name).where(StaffUser.id.in_(ids))).all()
    )


def _message(
    message: ChatMessage, authors: dict[int, str], zone: ZoneInfo, language: str
) -> dict[str, Any]:
    outgoing = message.direction is Direction.OUTBOUND
    failed = message.status in inbox.FAILED
    reason = None
    if failed:
        reason = (
            sms_errors.explain(message.error_code, language)
            if message.channel is Channel.SMS and message.error_code
            else None
        )
    return {
        "id": message.id,
        "author": message.author.value,
        "staff_name": authors.get(message.staff_id) if message.staff_id else None,
        "outgoing": outgoing,
        "text": message.text,
        "at": moment_text(message.created_at, zone, language),
        "iso": message.created_at.isoformat(),
        "channel": CHANNELS.get(message.channel, message.channel.value),
        "status": DELIVERY.get(message.status) if outgoing else None,
        "status_key": message.status.value,
        "failed": failed,
        "reason": reason or (translate(language, NOT_DELIVERED) if failed else None),
    }


def _handoffs(
    session: Session, young_person_id: int, zone: ZoneInfo, language: str, now: datetime
) -> list[dict[str, Any]]:
    rows = session.execute(
        sa.select(Handoff, StaffUser.name)
        .outerjoin(StaffUser, StaffUser.id == Handoff.assignee_id)
        .where(Handoff.young_person_id == young_person_id)
        .order_by(Handoff.opened_at.desc(), Handoff.id.desc())
        .limit(10)
    ).all()
    shown = []
    for handoff, assignee in rows:
        status = inbox.effective_status(handoff, now)
        shown.append(
            {
                "id": handoff.id,
                "reason": REASONS.get(handoff.reason, handoff.reason.value),
                "urgent": handoff.priority.value == "urgent",
                "status": STATUSES[status],
                "status_key": status.value,
                "unresolved": status is not HandoffStatus.RESOLVED,
                "opened": moment_text(handoff.opened_at, zone, language),
                "answered": moment_text(handoff.first_human_answer_at, zone, language),
                "snoozed_until": (
                    moment_text(handoff.snoozed_until, zone, language)
                    if status is HandoffStatus.SNOOZED
                    else ""
                ),
                "assignee": assignee,
                "note": handoff.note,
            }
        )
    return shown
