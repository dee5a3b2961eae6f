"""One young person's data and access log, for an access request (GDPR art. 15).

:func:`gather` is a pure read: the profile, channels, tags, dreams, goals with sub-goals,
meetings, messages with their texts, handoffs, staff notes, consent events and every audit event
about the young person (the access log: who read or changed what, and when). Everything in it is
plain JSON (times in ISO 8601 UTC, enums as their values), so the web export and a coordinator
console can hand it on as it is. :func:`flat_rows` lays the same data out as one table for CSV:
``section, record, field, value``, one row per field of each record (a text that a spreadsheet
would run as a formula gets a leading apostrophe there, and only there).

Who may export is the caller's business (``storage.access`` and the role); so is recording the
export itself as an audit event.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.models import (
    AuditEvent,
    ConsentEvent,
    Dream,
    Goal,
    Handoff,
    Meeting,
    Message,
    Municipality,
    StaffNote,
    StaffUser,
    SubGoal,
    YoungPerson,
)

FORMAT_VERSION = 1
CSV_COLUMNS = ("section", "record", "field", "value")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The sections in the order a reader meets them; each holds a list of records (profile: one).
SECTIONS = (
    "profile",
    "dreams",
    "goals",
    "sub_goals",
    "meetings",
    "messages",
    "handoffs",
    "notes",
    "consent_events",
    "access_log",
)


def plain(value: object) -> Any:
    """A value as JSON holds it: ISO times and dates, enum values, lists and dicts walked."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _record(row: object, fields: tuple[str, ...], **extra: object) -> dict[str, Any]:
    out = {name: plain(getattr(row, name)) for name in fields}
    out.update({k: plain(v) for k, v in extra.items()})
    return out


def gather(session: Session, young_person_id: int, *, now: datetime) -> dict[str, Any]:
    """Everything Stifinder holds about one young person, and who has read or changed it."""
    person = session.get_one(YoungPerson, young_person_id)
    place = session.get_one(Municipality, person.municipality_id)
    ids: set[int | None] = {person.kontaktperson_id}

    def by_person(model: Any, *order: Any) -> list[Any]:
        return list(
            session.scalars(
                sa.select(model).where(model.young_person_id == person.id).order_by(*order)
            )
        )

    dreams: list[Dream] = by_person(Dream, Dream.captured_at, Dream.id)
    goals: list[Goal] = by_person(Goal, Goal.position, Goal.created_at, Goal.id)
    sub_goals: list[SubGoal] = list(
        session.scalars(
            sa.select(SubGoal)
            .join(Goal, Goal.id == SubGoal.goal_id)
            .where(Goal.young_person_id == person.id)
            .order_by(SubGoal.goal_id, SubGoal.position, SubGoal.created_at, SubGoal.id)
        )
    )
    meetings: list[Meeting] = by_person(Meeting, Meeting.starts_at, Meeting.id)
    messages: list[Message] = by_person(Message, Message.created_at, Message.id)
    handoffs: list[Handoff] = by_person(Handoff, Handoff.opened_at, Handoff.id)
    notes: list[StaffNote] = by_person(StaffNote, StaffNote.created_at, StaffNote.id)
    consent: list[ConsentEvent] = by_person(ConsentEvent, ConsentEvent.created_at, ConsentEvent.id)
    events: list[AuditEvent] = by_person(AuditEvent, AuditEvent.at, AuditEvent.id)

    ids.update(d.staff_id for d in dreams)
    ids.update(m.staff_id for m in meetings)
    ids.update(m.staff_id for m in messages)
    ids.update(h.assignee_id for h in handoffs)
    ids.update(h.resolved_by_id for h in handoffs)
    ids.update(n.author_id for n in notes)
    ids.update(c.staff_id for c in consent)
    ids.update(e.staff_id for e in events)
    wanted = {i for i in ids if i is not None}
    names: dict[int, str] = (
        dict(
            session.execute(
                sa.select(StaffUser.id, StaffUser.name).where(StaffUser.id.in_(wanted))
            ).all()
        )
        if wanted
        else {}
    )

    def name(staff_id: int | None) -> str | None:
        return names.get(staff_id) if staff_id is not None else None

    profile = _record(
        person,
        (
            "id",
            "first_name",
            "birth_date",
            "language",
            "status",
            "status_reason",
            "status_changed_at",
            "occupation",
            "phone",
            "telegram_chat_id",
            "preferred_channel",
            "telegram_blocked_at",
            "sms_error_code",
            "external_ref",
            "last_inbound_at",
            "created_at",
            "updated_at",
        ),
        municipality=place.name,
        kontaktperson=name(person.kontaktperson_id),
        tags=", ".join(person.tag_names),
    )
    return {
        "format_version": FORMAT_VERSION,
        "exported_at": plain(now),
        "young_person_id": person.id,
        "profile": [profile],
        "dreams": [
            _record(
                d,
                ("id", "text", "category", "captured_at", "captured_via", "channel", "message_id"),
                staff=name(d.staff_id),
            )
            for d in dreams
        ],
        "goals": [
            _record(
                g,
                ("id", "title", "description", "status", "due_date", "created_at", "updated_at"),
            )
            for g in goals
        ],
        "sub_goals": [
            _record(
                s,
                (
                    "id",
                    "goal_id",
                    "title",
                    "status",
                    "due_date",
                    "completed_at",
                    "created_at",
                    "updated_at",
                ),
            )
            for s in sub_goals
        ],
        "meetings": [
            _record(
                m,
                (
                    "id",
                    "starts_at",
                    "duration_minutes",
                    "place",
                    "link",
                    "with_whom",
                    "purpose",
                    "status",
                    "status_changed_at",
                    "created_at",
                ),
                staff=name(m.staff_id),
            )
            for m in meetings
        ],
        "messages": [
            _record(
                m,
                (
                    "id",
                    "created_at",
                    "direction",
                    "channel",
                    "author",
                    "text",
                    "status",
                    "error_code",
                    "sent_at",
                    "delivered_at",
                ),
                staff=name(m.staff_id),
            )
            for m in messages
        ],
        "handoffs": [
            _record(
                h,
                (
                    "id",
                    "reason",
                    "priority",
                    "status",
                    "opened_at",
                    "first_human_answer_at",
                    "resolved_at",
                    "note",
                ),
                assignee=name(h.assignee_id),
                resolved_by=name(h.resolved_by_id),
            )
            for h in handoffs
        ],
        "notes": [
            _record(n, ("id", "created_at", "text"), author=name(n.author_id)) for n in notes
        ],
        "consent_events": [
            _record(
                c, ("id", "created_at", "kind", "source", "channel", "note"), staff=name(c.staff_id)
            )
            for c in consent
        ],
        "access_log": [
            _record(
                e,
                ("id", "at", "actor", "action", "reason", "details"),
                staff=name(e.staff_id),
            )
            for e in events
        ],
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    # A spreadsheet runs a cell that starts like a formula; a young person's message may.
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def flat_rows(data: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """``data`` from :func:`gather` as (section, record, field, value) rows, sections in order."""
    rows: list[tuple[str, str, str, str]] = [
        ("export", "", "format_version", _cell(data["format_version"])),
        ("export", "", "exported_at", _cell(data["exported_at"])),
        ("export", "", "young_person_id", _cell(data["young_person_id"])),
    ]
    for section in SECTIONS:
        for record in data[section]:
            record_id = _cell(record.get("id"))
            for key, value in record.items():
                if key == "id":
                    continue
                rows.append((section, record_id, key, _cell(value)))
    return rows
