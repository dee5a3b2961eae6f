"""A fake Twilio Messages API for the scheduling benchmark, in a process of its own.

    python -m bench.fake_provider --rate 30          # answers 429 above 30 messages a second
    python -m bench.fake_provider --delay 0.05       # takes 50 ms per call, no limit

It speaks just enough of Twilio's REST API for the real ``twilio`` SDK (``client.api.base_url``
pointed at it): ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` answers 201 with a
queued message, or, with ``--rate``, 429 (Twilio error 20429) when accepting the message would put
more than ``rate`` accepted messages into the last second (a strict sliding window, the way a
provider that counts arrivals would see it). ``GET .../Messages.json`` (the SDK's lookup of a
message whose outcome was unknown) answers an empty page.

Every request is recorded: its arrival time (``time.time()``, taken when the request has been
read), the answer, how many requests were in flight, the ``To`` and the ``Body``.
``GET /bench/stats`` hands the record over as JSON; ``POST /bench/reset`` clears it. It listens on
127.0.0.1 only, on a port chosen by the OS, and prints ``port N`` once it is ready.

It is an asyncio server (uvloop when installed) rather than ``tests/fakes``' threaded one: it
must keep up with several worker processes on two cores without becoming what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

HOST = "127.0.0.1"
REASONS = {200: "OK", 201: "Created", 404: "Not Found", 405: "Method Not Allowed"}
REASONS[429] = "Too Many Requests"


@dataclass
class Provider:
    rate: float | None  # accepted messages per second (sliding window of one second)
    delay: float  # seconds per call
    window: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    # (arrival, HTTP status, requests in flight including this one, to, body)
    record: list[tuple[float, int, int, str, str]] = field(default_factory=list)

    def admit(self, now: float) -> bool:
        if self.rate is None:
            return True
        while self.window and self.window[0] <= now - 1.0:
            self.window.popleft()
        if len(self.window) >= self.rate:
            return False
        self.window.append(now)
        return True

    def reset(self) -> None:
        self.window.clear()
        self.record.clear()

    async def answer(self, method: str, target: str, body: bytes) -> tuple[int, bytes]:
        path = urlsplit(target).path
        if path == "/bench/stats":
            return 200, json.dumps({"requests": self.record}).encode()
        if path == "/bench/reset" and method == "POST":
            self.reset()
            return 200, b"{}"
        if not (path.startswith("/2010-04-01/Accounts/") and path.endswith("/Messages.json")):
            return 404, json.dumps({"code": 20404, "message": "not found", "status": 404}).encode()
        if method == "GET":
            return 200, json.dumps({"messages": [], "next_page_uri": None}).encode()
        if method != "POST":
            return 405, b'{"code": 20004, "status": 405}'
        arrival = time.time()
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        to, text = form.get("To", ""), form.get("Body", "")
        self.in_flight += 1
        try:
            if not self.admit(arrival):
                self.record.append((arrival, 429, self.in_flight, to, text))
                error = {"code": 20429, "message": "Too Many Requests", "status": 429}
                return 429, json.dumps(error).encode()
            self.record.append((arrival, 201, self.in_flight, to, text))
            if self.delay:
                await asyncio.sleep(self.delay)
            account = path.split("/")[3]
            message: dict[str, Any] = {
                "sid": "SM" + uuid.uuid4().hex,
                "account_sid": account,
                "to": to,
                "from": form.get("From"),
                "body": text,
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "date_created": None,
                "date_updated": None,
                "date_sent": None,
                "error_code": None,
                "error_message": None,
            }
            return 201, json.dumps(message).encode()
        finally:
            self.in_flight -= 1


async def serve_connection(
    provider: Provider, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name:
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            body = await reader.readexactly(length) if length else b""
            status, payload = await provider.answer(method, target, body)
            writer.write(
                (
                    f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
                    "Content-Type: application/json\r\n"
                    f"Content-Length: {len(payload)}\r\n"
                    "\r\n"
                ).encode()
                + payload
            )
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                return
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        return
    finally:
        with contextlib.suppress(ConnectionError, RuntimeError):
            writer.close()


async def main_async(rate: float | None, delay: float) -> None:
    provider = Provider(rate=rate, delay=delay)
    server = await asyncio.start_server(
        lambda r, w: serve_connection(provider, r, w), HOST, 0, backlog=1024
    )
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"port {port}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


# ---------------------------------------------------------------------------- from the benchmark


@dataclass
class Arrival:
    at: float
    status: int
    in_flight: int
    to: str
    body: str


class FakeProviderProcess:
    """The fake in a child process: ``with FakeProviderProcess(rate=30) as fake: fake.url``."""

    def __init__(self, *, rate: float | None = None, delay: float = 0.0, log: Path) -> None:
        self.rate = rate
        self.delay = delay
        self.log = log
        self.process: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> FakeProviderProcess:
        command = [sys.executable, "-m", "bench.fake_provider", "--delay", str(self.delay)]
        if self.rate is not None:
            command += ["--rate", str(self.rate)]
        root = Path(__file__).resolve().parent.parent
        env = dict(os.environ, PYTHONPATH=str(root))
        with self.log.open("w") as errors:
            self.process = subprocess.Popen(  # noqa: S603
                command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=errors, text=True
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("port "):
            self.__exit__()
            raise RuntimeError(f"the fake provider did not start: {self.log.read_text()[-2000:]}")
        self.port = int(line.split()[1])
        return self

    def __exit__(self, *_: object) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def _call(self, method: str, path: str) -> bytes:
        request = urllib.request.Request(self.url + path, method=method)  # noqa: S310 - 127.0.0.1
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
            return bytes(answer.read())

    def arrivals(self) -> list[Arrival]:
        data = json.loads(self._call("GET", "/bench/stats"))
        return [Arrival(*row) for row in data["requests"]]

    def reset(self) -> None:
        self._call("POST", "/bench/reset")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=None, help="messages a second (429 above)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per call")
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:  # plain asyncio is fine, just slower
        asyncio.run(main_async(args.rate, args.delay))
    else:
        uvloop.run(main_async(args.rate, args.delay))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
