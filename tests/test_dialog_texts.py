"""A municipality's own wording of the dialogs' texts: the checks, the pages, the review, and
the bot saying the municipality's text to its own young people only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx2 import Response
from typer.testing import CliRunner

from bot import dialog_texts
from bot.cli import app as cli
from bot.i18n import translator
from bot.runtime import Runtime
from bot.web.app import create_app
from dialogs import replies
from dialogs.flows.dreams import DREAMS
from dialogs.model import Ask
from dialogs.types import Channel, Role
from storage import dialog_texts as stored_texts
from storage.db import Database
from storage.models import (
    AuditEvent,
    DialogTextOverride,
    Municipality,
    StaffUser,
    YoungPerson,
)
from tests.conftest import make_settings
from tests.staff_world import World, build_world, csrf_token, sign_in

KEY = "dreams.dream.text"
DREAM = DREAMS.step("dream")
assert isinstance(DREAM, Ask)
SHIPPED_DA = DREAM.text
OWN_DA = "Hej {first_name}! Hvad drømmer du om at lave i Aarhus?"


@dataclass
class Site:
    runtime: Runtime
    world: World
    client: TestClient

    def as_(self, who: str) -> TestClient:
        client = TestClient(self.client.app)
        assert sign_in(client, who).status_code == 303
        return client

    def save(self, language: str, text: str, *, key: str = KEY, **extra: str) -> Response:
        return post(self.client, f"/texts/{language}/{key}", text=text, **extra)

    def rows(self) -> list[DialogTextOverride]:
        with self.runtime.database.session() as session:
            rows = list(
                session.scalars(sa.select(DialogTextOverride).order_by(DialogTextOverride.id))
            )
            session.expunge_all()
            return rows

    def actions(self) -> list[str]:
        with self.runtime.database.session() as session:
            return list(
                session.scalars(
                    sa.select(AuditEvent.action)
                    .where(AuditEvent.action.startswith("dialog_text."))
                    .order_by(AuditEvent.id)
                )
            )

    def start_dreams(self, who: str) -> list[str]:
        sent = self.runtime.conversations.start(
            young_person_id=self.world.people[who], dialog="dreams", variables={}
        )
        return [s.text for s in sent]


def post(client: TestClient, path: str, **data: Any) -> Response:
    token = csrf_token(client.get("/staff").text)
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


@pytest.fixture
def site(database: Database) -> Iterator[Site]:
    runtime = Runtime(settings=make_settings(), database=database)
    with database.session() as session:
        world = build_world(session)
        for person in session.scalars(sa.select(YoungPerson)):
            person.preferred_channel = Channel.SIMULATOR
    with TestClient(create_app(runtime)) as client:
        assert sign_in(client, "carsten").status_code == 303
        yield Site(runtime, world, client)


def test_bad_texts_are_refused_with_the_problem_named_and_nothing_saved(site: Site) -> None:
    unknown = site.save("da", "Hej {first_name}, hvad med {nickname}?")
    assert unknown.status_code == 400
    assert "Teksten er ikke gemt" in unknown.text
    assert "Feltet {nickname} findes ikke i denne dialog" in unknown.text
    assert "{first_name}" in unknown.text  # the fields it may use are named
    assert "{meeting}" not in unknown.text.split("Du kan bruge:")[1].split(".")[0]

    too_long = site.save("da", "Fortæl mig om dine drømme. " * 20)
    assert too_long.status_code == 400
    assert "Teksten bliver for lang: 4 SMS&#39;er" in too_long.text

    sensitive = site.save("da", "Hej {first_name}, hvordan går det med din kontanthjælp?")
    assert sensitive.status_code == 400
    assert "Ordet »kontanthjælp« må ikke stå i en besked til en ung" in sensitive.text

    assert site.save("en", "   ").status_code == 400
    brace = site.save("en", "Hi {first_name, what do you dream of?")
    assert brace.status_code == 400
    assert "Krøllede parenteser" in brace.text

    assert site.rows() == []
    assert site.actions() == []


def test_the_bot_says_the_municipalitys_own_text_to_its_young_people_only(site: Site) -> None:
    assert site.start_dreams("mads") == [SHIPPED_DA.format(first_name="Mads")]
    saved = site.save("da", OWN_DA)
    assert saved.status_code == 303
    assert saved.headers["location"] == "/texts?language=da&done=saved"

    assert site.start_dreams("mads") == ["Hej Mads! Hvad drømmer du om at lave i Aarhus?"]
    # Freja lives in Odense: the shipped text.
    assert site.start_dreams("freja") == [SHIPPED_DA.format(first_name="Freja")]

    # Another language: only a young person who writes in it gets it.
    assert site.save("en", "Hi {first_name}, what would you love to do one day?").status_code == 303
    with site.runtime.database.session() as session:
        session.get_one(YoungPerson, site.world.people["sara"]).language = "en"
    assert site.start_dreams("sara") == ["Hi Sara, what would you love to do one day?"]
    assert site.start_dreams("mads") == ["Hej Mads! Hvad drømmer du om at lave i Aarhus?"]

    # A change is seen at the next turn, and a reset brings back the shipped text.
    assert site.save("da", "Hej {first_name}, hvad drømmer du om?").status_code == 303
    assert site.start_dreams("mads") == ["Hej Mads, hvad drømmer du om?"]
    assert post(site.client, f"/texts/da/{KEY}/reset").status_code == 303
    assert site.start_dreams("mads") == [SHIPPED_DA.format(first_name="Mads")]
    assert site.actions() == [
        "dialog_text.saved",
        "dialog_text.saved",
        "dialog_text.saved",
        "dialog_text.reset",
    ]


def test_the_editable_texts_and_their_fields() -> None:
    remind = dialog_texts.find("meeting_reminder.remind.text")
    assert remind is not None
    assert {"first_name", "with_whom", "meeting", "place"} <= remind.allowed
    assert not {"meeting_id", "meeting_at"} & remind.allowed  # ids and raw moments stay inside
    # One text in two dialogs: one text, reached from both, with the fields both can fill.
    shared = dialog_texts.find("no_show_follow_up.new_time.rephrase")
    assert shared is not None and shared is dialog_texts.find("meeting_reminder.new_time.rephrase")
    assert "with_whom" in shared.allowed
    sources = {text.source for text in dialog_texts.editable_texts()}
    assert not sources & set(replies.ALL)  # crisis help, STOP, START, help: never editable
    assert dialog_texts.find("welcome.permission.text") is None


def test_a_text_that_may_not_be_changed_is_never_said_from_the_table(site: Site) -> None:
    hello = "Hej {first_name}! Jeg er Stifinder, en chatbot fra ungeindsatsen i {municipality}."
    assert dialog_texts.find("welcome.hello.text") is None
    assert site.client.get("/texts/da/welcome.hello.text").status_code == 404
    with site.runtime.database.session() as session:
        session.add(
            DialogTextOverride(
                municipality_id=site.world.places["aarhus"],
                language="da",
                source=hello,
                text="Hej, det er mig.",
            )
        )
    sent = site.runtime.conversations.start(
        young_person_id=site.world.people["mads"], dialog="welcome", variables={}
    )
    assert "Jeg er Stifinder, en chatbot" in sent[0].text


def test_review_status_from_the_catalog_and_the_municipalitys_own_texts(site: Site) -> None:
    flagged = dialog_texts.catalog_needs_review("ar")
    assert SHIPPED_DA in flagged  # the shipped Arabic is marked needs-review in its catalog
    assert dialog_texts.catalog_needs_review("da") == frozenset()

    page = site.client.get("/texts?language=ar&review=1")
    assert page.status_code == 200
    assert f'href="/texts/ar/{KEY}"' in page.text
    assert translator("ar").gettext(SHIPPED_DA) in page.text

    arabic = "مرحبا {first_name}، ما هو حلمك؟"
    assert site.save("ar", arabic, reviewed="1").status_code == 303
    [row] = site.rows()
    carsten = site.world.staff["carsten"]
    assert (row.text, row.reviewed_by_id, row.updated_by_id) == (arabic, carsten, carsten)
    assert row.reviewed_at is not None
    assert f'href="/texts/ar/{KEY}"' not in site.client.get("/texts?language=ar&review=1").text
    assert "Gennemlæst af Carsten Koordinator." in site.client.get(f"/texts/ar/{KEY}").text

    # Saved again without the review: it waits for a native speaker again.
    assert site.save("ar", arabic + " 🙂").status_code == 303
    [row] = site.rows()
    assert (row.reviewed_by_id, row.reviewed_at) == (None, None)
    assert f'href="/texts/ar/{KEY}"' in site.client.get("/texts?language=ar&review=1").text
    edited_at = row.updated_at

    assert post(site.client, f"/texts/ar/{KEY}/review").status_code == 303
    [row] = site.rows()
    assert row.reviewed_by_id == carsten and row.reviewed_at is not None
    assert row.updated_at == edited_at  # the text did not change
    assert site.actions() == ["dialog_text.saved", "dialog_text.saved", "dialog_text.reviewed"]

    listed = site.client.get("/texts?language=ar").text
    assert arabic in listed and "Gennemlæst" in listed


def test_only_the_coordinators_of_the_municipality_reach_its_texts(site: Site) -> None:
    assert site.save("da", OWN_DA).status_code == 303
    for who in ("karin", "ada"):
        client = site.as_(who)
        assert client.get("/texts", follow_redirects=False).status_code == 403
        assert client.get(f"/texts/da/{KEY}", follow_redirects=False).status_code == 403
        assert post(client, f"/texts/da/{KEY}/reset").status_code == 403
    olga = site.as_("olga")
    assert "Aarhus" not in olga.get(f"/texts/da/{KEY}").text
    assert "Aarhus" not in olga.get("/texts?language=da").text
    assert post(olga, f"/texts/da/{KEY}/reset").status_code == 404
    assert post(olga, f"/texts/da/{KEY}/review").status_code == 404
    assert [row.text for row in site.rows()] == [OWN_DA]
    assert site.client.get(f"/texts/xx/{KEY}").status_code == 404
    assert site.client.get("/texts/da/dreams.nothing.text").status_code == 404
    assert post(site.client, "/texts/da/welcome.permission.text", text="Må jeg?").status_code == 404


def test_dialogs_check_with_a_municipality_checks_its_own_texts(site: Site) -> None:
    runner = CliRunner()
    args = ["dialogs", "check", "--municipality", "aarhus"]
    assert site.save("da", OWN_DA).status_code == 303
    passed = runner.invoke(cli, args, obj=site.runtime)
    assert passed.exit_code == 0, passed.output
    with site.runtime.database.session() as session:
        session.add(
            DialogTextOverride(
                municipality_id=site.world.places["aarhus"],
                language="en",
                source=SHIPPED_DA,
                text="Hi {nickname}!",
            )
        )
    failed = runner.invoke(cli, args, obj=site.runtime)
    assert failed.exit_code == 1
    assert "aarhus: dreams.dream [en]: unknown-variable: nickname" in failed.output
    # Odense's texts are its own: nothing wrong there.
    odense = runner.invoke(cli, [*args[:-1], "odense"], obj=site.runtime)
    assert odense.exit_code == 0, odense.output
    unknown = runner.invoke(cli, [*args[:-1], "nowhere"], obj=site.runtime)
    assert unknown.exit_code == 2
    assert "Kommunen nowhere findes ikke." in unknown.output


def test_two_coordinators_saving_the_same_new_text_at_once_both_succeed(
    database: Database,
) -> None:
    with database.session() as session:
        place = Municipality(name="Aarhus Kommune", slug="aarhus")
        session.add(place)
        session.flush()
        carsten, dorte = (
            StaffUser(
                municipality_id=place.id,
                name=name,
                email=f"{name.lower()}@aarhus.dk",
                role=Role.COORDINATOR,
                password_hash="x",
            )
            for name in ("Carsten", "Dorte")
        )
        session.add_all([carsten, dorte])
        session.flush()
        ids = place.id, carsten.id, dorte.id
    place_id, carsten_id, dorte_id = ids
    source = "Hvad drømmer du om?"

    def save(session: Any, text: str, staff_id: int) -> None:
        stored_texts.save(
            session,
            municipality_id=place_id,
            language="da",
            source=source,
            text=text,
            staff_id=staff_id,
            reviewed=False,
            now=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        )

    meanwhile: list[str] = []

    def dorte_saves() -> None:
        with database.session() as session:
            save(session, "Hvad drømmer du om? Fortæl løs.", dorte_id)
        meanwhile.append("saved")

    def after_carstens_look(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if meanwhile or "dialog_text_override" not in statement:
            return
        meanwhile.append("looked")  # Carsten found no text: Dorte creates it now
        other = threading.Thread(target=dorte_saves)
        other.start()
        other.join(timeout=15)

    sa.event.listen(database.engine, "after_cursor_execute", after_carstens_look)
    try:
        with database.session() as session:
            save(session, "Hvad drømmer du om, når du kigger frem?", carsten_id)
    finally:
        sa.event.remove(database.engine, "after_cursor_execute", after_carstens_look)
    assert meanwhile == ["looked", "saved"]
    with database.session() as session:
        rows = session.scalars(sa.select(DialogTextOverride)).all()
        assert [(r.text, r.updated_by_id) for r in rows] == [
            ("Hvad drømmer du om, når du kigger frem?", carsten_id)
        ]
