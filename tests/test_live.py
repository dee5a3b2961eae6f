"""``GET /live`` through the real app on a real port, read with an httpx streaming client: each
staff member hears of exactly the young people they may see, as the absences are now; a
reconnect resumes without repeats; a signed-out or revoked session gets nothing; on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import queue
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bot.conversations import Conversations
from bot.runtime import Runtime
from bot.web import live
from dialogs.engine import Engine
from dialogs.flows import CORE_DIALOGS
from dialogs.types import Channel, Direction
from storage import audit
from storage.db import Database
from storage.models import Message, StaffSession, StaffUser, utcnow
from tests.app_server import free_port, serving
from tests.conftest import make_settings
from tests.staff_world import PASSWORD, World, build_world, email

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class SseEvent:
    name: str
    data: dict[str, Any]
    id: str | None


@dataclass
class Stream:
    """One open ``/live`` stream, read by a thread into a queue."""

    response: httpx.Response
    events: queue.Queue[SseEvent | None] = field(default_factory=queue.Queue)
    comments: list[str] = field(default_factory=list)

    def read(self) -> None:
        name, data, event_id = "message", "", None
        try:
            for line in self.response.iter_lines():
                if line.startswith(":"):
                    self.comments.append(line)
                elif line.startswith("event: "):
                    name = line[len("event: ") :]
                elif line.startswith("data: "):
                    data = line[len("data: ") :]
                elif line.startswith("id: "):
                    event_id = line[len("id: ") :]
                elif line == "":
                    if data:
                        self.events.put(SseEvent(name, json.loads(data), event_id))
                    name, data, event_id = "message", "", None
        except (httpx.HTTPError, RuntimeError, OSError):
            pass  # closed by the test
        self.events.put(None)  # the stream ended

    def next(self, timeout: float = 10.0) -> SseEvent | None:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no event in time") from None

    def until(self, wanted: Any, timeout: float = 10.0) -> list[SseEvent]:
        """Every event up to and including the first for which ``wanted(event)`` is true."""
        seen: list[SseEvent] = []
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(0.1, deadline - time.monotonic()))
            if event is None:
                raise AssertionError(f"the stream ended after {seen}")
            seen.append(event)
            if wanted(event):
                return seen

    def quiet(self, seconds: float) -> list[SseEvent]:
        """Whatever arrives within ``seconds``."""
        seen: list[SseEvent] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                break
            if event is None:
                break
            seen.append(event)
        return seen


@dataclass
class Site:
    url: str
    database: Database
    world: World
    conversations: Conversations

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=httpx.Timeout(10.0, read=30.0))

    @contextmanager
    def signed_in(self, who: str) -> Iterator[httpx.Client]:
        with self.client() as client:
            form = client.get("/sign-in")
            token = TOKEN.search(form.text)
            assert token is not None
            answer = client.post(
                "/sign-in",
                data={"email": email(who), "password": PASSWORD, "csrf_token": token.group(1)},
            )
            assert answer.status_code == 303, answer.text
            yield client

    @contextmanager
    def stream(
        self, client: httpx.Client, last_event_id: str | None = None, since: str | None = None
    ) -> Iterator[Stream]:
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        path = "/live" if since is None else f"/live?since={since}"
        with client.stream("GET", path, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = Stream(response)
            reader = threading.Thread(target=stream.read, daemon=True)
            reader.start()
            try:
                yield stream
            finally:
                # Unblocks the reader at once (closing the response alone waits for data).
                sock = response.extensions["network_stream"].get_extra_info("socket")
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                reader.join(timeout=10)

    def writes(self, who: str, text: str = "hej") -> int:
        """The young person writes (through the same conversation turn as the channels)."""
        person_id = self.world.people[who]
        self.conversations.receive(young_person_id=person_id, channel=Channel.SIMULATOR, text=text)
        with self.database.session() as session:
            return (
                session.scalar(
                    sa.select(sa.func.max(Message.id)).where(
                        Message.young_person_id == person_id, Message.direction == Direction.INBOUND
                    )
                )
                or 0
            )

    def staff(self, who: str, **fields: Any) -> None:
        with self.database.session() as session:
            row = session.get_one(StaffUser, self.world.staff[who])
            for name, value in fields.items():
                setattr(row, name, value)


@pytest.fixture
def site(database: Database, database_url: str) -> Iterator[Site]:
    with database.session() as session:
        world = build_world(session)
    runtime = Runtime(settings=make_settings(database_url=database_url), database=database)
    conversations = Conversations(database=database, engine=Engine(CORE_DIALOGS))
    with serving(runtime, free_port()) as url:
        yield Site(url=url, database=database, world=world, conversations=conversations)


def _inbound_from(person_id: int) -> Any:
    return lambda e: (
        e.name == "message"
        and e.data["young_person"] == person_id
        and e.data["direction"] == "inbound"
    )


def _people(events: list[SseEvent]) -> set[int]:
    return {int(e.data["young_person"]) for e in events if "young_person" in e.data}


def test_a_kontaktperson_hears_of_their_own_young_people_only(site: Site) -> None:
    mads, sara = site.world.people["mads"], site.world.people["sara"]
    with site.signed_in("karin") as karin, site.stream(karin) as stream:
        ready = stream.next()
        assert ready is not None and ready.name == "ready" and ready.id
        site.writes("sara")  # Ali's
        site.writes("mads")  # Karin's
        events = stream.until(_inbound_from(mads))
        assert _people(events) == {mads}
        assert sara not in _people(events + stream.quiet(1.5))
        inbound = events[-1]
        assert inbound.data == {
            "young_person": mads,
            "direction": "inbound",
            "author": "young_person",
        }
        assert inbound.id is not None and re.fullmatch(r"\d+-\d+", inbound.id)
        # Nothing of what was written is in the event: the page shows it (and audits the read).
        assert "hej" not in json.dumps([e.data for e in events])


def test_handoffs_are_announced_live(site: Site) -> None:
    mads = site.world.people["mads"]
    with site.signed_in("karin") as karin, site.stream(karin) as stream:
        stream.next()
        site.writes("mads", "jeg vil tale med en voksen")
        events = stream.until(lambda e: e.name == "handoff")
        assert events[-1].data == {"young_person": mads, "change": "opened", "priority": "normal"}
        # A colleague takes over in the inbox (recorded as an audit event, in any process).
        with site.database.session() as session:
            audit.record(
                session,
                actor="staff:1",
                action="inbox.took_over",
                young_person_id=mads,
                municipality_id=site.world.places["aarhus"],
            )
        events = stream.until(lambda e: e.name == "handoff")
        assert events[-1].data == {"young_person": mads, "change": "taken_over"}


def test_the_backup_hears_of_a_colleagues_young_people_only_while_the_colleague_is_away(
    site: Site,
) -> None:
    mads, sara = site.world.people["mads"], site.world.people["sara"]
    site.staff("karin", backup_id=site.world.staff["ali"])
    with site.signed_in("ali") as ali, site.stream(ali) as stream:
        stream.next()
        site.writes("mads")  # Karin is here: not Ali's business
        site.writes("sara")
        assert _people(stream.until(_inbound_from(sara))) == {sara}
        # Karin goes away: the scope is checked again on the next poll.
        now = utcnow()
        site.staff("karin", absent_from=now - timedelta(minutes=1))
        site.writes("mads")
        assert mads in _people(stream.until(_inbound_from(mads)))
        stream.quiet(1.5)  # the bot's answer to it
        # And back again.
        site.staff("karin", absent_until=utcnow())
        time.sleep(1.5)  # a poll with the absence over
        site.writes("mads")
        site.writes("sara")
        events = stream.until(_inbound_from(sara))
        assert _people(events) == {sara}


def test_a_coordinator_of_another_municipality_hears_nothing(site: Site) -> None:
    freja = site.world.people["freja"]
    with site.signed_in("olga") as olga, site.stream(olga) as stream:
        stream.next()
        site.writes("mads")
        site.writes("sara", "jeg vil tale med en voksen")
        site.writes("freja")  # Odense's own
        events = stream.until(_inbound_from(freja))
        assert _people(events) == {freja}
    # Aarhus's coordinator hears of all of Aarhus.
    with site.signed_in("carsten") as carsten, site.stream(carsten) as stream:
        stream.next()
        site.writes("mads")
        site.writes("sara")
        events = stream.until(_inbound_from(site.world.people["sara"]))
        assert _people(events) == {site.world.people["mads"], site.world.people["sara"]}


def test_a_reconnect_with_last_event_id_resumes_without_repeats(site: Site) -> None:
    mads = site.world.people["mads"]
    with site.signed_in("karin") as karin:
        with site.stream(karin) as stream:
            stream.next()
            first = site.writes("mads")
            events = stream.until(_inbound_from(mads)) + stream.quiet(1.5)
            last_id = [e.id for e in events if e.id][-1]
        assert last_id is not None
        # Written while the browser was away.
        second = site.writes("mads", "er du der")
        with site.stream(karin, last_event_id=last_id) as stream:
            ready = stream.next()
            assert ready is not None and ready.name == "ready" and ready.id == last_id
            again = stream.until(_inbound_from(mads)) + stream.quiet(1.5)
        message_ids = [int(str(e.id).split("-")[0]) for e in again if e.name == "message"]
        assert all(number > int(last_id.split("-")[0]) for number in message_ids)
        assert first < second
        inbound = [e for e in again if e.name == "message" and e.data["direction"] == "inbound"]
        assert len(inbound) == 1  # the new message, and not the one seen before
        with site.database.session() as session:
            newer = session.scalar(
                sa.select(sa.func.count())
                .select_from(Message)
                .where(Message.young_person_id == mads, Message.id > int(last_id.split("-")[0]))
            )
        assert len([e for e in again if e.name == "message"]) == newer


def test_a_page_s_first_connection_misses_nothing_since_the_page_was_rendered(
    site: Site,
) -> None:
    mads = site.world.people["mads"]
    with site.signed_in("karin") as karin:
        page = karin.get("/inbox")
        found = re.search(r'data-since="(\d+-\d+)"', page.text)
        assert found is not None, "the page does not say where the stream stood"
        site.writes("mads", "skrevet mens siden blev vist")  # before the stream connects
        with site.stream(karin, since=found.group(1)) as stream:
            events = stream.until(_inbound_from(mads))
    assert any(e.name == "message" and e.data["young_person"] == mads for e in events)


def test_without_a_session_the_stream_answers_401(site: Site) -> None:
    with site.client() as anonymous:
        answer = anonymous.get("/live", headers={"Accept": "text/event-stream"})
        assert answer.status_code == 401
        anonymous.cookies.set("stifinder_session", "not-a-session")
        assert anonymous.get("/live").status_code == 401


def test_signing_out_elsewhere_ends_the_stream(site: Site) -> None:
    with site.signed_in("karin") as karin, site.stream(karin) as stream:
        stream.next()
        # The same session signs out from another tab.
        with site.client() as other:
            other.cookies.update(karin.cookies)
            page = other.get("/staff")
            token = TOKEN.search(page.text)
            assert token is not None
            assert other.post("/sign-out", data={"csrf_token": token.group(1)}).status_code == 303
        events = stream.until(lambda e: e.name == "signed-out")
        assert events[-1].data == {}
        assert stream.next() is None  # and the stream closed
        assert karin.get("/live").status_code == 401


def test_last_event_id_that_is_not_ours_starts_afresh() -> None:
    assert live.Cursor.resume("12-34") is not None
    for junk in (None, "", "12", "a-b", "1-2-3", "9" * 30 + "-1"):
        assert live.Cursor.resume(junk) is None


def test_an_open_stream_does_not_hold_up_the_servers_shutdown(
    database: Database, database_url: str
) -> None:
    with database.session() as session:
        world = build_world(session)
    runtime = Runtime(settings=make_settings(database_url=database_url), database=database)
    server = serving(runtime, free_port())
    url = server.__enter__()
    conversations = Conversations(database=database, engine=Engine(CORE_DIALOGS))
    site = Site(url=url, database=database, world=world, conversations=conversations)
    try:
        with site.signed_in("karin") as karin, karin.stream("GET", "/live") as response:
            lines = response.iter_lines()
            assert next(lines) == "retry: 3000"
            started = time.monotonic()
            server.__exit__(None, None, None)
            assert time.monotonic() - started < 5
            rest = list(lines)  # the server ended the stream
            assert "event: ready" in rest
    finally:
        server.__exit__(None, None, None)  # stops the server if the test failed before it did


def test_the_stream_sends_heartbeats_and_does_not_keep_an_idle_session_alive(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "HEARTBEAT_SECONDS", 1.0)
    long_ago = utcnow() - timedelta(minutes=30)
    with site.signed_in("karin") as karin:
        with site.database.session() as session:
            row = session.scalars(sa.select(StaffSession)).one()
            row.last_seen_at = long_ago
        with site.stream(karin) as stream:
            stream.next()
            stream.quiet(2.5)
            assert ": keepalive" in stream.comments
        with site.database.session() as session:
            assert session.scalars(sa.select(StaffSession)).one().last_seen_at == long_ago
