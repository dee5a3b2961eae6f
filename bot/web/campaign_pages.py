"""Campaigns in the browser, for coordinators and their own municipality only.

- ``GET /campaigns``: the municipality's campaigns with their status and progress.
- ``GET /campaigns/new`` and ``POST /campaigns``: the builder. One form: the audience filters
  (``bot/web/audience.py``) with a count that follows them (``GET /campaigns/count``, called by
  ``static/campaigns.js``; without a script the "Opdater antal" button asks the server), a
  dialog or a message per language, a schedule (now, once, a cron recurrence or days before each
  meeting) and a rate. "Vis forhåndsvisning" shows, per language, the message with a real first
  name, its SMS encoding, segments and estimated cost, the LIX of a Danish text, sensitive words
  and quiet hours; every young person whose name it shows is audited as read (as the API does).
  Creating writes a draft, or a live campaign at once.
- ``GET /campaigns/{id}``: the campaign with its progress (queued, sent, delivered, replied,
  failed, skipped and why), refreshed every two seconds by the script from
  ``GET /campaigns/{id}/progress.json``; without a script the numbers are those of the render.
- ``POST /campaigns/{id}/schedule|pause|resume|cancel``: audited; cancelling asks first.

A campaign of another municipality answers 404, so its existence is not revealed. The router
checks the CSRF token of every POST.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from babel.numbers import format_currency, format_decimal
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from bot.campaigns import CampaignError, Spec, check_template, cron_trigger, next_fire, render
from bot.conversations import Conversations
from bot.formatting import format_moment
from bot.i18n import available_languages, translate
from bot.lexicons import SHIPPED, all_lexicons
from bot.quiet import quiet_hours
from bot.runtime import Runtime
from bot.web import audience as filters
from bot.web.api import audit_shown, build_spec, next_run_at
from bot.web.auth import Refused, SignedIn, check_csrf, is_api_like, private, require_role
from bot.web.forms import parse_day, parse_time
from bot.web.pages import Pages
from bot.web.people import STATUS_LABELS, language_name
from dialogs.check import check_text
from dialogs.i18n import N_
from dialogs.readability import lix, lix_label
from dialogs.sms import count_segments, sms_text
from dialogs.timing import QuietHours, local_moment
from dialogs.types import CampaignStatus, Channel, Role
from storage import audit
from storage import campaigns as repo
from storage.campaigns import Audience, AudienceError
from storage.models import Campaign, Municipality, StaffUser, YoungPerson, utcnow

MAX_ID = 2**31 - 1
CampaignId = Annotated[int, Path(ge=1, le=MAX_ID)]
Coordinator = Annotated[SignedIn, Depends(require_role(Role.COORDINATOR))]
Error = tuple[str, dict[str, Any]]

MAX_NAME = 200
MAX_TEXT = 1600  # as the API: ten SMS segments
MAX_CRON = 120
MAX_RATE = 100_000
MAX_OFFSET_DAYS = 365
FIRE_TIMES = 3
MAX_SPREAD_DAYS = 366  # how far ahead a slow rate is followed into quiet hours
# Shown when nobody in the audience speaks a language that has a text.
SAMPLE_NAME = "Alex"
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

STATUS_NAMES = {
    CampaignStatus.DRAFT: N_("Kladde"),
    CampaignStatus.SCHEDULED: N_("Planlagt"),
    CampaignStatus.RUNNING: N_("Sender"),
    CampaignStatus.PAUSED: N_("Sat på pause"),
    CampaignStatus.FINISHED: N_("Færdig"),
    CampaignStatus.CANCELLED: N_("Stoppet"),
}
# The order the progress is read in, with its labels.
PROGRESS = {
    "pending": N_("Venter"),
    "queued": N_("I kø"),
    "sent": N_("Sendt"),
    "delivered": N_("Leveret"),
    "replied": N_("Har svaret"),
    "failed": N_("Fejlet"),
    "skipped": N_("Sprunget over"),
}
REASONS = {
    "opted_out": N_("den unge har frameldt sig"),
    "closed": N_("forløbet er afsluttet"),
    "no_channel": N_("den unge kan ikke nås på sms eller Telegram"),
    "with_staff": N_("en medarbejder taler med den unge"),
    "conversation_busy": N_("den unge er midt i en anden samtale"),
    "meeting_changed": N_("mødet er flyttet eller aflyst"),
    "campaign_cancelled": N_("kampagnen blev stoppet"),
    "quiet_hours": N_("venter på, at de stille timer slutter"),
    "due_time": N_("venter på sit tidspunkt"),
    "unknown": N_("ukendt årsag"),
}
# Core dialogs a campaign may start (those that need no meeting or sub-goal).
DIALOG_NAMES = {
    "welcome": N_("Velkomst: botten præsenterer sig og spørger om lov"),
    "dreams": N_("Drømme: botten spørger til drømme og styrker"),
    "silence_follow_up": N_("Opfølgning: et venligt skub efter stilhed"),
}
DONE = {
    "created": N_("Kampagnen er gemt som kladde."),
    "scheduled": N_("Kampagnen er planlagt."),
    "paused": N_("Kampagnen er sat på pause. Intet sendes, før du genoptager den."),
    "resumed": N_("Kampagnen er genoptaget."),
    "cancelled": N_("Kampagnen er stoppet. Intet mere bliver sendt."),
}
WHEN = ("now", "once", "cron", "relative")
ACTIONS = ("count", "preview", "draft", "schedule")


# ---------------------------------------------------------------------------- reading the form


@dataclass
class Builder:
    """What the builder's form asked for, what was wrong, and the spec's parts once read."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, Error] = field(default_factory=dict)
    audience_form: filters.AudienceForm = field(default_factory=filters.AudienceForm)
    dialog: str | None = None
    template: dict[str, str] | None = None
    starts_at: datetime | None = None
    cron: str | None = None
    relative: dict[str, Any] | None = None
    rate_per_minute: int | None = None


