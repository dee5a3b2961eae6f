"""An open-loop load generator: POSTs at a fixed rate, whatever the server's answers take.

wrk has no constant-rate mode, and a closed loop (send the next request when the last one came
back) hides a slow server by slowing down with it ("coordinated omission"). Here request i is
due at ``start + i / rate``; it goes out on an idle keep-alive connection (a new one is opened
when all are busy) and its latency is measured from when it was due, not from when it was sent.

    python -m bench.constant_rate --url http://127.0.0.1:8000/webhooks/twilio/sms \
        --data requests.tsv --rate 500 --duration 10 --out result.json

The data file holds ``signature<TAB>form body`` lines (bench/signed.py); line i is request i.
The result (JSON) has the latency percentiles, the status counts, and the indices of the
requests that did not get a 2xx. A request not answered within ``--timeout`` seconds of being due
counts as an error (its latency is then not in the percentiles); at most ``--max-connections``
requests are in flight, later ones wait for a connection (the wait counts in their latency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.signed import read

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
# uvicorn closes a keep-alive connection after 5 s without a request; reuse only fresher ones.
STALE = 2.0
clock = time.perf_counter  # uvloop's loop.time() moves in whole milliseconds


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    not_ok: list[int] = field(default_factory=list)
    opened: int = 0
    max_send_lag: float = 0.0


def raw_request(host: str, path: str, signature: str, body: str) -> bytes:
    data = body.encode("utf-8")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode("ascii") + data


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, keep-alive) of one response with a Content-Length body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, keep = 0, True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            keep = False
        elif name == "transfer-encoding":
            raise ValueError("chunked responses are not expected here")
    if length:
        await reader.readexactly(length)
    return status, keep


class Load:
    def __init__(self, host: str, port: int, timeout: float, most: int) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.idle: list[tuple[float, Connection]] = []  # (idle since, connection)
        # At most this many requests in flight (and connections open); the rest wait, their
        # waiting counted in their latency.
        self.slots = asyncio.Semaphore(most)
        self.outcome = Outcome()

    async def connection(self) -> Connection:
        while self.idle:
            since, connection = self.idle.pop()
            if clock() - since < STALE and not connection[0].at_eof():
                return connection
            connection[1].close()
        self.outcome.opened += 1
        return await asyncio.open_connection(self.host, self.port)

    async def one(self, index: int, due: float, payload: bytes) -> None:
        outcome = self.outcome
        connection: Connection | None = None
        try:
            async with asyncio.timeout(self.timeout), self.slots:
                connection = await self.connection()
                reader, writer = connection
                writer.write(payload)
                status, keep = await read_response(reader)
                if keep:
                    self.idle.append((clock(), connection))
                    connection = None
            outcome.latencies.append(clock() - due)
            outcome.statuses[str(status)] += 1
            if not 200 <= status < 300:
                outcome.not_ok.append(index)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
            outcome.statuses[type(error).__name__] += 1
            outcome.not_ok.append(index)
        finally:
            if connection is not None:
                connection[1].close()

    async def run(self, payloads: list[bytes], rate: float, warm: int) -> float:
        """Send ``payloads[i]`` at ``start + i / rate``; returns the seconds from first to last
        send."""
        for _ in range(warm):  # open the first connections before the clock starts
            self.outcome.opened += 1
            self.idle.append((clock(), await asyncio.open_connection(self.host, self.port)))
        start = clock() + 0.05
        tasks: list[asyncio.Task[None]] = []
        for index, payload in enumerate(payloads):
            due = start + index / rate
            delay = due - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            self.outcome.max_send_lag = max(self.outcome.max_send_lag, clock() - due)
            tasks.append(asyncio.create_task(self.one(index, due, payload)))
        spread = clock() - start
        await asyncio.gather(*tasks)
        for _, (_, writer) in self.idle:
            writer.close()
        return spread


def percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summary(outcome: Outcome, *, sent: int, spread: float, rate: float) -> dict[str, Any]:
    ordered = sorted(outcome.latencies)
    ms = 1000.0
    ok = sum(n for status, n in outcome.statuses.items() if status.isdigit() and status[0] == "2")
    return {
        "rate": rate,
        "sent": sent,
        "achieved_rate": (sent - 1) / spread if spread > 0 else math.nan,
        "ok": ok,
        "statuses": dict(outcome.statuses),
        "latency_ms": {
            "p50": percentile(ordered, 0.50) * ms,
            "p90": percentile(ordered, 0.90) * ms,
            "p99": percentile(ordered, 0.99) * ms,
            "max": (ordered[-1] if ordered else math.nan) * ms,
        },
        "connections_opened": outcome.opened,
        "max_send_lag_ms": outcome.max_send_lag * ms,
        "not_ok": sorted(outcome.not_ok),
    }


def _run(main: Coroutine[Any, Any, float]) -> float:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.run(main)
    return uvloop.run(main)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT/path")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=500.0, help="requests a second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    parser.add_argument("--connections", type=int, default=16, help="opened before the start")
    parser.add_argument("--max-connections", type=int, default=1000, help="in flight at most")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    url = urlsplit(args.url)
    if url.scheme != "http" or url.hostname != "127.0.0.1" or url.port is None:
        parser.error("load goes only to http://127.0.0.1:PORT")
    count = round(args.rate * args.duration)
    pairs = read(args.data)
    if len(pairs) < count:
        parser.error(f"{args.data} has {len(pairs)} requests; {count} are needed")
    host = f"{url.hostname}:{url.port}"
    payloads = [raw_request(host, url.path, sig, body) for sig, body in pairs[:count]]
    load = Load(url.hostname, url.port, args.timeout, args.max_connections)
    spread = _run(load.run(payloads, args.rate, args.connections))
    result = summary(load.outcome, sent=count, spread=spread, rate=args.rate)
    args.out.write_text(json.dumps(result))
    latency = result["latency_ms"]
    sys.stdout.write(
        f"{count} requests at {args.rate:g}/s: {result['ok']} 2xx, "
        f"p50 {latency['p50']:.1f} ms, p99 {latency['p99']:.1f} ms, max {latency['max']:.1f} ms, "
        f"statuses {result['statuses']}\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
