"""The simulator channel over HTTP, in the terminal and as a page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bot.cli import app as cli
from bot.runtime import Runtime
from bot.web.app import create_app
from dialogs.types import Channel, DeliveryStatus, Direction, OutboxStatus
from storage.db import Database
from storage.models import Message, OutboxEntry
from tests.conftest import make_settings
from tests.people import add_mads, at_any_hour


@pytest.fixture
def person_id(database: Database) -> int:
    with database.session() as session:
        return at_any_hour(add_mads(session)).id


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    runtime = Runtime(settings=make_settings(simulator_enabled=True), database=database)
    with TestClient(create_app(runtime)) as test_client:
        yield test_client


def test_post_returns_the_bots_replies_already_delivered(
    client: TestClient, database: Database, person_id: int
) -> None:
    response = client.post(f"/api/simulator/{person_id}/messages", json={"text": "hjælp"})
    assert response.status_code == 200
    replies = response.json()["replies"]
    assert [r["text"][:24] for r in replies] == ["Jeg er Stifinder, en cha"]
    with database.session() as session:
        outbound = session.scalars(
            sa.select(Message).where(Message.direction == Direction.OUTBOUND)
        ).one()
        assert (outbound.channel, outbound.status) == (Channel.SIMULATOR, DeliveryStatus.DELIVERED)
        assert session.scalars(sa.select(OutboxEntry.status)).one() is OutboxStatus.SENT


def test_get_shows_the_thread_and_later_proactive_messages(
    client: TestClient, database: Database, person_id: int
) -> None:
    first = client.post(f"/api/simulator/{person_id}/messages", json={"text": "hej"}).json()
    last_id = first["replies"][-1]["id"]
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    runtime.conversations.start(young_person_id=person_id, dialog="dreams", variables={})
    # Not yet sent: the worker has not dispatched it.
    assert client.get(f"/api/simulator/{person_id}/messages?after={last_id}").json() == {
        "messages": []
    }
    runtime.dispatcher.dispatch_due()
    later = client.get(f"/api/simulator/{person_id}/messages?after={last_id}").json()["messages"]
    assert [(m["direction"], m["text"]) for m in later] == [
        ("outbound", "Hvad drømmer du om? Det må gerne være stort eller småt.")
    ]
    whole = client.get(f"/api/simulator/{person_id}/messages").json()["messages"]
    assert [m["direction"] for m in whole] == ["inbound", "outbound", "outbound"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/simulator/999999/messages", {"text": "hej"}, 404),
        ("/api/simulator/{id}/messages", {"text": ""}, 422),
        ("/api/simulator/{id}/messages", {"text": "x" * 1601}, 422),
        ("/api/simulator/{id}/messages", {"nope": "hej"}, 422),
    ],
)
def test_bad_requests_are_refused_and_store_nothing(
    client: TestClient,
    database: Database,
    person_id: int,
    path: str,
    body: dict[str, str],
    status: int,
) -> None:
    response = client.post(path.format(id=person_id), json=body)
    assert response.status_code == status
    with database.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0


def test_the_phone_page_loads_its_own_script(client: TestClient, person_id: int) -> None:
    page = client.get(f"/simulator/{person_id}")
    assert page.status_code == 200
    assert "Du skriver som Mads" in page.text
    assert '<script src="/static/simulator.js" defer></script>' in page.text
    assert client.get("/static/simulator.js").status_code == 200
    listing = client.get("/simulator")
    assert f'href="/simulator/{person_id}"' in listing.text


def test_the_simulator_is_off_outside_development(database: Database, person_id: int) -> None:
    runtime = Runtime(settings=make_settings(), database=database)  # environment "test"
    with TestClient(create_app(runtime)) as test_client:
        response = test_client.post(f"/api/simulator/{person_id}/messages", json={"text": "hej"})
        assert response.status_code == 404
        assert test_client.get("/simulator").status_code == 404


def test_chat_in_the_terminal(database: Database, person_id: int) -> None:
    runtime = Runtime(settings=make_settings(), database=database)
    result = CliRunner().invoke(cli, ["chat", "--as", "mads"], input="hej\nstop\n", obj=runtime)
    assert result.exit_code == 0, result.output
    assert "Du skriver som Mads." in result.output
    assert "Stifinder: Hej Mads! Skriv HJÆLP, hvis du vil se, hvad jeg kan." in result.output
    assert "Stifinder: Du er nu afmeldt" in result.output


def test_chat_needs_exactly_one_young_person(database: Database, person_id: int) -> None:
    runtime = Runtime(settings=make_settings(), database=database)
    result = CliRunner().invoke(cli, ["chat", "--as", "nobody"], obj=runtime)
    assert result.exit_code == 1
    assert "Fandt ikke præcis én ung, der passer på nobody." in result.output
