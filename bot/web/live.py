"""``GET /live``: server-sent events that tell a signed-in staff member's pages to refresh.

The web app and the workers may be separate processes, so events come from the database, not
from memory. Once a second the stream looks for rows newer than the last it saw, through primary
keys: new ``message`` rows, and the audit events of handoff changes (:data:`CHANGES`: opened, made
urgent, and the inbox's take-over, hand-back, status change, reopening and notes). Each poll
checks the session again (revoked, expired or a deactivated account ends the stream) and reads
the staff member's row afresh, so :func:`storage.access.visible_young_people` decides with the
absences as they are now.

Events (``data`` is JSON)::

    event: ready      data: {}                      the stream is open (carries the first id)
    event: message    data: {"young_person": 12, "direction": "inbound", "author": "young_person"}
    event: handoff    data: {"young_person": 12, "change": "opened", "priority": "urgent"}
    event: signed-out data: {}                      the session ended; the stream closes

No text, name or number is sent: the page that refreshes shows them, and its read is audited.
Every event has ``id: <message id>-<audit id>``, the newest of each it has passed; a browser
that reconnects sends it back as ``Last-Event-ID`` and resumes after it, without repeats. A
comment line every 15 seconds keeps proxies from closing an idle stream. A stream ends when the
server begins to shut down, and in any case after five minutes; the browser reconnects.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import anyio
import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from bot.runtime import Runtime
from bot.web.auth import policy_of
from storage import access, staff_sessions
from storage.db import Database
from storage.models import AuditEvent, Message, YoungPerson, utcnow
from storage.staff_sessions import Lifetime

PATH = "/live"
POLL_SECONDS = 1.0
TICKS_PER_POLL = 10  # how often within a poll a stream looks for a disconnect or a shutdown
HEARTBEAT_SECONDS = 15.0
MAX_STREAM_SECONDS = 300.0
RETRY_MILLISECONDS = 3000
# Ids from a PostgreSQL sequence may commit out of order: each poll looks this many ids back
# and skips what it has sent already, so a row that commits late is still seen.
LOOKBACK = 100
BATCH = 200
# Audit actions that change a handoff or a conversation's holder, and the change they report.
CHANGES = {
    "handoff.opened": "opened",
    "handoff.made_urgent": "made_urgent",
    "inbox.took_over": "taken_over",
    "inbox.handed_back": "handed_back",
    "inbox.status_changed": "status_changed",
    "inbox.reopened": "reopened",
    "inbox.note_added": "note_added",
}
_LAST_EVENT_ID = re.compile(r"^(\d{1,18})-(\d{1,18})$")


@dataclass
class Cursor:
    """Where a stream stands: the newest message and audit ids it has passed."""

    message: int
    audit: int
    # What the stream has already sent, within the look-back window.
    sent_messages: set[int] = field(default_factory=set)
    sent_audit: set[int] = field(default_factory=set)
    # Below these nothing is sent (where a reconnect resumed, or where the stream began).
    floor_message: int = 0
    floor_audit: int = 0

    @property
    def event_id(self) -> str:
        return f"{self.message}-{self.audit}"

    @classmethod
    def resume(cls, last_event_id: str | None) -> Cursor | None:
        found = _LAST_EVENT_ID.match((last_event_id or "").strip())
        if found is None:
            return None
        message, audit = int(found.group(1)), int(found.group(2))
        return cls(message=message, audit=audit, floor_message=message, floor_audit=audit)


@dataclass(frozen=True)
class Event:
    name: str
    data: dict[str, object]
    id: str | None = None

    def encode(self) -> bytes:
        lines = [f"event: {self.name}"]
        if self.id is not None:
            lines.append(f"id: {self.id}")
        lines.append("data: " + json.dumps(self.data, separators=(",", ":")))
        return ("\n".join(lines) + "\n\n").encode()


def start_cursor(database: Database) -> Cursor:
    """A new stream starts after everything that exists now."""
    with database.sessions() as session:
        message = session.scalar(sa.select(sa.func.max(Message.id))) or 0
        audit = session.scalar(sa.select(sa.func.max(AuditEvent.id))) or 0
    return Cursor(message=message, audit=audit, floor_message=message, floor_audit=audit)


def position(database: Database) -> str:
    """Where the stream stands now, for a page to hand to its first connection (``?since=``)."""
    return start_cursor(database).event_id


def signed_in(database: Database, token: str, lifetime: Lifetime) -> bool:
    """Whether ``token`` is a live session of an active staff member; changes nothing."""
    with database.sessions() as session:
        live = staff_sessions.find(session, token, now=utcnow(), lifetime=lifetime) is not None
        session.rollback()
    return live


def poll(database: Database, token: str, lifetime: Lifetime, cursor: Cursor) -> list[Event] | None:
    """What is new for this session's staff member since ``cursor`` (which moves on); None when
    the session is no longer live.

    Read only: the session's "last seen" is not moved, so an open tab does not keep a session
    from ending after its idle time.
    """
    now = utcnow()
    with database.sessions() as session:
        found = staff_sessions.find(session, token, now=now, lifetime=lifetime)
        if found is None:
            return None
        _, staff = found
        visible = access.visible_young_people(staff, now)
        message_from = max(cursor.floor_message, cursor.message - LOOKBACK)
        messages = session.execute(
            sa.select(Message.id, Message.young_person_id, Message.direction, Message.author)
            .join(YoungPerson, YoungPerson.id == Message.young_person_id)
            .where(Message.id > message_from, visible)
            .order_by(Message.id)
            .limit(BATCH)
        ).all()
        audit_from = max(cursor.floor_audit, cursor.audit - LOOKBACK)
        changes = session.execute(
            sa.select(
                AuditEvent.id, AuditEvent.young_person_id, AuditEvent.action, AuditEvent.details
            )
            .join(YoungPerson, YoungPerson.id == AuditEvent.young_person_id)
            .where(AuditEvent.id > audit_from, AuditEvent.action.in_(list(CHANGES)), visible)
            .order_by(AuditEvent.id)
            .limit(BATCH)
        ).all()
        # Invisible rows move the cursor on too, so the next poll starts after them.
        newest_message = session.scalar(sa.select(sa.func.max(Message.id))) or 0
        newest_audit = session.scalar(sa.select(sa.func.max(AuditEvent.id))) or 0
        session.rollback()  # nothing of this read is written
    events: list[Event] = []
    for message_id, person_id, direction, author in messages:
        if message_id in cursor.sent_messages:
            continue
        cursor.sent_messages.add(message_id)
        cursor.message = max(cursor.message, message_id)
        events.append(
            Event(
                "message",
                {"young_person": person_id, "direction": direction.value, "author": author.value},
                cursor.event_id,
            )
        )
    for audit_id, person_id, action, details in changes:
        if audit_id in cursor.sent_audit:
            continue
        cursor.sent_audit.add(audit_id)
        cursor.audit = max(cursor.audit, audit_id)
        data: dict[str, object] = {"young_person": person_id, "change": CHANGES[action]}
        if isinstance(details, dict) and details.get("priority") in ("urgent", "normal"):
            data["priority"] = details["priority"]
        events.append(Event("handoff", data, cursor.event_id))
    if len(messages) < BATCH:
        cursor.message = max(cursor.message, newest_message)
    if len(changes) < BATCH:
        cursor.audit = max(cursor.audit, newest_audit)
    # Forget what fell out of the look-back window.
    cursor.sent_messages = {i for i in cursor.sent_messages if i > cursor.message - LOOKBACK}
    cursor.sent_audit = {i for i in cursor.sent_audit if i > cursor.audit - LOOKBACK}
    return events


def router(runtime: Runtime) -> APIRouter:
    routes = APIRouter()
    database = runtime.database

    @routes.get(PATH)
    def live(request: Request) -> Response:
        policy = policy_of(request)
        token = request.cookies.get(policy.session_cookie, "")
        # Checked read only, like every poll: a browser that reconnects every few minutes on
        # its own is no sign of a person at work, so it must not keep an idle session alive.
        if not signed_in(database, token, policy.lifetime):
            # EventSource gives up on a 401 instead of reconnecting for ever.
            return JSONResponse({"detail": "sign in first"}, status_code=401)
        # A reconnect names the last event it saw; a page's first connection names where the
        # page was rendered (``?since=``), so nothing between the two is missed.
        cursor = (
            Cursor.resume(request.headers.get("last-event-id"))
            or Cursor.resume(request.query_params.get("since"))
            or start_cursor(database)
        )
        return StreamingResponse(
            _stream(request, database, token, policy.lifetime, cursor),
            media_type="text/event-stream",
            headers={
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # nginx: pass each event on at once
            },
        )

    return routes


def _server_closing(request: Request) -> Callable[[], bool]:
    """True once the server has begun to shut down.

    uvicorn waits for every open response before it stops, and a stream never ends of itself.
    When it begins to shut down it marks each open connection not to be kept alive (its
    request cycle's ``keep_alive``): the stream ends then, and the browser reconnects to
    whichever server answers next. A connection that was never to be kept alive (an HTTP/1.0
    proxy) cannot tell, and ends after ``MAX_STREAM_SECONDS`` as any other would.
    """
    cycle = getattr(request.receive, "__self__", None)
    if getattr(cycle, "keep_alive", None) is not True:
        return lambda: False
    return lambda: getattr(cycle, "keep_alive", True) is False


async def _stream(
    request: Request, database: Database, token: str, lifetime: Lifetime, cursor: Cursor
) -> AsyncIterator[bytes]:
    closing = _server_closing(request)
    yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
    yield Event("ready", {}, cursor.event_id).encode()
    started = last_sent = time.monotonic()
    while True:
        for _ in range(TICKS_PER_POLL):
            await anyio.sleep(POLL_SECONDS / TICKS_PER_POLL)
            if closing() or await request.is_disconnected():
                return
        events = await anyio.to_thread.run_sync(poll, database, token, lifetime, cursor)
        if events is None:
            yield Event("signed-out", {}).encode()
            return
        for event in events:
            yield event.encode()
        moment = time.monotonic()
        if events:
            last_sent = moment
        elif moment - last_sent >= HEARTBEAT_SECONDS:
            yield b": keepalive\n\n"
            last_sent = moment
        if moment - started >= MAX_STREAM_SECONDS:
            return
