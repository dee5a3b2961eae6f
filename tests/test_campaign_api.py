"""The campaign API on both databases: tokens, roles, municipalities, the campaign's life, bad
input and the audit of previews."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx2 import Response

from bot.runtime import Runtime
from bot.web.app import create_app
from dialogs.types import Channel, Direction, Role, YoungPersonStatus
from storage import tokens
from storage.db import Database
from storage.models import (
    ApiToken,
    AuditEvent,
    Campaign,
    CampaignRecipient,
    Message,
    Municipality,
    StaffUser,
    YoungPerson,
    YoungPersonTag,
)
from tests.conftest import make_settings

HELLO = {"da": "Hej {first_name}, vi holder åbent hus.", "en": "Hi {first_name}, open house."}


@dataclass
class World:
    client: TestClient
    runtime: Runtime
    tokens: dict[str, str]
    staff: dict[str, int]
    people: dict[str, int]

    def call(self, method: str, path: str, who: str | None = None, **kwargs: Any) -> Response:
        headers = dict(kwargs.pop("headers", {}))
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return self.client.request(method, f"/api/v1{path}", headers=headers, **kwargs)

    def create(self, who: str = "carsten", **body: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {"name": "Åbent hus", "template": HELLO}
        payload.update(body)
        response = self.call("POST", "/campaigns", who, json=payload)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data


def _place(session: Any, name: str, slug: str) -> Municipality:
    # No quiet hours, so that a sweep sends whatever the hour the tests run at.
    place = Municipality(name=name, slug=slug, quiet_hours_start=time(0), quiet_hours_end=time(0))
    session.add(place)
    return place


def _staff(place: Municipality | None, name: str, role: Role) -> StaffUser:
    return StaffUser(
        name=name,
        email=f"{name.lower()}@x.dk",
        role=role,
        password_hash="x",
        municipality=place,
    )


@pytest.fixture
def world(database: Database) -> Iterator[World]:
    now = datetime.now(UTC)
    with database.session() as session:
        aarhus = _place(session, "Aarhus Kommune", "aarhus")
        odense = _place(session, "Odense Kommune", "odense")
        members = {
            "carsten": _staff(aarhus, "Carsten", Role.COORDINATOR),
            "karin": _staff(aarhus, "Karin", Role.KONTAKTPERSON),
            "olga": _staff(odense, "Olga", Role.COORDINATOR),
            "otto": _staff(odense, "Otto", Role.KONTAKTPERSON),
            "anna": _staff(None, "Anna", Role.ADMIN),
        }
        session.add_all(members.values())
        session.flush()
        people: dict[str, int] = {}
        for name, place, tags, language in (
            ("Mads", aarhus, ["fgu"], "da"),
            ("Sara", aarhus, ["fgu", "job"], "en"),
            ("Emil", odense, ["fgu"], "da"),
        ):
            person = YoungPerson(
                municipality=place,
                first_name=name,
                birth_date=date(2006, 5, 1),
                kontaktperson=members["karin" if place is aarhus else "otto"],
                status=YoungPersonStatus.ACTIVE,
                language=language,
                preferred_channel=Channel.SIMULATOR,
            )
            person.tags = [YoungPersonTag(tag=t) for t in tags]
            session.add(person)
            session.flush()
            people[name] = person.id
        issued = {
            who: tokens.issue(session, member, name="test", now=now)[1]
            for who, member in members.items()
        }
        staff_ids = {who: member.id for who, member in members.items()}
    runtime = Runtime(settings=make_settings(), database=database)
    with TestClient(create_app(runtime)) as client:
        yield World(client, runtime, issued, staff_ids, people)


# ---------------------------------------------------------------------------- who may


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic Y2Fyc3Rlbjp4",
        "Bearer not-a-token",
        "Bearer " + "x" * 500,
    ],
)
def test_without_a_valid_token_the_answer_is_401_with_a_challenge(
    world: World, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = world.client.get("/api/v1/campaigns", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_revoked_token_and_a_deactivated_staff_member_are_refused(world: World) -> None:
    assert world.call("GET", "/campaigns", "carsten").status_code == 200
    with world.runtime.database.session() as session:
        row = session.scalars(
            sa.select(ApiToken).where(ApiToken.staff_id == world.staff["carsten"])
        ).one()
        assert row.last_used_at is not None  # the use was noted
        assert row.token_hash == tokens.hash_token(world.tokens["carsten"])
        tokens.revoke(session, row.id, now=datetime.now(UTC))
        session.get_one(StaffUser, world.staff["olga"]).is_active = False
    response = world.call("GET", "/campaigns", "carsten")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert world.call("GET", "/campaigns", "olga").status_code == 401


def test_a_kontaktperson_gets_403(world: World) -> None:
    assert world.call("GET", "/campaigns", "karin").status_code == 403
    response = world.call("POST", "/campaigns/preview", "karin", json={"template": HELLO})
    assert response.status_code == 403


def test_a_coordinator_cannot_see_or_touch_another_municipalitys_campaign(world: World) -> None:
    theirs = world.create("olga")["id"]
    ours = world.create("carsten")["id"]
    assert world.call("GET", f"/campaigns/{theirs}", "carsten").status_code == 404
    for action in ("schedule", "pause", "resume", "cancel"):
        response = world.call("POST", f"/campaigns/{theirs}/{action}", "carsten")
        assert response.status_code == 404, action
        assert response.json()["detail"] == f"campaign {theirs}: not found"
    # An unknown campaign looks just the same.
    assert world.call("GET", "/campaigns/999999", "carsten").json() == {
        "detail": "campaign 999999: not found"
    }
    listed = world.call("GET", "/campaigns", "carsten").json()["campaigns"]
    assert [c["id"] for c in listed] == [ours]
    assert listed[0]["municipality"] == "aarhus"
    # Nor can it preview, create in or list the other municipality.
    body = {"municipality": "odense", "template": HELLO}
    assert world.call("POST", "/campaigns/preview", "carsten", json=body).status_code == 403
    body["name"] = "Snig"
    assert world.call("POST", "/campaigns", "carsten", json=body).status_code == 403
    assert world.call("GET", "/campaigns?municipality=odense", "carsten").status_code == 403
    with world.runtime.database.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 2


def test_an_admin_is_refused_campaigns_and_sees_no_young_person(world: World) -> None:
    """Admins manage municipalities and staff; a campaign's preview names young people."""
    theirs = world.create("olga")["id"]
    for method, path, body in [
        ("GET", "/campaigns", None),
        ("GET", f"/campaigns/{theirs}", None),
        ("POST", "/campaigns/preview", {"municipality": "odense", "template": HELLO}),
        ("POST", "/campaigns", {"municipality": "odense", "name": "X", "template": HELLO}),
        ("POST", f"/campaigns/{theirs}/pause", None),
    ]:
        response = world.call(method, path, "anna", json=body)
        assert response.status_code == 403, (method, path)
        assert "Emil" not in response.text
    with world.runtime.database.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 1


