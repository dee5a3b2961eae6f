"""The small HTTP server the fakes share: stdlib ``http.server`` on 127.0.0.1, in a daemon thread.

A fake subclasses :class:`FakeHTTPServer` and implements ``handle(request) -> Reply``. A reply can
be held back (``delay``, a slow server) or dropped (``drop``: the connection is closed without an
answer, as a crashed server or a cut network would). :class:`FaultPlan` picks which requests get
such faults, so both fakes inject them the same way.
"""

from __future__ import annotations

import json
import random
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Request:
    """One HTTP request as the fake sees it (the body is always read in full)."""

    method: str
    path: str
    query: dict[str, str]
    headers: Message[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        """The form fields, urlencoded or multipart (a repeated name keeps its last value)."""
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            return _multipart_fields(content_type, self.body)
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


@dataclass(frozen=True)
class Reply:
    """What to answer: ``delay`` holds it back, ``drop`` closes the connection instead.

    ``after`` runs in its own thread once the answer is out (or dropped), e.g. to send status
    callbacks that must not reach the app before its request has its answer.
    """

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0
    drop: bool = False
    after: Callable[[], None] | None = None

    @classmethod
    def json(cls, status: int, payload: object) -> Reply:
        return cls(status, json.dumps(payload).encode())


DROP = Reply(0, drop=True)


class FakeHTTPServer:
    """Base of the fakes: ``start()``/``stop()`` or ``with``, and ``url`` once started."""

    def __init__(self) -> None:
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._helpers: list[threading.Thread] = []
        # Exceptions raised inside the fake (bugs in it, failing callbacks): tests may assert
        # that this stays empty, since a thread's traceback would otherwise go unseen.
        self.errors: list[BaseException] = []

    def handle(self, request: Request) -> Reply:
        raise NotImplementedError

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://{HOST}:{self._httpd.server_port}"

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        self._stopping.clear()
        httpd = _Server((HOST, 0), _Handler)  # port 0: the OS picks a free port
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopping.set()  # wakes held-back answers and long polls at once
        httpd.shutdown()
        httpd.server_close()
        thread.join()
        for helper in self._helpers:
            helper.join(timeout=5)
        self._helpers.clear()
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def pause(self, seconds: float) -> None:
        """Sleep, but wake up when the server stops (so ``stop()`` never waits for a delay)."""
        self._stopping.wait(seconds)

    def spawn(self, target: Callable[[], None]) -> None:
        """Run ``target`` in a daemon thread; its exception lands in ``errors``, not in pytest."""

        def run() -> None:
            try:
                target()
            except Exception as error:  # recorded for the test to see
                self.errors.append(error)

        helper = threading.Thread(target=run, name=f"{type(self).__name__}-helper", daemon=True)
        self._helpers.append(helper)
        helper.start()


class FaultPlan:
    """Which request gets which fault: queued faults first, then a seeded random draw.

    Faults are keyed by a name the fake chooses (a Bot API method, a Twilio endpoint).
    """

    def __init__(self, kinds: Collection[str]) -> None:
        self._kinds = frozenset(kinds)
        self._lock = threading.Lock()
        self._queued: defaultdict[str, deque[str]] = defaultdict(deque)
        self._rate = 0.0
        self._rate_kinds: tuple[str, ...] = ()
        self._rate_keys: frozenset[str] | None = None
        self._random = random.Random(0)  # noqa: S311 - reproducible test faults, not secrets

    def fail_next(self, key: str, kind: str, count: int = 1) -> None:
        self._check(kind)
        with self._lock:
            self._queued[key].extend([kind] * count)

    def fault_rate(
        self, rate: float, kinds: Iterable[str], seed: int, keys: Iterable[str] | None
    ) -> None:
        kinds = tuple(kinds)
        for kind in kinds:
            self._check(kind)
        if not 0.0 <= rate <= 1.0 or (rate and not kinds):
            raise ValueError("rate must be within 0..1 and needs at least one kind")
        with self._lock:
            self._rate, self._rate_kinds = rate, kinds
            self._rate_keys = None if keys is None else frozenset(keys)
            self._random = random.Random(seed)  # noqa: S311 - reproducible test faults

    def clear(self) -> None:
        with self._lock:
            self._queued.clear()
            self._rate = 0.0

    def draw(self, key: str) -> str | None:
        with self._lock:
            queued = self._queued.get(key)
            if queued:
                return queued.popleft()
            if not self._rate or (self._rate_keys is not None and key not in self._rate_keys):
                return None
            if self._random.random() >= self._rate:
                return None
            return self._random.choice(self._rate_kinds)

    def _check(self, kind: str) -> None:
        if kind not in self._kinds:
            raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(self._kinds)}")


class _Server(ThreadingHTTPServer):
    owner: FakeHTTPServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout during a slow answer) is expected here, not an error.
        pass


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive like the real services, so the SDKs reuse them and a
    # dropped answer hits a pooled connection, as it would in production.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm the second waits for the
    # client's delayed ACK, about 40 ms a request.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet test output

    def _serve(self) -> None:
        owner = self.server.owner
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        request = Request(self.command, parts.path, query, self.headers, body)
        try:
            reply = owner.handle(request)
        except Exception as error:  # a bug in the fake: answer it rather than hang the client
            owner.errors.append(error)
            reply = Reply(500, f"{type(error).__name__}: {error}".encode(), "text/plain")
        try:
            self._answer(owner, reply)
        finally:
            if reply.after is not None:
                owner.spawn(reply.after)

    def _answer(self, owner: FakeHTTPServer, reply: Reply) -> None:
        if reply.delay:
            owner.pause(reply.delay)
        if reply.drop or owner.stopping:
            self.close_connection = True  # closed without a status line: the client can't know
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)


def _multipart_fields(content_type: str, body: bytes) -> dict[str, str]:
    # The email parser reads multipart/form-data (the cgi module is gone in Python 3.13).
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode(errors="replace")
    return fields
