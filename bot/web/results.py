"""The results dashboard: what happened with the municipality's young people in a period.

- ``GET /results``: the figures of ``storage.results`` for a period (``from`` and ``to``, whole
  days in the municipality's time zone; by default the last 30 days up to today) and,
  optionally, one kontaktperson's young people, with bar charts drawn here (``bot.web.charts``)
  and each figure's definition on the page.
- ``GET /results.csv``: the same figures as one CSV file (section, figure, value, label), with
  the period and the kontaktperson filter in its first rows.

For coordinators of their own municipality only (anyone else gets 403). The figures are
aggregates and name no young person; every view and download is an audit event
(``results.viewed``, ``results.exported``) without a young person on it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_date
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from bot.i18n import translate
from bot.runtime import Runtime
from bot.web import charts
from bot.web.auth import SignedIn, check_csrf, private, require_role
from bot.web.forms import parse_day
from bot.web.pages import Pages
from dialogs.i18n import N_
from dialogs.types import DreamCategory, Role
from storage import audit, export, results
from storage.models import StaffUser, utcnow

Coordinator = Annotated[SignedIn, Depends(require_role(Role.COORDINATOR))]
Day = Annotated[str, Query(max_length=40)]
ALL = "all"
DEFAULT_DAYS = 30
CSV_COLUMNS = ("section", "figure", "value", "label")
Message = tuple[str, dict[str, Any]]
Value = int | timedelta | None

CATEGORY_LABELS = {
    DreamCategory.EDUCATION: N_("Uddannelse"),
    DreamCategory.JOB: N_("Job"),
    DreamCategory.LEISURE: N_("Fritid"),
    DreamCategory.HOUSING: N_("Bolig"),
    DreamCategory.HEALTH: N_("Helbred og trivsel"),
    DreamCategory.NETWORK: N_("Netværk"),
    DreamCategory.OTHER: N_("Andet"),
}
SECTION_TITLES = {
    "reach": N_("Kontakt med de unge"),
    "dreams": N_("Drømme og ønsker"),
    "meetings": N_("Møder"),
    "sub_goals": N_("Delmål"),
    "handoffs": N_("Overdragelser til en medarbejder"),
    "kui": N_("KUI-frister for 15-17-årige"),
    "opt_outs": N_("Framelding og samtykke"),
}
SECTION_HELP = {
    "reach": N_(
        "Nået: unge, der fik en besked fra botten eller en medarbejder, talt efter "
        "tidspunktet, beskeden blev sendt (beskeder, der ikke kunne leveres, tæller ikke). "
        "Svarede: unge, der selv skrev, talt efter tidspunktet, beskeden kom. Hver ung tæller "
        "én gang i perioden og én gang i hver uge."
    ),
    "dreams": N_(
        "Drømme og ønsker, der blev skrevet ned i perioden, efter kategori, og hvor mange unge "
        "de kom fra."
    ),
    "meetings": N_(
        "Møder, der ligger i perioden (ikke aflyste), efter deres status nu: bekræftet af den "
        "unge (og endnu ikke markeret som gennemført eller udeblevet), gennemført og udeblevet."
    ),
    "sub_goals": N_(
        "Klaret: delmål markeret som klaret i perioden. Overskredet: delmål med en frist i "
        "perioden, der er før i dag, og som hverken er klaret eller droppet."
    ),
    "handoffs": N_(
        "Overdragelser, der blev åbnet i perioden. Tiden til første svar går fra overdragelsen "
        "blev åbnet, til en medarbejder første gang skrev til den unge; medianen og 90 %-"
        "fraktilen regnes kun af de besvarede."
    ),
    "kui": N_(
        "Unge, der faldt fra som 15-17-årige: kontakt inden 5 arbejdsdage og et nyt tilbud "
        "inden 30 dage. Tæller de frister, der falder i perioden. Overholdt: kontakten (en "
        "medarbejders besked eller et gennemført møde) eller tilbuddet (et nyt mål) kom inden "
        "fristen. Overskredet: fristen er gået uden. Endnu åben: fristen er ikke nået. En sag, "
        "der blev lukket før fristen, fordi den unge kom i gang igen, tæller ikke."
    ),
    "opt_outs": N_(
        "Unge, der i perioden frameldte sig beskeder, tilmeldte sig igen eller trak deres "
        "samtykke tilbage."
    ),
}
LABELS = {
    "reached": N_("Unge nået"),
    "replied": N_("Unge, der svarede"),
    "dreams": N_("Drømme og ønsker i alt"),
    "dream_young_people": N_("Unge med nye drømme og ønsker"),
    "meetings": N_("Møder i perioden"),
    "confirmed": N_("Bekræftet af den unge"),
    "attended": N_("Gennemført"),
    "no_show": N_("Den unge kom ikke"),
    "done": N_("Klaret"),
    "overdue": N_("Overskredet"),
    "opened": N_("Åbnet"),
    "urgent": N_("Heraf akutte"),
    "answered": N_("Besvaret af en medarbejder"),
    "median": N_("Tid til første svar, median"),
    "p90": N_("Tid til første svar, 90 %-fraktil"),
    "due": N_("Frister i perioden"),
    "met": N_("Overholdt"),
    "missed": N_("Overskredet"),
    "pending": N_("Endnu åben"),
    "opted_out": N_("Frameldte sig"),
    "opted_in": N_("Tilmeldte sig igen"),
    "consent_withdrawn": N_("Trak samtykket tilbage"),
}
KUI_KINDS = {"contact": N_("Kontakt inden 5 arbejdsdage"), "offer": N_("Nyt tilbud inden 30 dage")}
WEEK = N_("uge {week}")


@dataclass(frozen=True)
class Figure:
    key: str
    label: str  # a Danish source text, translated where it is shown
    value: Value
    params: dict[str, Any]


@dataclass(frozen=True)
class Section:
    key: str
    figures: list[Figure]


@dataclass(frozen=True)
class Choice:
    """What the reader asked for, read and checked."""

    period: results.Period
    kontaktperson: StaffUser | None


class BadInput(Exception):  # noqa: N818 - an answer to show, not a failure
    def __init__(self, errors: dict[str, Message]) -> None:
        super().__init__("bad input")
        self.errors = errors


def sections(found: results.Results) -> list[Section]:
    """Every figure in the order of the page and the CSV file."""

    def figure(key: str, value: Value, label: str | None = None, **params: Any) -> Figure:
        return Figure(key, label or LABELS[key], value, params)

    reach = found.reach
    times = found.handoffs.times
    kui: list[Figure] = []
    for kind, deadlines in (("contact", found.kui.contact), ("offer", found.kui.offer)):
        for name in ("due", "met", "missed", "pending"):
            kui.append(
                Figure(
                    f"{kind}_{name}",
                    N_("{kind}: {figure}"),
                    getattr(deadlines, name),
                    {"kind": KUI_KINDS[kind], "figure": LABELS[name]},
                )
            )
    return [
        Section(
            "reach",
            [figure("reached", reach.reached), figure("replied", reach.replied)],
        ),
        Section(
            "dreams",
            [
                figure("dreams", found.dreams.total),
                figure("dream_young_people", found.dreams.young_people),
                *[
                    figure(f"dreams_{category.value}", count, CATEGORY_LABELS[category])
                    for category, count in found.dreams.by_category.items()
                ],
            ],
        ),
        Section(
            "meetings",
            [
                figure("meetings", found.meetings.total),
                figure("confirmed", found.meetings.confirmed),
                figure("attended", found.meetings.attended),
                figure("no_show", found.meetings.no_show),
            ],
        ),
        Section(
            "sub_goals",
            [figure("done", found.sub_goals.done), figure("overdue", found.sub_goals.overdue)],
        ),
        Section(
            "handoffs",
            [
                figure("opened", found.handoffs.opened),
                figure("urgent", found.handoffs.urgent),
                figure("answered", times.answered),
                figure("median", times.median),
                figure("p90", times.p90),
            ],
        ),
        Section("kui", kui),
        Section(
            "opt_outs",
            [
                figure("opted_out", found.opt_outs.opted_out),
                figure("opted_in", found.opt_outs.opted_in),
                figure("consent_withdrawn", found.opt_outs.consent_withdrawn),
            ],
        ),
    ]


def duration(value: timedelta, language: str) -> str:
    """A wait as people say it: seconds under a minute, else days, hours and minutes."""
    seconds = int(value.total_seconds())
    if seconds < 60:
        return translate(language, "{seconds} sek.", seconds=seconds)
    minutes = seconds // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = []
    if days:
        parts.append(translate(language, "{days} d.", days=days))
    if hours:
        parts.append(translate(language, "{hours} t.", hours=hours))
    if minutes or not parts:
        parts.append(translate(language, "{minutes} min.", minutes=minutes))
    return " ".join(parts)


def shown(value: Value, language: str) -> str:
    if value is None:
        return translate(language, "Intet svar endnu")
    if isinstance(value, timedelta):
        return duration(value, language)
    return str(value)


def csv_value(value: Value) -> str:
    """Counts as they are; a wait in minutes (one decimal, a point); nothing for no value."""
    if value is None:
        return ""
    if isinstance(value, timedelta):
        return f"{value.total_seconds() / 60:.1f}"
    return str(value)


def defused(text: str) -> str:
    """A cell a spreadsheet would run as a formula gets a leading apostrophe (as in
    ``storage.export``): a staff member's name may begin with ``=``."""
    return "'" + text if text.startswith(export.FORMULA_STARTS) else text


