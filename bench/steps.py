"""Where a webhook's time goes: its steps timed one by one, in one thread, without HTTP.

    python -m bench.steps --database-url sqlite:////tmp/steps.db --out steps.json

Each step runs ``--count`` times on fresh signed requests (best of ``--repeat`` runs, as timeit
does) against a fresh, migrated database, and is reported in microseconds per call (per row for
the stores) and as a ratio to the baseline's one-row insert measured in the same run. Storing
goes through the app's own ``runtime.inbound_writer`` (group commit), once with one request at a
time (a batch of one) and once with 32 at a time; "for comparison" and "alternative" rows are not
what the webhook does.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator

from bench import signed
from bench.app import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    bench_settings,
    insert_baseline,
    metadata,
)
from bot.runtime import Runtime
from bot.web.paths import TWILIO_SMS_PATH
from storage import migrate

PUBLIC = "http://127.0.0.1:8000"
AT_ONCE = 32  # as many as wrk's connections


def best_of(repeat: int, run: Callable[[int], None], count: int) -> float:
    """Microseconds per call, best of ``repeat`` runs; ``run(r)`` does run r's ``count`` calls."""
    best = float("inf")
    for attempt in range(repeat):
        started = time.perf_counter()
        run(attempt)
        best = min(best, time.perf_counter() - started)
    return best / count * 1e6


def measure(database_url: str, count: int, repeat: int) -> list[dict[str, Any]]:
    runtime = Runtime.build(bench_settings(database_url, PUBLIC))
    engine = runtime.database.engine
    migrate.upgrade(engine)
    metadata.create_all(engine)
    url = PUBLIC + TWILIO_SMS_PATH
    # Fresh Sids for every call of every step that stores (a repeat would be a no-op).
    needed = count * repeat
    made = signed.generate(
        needed * 3, url=url, auth_token=AUTH_TOKEN, to=FROM_NUMBER, account_sid=ACCOUNT_SID, seed=5
    )
    bodies = [r.body for r in made]
    forms = [dict(parse_qsl(body, keep_blank_values=True)) for body in bodies]
    validator = RequestValidator(AUTH_TOKEN)
    inbound = runtime.inbound
    writer = runtime.inbound_writer

    def window(offset: int, attempt: int) -> range:
        start = offset * needed + attempt * count
        return range(start, start + count)

    def parse(attempt: int) -> None:
        for i in range(count):
            dict(parse_qsl(bodies[i], keep_blank_values=True))

    def validate(attempt: int) -> None:
        for i in range(count):
            if not validator.validate(url, forms[i], made[i].signature):
                raise AssertionError("bad signature")

    def sign_once(attempt: int) -> None:
        for i in range(count):
            expected = validator.compute_signature(url, forms[i])
            if not hmac.compare_digest(expected, made[i].signature):
                raise AssertionError("bad signature")

    def row(attempt: int) -> None:
        for i in range(count):
            inbound.twilio_row(forms[i])

    def baseline(attempt: int) -> None:
        for i in range(count):
            insert_baseline(engine, bodies[i])

    def grouped(offset: int, at_once: int) -> Callable[[int], None]:
        async def requests(span: range) -> None:
            slots = asyncio.Semaphore(at_once)

            async def one(i: int) -> None:
                async with slots:
                    await writer.store(inbound.twilio_row(forms[i]))

            await asyncio.gather(*(one(i) for i in span))

        def run(attempt: int) -> None:
            asyncio.run(requests(window(offset, attempt)))

        return run

    def store(attempt: int) -> None:
        for i in window(2, attempt):
            inbound.store_twilio(forms[i])

    steps: list[tuple[str, Callable[[int], None]]] = [
        ("baseline: one-row insert, one commit (as /bench/baseline)", baseline),
        ("form parsing (parse_qsl)", parse),
        ("signature check (RequestValidator.validate)", validate),
        ("event row with CPR masking (Inbound.twilio_row)", row),
        ("row + store as the webhook does, one request at a time (GroupWriter)", grouped(0, 1)),
        (
            f"row + store as the webhook does, {AT_ONCE} requests at a time (GroupWriter)",
            grouped(1, AT_ONCE),
        ),
        ("for comparison: Inbound.store_twilio (row, ORM session, one commit)", store),
        ("alternative: one HMAC instead of validate's two", sign_once),
    ]
    timed = [(name, best_of(repeat, run, count)) for name, run in steps]
    runtime.close()
    base = timed[0][1]
    return [{"step": name, "us": us, "ratio": us / base} for name, us in timed]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    results = measure(args.database_url, args.count, args.repeat)
    for result in results:
        sys.stdout.write(f"{result['us']:9.1f} us  {result['ratio']:5.2f}x  {result['step']}\n")
    if args.out is not None:
        args.out.write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
