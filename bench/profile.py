"""Summarise a py-spy profile of the server: which component holds the GIL, and in which step.

    py-spy record --gil --nonblocking -r 97 -f raw -p PID -d 8 -o profile.txt
    python -m bench.profile profile.txt

With ``--gil`` py-spy samples only the thread holding the GIL, so the shares below are shares
of the Python work of the whole process (the event loop and the thread pool together). Each
sample is counted once, by the file of its innermost Python frame (time in C code, such as
SQLite or a socket call, shows as the Python line that called it).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

# (category, substrings of the innermost frame), first match wins.
COMPONENTS: list[tuple[str, tuple[str, ...]]] = [
    (
        "database driver calls (SQLite / psycopg, from SQLAlchemy)",
        ("do_execute (", "do_commit (", "do_rollback (", "do_close (", "psycopg/"),
    ),
    ("database connect and pool", ("DefaultDialect.connect (", "_sqlite_pragmas", "pool/")),
    ("SQLAlchemy (ORM, Core, statement building)", ("sqlalchemy/",)),
    ("signature check (twilio, hmac, urllib)", ("twilio/", "hmac.py", "base64.py", "parse.py")),
    ("JSON encoding of the payload", ("json/",)),
    ("thread pool hand-off (anyio, threading, queue)", ("anyio/", "threading.py", "queue.py")),
    ("Starlette / FastAPI", ("starlette/", "fastapi/")),
    ("uvicorn / httptools", ("uvicorn/", "httptools")),
    ("event loop (asyncio, uvloop)", ("asyncio/", "uvloop")),
    ("Prometheus metrics", ("prometheus_client/",)),
    ("Stifinder code (bot, storage, dialogs)", ("/bot/", "/storage/", "/dialogs/")),
    ("benchmark app (bench)", ("/bench/",)),
]
# Steps of a request, by a frame anywhere in the stack, first match wins.
STEPS: list[tuple[str, tuple[str, ...]]] = [
    ("webhook: group writer thread (insert, commit)", ("GroupWriter._run (",)),
    ("webhook: Inbound.store_twilio (in a pool thread)", ("store_twilio (",)),
    ("baseline: insert_baseline (in a pool thread)", ("insert_baseline (",)),
    ("webhook: signature check and form parsing", ("signed_form (",)),
    ("webhook: event row (CPR masking)", ("twilio_row (",)),
    ("webhook: rest of the route", ("twilio_sms (",)),
    ("pool threads: hand-off and the rest", ("Thread._bootstrap (",)),
]
# Everything else runs on the event loop (uvloop calls coroutines without Python frames below).
EVENT_LOOP = "event loop: HTTP, framework, middleware"


def _classify(frame: str, table: list[tuple[str, tuple[str, ...]]]) -> str | None:
    for name, needles in table:
        if any(needle in frame for needle in needles):
            return name
    return None


def summarise(path: Path) -> dict[str, list[tuple[str, float]]]:
    components: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        count = int(number)
        frames = stack.split(";")
        total += count
        components[_classify(frames[-1], COMPONENTS) or "other (standard library)"] += count
        steps[_classify(stack, STEPS) or EVENT_LOOP] += count
    if total == 0:
        return {"components": [], "steps": [], "samples": []}
    return {
        "components": [(name, n / total) for name, n in components.most_common()],
        "steps": [(name, n / total) for name, n in steps.most_common()],
        "samples": [("samples", float(total))],
    }


def as_markdown(summary: dict[str, list[tuple[str, float]]]) -> str:
    lines = ["| innermost frame in | share |", "|---|---:|"]
    lines += [f"| {name} | {share:.0%} |" for name, share in summary["components"]]
    lines += ["", "| step (by a frame anywhere in the stack) | share |", "|---|---:|"]
    lines += [f"| {name} | {share:.0%} |" for name, share in summary["steps"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raw", type=Path, help="py-spy record -f raw output")
    args = parser.parse_args(argv)
    sys.stdout.write(as_markdown(summarise(args.raw)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
