"""The audience filters shared by the young people's list and the campaign builder: reading
them from a query string or form, and the choices the form offers.

The filters are the campaign engine's own ``Audience`` (storage/campaigns.py), so a list
filtered on the young people's page and a campaign built with the same filters reach the same
young people.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialogs.i18n import N_
from dialogs.types import Channel, Role, YoungPersonStatus
from storage.campaigns import NEVER_REACHED, Audience
from storage.models import StaffUser, YoungPerson, YoungPersonTag

# An error is a message id and its fields, as the `say` macro of _forms.html reads it.
Error = tuple[str, dict[str, Any]]

NUMBER_FIELDS = {
    "min_age": "min_age",
    "max_age": "max_age",
    "min_days": "min_days_since_contact",
    "max_days": "max_days_since_contact",
}
LARGEST = {"min_age": 120, "max_age": 120, "min_days": 3650, "max_days": 3650}
CHANNEL_LABELS = {Channel.SMS: N_("Kan få sms"), Channel.TELEGRAM: N_("Kan få Telegram")}


@dataclass
class AudienceForm:
    """What was asked for (to show it again), the audience it gives, and what was wrong."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, Error] = field(default_factory=dict)
    audience: Audience | None = None

    @property
    def chosen(self) -> bool:
        """Whether any filter was set (the default audience is everyone active)."""
        return any(
            self.values.get(name) for name in (*NUMBER_FIELDS, "status", "tag", "kontaktperson")
        ) or bool(self.values.get("channel"))


def _many(params: Mapping[str, Any], name: str) -> list[str]:
    getter = getattr(params, "getlist", None)
    raw: Sequence[str] = getter(name) if getter is not None else params.get(name) or []
    if isinstance(raw, str):
        raw = [raw]
    return [value.strip() for value in raw if value and value.strip()]


def read_audience(
    params: Mapping[str, Any],
    *,
    kontaktperson_ids: Sequence[int],
    reachable_only: bool,
) -> AudienceForm:
    """Read the filters from a query string or form (a Starlette ``QueryParams``/``FormData``
    or a plain dict). ``kontaktperson_ids`` are the ones that may be chosen (the viewer's
    municipality); ``reachable_only`` refuses opted-out and closed young people, as a campaign
    must."""
    form = AudienceForm()
    numbers: dict[str, int | None] = {}
    for name, target in NUMBER_FIELDS.items():
        raw = str(params.get(name) or "").strip()
        form.values[name] = raw
        if not raw:
            numbers[target] = None
        elif not raw.isdigit() or int(raw) > LARGEST[name]:
            form.errors[name] = (
                N_("Skriv et helt tal fra 0 til {largest}."),
                {"largest": LARGEST[name]},
            )
        else:
            numbers[target] = int(raw)
    if (
        numbers.get("min_age") is not None
        and numbers.get("max_age") is not None
        and numbers["min_age"] > numbers["max_age"]  # type: ignore[operator]
    ):
        form.errors["max_age"] = (N_("Den højeste alder skal være mindst den laveste."), {})
    if (
        numbers.get("min_days_since_contact") is not None
        and numbers.get("max_days_since_contact") is not None
        and numbers["min_days_since_contact"] > numbers["max_days_since_contact"]  # type: ignore[operator]
    ):
        form.errors["max_days"] = (N_("Det højeste antal dage skal være mindst det laveste."), {})

    statuses: list[YoungPersonStatus] = []
    form.values["status"] = _many(params, "status")
    for raw in form.values["status"]:
        try:
            status = YoungPersonStatus(raw)
        except ValueError:
            form.errors["status"] = (N_("Vælg en status fra listen."), {})
            continue
        if reachable_only and status in NEVER_REACHED:
            form.errors["status"] = (
                N_("Unge, der er frameldt eller afsluttet, kan ikke få beskeder."),
                {},
            )
        statuses.append(status)

    form.values["tag"] = _many(params, "tag")
    # As stored: the form offers the municipality's own tags, spelled as they were imported.
    tags = sorted({tag.strip() for value in form.values["tag"] for tag in value.split(",")} - {""})

    chosen_staff: list[int] = []
    form.values["kontaktperson"] = _many(params, "kontaktperson")
    for raw in form.values["kontaktperson"]:
        if not raw.isdigit() or int(raw) not in kontaktperson_ids:
            form.errors["kontaktperson"] = (N_("Vælg en kontaktperson fra listen."), {})
        else:
            chosen_staff.append(int(raw))

    raw_channel = str(params.get("channel") or "").strip()
    form.values["channel"] = raw_channel
    channel: Channel | None = None
    if raw_channel:
        try:
            channel = Channel(raw_channel)
        except ValueError:
            channel = None
        if channel not in CHANNEL_LABELS:
            form.errors["channel"] = (N_("Vælg en kanal fra listen."), {})
            channel = None

    if form.errors:
        return form
    if not statuses and reachable_only:
        statuses = [YoungPersonStatus.ACTIVE]
    form.audience = Audience(
        min_age=numbers["min_age"],
        max_age=numbers["max_age"],
        statuses=tuple(statuses),
        tags=tuple(tags),
        kontaktperson_ids=tuple(chosen_staff),
        channel=channel,
        min_days_since_contact=numbers["min_days_since_contact"],
        max_days_since_contact=numbers["max_days_since_contact"],
    )
    return form


@dataclass(frozen=True)
class Choices:
    """What the filter form offers in one municipality."""

    kontaktpersoner: list[tuple[int, str]]
    tags: list[str]
    statuses: list[tuple[str, str]]
    channels: list[tuple[str, str]]

    @property
    def tag_options(self) -> list[tuple[str, str]]:
        return [(tag, tag) for tag in self.tags]

    @property
    def kontaktperson_ids(self) -> list[int]:
        return [staff_id for staff_id, _ in self.kontaktpersoner]


def choices(
    session: Session,
    municipality_id: int,
    status_labels: Mapping[YoungPersonStatus, str],
    *,
    reachable_only: bool,
) -> Choices:
    kontaktpersoner = session.execute(
        sa.select(StaffUser.id, StaffUser.name)
        .where(
            StaffUser.municipality_id == municipality_id,
            StaffUser.role == Role.KONTAKTPERSON,
            StaffUser.is_active.is_(True),
        )
        .order_by(sa.func.lower(StaffUser.name), StaffUser.id)
    ).all()
    tags = session.scalars(
        sa.select(YoungPersonTag.tag)
        .join(YoungPerson, YoungPerson.id == YoungPersonTag.young_person_id)
        .where(YoungPerson.municipality_id == municipality_id)
        .distinct()
        .order_by(YoungPersonTag.tag)
    ).all()
    return Choices(
        kontaktpersoner=[(row.id, row.name) for row in kontaktpersoner],
        tags=list(tags),
        statuses=[
            (status.value, label)
            for status, label in status_labels.items()
            if not (reachable_only and status in NEVER_REACHED)
        ],
        channels=[(channel.value, label) for channel, label in CHANNEL_LABELS.items()],
    )