def csv_bytes(rows: list[tuple[str, str, str, str]]) -> bytes:
    """UTF-8 with a byte-order mark, so Excel reads æøå; CRLF line ends as RFC 4180 has them."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(tuple(defused(cell) for cell in row) for row in rows)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def csv_rows(
    found: results.Results, kontaktperson: StaffUser | None, language: str
) -> list[tuple[str, str, str, str]]:
    """The period and filter first, then every figure, then the weeks of the reach chart."""
    period = found.period
    rows = [
        ("period", "from", period.first.isoformat(), translate(language, "Fra og med")),
        ("period", "to", period.last.isoformat(), translate(language, "Til og med")),
        (
            "filter",
            "kontaktperson",
            kontaktperson.name if kontaktperson is not None else ALL,
            translate(language, "Kontaktperson"),
        ),
        (
            "filter",
            "kontaktperson_id",
            str(kontaktperson.id) if kontaktperson is not None else "",
            translate(language, "Kontaktperson"),
        ),
    ]
    for section in sections(found):
        for item in section.figures:
            key = f"{item.key}_minutes" if item.key in ("median", "p90") else item.key
            rows.append((section.key, key, csv_value(item.value), _label(item, language)))
    for week in found.reach.weeks:
        span = f"{week.first.isoformat()}/{week.last.isoformat()}"
        label = translate(language, WEEK, week=week.first.isocalendar().week)
        for key, value in (("reached", week.reached), ("replied", week.replied)):
            rows.append(
                (
                    "weeks",
                    f"{key} {span}",
                    str(value),
                    f"{label}: {translate(language, LABELS[key])}",
                )
            )
    return rows


def _label(item: Figure, language: str) -> str:
    params = {name: translate(language, value) for name, value in item.params.items()}
    return translate(language, item.label, **params)


def week_label(week: results.Week, language: str) -> str:
    first = format_date(week.first, "d. MMM", locale=language)
    last = format_date(week.last, "d. MMM", locale=language)
    number = translate(language, WEEK, week=week.first.isocalendar().week)
    return f"{number} ({first}–{last})" if week.first != week.last else f"{number} ({first})"


def _week_short(week: results.Week, language: str) -> str:
    number = translate(language, WEEK, week=week.first.isocalendar().week)
    return f"{number} ({format_date(week.first, 'd. MMM', locale=language)})"


def draw(found: results.Results, language: str) -> dict[str, Markup]:
    """The charts of the page, by section; each has its numbers as its text alternative."""

    def t(message: str, **params: Any) -> str:
        return translate(language, message, **params)

    def chart(key: str, rows: list[charts.Row], series: list[str]) -> Markup:
        title = t(SECTION_TITLES[key])
        numbers = "; ".join(
            f"{row.label}: "
            + ", ".join(
                f"{name} {value}" if len(series) > 1 else str(value)
                for name, value in zip(series, row.values, strict=True)
            )
            for row in rows
        )
        return charts.bar_chart(
            chart_id=f"chart-{key}",
            title=title,
            rows=rows,
            series=series,
            summary=f"{title}. {numbers}." if rows else title,
        )

    reached, replied = t(LABELS["reached"]), t(LABELS["replied"])
    met, missed, pending = t(LABELS["met"]), t(LABELS["missed"]), t(LABELS["pending"])
    return {
        "reach": chart(
            "reach",
            [
                charts.Row(_week_short(week, language), [week.reached, week.replied])
                for week in found.reach.weeks
            ],
            [reached, replied],
        ),
        "dreams": chart(
            "dreams",
            [
                charts.Row(t(CATEGORY_LABELS[category]), [count])
                for category, count in found.dreams.by_category.items()
            ],
            [t("Antal")],
        ),
        "meetings": chart(
            "meetings",
            [
                charts.Row(t(LABELS[key]), [getattr(found.meetings, key)])
                for key in ("confirmed", "attended", "no_show")
            ],
            [t("Antal")],
        ),
        "sub_goals": chart(
            "sub_goals",
            [
                charts.Row(t(LABELS[key]), [getattr(found.sub_goals, key)])
                for key in ("done", "overdue")
            ],
            [t("Antal")],
        ),
        "kui": chart(
            "kui",
            [
                charts.Row(t(KUI_KINDS[kind]), [deadlines.met, deadlines.missed, deadlines.pending])
                for kind, deadlines in (("contact", found.kui.contact), ("offer", found.kui.offer))
            ],
            [met, missed, pending],
        ),
    }


def router(runtime: Runtime, pages: Pages) -> APIRouter:
    routes = APIRouter(prefix="/results", dependencies=[Depends(check_csrf)])
    database = runtime.database

    def _choose(
        session: Session, me: StaffUser, first: str, last: str, kontaktperson: str, now: datetime
    ) -> Choice:
        """The period and kontaktperson asked for; a field that cannot be used raises
        :class:`BadInput` naming it."""
        zone = _zone(me, runtime)
        errors: dict[str, Message] = {}
        default = results.Period.last_days(now, zone, DEFAULT_DAYS)
        start_day = parse_day(first) if first.strip() else None
        end_day = parse_day(last) if last.strip() else None
        if first.strip() and start_day is None:
            errors["from"] = (N_("Skriv startdatoen som en dato, fx 01-11-2026."), {})
        if last.strip() and end_day is None:
            errors["to"] = (N_("Skriv slutdatoen som en dato, fx 30-11-2026."), {})
        chosen: StaffUser | None = None
        if kontaktperson not in ("", ALL):
            known = {
                str(staff.id): staff
                for staff in results.kontaktpersoner(session, _municipality(me))
            }
            chosen = known.get(kontaktperson.strip())
            if chosen is None:
                errors["kontaktperson"] = (N_("Vælg en kontaktperson fra listen."), {})
        if errors:
            raise BadInput(errors)
        if end_day is None:
            end_day = default.last if start_day is None else _plus(start_day)
        start_day = start_day or end_day - timedelta(days=DEFAULT_DAYS - 1)
        if end_day < start_day:
            raise BadInput({"to": (N_("Slutdatoen ligger før startdatoen."), {})})
        if (end_day - start_day).days + 1 > results.MAX_DAYS:
            raise BadInput(
                {"to": (N_("En periode kan højst være {days} dage."), {"days": results.MAX_DAYS})}
            )
        return Choice(results.Period.of(start_day, end_day, zone), chosen)

    def _record(session: Session, me: SignedIn, action: str, choice: Choice) -> None:
        audit.record(
            session,
            actor=me.audit_name,
            action=action,
            staff_id=me.id,
            municipality_id=me.municipality_id,
            details={
                "from": choice.period.first.isoformat(),
                "to": choice.period.last.isoformat(),
                "kontaktperson_id": choice.kontaktperson.id if choice.kontaktperson else None,
            },
        )

    @routes.get("", response_class=HTMLResponse)
    def results_page(
        request: Request,
        me: Coordinator,
        first: Annotated[str, Query(alias="from", max_length=40)] = "",
        last: Annotated[str, Query(alias="to", max_length=40)] = "",
        kontaktperson: Annotated[str, Query(max_length=20)] = "",
    ) -> Response:
        language = pages.language(request)
        now = utcnow()
        values = {"from": first, "to": last, "kontaktperson": kontaktperson or ALL}
        with database.session() as session:
            viewer = me.load(session)
            options = [
                (str(staff.id), _staff_name(staff, language))
                for staff in results.kontaktpersoner(session, _municipality(viewer))
            ]
            try:
                choice = _choose(session, viewer, first, last, kontaktperson, now)
            except BadInput as bad:
                response = private(
                    pages,
                    request,
                    "results.html",
                    me=me,
                    errors=bad.errors,
                    values=values,
                    options=options,
                    found=None,
                )
                response.status_code = 400
                return response
            found = results.gather(
                session,
                viewer,
                period=choice.period,
                kontaktperson_id=choice.kontaktperson.id if choice.kontaktperson else None,
                now=now,
            )
            _record(session, me, "results.viewed", choice)
        values = {
            "from": choice.period.first.isoformat(),
            "to": choice.period.last.isoformat(),
            "kontaktperson": str(choice.kontaktperson.id) if choice.kontaktperson else ALL,
        }
        return private(
            pages,
            request,
            "results.html",
            me=me,
            errors={},
            values=values,
            options=options,
            found=found,
            sections=sections(found),
            titles=SECTION_TITLES,
            help=SECTION_HELP,
            charts=draw(found, language),
            shown=lambda value: shown(value, language),
            label=lambda item: _label(item, language),
            weeks=[(week_label(week, language), week) for week in found.reach.weeks],
            first_day=format_date(choice.period.first, "long", locale=language),
            last_day=format_date(choice.period.last, "long", locale=language),
            chosen=_staff_name(choice.kontaktperson, language) if choice.kontaktperson else None,
            csv_query=_query(values),
        )

    @routes.get(".csv")
    def results_csv(
        request: Request,
        me: Coordinator,
        first: Annotated[str, Query(alias="from", max_length=40)] = "",
        last: Annotated[str, Query(alias="to", max_length=40)] = "",
        kontaktperson: Annotated[str, Query(max_length=20)] = "",
    ) -> Response:
        language = pages.language(request)
        now = utcnow()
        with database.session() as session:
            viewer = me.load(session)
            try:
                choice = _choose(session, viewer, first, last, kontaktperson, now)
            except BadInput as bad:
                text = "\n".join(
                    translate(language, message, **params)
                    for message, params in bad.errors.values()
                )
                return Response(
                    text + "\n",
                    status_code=400,
                    media_type="text/plain; charset=utf-8",
                    headers={"Cache-Control": "no-store"},
                )
            found = results.gather(
                session,
                viewer,
                period=choice.period,
                kontaktperson_id=choice.kontaktperson.id if choice.kontaktperson else None,
                now=now,
            )
            _record(session, me, "results.exported", choice)
            body = csv_bytes(csv_rows(found, choice.kontaktperson, language))
        period = choice.period
        filename = f"stifinder-resultater-{period.first.isoformat()}-{period.last.isoformat()}.csv"
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Cache-Control": "no-store",
            },
        )

    return routes


def _zone(staff: StaffUser, runtime: Runtime) -> ZoneInfo:
    place = staff.municipality
    return ZoneInfo(place.timezone if place is not None else runtime.settings.default_timezone)


def _municipality(staff: StaffUser) -> int:
    # A coordinator always belongs to a municipality; the role check came first.
    assert staff.municipality_id is not None
    return staff.municipality_id


def _plus(first: date) -> date:
    """The last day of a default-length period beginning on ``first``."""
    return first + timedelta(days=DEFAULT_DAYS - 1)


def _staff_name(staff: StaffUser, language: str) -> str:
    if staff.is_active:
        return staff.name
    return translate(language, "{name} (deaktiveret)", name=staff.name)


def _query(values: dict[str, str]) -> str:
    return urlencode(values)
