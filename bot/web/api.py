"""The JSON API for staff, under ``/api/v1``: campaigns for now.

Every request carries a personal token (``Authorization: Bearer <token>``, issued with
``stifinder user token``). Coordinators act within their own municipality; kontaktpersoner and
admins get 403 (an admin manages municipalities and staff and sees no young person's data, and
a preview shows first names). A campaign of another municipality answers 404, so its
existence is not revealed. Bad input answers 400 (or 422 for a body of the wrong shape) with a
message that names the field. Every preview that shows young people's first names is audited,
one event per young person shown, so an access request finds it.

Errors are plain English, like the campaign engine's own messages: this is an interface for
programs, and a message half translated would help nobody.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from bot.campaigns import CampaignError, DryRun, Spec
from bot.i18n import available_languages
from bot.runtime import Runtime
from dialogs.types import CampaignStatus, Channel, Role, ScheduledStatus, YoungPersonStatus
from storage import audit, staff, tokens
from storage.campaigns import Audience, AudienceError
from storage.models import Campaign, Municipality, ScheduledItem, StaffUser, utcnow

PREFIX = "/api/v1"
MAX_ID = 2**31 - 1
MAX_TEXT = 1600  # ten SMS segments; longer is not a message
CampaignId = Annotated[int, Path(ge=1, le=MAX_ID)]


# ---------------------------------------------------------------------------- bodies


class AudienceBody(BaseModel):
    """Who a campaign is for; opted-out and closed young people are never in an audience."""

    model_config = ConfigDict(extra="forbid")

    min_age: int | None = Field(default=None, ge=0, le=130)
    max_age: int | None = Field(default=None, ge=0, le=130)
    statuses: list[YoungPersonStatus] | None = Field(default=None, max_length=10)
    tags: list[Annotated[str, Field(min_length=1, max_length=60)]] | None = Field(
        default=None, max_length=100
    )
    kontaktperson_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        default=None, max_length=1000
    )
    channel: Channel | None = None
    min_days_since_contact: int | None = Field(default=None, ge=0, le=36500)
    max_days_since_contact: int | None = Field(default=None, ge=0, le=36500)


class RelativeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    anchor: str = "meeting"
    offset_minutes: int = Field(ge=-365 * 24 * 60, le=365 * 24 * 60)


class DraftBody(BaseModel):
    """A campaign as asked for; also what a preview takes (its name may be left out)."""

    model_config = ConfigDict(extra="forbid")

    municipality: str | None = Field(default=None, max_length=60, description="slug")
    name: str = Field(default="", max_length=200)
    audience: AudienceBody = Field(default_factory=AudienceBody)
    dialog: str | None = Field(default=None, max_length=80)
    template: dict[str, Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        default=None, description="{language: text}; {first_name} is filled in"
    )
    starts_at: datetime | None = Field(default=None, description="ISO 8601 with an offset")
    cron: str | None = Field(default=None, max_length=120)
    relative: RelativeBody | None = None
    rate_per_minute: int | None = Field(default=None, le=100_000)


class CampaignBody(DraftBody):
    name: str = Field(min_length=1, max_length=200)
    schedule: bool = Field(default=False, description="make it live at once")


# ---------------------------------------------------------------------------- answers


class PreviewOut(BaseModel):
    young_person_id: int
    first_name: str
    language: str
    channel: str | None
    text: str | None
    encoding: str | None
    segments: int | None


class DryRunOut(BaseModel):
    count: int
    without_channel: int
    in_quiet_hours: bool
    previews: list[PreviewOut]


class ProgressOut(BaseModel):
    total: int
    by_status: dict[str, int]
    skipped: dict[str, int]
    waiting: dict[str, int]


class CampaignOut(BaseModel):
    id: int
    municipality: str
    name: str
    status: CampaignStatus
    audience: dict[str, Any]
    dialog: str | None
    template: dict[str, str] | None
    starts_at: datetime | None
    cron: str | None
    relative: dict[str, Any] | None
    rate_per_minute: int | None
    created_by_id: int | None
    created_at: datetime
    updated_at: datetime
    next_run_at: datetime | None = None
    # Only in the answers of the actions that produce them.
    first_due_at: datetime | None = None
    skipped: int | None = None
    progress: ProgressOut | None = None


class CampaignList(BaseModel):
    campaigns: list[CampaignOut]


# ---------------------------------------------------------------------------- shared with the CLI


def check_languages(template: Mapping[str, str]) -> None:
    known = set(available_languages()) | {"da"}
    for language in template:
        if language not in known:
            choices = ", ".join(sorted(known))
            raise CampaignError(f"template[{language}]: no such language; use one of {choices}")


def build_spec(
    session: Session,
    place: Municipality,
    *,
    name: str,
    audience: Mapping[str, Any],
    dialog: str | None = None,
    template: Mapping[str, str] | None = None,
    starts_at: datetime | None = None,
    cron: str | None = None,
    relative: Mapping[str, Any] | None = None,
    rate_per_minute: int | None = None,
    created_by_id: int | None = None,
) -> Spec:
    """A campaign spec from what a person asked for; raises ``CampaignError`` or
    ``AudienceError`` naming the field. Checks what the engine cannot know: that the
    kontaktpersoner are the municipality's own and that the template's languages exist."""
    chosen = Audience.from_dict(audience)
    if chosen.kontaktperson_ids:
        found = set(
            session.scalars(
                sa.select(StaffUser.id).where(
                    StaffUser.id.in_(chosen.kontaktperson_ids),
                    StaffUser.municipality_id == place.id,
                )
            ).all()
        )
        for staff_id in chosen.kontaktperson_ids:
            if staff_id not in found:
                raise AudienceError(
                    f"kontaktperson_ids: no staff member {staff_id} in {place.slug}"
                )
    if template is not None:
        check_languages(template)
    return Spec(
        municipality_id=place.id,
        name=name,
        audience=chosen,
        dialog=dialog,
        template=dict(template) if template is not None else None,
        starts_at=starts_at,
        cron=cron or None,
        relative=dict(relative) if relative is not None else None,
        rate_per_minute=rate_per_minute,
        created_by_id=created_by_id,
    )


def next_run_at(session: Session, campaign_id: int) -> datetime | None:
    return session.scalar(
        sa.select(sa.func.min(ScheduledItem.due_at)).where(
            ScheduledItem.campaign_id == campaign_id,
            ScheduledItem.status == ScheduledStatus.PENDING,
        )
    )


def campaign_out(session: Session, campaign: Campaign, **extra: Any) -> CampaignOut:
    place = session.get_one(Municipality, campaign.municipality_id)
    content = campaign.content or {}
    return CampaignOut(
        id=campaign.id,
        municipality=place.slug,
        name=campaign.name,
        status=campaign.status,
        audience=dict(campaign.audience or {}),
        dialog=content.get("dialog"),
        template=content.get("template"),
        starts_at=campaign.starts_at,
        cron=campaign.cron,
        relative=campaign.relative_schedule,
        rate_per_minute=campaign.rate_per_minute,
        created_by_id=campaign.created_by_id,
        created_at=campaign.created_at,
        updated_at=campaign.updated_at,
        next_run_at=next_run_at(session, campaign.id),
        **extra,
    )


def dry_run_out(result: DryRun) -> DryRunOut:
    return DryRunOut(
        count=result.count,
        without_channel=result.without_channel,
        in_quiet_hours=result.in_quiet_hours,
        previews=[
            PreviewOut(
                young_person_id=p.young_person_id,
                first_name=p.first_name,
                language=p.language,
                channel=p.channel.value if p.channel else None,
                text=p.text,
                encoding=p.encoding,
                segments=p.segments,
            )
            for p in result.previews
        ],
    )


def audit_preview(
    session: Session,
    result: DryRun,
    *,
    municipality_id: int,
    actor: str,
    staff_id: int | None = None,
) -> None:
    """One event per young person whose name a preview showed: reading is always audited."""
    audit_shown(
        session,
        [preview.young_person_id for preview in result.previews],
        count=result.count,
        municipality_id=municipality_id,
        actor=actor,
        staff_id=staff_id,
    )


def audit_shown(
    session: Session,
    young_person_ids: Sequence[int],
    *,
    count: int,
    municipality_id: int,
    actor: str,
    staff_id: int | None = None,
) -> None:
    """The audit of any campaign preview (here and in the browser's builder): one
    ``campaign.preview`` event per young person whose first name it showed."""
    for young_person_id in young_person_ids:
        audit.record(
            session,
            actor=actor,
            action="campaign.preview",
            staff_id=staff_id,
            municipality_id=municipality_id,
            young_person_id=young_person_id,
            details={"count": count, "shown": len(young_person_ids)},
        )


# ---------------------------------------------------------------------------- who asks


@dataclass(frozen=True)
class Actor:
    """The staff member behind a token, read once per request."""

    id: int
    role: Role
    municipality_id: int | None

    @property
    def audit_name(self) -> str:
        return f"staff:{self.id}"


def _unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


def staff_member(request: Request, authorization: Annotated[str | None, Header()] = None) -> Actor:
    """The token's staff member, or 401 with a ``WWW-Authenticate: Bearer`` challenge."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("sign in with a bearer token (stifinder user token)")
    runtime: Runtime = request.app.state.runtime
    with runtime.database.session() as session:
        member = tokens.authenticate(session, token, now=utcnow())
        actor = (
            Actor(member.id, member.role, member.municipality_id) if member is not None else None
        )
    if actor is None:
        raise _unauthorized("the token is invalid or revoked", "invalid_token")
    return actor


def campaign_staff(actor: Annotated[Actor, Depends(staff_member)]) -> Actor:
    if actor.role is not Role.COORDINATOR:
        raise HTTPException(403, "campaigns are for coordinators")
    if actor.municipality_id is None:
        raise HTTPException(403, "a coordinator must belong to a municipality")
    return actor


CampaignStaff = Annotated[Actor, Depends(campaign_staff)]


def _place(session: Session, actor: Actor, slug: str | None) -> Municipality:
    """The municipality a request acts in: the coordinator's own (naming it is allowed)."""
    if slug is not None:
        place = staff.municipality_by_slug(session, slug)
        if place is None or place.id != actor.municipality_id:
            raise HTTPException(403, "municipality: you act only within your own municipality")
        return place
    return session.get_one(Municipality, actor.municipality_id)


def _owned(session: Session, actor: Actor, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.municipality_id != actor.municipality_id:
        raise HTTPException(404, f"campaign {campaign_id}: not found")
    return campaign


def _refused(error: ValueError) -> HTTPException:
    message = str(error)
    if message.startswith("status:"):
        return HTTPException(409, message)
    if message.startswith("campaign ") and message.endswith("not found"):
        return HTTPException(404, message)
    return HTTPException(400, message)


def _spec(session: Session, actor: Actor, body: DraftBody, *, name: str) -> Spec:
    place = _place(session, actor, body.municipality)
    try:
        return build_spec(
            session,
            place,
            name=name,
            audience=body.audience.model_dump(exclude_none=True, mode="json"),
            dialog=body.dialog,
            template=body.template,
            starts_at=body.starts_at,
            cron=body.cron,
            relative=body.relative.model_dump() if body.relative else None,
            rate_per_minute=body.rate_per_minute,
            created_by_id=actor.id,
        )
    except (CampaignError, AudienceError) as error:
        raise _refused(error) from error


# ---------------------------------------------------------------------------- routes


def router(runtime: Runtime) -> APIRouter:
    routes = APIRouter(prefix=PREFIX, tags=["campaigns"])
    database = runtime.database

    def _record(actor: Actor, action: str, campaign_id: int, **details: Any) -> None:
        with database.session() as session:
            campaign = session.get_one(Campaign, campaign_id)
            audit.record(
                session,
                actor=actor.audit_name,
                action=action,
                staff_id=actor.id,
                municipality_id=campaign.municipality_id,
                details={"campaign_id": campaign_id, **details},
            )

    def _answer(campaign_id: int, **extra: Any) -> CampaignOut:
        with database.session() as session:
            return campaign_out(session, session.get_one(Campaign, campaign_id), **extra)

    def _check_owned(actor: Actor, campaign_id: int) -> None:
        with database.session() as session:
            _owned(session, actor, campaign_id)

    @routes.post("/campaigns/preview")
    def preview(body: DraftBody, actor: CampaignStaff) -> DryRunOut:
        """How many young people the campaign would reach, and its first messages. Writes no
        campaign; the young people whose names it shows are audited as read."""
        with database.session() as session:
            spec = _spec(session, actor, body, name=body.name or "preview")
        try:
            result = runtime.campaigns.dry_run(spec)
        except (CampaignError, AudienceError) as error:
            raise _refused(error) from error
        with database.session() as session:
            audit_preview(
                session,
                result,
                municipality_id=spec.municipality_id,
                actor=actor.audit_name,
                staff_id=actor.id,
            )
        return dry_run_out(result)

    @routes.post("/campaigns", status_code=201)
    def create(body: CampaignBody, actor: CampaignStaff) -> CampaignOut:
        """Create a draft; with ``schedule`` it is live at once."""
        with database.session() as session:
            spec = _spec(session, actor, body, name=body.name)
        try:
            campaign_id = runtime.campaigns.create(spec)
        except (CampaignError, AudienceError) as error:
            raise _refused(error) from error
        _record(actor, "campaign.created", campaign_id)
        first_due = None
        if body.schedule:
            try:
                first_due = runtime.campaigns.schedule(campaign_id)
            except CampaignError as error:
                raise _refused(error) from error
            _record(actor, "campaign.scheduled", campaign_id, first_due_at=first_due.isoformat())
        return _answer(campaign_id, first_due_at=first_due)

    @routes.get("/campaigns")
    def list_campaigns(
        actor: CampaignStaff,
        municipality: Annotated[str | None, Query(max_length=60)] = None,
        status: CampaignStatus | None = None,
    ) -> CampaignList:
        """The campaigns of the coordinator's municipality."""
        with database.session() as session:
            place = _place(session, actor, municipality)
            query = (
                sa.select(Campaign)
                .where(Campaign.municipality_id == place.id)
                .order_by(Campaign.id.desc())
            )
            if status is not None:
                query = query.where(Campaign.status == status)
            found = session.scalars(query).all()
            return CampaignList(campaigns=[campaign_out(session, c) for c in found])

    @routes.get("/campaigns/{campaign_id}")
    def show(campaign_id: CampaignId, actor: CampaignStaff) -> CampaignOut:
        """One campaign with how far it has come."""
        _check_owned(actor, campaign_id)
        progress = runtime.campaigns.progress(campaign_id)
        return _answer(campaign_id, progress=ProgressOut.model_validate(progress))

    @routes.post("/campaigns/{campaign_id}/schedule")
    def schedule(campaign_id: CampaignId, actor: CampaignStaff) -> CampaignOut:
        """Make a draft live; the answer says when its first run is due."""
        _check_owned(actor, campaign_id)
        try:
            first_due = runtime.campaigns.schedule(campaign_id)
        except CampaignError as error:
            raise _refused(error) from error
        _record(actor, "campaign.scheduled", campaign_id, first_due_at=first_due.isoformat())
        return _answer(campaign_id, first_due_at=first_due)

    def _steer(actor: Actor, campaign_id: int, act: Callable[[int], object], event: str) -> object:
        """Pause, resume or cancel: checked, done, audited; a wrong state is refused."""
        _check_owned(actor, campaign_id)
        try:
            result = act(campaign_id)
        except CampaignError as error:
            raise _refused(error) from error
        _record(actor, event, campaign_id, **({"skipped": result} if result is not None else {}))
        return result

    @routes.post("/campaigns/{campaign_id}/pause")
    def pause(campaign_id: CampaignId, actor: CampaignStaff) -> CampaignOut:
        """Stop sending at once; nothing is lost, ``resume`` goes on."""
        _steer(actor, campaign_id, runtime.campaigns.pause, "campaign.paused")
        return _answer(campaign_id)

    @routes.post("/campaigns/{campaign_id}/resume")
    def resume(campaign_id: CampaignId, actor: CampaignStaff) -> CampaignOut:
        _steer(actor, campaign_id, runtime.campaigns.resume, "campaign.resumed")
        return _answer(campaign_id)

    @routes.post("/campaigns/{campaign_id}/cancel")
    def cancel(campaign_id: CampaignId, actor: CampaignStaff) -> CampaignOut:
        """Stop for good; the answer says how many recipients were skipped."""
        skipped = _steer(actor, campaign_id, runtime.campaigns.cancel, "campaign.cancelled")
        return _answer(campaign_id, skipped=skipped if isinstance(skipped, int) else 0)

    return routes