def campaign_languages() -> list[str]:
    known = set(available_languages()) | {"da"}
    return [code for code in SHIPPED if code in known]


def _text(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    return value.strip() if isinstance(value, str) else ""


def read_builder(
    params: Mapping[str, Any],
    *,
    kontaktperson_ids: Sequence[int],
    dialogs: Sequence[str],
    zone: ZoneInfo,
    now: datetime,
    need_name: bool,
    need_content: bool,
) -> Builder:
    """The builder's form, field by field; each error is keyed by the id of its field."""
    built = Builder()
    built.audience_form = filters.read_audience(
        params, kontaktperson_ids=kontaktperson_ids, reachable_only=True
    )
    values, errors = built.values, built.errors
    values["name"] = _text(params, "name")
    if need_name and not values["name"]:
        errors["name"] = (N_("Giv kampagnen et navn."), {})
    elif len(values["name"]) > MAX_NAME:
        errors["name"] = (N_("Højst {n} tegn."), {"n": MAX_NAME})

    values["content"] = _text(params, "content") or "message"
    values["dialog"] = _text(params, "dialog")
    for language in campaign_languages():
        values[f"text_{language}"] = str(params.get(f"text_{language}") or "").strip()
    if need_content:
        _read_content(built, dialogs)
    _read_schedule(params, built, zone, now)
    return built


def _read_content(built: Builder, dialogs: Sequence[str]) -> None:
    values, errors = built.values, built.errors
    if values["content"] == "dialog":
        if values["dialog"] not in dialogs:
            errors["dialog"] = (N_("Vælg en samtale fra listen."), {})
        else:
            built.dialog = values["dialog"]
        return
    if values["content"] != "message":
        errors["content"] = (N_("Vælg en samtale eller en besked."), {})
        return
    template: dict[str, str] = {}
    for language in campaign_languages():
        text = values[f"text_{language}"]
        if not text:
            continue
        unknown = sorted(set(_PLACEHOLDER.findall(text)) - {"first_name"})
        if len(text) > MAX_TEXT:
            errors[f"text_{language}"] = (N_("Højst {n} tegn."), {"n": MAX_TEXT})
        elif unknown or text.count("{") != text.count("}"):
            errors[f"text_{language}"] = (
                N_("Den eneste variabel er {name}; skriv den præcis sådan."),
                {"name": "{first_name}"},
            )
        else:
            template[language] = text
    if not template and not any(key.startswith("text_") for key in errors):
        errors["text_da"] = (N_("Skriv beskeden på mindst ét sprog, helst dansk."), {})
    if template:
        try:
            check_template(template)
        except CampaignError:
            errors["text_da"] = (N_("Beskeden kan ikke bruges. Tjek teksten."), {})
        built.template = template


def _read_schedule(
    params: Mapping[str, Any], built: Builder, zone: ZoneInfo, now: datetime
) -> None:
    values, errors = built.values, built.errors
    for name in ("when", "date", "time", "cron", "offset_days", "direction", "rate", "rate_unit"):
        values[name] = _text(params, name)
    values["when"] = values["when"] or "now"
    values["direction"] = values["direction"] or "before"
    values["rate_unit"] = values["rate_unit"] or "minute"
    when = values["when"]
    if when not in WHEN:
        errors["when"] = (N_("Vælg, hvornår kampagnen skal sendes."), {})
    elif when == "once":
        day, at = parse_day(values["date"]), parse_time(values["time"])
        if day is None:
            errors["date"] = (N_("Skriv en dato, fx 24-12-2026."), {})
        if at is None:
            errors["time"] = (N_("Skriv et klokkeslæt, fx 14:30."), {})
        if day is not None and at is not None:
            moment = datetime.combine(day, at, zone).astimezone(UTC)
            if moment < now - timedelta(minutes=1):
                errors["date"] = (N_("Tidspunktet er passeret. Vælg et senere, eller vælg Nu."), {})
            else:
                built.starts_at = moment
    elif when == "cron":
        if not values["cron"] or len(values["cron"]) > MAX_CRON:
            errors["cron"] = (N_("Skriv et cron-udtryk, fx 0 9 * * mon (mandag kl. 9)."), {})
        else:
            try:
                cron_trigger(values["cron"], zone)
                next_fire(values["cron"], zone, now)
            except CampaignError:
                errors["cron"] = (
                    N_("Cron-udtrykket kan ikke læses. Skriv fx 0 9 * * mon (mandag kl. 9)."),
                    {},
                )
            else:
                built.cron = values["cron"]
    elif when == "relative":
        raw = values["offset_days"]
        if not raw.isdigit() or int(raw) > MAX_OFFSET_DAYS:
            errors["offset_days"] = (
                N_("Skriv et helt tal fra 0 til {largest}."),
                {"largest": MAX_OFFSET_DAYS},
            )
        elif values["direction"] not in ("before", "after"):
            errors["direction"] = (N_("Vælg før eller efter mødet."), {})
        else:
            minutes = int(raw) * 24 * 60
            built.relative = {
                "anchor": "meeting",
                "offset_minutes": -minutes if values["direction"] == "before" else minutes,
            }
    rate = values["rate"]
    if rate:
        if not rate.isdigit() or not 1 <= int(rate) <= MAX_RATE:
            errors["rate"] = (N_("Skriv et helt tal fra 1 til {largest}."), {"largest": MAX_RATE})
        elif values["rate_unit"] not in ("minute", "second"):
            errors["rate_unit"] = (N_("Vælg pr. minut eller pr. sekund."), {})
        else:
            per_unit = int(rate)
            per_minute = per_unit * 60 if values["rate_unit"] == "second" else per_unit
            if per_minute > MAX_RATE:
                errors["rate"] = (
                    N_("Højst {largest} beskeder i minuttet."),
                    {"largest": MAX_RATE},
                )
            else:
                built.rate_per_minute = per_minute


# ---------------------------------------------------------------------------- the preview


@dataclass(frozen=True)
class LanguagePreview:
    language: str
    name: str  # the language's name in the reader's language
    recipients: int
    on_sms: int
    on_telegram: int
    unreachable: int
    first_name: str
    real_name: bool  # a young person of the audience, or the sample name
    young_person_id: int | None
    text: str | None
    text_language: str | None  # the template's language used, when not this one
    right_to_left: bool
    encoding: str | None
    segments: int | None
    units: int | None
    cost: str | None
    lix: str | None
    lix_label: str | None
    sensitive: tuple[str, ...]


@dataclass(frozen=True)
class Preview:
    count: int
    languages: tuple[LanguagePreview, ...]
    fire_times: tuple[str, ...]
    quiet: tuple[tuple[str, str], ...]  # (send time, deferred to)
    shown: tuple[int, ...]
    total_cost: str | None
    # A rate that spreads the first run into quiet hours: (last due time, quiet from, until).
    spread: tuple[str, str, str] | None = None


def segment_price(place: Municipality, default_ore: int) -> int:
    """Øre a segment: the municipality's own price, else the installation's."""
    raw = (place.sender_settings or {}).get("sms_segment_price_ore")
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    return default_ore


def money(ore: int, language: str) -> str:
    return str(format_currency(ore / 100, "DKK", locale=language)).replace("\u00a0", " ")


def first_quiet(quiet: QuietHours, start: datetime, end: datetime) -> datetime | None:
    """The first moment after ``start`` and no later than ``end`` when the quiet hours begin."""
    if end - start > timedelta(days=MAX_SPREAD_DAYS):
        end = start + timedelta(days=MAX_SPREAD_DAYS)
    day = start.astimezone(quiet.zone).date()
    while local_moment(day, time(0), quiet.zone) <= end:
        starts = [local_moment(day, quiet.start, quiet.zone)]
        if quiet.weekends:
            starts.append(local_moment(day, time(0), quiet.zone))
        for moment in sorted(starts):
            if start < moment <= end and quiet.is_quiet(moment):
                return moment
        day += timedelta(days=1)
    return None


def send_times(spec: Spec, zone: ZoneInfo, now: datetime) -> list[datetime]:
    """When the campaign's runs start: now, the chosen time, or the next cron times."""
    if spec.relative is not None:
        return []
    if spec.cron:
        times: list[datetime] = []
        after = max(spec.starts_at or now, now)
        for _ in range(FIRE_TIMES):
            after = next_fire(spec.cron, zone, after)
            times.append(after)
        return times
    return [spec.starts_at or now]


def build_preview(
    session: Session,
    place: Municipality,
    spec: Spec,
    *,
    now: datetime,
    language: str,
    price_ore: int,
) -> Preview:
    """The preview per language of the audience (and of every language with a text)."""
    zone = ZoneInfo(place.timezone)
    query = repo.audience_query(spec.audience, place.id, today=now.astimezone(zone).date(), now=now)
    people = session.scalars(
        sa.select(YoungPerson).where(YoungPerson.id.in_(query)).order_by(YoungPerson.id)
    ).all()
    groups: dict[str, list[YoungPerson]] = {}
    for person in people:
        groups.setdefault(person.language, []).append(person)
    template = spec.template or {}
    order = [*SHIPPED, *sorted(set(groups) - set(SHIPPED))]
    lexicons = all_lexicons()
    shown: list[int] = []
    total_ore = 0
    previews: list[LanguagePreview] = []
    for code in order:
        members = groups.get(code, [])
        if not members and code not in template:
            continue
        example = members[0] if members else None
        first_name = example.first_name if example is not None else SAMPLE_NAME
        if example is not None:
            shown.append(example.id)
        channels = [Conversations._channel_for(person) for person in members]
        on_sms = [p for p, c in zip(members, channels, strict=True) if c is Channel.SMS]
        text = uses = encoding = cost = lix_text = lix_band = None
        segments = units = None
        sensitive: tuple[str, ...] = ()
        if template:
            uses = next(
                (c for c in (code, place.default_language, "da") if c in template),
                next(iter(template)),
            )
            text = render(template, code, place.default_language, first_name)
            counted = count_segments(sms_text(text))
            encoding, segments, units = counted.encoding, counted.count, counted.units
            ore = price_ore * sum(
                count_segments(
                    sms_text(render(template, code, place.default_language, p.first_name))
                ).count
                for p in on_sms
            )
            total_ore += ore
            cost = money(ore, language)
            if uses == "da":
                score = lix(text)
                lix_text = str(format_decimal(round(score), locale=language))
                lix_band = lix_label(score)
            sensitive = tuple(
                problem.detail
                for problem in check_text(
                    template[uses],
                    dialog="campaign",
                    step=spec.name,
                    source=template[uses],
                    language=uses,
                    allowed={"first_name"},
                    lexicons=lexicons,
                    values={"first_name": first_name},
                )
                if problem.kind == "sensitive-word"
            )
        previews.append(
            LanguagePreview(
                language=code,
                name=language_name(code, language),
                recipients=len(members),
                on_sms=len(on_sms),
                on_telegram=sum(1 for c in channels if c is Channel.TELEGRAM),
                unreachable=sum(1 for c in channels if c is None),
                first_name=first_name,
                real_name=example is not None,
                young_person_id=example.id if example is not None else None,
                text=text,
                text_language=(
                    language_name(uses, language) if uses is not None and uses != code else None
                ),
                right_to_left=bool(lexicons.get(code) and lexicons[code].right_to_left),
                encoding=encoding,
                segments=segments,
                units=units,
                cost=cost,
                lix=lix_text,
                lix_label=lix_band,
                sensitive=sensitive,
            )
        )
    quiet = quiet_hours(place)
    times = send_times(spec, zone, now)
    deferred = tuple(
        (format_moment(t, language, zone), format_moment(quiet.next_allowed(t), language, zone))
        for t in times
        if quiet.is_quiet(t)
    )
    spread = None
    if spec.rate_per_minute and len(people) > 1 and times and not quiet.is_quiet(times[0]):
        last = times[0] + timedelta(seconds=60 * (len(people) - 1) / spec.rate_per_minute)
        begins = first_quiet(quiet, times[0], last)
        if begins is not None:
            spread = (
                format_moment(last, language, zone),
                format_moment(begins, language, zone),
                format_moment(quiet.next_allowed(begins), language, zone),
            )
    return Preview(
        spread=spread,
        count=len(people),
        languages=tuple(previews),
        fire_times=tuple(format_moment(t, language, zone) for t in times) if spec.cron else (),
        quiet=deferred,
        shown=tuple(shown),
        total_cost=money(total_ore, language) if template else None,
    )


# ---------------------------------------------------------------------------- the router


def _not_found(request: Request) -> Refused:
    return Refused(
        N_("Siden findes ikke, eller du har ikke adgang til den."),
        api=is_api_like(request),
        status=404,
    )


def count_text(language: str, count: int) -> str:
    if count == 1:
        return translate(language, N_("Kampagnen når 1 ung."))
    return translate(language, N_("Kampagnen når {n} unge."), n=count)


def router(runtime: Runtime, pages: Pages) -> APIRouter:
    routes = APIRouter(prefix="/campaigns", dependencies=[Depends(check_csrf)])
    database = runtime.database

    def _place(session: Session, request: Request, me: SignedIn) -> Municipality:
        if me.municipality_id is None:
            raise Refused(N_("Du har ikke adgang til denne side."), api=is_api_like(request))
        return session.get_one(Municipality, me.municipality_id)

    def _owned(session: Session, request: Request, me: SignedIn, campaign_id: int) -> Campaign:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.municipality_id != me.municipality_id:
            raise _not_found(request)
        return campaign

    def _record(me: SignedIn, action: str, campaign_id: int, **details: Any) -> None:
        with database.session() as session:
            campaign = session.get_one(Campaign, campaign_id)
            audit.record(
                session,
                actor=me.audit_name,
                action=action,
                staff_id=me.id,
                municipality_id=campaign.municipality_id,
                details={"campaign_id": campaign_id, **details},
            )

    def _dialogs() -> list[str]:
        known = runtime.engine.dialogs
        return [name for name in DIALOG_NAMES if name in known and not known[name].requires]

    def _choices(session: Session, place: Municipality) -> filters.Choices:
        return filters.choices(session, place.id, STATUS_LABELS, reachable_only=True)

    # ------------------------------------------------------------------------ the list

    @routes.get("")
    def campaign_list(request: Request, me: Coordinator) -> Response:
        language = pages.language(request)
        with database.session() as session:
            place = _place(session, request, me)
            zone = ZoneInfo(place.timezone)
            found = session.scalars(
                sa.select(Campaign)
                .where(Campaign.municipality_id == place.id)
                .order_by(Campaign.id.desc())
            ).all()
            rows = []
            for campaign in found:
                progress = repo.progress(session, campaign.id)
                upcoming = next_run_at(session, campaign.id)
                rows.append(
                    {
                        "id": campaign.id,
                        "name": campaign.name,
                        "status": STATUS_NAMES[campaign.status],
                        "status_value": campaign.status.value,
                        "total": progress.total,
                        "counts": _counts(progress.by_status),
                        "next": format_moment(upcoming, language, zone) if upcoming else "",
                    }
                )
        return private(pages, request, "campaigns.html", me=me, rows=rows, progress=PROGRESS)

    # ------------------------------------------------------------------------ the builder

    def _builder(
        request: Request,
        me: SignedIn,
        built: Builder | None,
        *,
        count: int | None = None,
        preview: Preview | None = None,
        status: int = 200,
    ) -> Response:
        language = pages.language(request)
        with database.session() as session:
            place = _place(session, request, me)
            choices = _choices(session, place)
            zone = ZoneInfo(place.timezone)
            if built is None:
                built = Builder()
                built.values.update(content="message", when="now", direction="before")
                built.audience_form = filters.read_audience(
                    {}, kontaktperson_ids=choices.kontaktperson_ids, reachable_only=True
                )
            if count is None and built.audience_form.audience is not None:
                now = utcnow()
                count = repo.count_audience(
                    session,
                    built.audience_form.audience,
                    place.id,
                    today=now.astimezone(zone).date(),
                    now=now,
                )
        summary = [
            (f"aud-{name}", message) for name, message in built.audience_form.errors.items()
        ] + list(built.errors.items())
        response = private(
            pages,
            request,
            "campaign_new.html",
            me=me,
            values=built.values,
            errors=built.errors,
            summary=summary,
            audience_form=built.audience_form,
            choices=choices,
            count=count,
            count_text=count_text(language, count) if count is not None else None,
            preview=preview,
            languages=[(code, language_name(code, language)) for code in campaign_languages()],
            dialogs=[(name, DIALOG_NAMES[name]) for name in _dialogs()],
            zone=place.timezone,
            price=money(segment_price(place, runtime.settings.sms_segment_price_ore), language),
        )
        response.status_code = status
        return response

    @routes.get("/new")
    def new(request: Request, me: Coordinator) -> Response:
        return _builder(request, me, None)

    @routes.get("/count")
    def count(request: Request, me: Coordinator) -> Response:
        """How many young people the filters reach, for the builder's live count (JSON)."""
        language = pages.language(request)
        with database.session() as session:
            place = _place(session, request, me)
            choices = _choices(session, place)
            form = filters.read_audience(
                request.query_params,
                kontaktperson_ids=choices.kontaktperson_ids,
                reachable_only=True,
            )
            if form.audience is None:
                errors = {
                    f"aud-{name}": translate(language, message, **params)
                    for name, (message, params) in form.errors.items()
                }
                return _json({"errors": errors}, status=400)
            now = utcnow()
            found = repo.count_audience(
                session,
                form.audience,
                place.id,
                today=now.astimezone(ZoneInfo(place.timezone)).date(),
                now=now,
            )
        return _json({"count": found, "text": count_text(language, found)})

    @routes.post("")
    async def create(request: Request, me: Coordinator) -> Response:
        params = await request.form()
        action = params.get("action")
        action = action if isinstance(action, str) and action in ACTIONS else "preview"
        now = utcnow()
        with database.session() as session:
            place = _place(session, request, me)
            zone = ZoneInfo(place.timezone)
            choices = _choices(session, place)
            built = read_builder(
                params,
                kontaktperson_ids=choices.kontaktperson_ids,
                dialogs=_dialogs(),
                zone=zone,
                now=now,
                need_name=action in ("draft", "schedule"),
                need_content=action != "count",
            )
            audience = built.audience_form.audience
            if action == "count":
                built.errors.clear()  # only the audience counts for a count
            if action == "count" or audience is None or built.errors:
                failed = audience is None or (action != "count" and bool(built.errors))
                return _builder(request, me, built, status=400 if failed else 200)
            try:
                spec = build_spec(
                    session,
                    place,
                    name=built.values["name"] or "preview",
                    audience=audience.to_dict(),
                    dialog=built.dialog,
                    template=built.template,
                    starts_at=built.starts_at,
                    cron=built.cron,
                    relative=built.relative,
                    rate_per_minute=built.rate_per_minute,
                    created_by_id=me.id,
                )
            except (CampaignError, AudienceError):
                built.errors["content"] = (N_("Kampagnen kan ikke laves sådan. Tjek felterne."), {})
                return _builder(request, me, built, status=400)
            if action == "preview":
                language = pages.language(request)
                shown = build_preview(
                    session,
                    place,
                    spec,
                    now=now,
                    language=language,
                    price_ore=segment_price(place, runtime.settings.sms_segment_price_ore),
                )
                # Reading first names is reading young people's data: audited like the API.
                audit_shown(
                    session,
                    list(shown.shown),
                    count=shown.count,
                    municipality_id=place.id,
                    actor=me.audit_name,
                    staff_id=me.id,
                )
        if action == "preview":
            return _builder(request, me, built, count=shown.count, preview=shown)
        try:
            campaign_id = runtime.campaigns.create(spec)
        except (CampaignError, AudienceError):
            built.errors["content"] = (N_("Kampagnen kan ikke laves sådan. Tjek felterne."), {})
            return _builder(request, me, built, status=400)
        _record(me, "campaign.created", campaign_id)
        done = "created"
        if action == "schedule":
            first_due = runtime.campaigns.schedule(campaign_id)
            _record(me, "campaign.scheduled", campaign_id, first_due_at=first_due.isoformat())
            done = "scheduled"
        return RedirectResponse(f"/campaigns/{campaign_id}?done={done}", status_code=303)

    # ------------------------------------------------------------------------ one campaign

    def _progress(session: Session, campaign: Campaign, language: str) -> dict[str, Any]:
        progress = repo.progress(session, campaign.id)
        return {
            "status": campaign.status.value,
            "status_label": translate(language, STATUS_NAMES[campaign.status]),
            "total": progress.total,
            "counts": _counts(progress.by_status),
            "skipped": [
                [translate(language, REASONS.get(reason, REASONS["unknown"])), n]
                for reason, n in progress.skipped.items()
            ],
            "waiting": [
                [translate(language, REASONS.get(reason, REASONS["unknown"])), n]
                for reason, n in progress.waiting.items()
            ],
            "done": campaign.status in (CampaignStatus.FINISHED, CampaignStatus.CANCELLED),
        }

    @routes.get("/{campaign_id}")
    def show(request: Request, campaign_id: CampaignId, me: Coordinator) -> Response:
        return _show(request, me, campaign_id)

    def _show(
        request: Request, me: SignedIn, campaign_id: int, *, problem: str | None = None
    ) -> Response:
        language = pages.language(request)
        with database.session() as session:
            campaign = _owned(session, request, me, campaign_id)
            place = session.get_one(Municipality, campaign.municipality_id)
            zone = ZoneInfo(place.timezone)
            content = campaign.content or {}
            upcoming = next_run_at(session, campaign.id)
            context = {
                "campaign": {
                    "id": campaign.id,
                    "name": campaign.name,
                    "status": campaign.status.value,
                    "dialog": DIALOG_NAMES.get(str(content.get("dialog")), content.get("dialog"))
                    if content.get("dialog")
                    else None,
                    "texts": [
                        (language_name(code, language), text)
                        for code, text in (content.get("template") or {}).items()
                    ],
                    "starts_at": (
                        format_moment(campaign.starts_at, language, zone)
                        if campaign.starts_at
                        else ""
                    ),
                    "cron": campaign.cron,
                    "relative": _relative_days(campaign.relative_schedule),
                    "rate": campaign.rate_per_minute,
                    "next": format_moment(upcoming, language, zone) if upcoming else "",
                },
                "audience": _describe(session, campaign.audience or {}, language),
                "progress": _progress(session, campaign, language),
            }
        confirm = request.query_params.get("confirm") == "cancel"
        response = private(
            pages,
            request,
            "campaign.html",
            me=me,
            labels=PROGRESS,
            done=DONE.get(request.query_params.get("done", "")),
            confirm=confirm,
            problem=problem,
            **context,
        )
        if problem:
            response.status_code = 409
        return response

    @routes.get("/{campaign_id}/progress.json")
    def progress_json(request: Request, campaign_id: CampaignId, me: Coordinator) -> Response:
        language = pages.language(request)
        with database.session() as session:
            campaign = _owned(session, request, me, campaign_id)
            return _json(_progress(session, campaign, language))

    def _act(request: Request, me: SignedIn, campaign_id: int, action: str) -> Response:
        with database.session() as session:
            _owned(session, request, me, campaign_id)
        try:
            if action == "schedule":
                first_due = runtime.campaigns.schedule(campaign_id)
                details: dict[str, Any] = {"first_due_at": first_due.isoformat()}
                done = "scheduled"
            elif action == "pause":
                runtime.campaigns.pause(campaign_id)
                details, done = {}, "paused"
            elif action == "resume":
                runtime.campaigns.resume(campaign_id)
                details, done = {}, "resumed"
            else:
                details, done = {"skipped": runtime.campaigns.cancel(campaign_id)}, "cancelled"
        except CampaignError:
            return _show(
                request,
                me,
                campaign_id,
                problem=N_("Det kan kampagnen ikke lige nu. Siden viser, hvor den står."),
            )
        _record(me, f"campaign.{done}", campaign_id, **details)
        return RedirectResponse(f"/campaigns/{campaign_id}?done={done}", status_code=303)

    @routes.post("/{campaign_id}/schedule")
    def schedule(request: Request, campaign_id: CampaignId, me: Coordinator) -> Response:
        return _act(request, me, campaign_id, "schedule")

    @routes.post("/{campaign_id}/pause")
    def pause(request: Request, campaign_id: CampaignId, me: Coordinator) -> Response:
        return _act(request, me, campaign_id, "pause")

    @routes.post("/{campaign_id}/resume")
    def resume(request: Request, campaign_id: CampaignId, me: Coordinator) -> Response:
        return _act(request, me, campaign_id, "resume")

    @routes.post("/{campaign_id}/cancel")
    async def cancel(request: Request, campaign_id: CampaignId, me: Coordinator) -> Response:
        """Stops for good, once confirmed (``confirm=yes``); else asks first."""
        confirmed = (await request.form()).get("confirm") == "yes"
        if not confirmed:
            with database.session() as session:
                _owned(session, request, me, campaign_id)
            return RedirectResponse(
                f"/campaigns/{campaign_id}?confirm=cancel#confirm-cancel", status_code=303
            )
        return _act(request, me, campaign_id, "cancel")

    return routes


def _json(data: dict[str, Any], *, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={"Cache-Control": "no-store"})


def _counts(by_status: Mapping[str, int]) -> dict[str, int]:
    return {key: int(by_status.get(key, 0)) for key in PROGRESS}


def _relative_days(relative: Mapping[str, Any] | None) -> tuple[int, str] | None:
    if not relative:
        return None
    minutes = int(relative.get("offset_minutes", 0))
    return abs(minutes) // (24 * 60), "before" if minutes < 0 else "after"


def _describe(session: Session, stored: Mapping[str, Any], language: str) -> list[str]:
    """The audience in plain words, one line a filter."""
    try:
        chosen = Audience.from_dict(stored)
    except AudienceError:
        return []

    def say(message: str, **params: Any) -> str:
        return translate(language, message, **params)

    lines = [
        say(
            N_("Status: {statuses}"),
            statuses=", ".join(say(STATUS_LABELS[s]) for s in chosen.statuses),
        )
    ]
    if chosen.min_age is not None or chosen.max_age is not None:
        lines.append(
            say(
                N_("Alder: {low} til {high} år"),
                low=chosen.min_age if chosen.min_age is not None else 0,
                high=chosen.max_age if chosen.max_age is not None else "∞",
            )
        )
    if chosen.tags:
        lines.append(say(N_("Mærker (mindst ét af dem): {tags}"), tags=", ".join(chosen.tags)))
    if chosen.kontaktperson_ids:
        names = session.scalars(
            sa.select(StaffUser.name)
            .where(StaffUser.id.in_(chosen.kontaktperson_ids))
            .order_by(StaffUser.name)
        ).all()
        lines.append(say(N_("Kontaktperson: {names}"), names=", ".join(names)))
    if chosen.channel is not None:
        lines.append(say(filters.CHANNEL_LABELS[chosen.channel]))
    if chosen.min_days_since_contact is not None:
        lines.append(
            say(N_("Skrev sidst for mindst {n} dage siden"), n=chosen.min_days_since_contact)
        )
    if chosen.max_days_since_contact is not None:
        lines.append(
            say(N_("Skrev sidst for højst {n} dage siden"), n=chosen.max_days_since_contact)
        )
    return lines