# ---------------------------------------------------------------------------- the campaign's life


def test_create_and_schedule_then_a_sweep_sends_the_messages(world: World) -> None:
    created = world.create(schedule=True, audience={"tags": ["fgu"]})
    assert created["status"] == "scheduled"
    assert created["first_due_at"] is not None
    assert created["template"] == HELLO
    assert created["audience"]["tags"] == ["fgu"]
    world.runtime.worker().sweep()
    world.runtime.worker().sweep()
    with world.runtime.database.session() as session:
        texts = dict(
            session.execute(
                sa.select(Message.young_person_id, Message.text).where(
                    Message.direction == Direction.OUTBOUND
                )
            ).all()
        )
    assert texts == {
        world.people["Mads"]: "Hej Mads, vi holder åbent hus.",
        world.people["Sara"]: "Hi Sara, open house.",
    }
    shown = world.call("GET", f"/campaigns/{created['id']}", "carsten").json()
    assert shown["progress"]["total"] == 2
    assert sum(shown["progress"]["by_status"].values()) == 2
    assert "pending" not in shown["progress"]["by_status"]


def test_pause_resume_and_cancel_move_only_from_the_right_states(world: World) -> None:
    campaign_id = world.create(starts_at=(datetime.now(UTC) + timedelta(days=1)).isoformat())["id"]

    def act(action: str) -> Response:
        return world.call("POST", f"/campaigns/{campaign_id}/{action}", "carsten")

    for action in ("pause", "resume"):
        response = act(action)
        assert response.status_code == 409, action
        assert response.json()["detail"].startswith("status:")
    scheduled = act("schedule")
    assert scheduled.status_code == 200
    assert scheduled.json()["status"] == "scheduled"
    assert scheduled.json()["next_run_at"] == scheduled.json()["first_due_at"]
    assert act("schedule").status_code == 409
    assert act("pause").json()["status"] == "paused"
    assert act("pause").status_code == 409
    assert act("resume").json()["status"] == "running"
    cancelled = act("cancel")
    assert (cancelled.json()["status"], cancelled.json()["skipped"]) == ("cancelled", 0)
    assert cancelled.json()["next_run_at"] is None
    assert act("cancel").status_code == 409
    assert act("resume").status_code == 409
    with world.runtime.database.session() as session:
        actions = session.scalars(
            sa.select(AuditEvent.action)
            .where(AuditEvent.action.like("campaign.%"))
            .order_by(AuditEvent.id)
        ).all()
        assert session.scalar(sa.select(sa.func.count()).select_from(CampaignRecipient)) == 0
    assert actions == [
        "campaign.created",
        "campaign.scheduled",
        "campaign.paused",
        "campaign.resumed",
        "campaign.cancelled",
    ]


@pytest.mark.parametrize(
    ("body", "status", "start"),
    [
        ({"cron": "every monday"}, 400, "cron:"),
        ({"template": {"da": "Hej {cpr}"}}, 400, "template[da]: unknown variable {cpr}"),
        ({"template": {"xx": "Hej"}}, 400, "template[xx]: no such language"),
        ({"template": {"da": "   "}}, 400, "template[da]: the message is empty"),
        ({"dialog": "dreams"}, 400, "content: choose either a dialog or a message"),
        ({"template": None, "dialog": "nope"}, 400, "dialog: no dialog called 'nope'"),
        ({"starts_at": "2026-12-01T10:00:00"}, 400, "starts_at:"),
        ({"rate_per_minute": 0}, 400, "rate_per_minute:"),
        ({"relative": {"anchor": "birthday", "offset_minutes": 0}}, 400, "relative:"),
        ({"audience": {"statuses": ["opted_out"]}}, 400, "statuses:"),
        ({"audience": {"min_age": 20, "max_age": 18}}, 400, "min_age is above max_age"),
        ({"name": "  "}, 400, "name:"),
    ],
)
def test_bad_input_gets_400_naming_the_field_and_creates_nothing(
    world: World, body: dict[str, Any], status: int, start: str
) -> None:
    payload: dict[str, Any] = {"name": "Åbent hus", "template": HELLO, **body}
    response = world.call("POST", "/campaigns", "carsten", json=payload)
    assert response.status_code == status, response.text
    assert response.json()["detail"].startswith(start)
    preview = world.call("POST", "/campaigns/preview", "carsten", json=payload)
    assert preview.status_code == status
    with world.runtime.database.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"audience": {"colour": "blue"}}, ["body", "audience", "colour"]),
        ({"audience": {"statuses": ["sleeping"]}}, ["body", "audience", "statuses", 0]),
        ({"audience": {"channel": "fax"}}, ["body", "audience", "channel"]),
        (
            {"audience": {"min_days_since_contact": 10**9}},
            ["body", "audience", "min_days_since_contact"],
        ),
        (
            {"audience": {"kontaktperson_ids": [2**40]}},
            ["body", "audience", "kontaktperson_ids", 0],
        ),
        ({"rate_per_minute": 10**12}, ["body", "rate_per_minute"]),
        ({"name": "x" * 201}, ["body", "name"]),
        ({"starts_at": "tomorrow"}, ["body", "starts_at"]),
        ({"schedule": "often"}, ["body", "schedule"]),
    ],
)
def test_a_body_of_the_wrong_shape_gets_422_naming_the_field(
    world: World, body: dict[str, Any], field: list[object]
) -> None:
    payload: dict[str, Any] = {"name": "Åbent hus", "template": HELLO, **body}
    response = world.call("POST", "/campaigns", "carsten", json=payload)
    assert response.status_code == 422
    assert [problem["loc"] for problem in response.json()["detail"]] == [field]


def test_odd_requests_never_get_a_500(world: World) -> None:
    assert world.call("GET", f"/campaigns/{2**63}", "carsten").status_code == 422
    assert world.call("POST", "/campaigns/0/pause", "carsten").status_code == 422
    assert world.call("GET", "/campaigns?status=sleeping", "carsten").status_code == 422
    response = world.call(
        "POST",
        "/campaigns",
        "carsten",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    other = {"audience": {"kontaktperson_ids": [world.staff["otto"]]}, "template": HELLO}
    response = world.call("POST", "/campaigns/preview", "carsten", json=other)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("kontaktperson_ids:")


# ---------------------------------------------------------------------------- previews


def test_a_preview_counts_shows_and_audits_whom_it_showed(world: World) -> None:
    with world.runtime.database.session() as session:
        sara = session.get_one(YoungPerson, world.people["Sara"])
        sara.preferred_channel, sara.phone = None, "+4520000002"
    response = world.call(
        "POST",
        "/campaigns/preview",
        "carsten",
        json={"template": HELLO, "audience": {"kontaktperson_ids": [world.staff["karin"]]}},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    # Mads has only the simulator: no phone, no Telegram.
    assert (result["count"], result["without_channel"]) == (2, 1)
    shown = {
        p["first_name"]: (p["channel"], p["text"], p["encoding"], p["segments"])
        for p in result["previews"]
    }
    assert shown == {
        "Mads": ("simulator", "Hej Mads, vi holder åbent hus.", None, None),
        "Sara": ("sms", "Hi Sara, open house.", "GSM-7", 1),
    }
    assert set(result["previews"][0]) == {
        "young_person_id",
        "first_name",
        "language",
        "channel",
        "text",
        "encoding",
        "segments",
    }
    with world.runtime.database.session() as session:
        events = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "campaign.preview")
        ).all()
        assert session.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 0
        seen = {
            (e.staff_id, e.actor, e.municipality_id is not None, e.young_person_id): e.details
            for e in events
        }
    carsten = world.staff["carsten"]
    assert seen == {
        (carsten, f"staff:{carsten}", True, world.people[name]): {"count": 2, "shown": 2}
        for name in ("Mads", "Sara")
    }


def test_a_dialog_campaign_previews_without_text(world: World) -> None:
    response = world.call(
        "POST",
        "/campaigns/preview",
        "carsten",
        json={"dialog": "dreams", "audience": {"tags": ["job"]}},
    )
    assert response.status_code == 200, response.text
    assert [(p["first_name"], p["text"]) for p in response.json()["previews"]] == [("Sara", None)]
