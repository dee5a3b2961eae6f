"""The scheduling benchmark (issue 5): campaigns, sending rate, reminders, scale-out, memory.

    bench/run_scheduling.sh                                  # everything, about 10 minutes
    .venv/bin/python -m bench.scheduling --parts 1,3 --databases sqlite   # a quicker look

1. **Campaign to 100,000**: from ``Campaigns.schedule`` until every recipient is a pending row
   with its due time (the worker's sweep ran ``handle_run``), and until the first messages are in
   the outbox; against a plain ``INSERT ... SELECT`` of the same ids into a scratch table.
2. **Sending rate**: one ``stifinder worker`` sends a campaign through the real twilio SDK to
   ``bench/fake_provider.py``, which answers 429 above the set rate and records every arrival.
3. **5,000 reminders due in the same second** among 100,000 pending: from that second until every
   one is done with its message in the outbox; against the same durable writes done bare.
4. **Scale-out** (PostgreSQL): 1, 2 and 4 ``stifinder worker`` processes, a provider that takes
   50 ms a call; messages a second, and every message exactly once at the provider.
5. **Peak memory** of a worker (``/usr/bin/time -v``) over 1,000,000 young people and 100,000
   pending items, against the same worker on an empty database.

Every database is fresh (SQLite files in a temporary directory; PostgreSQL from
``tests/pgserver.py``). Everything runs on 127.0.0.1, every part is bounded in time, and every
process started here is stopped at the end, also on errors or SIGTERM. It is a benchmark, not a
test: nothing here runs under pytest. Results go into bench/RESULTS.md between the
``<!-- scheduling:begin -->`` and ``<!-- scheduling:end -->`` markers; the rest of the file is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, cast

import sqlalchemy as sa

from bench import seed
from bench.fake_provider import Arrival, FakeProviderProcess
from bench.run import git_state
from bench.workers import SECRET_KEY, WorkerProcess, tree_seconds, worker_env
from bot.campaigns import BATCH as CAMPAIGN_BATCH
from bot.campaigns import OUTBOX_BACKLOG, Spec
from bot.ratelimit import MARGIN
from bot.runtime import Runtime
from bot.settings import Settings
from bot.worker import BATCH as WORKER_BATCH
from bot.worker import Worker
from dialogs.types import OutboxStatus, RecipientStatus, ScheduledStatus
from storage.db import Database
from storage.models import CampaignRecipient, Message, OutboxEntry, ScheduledItem

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
BEGIN = "<!-- scheduling:begin -->"
END = "<!-- scheduling:end -->"
HELLO = {"da": "Hej {first_name}, vi holder åbent hus i dag."}  # GSM-7, one segment

CAMPAIGN_SIZE = 100_000
CAMPAIGN_TARGET_S = 10.0
RATE_TARGET_SHARE = 0.95
REMINDERS_PENDING = 100_000
REMINDERS_DUE = 5_000
REMINDER_TARGET_S = 5.0
REMINDER_DEADLINE_S = 150.0  # a burst not done by then is reported as not done
# Meetings (ids) whose reminders each step of part 3 uses; the rest stay pending throughout.
MEASURED = (1, REMINDERS_DUE)
PROFILED = (REMINDERS_DUE + 1, REMINDERS_DUE + 1_000)
PROFILED_MIN = 300
# The reminder dialog writes two messages (the reminder and its question); the baseline writes as
# many, and the results say if the measured items wrote another number.
REMINDER_MESSAGES = 2
COUNTED = (REMINDERS_DUE + 1_001, REMINDERS_DUE + 1_200)
BASELINE = (REMINDERS_DUE + 1_201, REMINDERS_DUE + 2_200)
SCALE_DELAY_S = 0.05
SCALE_TARGET = 3.0
MEMORY_PEOPLE = 1_000_000
MEMORY_ITEMS = 100_000
MEMORY_TARGET_MIB = 300.0


def show(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------- the machine


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    with Path("/proc/stat").open() as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return total - idle, total


@dataclass
class CpuWindow:
    """CPU used during a phase: by the given processes, by PostgreSQL, and by the whole machine
    (so that other users' work on the shared cores shows as "other")."""

    pids: Callable[[], dict[str, int]]
    postgres: int | None = None
    start: dict[str, float] = field(default_factory=dict)
    result: dict[str, float] = field(default_factory=dict)
    _ticks: tuple[int, int] = (0, 0)
    _wall: float = 0.0
    _self: float = 0.0

    def _sample(self) -> dict[str, float]:
        from bench.workers import process_seconds

        sample = {name: process_seconds(pid) for name, pid in self.pids().items()}
        if self.postgres is not None:
            sample["postgres"] = tree_seconds(self.postgres)
        return sample

    def __enter__(self) -> CpuWindow:
        self.start = self._sample()
        self._ticks = machine_ticks()
        self._wall = time.monotonic()
        self._self = time.process_time()
        return self

    def stop(self) -> dict[str, float]:
        end = self._sample()
        busy, total = machine_ticks()
        wall = time.monotonic() - self._wall
        cores = os.cpu_count() or 1
        machine = (busy - self._ticks[0]) / max(1, total - self._ticks[1]) * cores * wall
        used = {name: end[name] - self.start.get(name, 0.0) for name in end}
        used["bench"] = time.process_time() - self._self
        self.result = {f"{name}_cpu_s": value for name, value in used.items()}
        self.result["wall_s"] = wall
        self.result["machine_cpu_s"] = machine
        self.result["other_cpu_s"] = max(0.0, machine - sum(used.values()))
        return self.result

    def __exit__(self, *_: object) -> None:
        if not self.result:
            self.stop()


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = "unknown"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"

    def version(name: str) -> str:
        import importlib.metadata

        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu,
        "memory": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlalchemy": version("sqlalchemy"),
        "psycopg": version("psycopg"),
        "apscheduler": version("apscheduler"),
        "twilio": version("twilio"),
        "sqlite": sqlite3.sqlite_version,
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "git": git_state(),
    }


# ---------------------------------------------------------------------------- databases


class Databases:
    """Fresh databases by name: SQLite files in the work directory, PostgreSQL databases on one
    throwaway server (started on first use)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._server: Any = None
        self.versions: dict[str, str] = {"sqlite": f"SQLite {sqlite3.sqlite_version}"}

    def url(self, kind: str, name: str) -> str:
        if kind == "sqlite":
            path = self.workdir / f"{name}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return f"sqlite:///{path}"
        return str(self.server().create_database(name))

    def server(self) -> Any:
        if self._server is None:
            from tests.pgserver import PostgresServer

            self._server = PostgresServer.start()
            engine = sa.create_engine(self._server.url())
            with engine.connect() as connection:
                version = connection.scalar(sa.text("SHOW server_version"))
                settings = {
                    name: connection.scalar(sa.text(f"SHOW {name}"))
                    for name in ("fsync", "synchronous_commit", "full_page_writes")
                }
            engine.dispose()
            details = ", ".join(f"{k}={v}" for k, v in settings.items())
            self.versions["postgresql"] = f"PostgreSQL {version} (tests/pgserver.py: {details})"
        return self._server

    def postmaster(self, kind: str) -> int | None:
        if kind != "postgresql" or self._server is None:
            return None
        return int((self._server.data / "postmaster.pid").read_text().split()[0])

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def bench_settings(url: str) -> Settings:
    return Settings(
        environment="test",
        database_url=url,
        secret_key=SECRET_KEY,
        log_level="WARNING",
        log_format="json",
    )


def runtime_for(database: Database, url: str) -> Runtime:
    return Runtime(settings=bench_settings(url), database=database)


def count(database: Database, query: sa.Select[Any]) -> int:
    with database.session() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0)


def launch(
    runtime: Runtime, where: seed.Place, *, rate_per_minute: int | None, name: str = "Åbent hus"
) -> int:
    spec = Spec(
        municipality_id=where.municipality_id,
        name=name,
        template=HELLO,
        rate_per_minute=rate_per_minute,
    )
    return runtime.campaigns.create(spec)


def fan_out(runtime: Runtime, campaign_id: int) -> float:
    """Schedule the campaign and let a worker's sweep run it; seconds until its recipients are
    all pending rows with their due times (committed)."""
    worker = runtime.worker()
    started = time.perf_counter()
    runtime.campaigns.schedule(campaign_id)
    worker.sweep_items()
    return time.perf_counter() - started


# ---------------------------------------------------------------------------- 1. campaign


def part_campaign(dbs: Databases, kind: str) -> list[dict[str, Any]]:
    rows = []
    for label, rate in (("spread, 1,800 a minute", 1800), ("all due at once", None)):
        name = f"campaign_{'rate' if rate else 'now'}"
        url = dbs.url(kind, name)
        database = seed.fresh(url)
        try:
            where = seed.place(database)
            now = datetime.now(UTC)
            seeding = seed.young_people(database, where, CAMPAIGN_SIZE, now=now)
            baseline_before, copied = seed.scratch_copy(database)
            runtime = runtime_for(database, url)
            campaign_id = launch(runtime, where, rate_per_minute=rate)
            started = time.perf_counter()
            queued = fan_out(runtime, campaign_id)
            recipients = CampaignRecipient.campaign_id == campaign_id
            pending = count(
                database,
                sa.select(CampaignRecipient.id).where(
                    recipients,
                    CampaignRecipient.status == RecipientStatus.PENDING,
                    CampaignRecipient.due_at.is_not(None),
                ),
            )
            people = count(
                database,
                sa.select(CampaignRecipient.young_person_id).where(recipients).distinct(),
            )
            with database.session() as session:
                first_due, last_due = session.execute(
                    sa.select(
                        sa.func.min(CampaignRecipient.due_at), sa.func.max(CampaignRecipient.due_at)
                    ).where(recipients)
                ).one()
            # The first messages: one send_due batch, then send_due as the worker calls it (it
            # stops at the outbox backlog). A campaign with a rate has only its due ones.
            runtime.campaigns.send_due(budget=CAMPAIGN_BATCH)
            first_batch = time.perf_counter() - started
            in_outbox_first = count(database, sa.select(OutboxEntry.id))
            runtime.campaigns.send_due()
            to_backlog = time.perf_counter() - started
            in_outbox = count(database, sa.select(OutboxEntry.id))
            baseline_after, _ = seed.scratch_copy(database)
            baseline = min(baseline_before, baseline_after)
            rows.append(
                {
                    "label": label,
                    "rate_per_minute": rate,
                    "seed_s": seeding,
                    "queued_s": queued,
                    "baseline_s": baseline,
                    "baseline_runs_s": [baseline_before, baseline_after],
                    "baseline_rows": copied,
                    "ratio": queued / baseline,
                    "pending": pending,
                    "people": people,
                    "spread_s": _seconds(last_due) - _seconds(first_due),
                    "first_batch_s": first_batch,
                    "first_batch_messages": in_outbox_first,
                    "to_backlog_s": to_backlog,
                    "backlog_messages": in_outbox,
                }
            )
            show(
                f"  {kind} campaign ({label}): {pending} pending in {queued:.2f}s "
                f"(baseline copy {baseline:.2f}s, ratio {queued / baseline:.1f}); "
                f"{in_outbox_first} in the outbox at {first_batch:.2f}s, "
                f"{in_outbox} at {to_backlog:.2f}s"
            )
        finally:
            database.dispose()
    return rows


def _seconds(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else float("nan")


# ---------------------------------------------------------------------------- arrivals


def max_in_window(times: Sequence[float], width: float = 1.0) -> int:
    """The most arrivals in any half-open window [t, t + width) (one starts at an arrival)."""
    ordered = sorted(times)
    best = 0
    end = 0
    for start, moment in enumerate(ordered):
        while end < len(ordered) and ordered[end] < moment + width:
            end += 1
        best = max(best, end - start)
    return best


def max_in_calendar_second(times: Sequence[float]) -> int:
    counts = Counter(math.floor(t) for t in times)
    return max(counts.values()) if counts else 0


# ---------------------------------------------------------------------------- 2. sending rate


RATE_SECONDS = 20  # the achieved rate is counted over this many whole seconds
RATE_SUPPLY_SECONDS = 24  # messages for this long at the set rate, so that supply never ends
RATE_LATENCY_S = 0.05  # "latency": the provider answers this long after it counted a request
BUCKET_ONLY_SECONDS = 8  # the limiter as it was: long enough to show its first seconds


def part_rate(
    dbs: Databases, kind: str, rate: int, *, variant: str, workdir: Path
) -> dict[str, Any]:
    """``variant``: "window" (bot/ratelimit.py as it is), "latency" (the same against a provider
    that answers RATE_LATENCY_S after it counted the request), "hand-over" (the window counted
    from hand-over, as it was before) or "bucket-only" (the bucket alone, as before that)."""
    seconds = BUCKET_ONLY_SECONDS if variant == "bucket-only" else RATE_SECONDS
    supply = rate * (seconds + 4)
    url = dbs.url(kind, f"rate_{rate}_{variant.replace('-', '_')}")
    database = seed.fresh(url)
    try:
        where = seed.place(database)
        seed.young_people(database, where, supply, now=datetime.now(UTC))
        runtime = runtime_for(database, url)
        campaign_id = launch(runtime, where, rate_per_minute=None)
        fan_out(runtime, campaign_id)
        log = workdir / f"rate-{kind}-{rate}-{variant}"
        delay = RATE_LATENCY_S if variant == "latency" else 0.0
        with FakeProviderProcess(rate=rate, delay=delay, log=log.with_suffix(".fake.log")) as fake:
            env = worker_env(url, provider_url=fake.url, poll_seconds=1.0, sms_per_second=rate)
            changed = variant in ("bucket-only", "hand-over")
            module = "bench.worker_variant" if changed else None
            args = (f"--{variant}",) if changed else ()
            worker = WorkerProcess(env, log.with_suffix(".worker.log"), module=module, args=args)
            timeline: list[tuple[float, int, int]] = []
            with (
                worker,
                CpuWindow(
                    lambda: {"worker": worker.pid, "fake": fake.pid}, dbs.postmaster(kind)
                ) as cpu,
            ):
                deadline = time.monotonic() + seconds + 40
                while time.monotonic() < deadline and worker.alive():
                    waiting, sent = outbox_state(database)
                    timeline.append((time.time(), waiting, sent))
                    if sent >= supply:
                        break
                    time.sleep(0.25)
                cpu.stop()
                if not worker.alive():
                    raise RuntimeError(f"the worker stopped:\n{worker.log_tail()}")
            arrivals = fake.arrivals()
        log.with_suffix(".arrivals.json").write_text(
            json.dumps([[a.at, a.status, a.in_flight] for a in arrivals])
        )
        result = rate_result(arrivals, rate, seconds, supply, variant, cpu.result)
        result["gaps"] = gap_causes(arrivals, timeline, result["first"], seconds)
        return result
    finally:
        database.dispose()


def outbox_state(database: Database) -> tuple[int, int]:
    """(outbox rows due and waiting to be claimed, rows sent)."""
    with database.session() as session:
        rows = dict(
            session.execute(
                sa.select(OutboxEntry.status, sa.func.count())
                .where(
                    sa.or_(
                        OutboxEntry.status == OutboxStatus.SENT,
                        OutboxEntry.not_before <= datetime.now(UTC),
                    )
                )
                .group_by(OutboxEntry.status)
            ).all()
        )
    return rows.get(OutboxStatus.PENDING, 0), rows.get(OutboxStatus.SENT, 0)


def gap_causes(
    arrivals: list[Arrival],
    timeline: list[tuple[float, int, int]],
    first: float,
    seconds: int,
) -> dict[str, float]:
    """Pauses of more than half a second between accepted messages within the counted span,
    by what the outbox held meanwhile: due rows waiting (the dispatcher was between batches:
    recording the last one, claiming the next) or none (the campaign had not queued more yet)."""
    accepted = sorted(a.at for a in arrivals if a.status == 201 and first <= a.at < first + seconds)
    causes = {"dispatcher_between_batches_s": 0.0, "outbox_empty_s": 0.0, "count": 0.0}
    for start, end in itertools.pairwise(accepted):
        if end - start <= 0.5:
            continue
        inside = [waiting for moment, waiting, _ in timeline if start < moment < end]
        key = "dispatcher_between_batches_s" if any(inside) else "outbox_empty_s"
        causes[key] += end - start
        causes["count"] += 1
    return causes


def rate_result(
    arrivals: list[Arrival],
    rate: int,
    seconds: int,
    supply: int,
    variant: str,
    cpu: dict[str, float],
) -> dict[str, Any]:
    accepted = sorted(a.at for a in arrivals if a.status == 201)
    attempts = sorted(a.at for a in arrivals)
    first = accepted[0] if accepted else 0.0
    in_span = sum(1 for t in accepted if first <= t < first + seconds)
    bodies = Counter(a.body for a in arrivals if a.status == 201)
    gaps = [b - a for a, b in itertools.pairwise(accepted)]
    # For each 429: how long after the rate-th accepted message before it it came. Under a
    # second means a send of the window before reached the provider that much late (or this
    # one early) compared with when the limiter let it go.
    spans = []
    ordered = sorted(arrivals, key=lambda a: a.at)
    seen: list[float] = []
    for arrival in ordered:
        if arrival.status == 429 and len(seen) >= rate:
            spans.append(arrival.at - seen[-rate])
        elif arrival.status == 201:
            seen.append(arrival.at)
    return {
        "first": first,
        "spans_429": spans,
        "variant": variant,
        "rate": rate,
        "seconds": seconds,
        "supply": supply,
        "accepted": len(accepted),
        "rejected_429": sum(1 for a in arrivals if a.status == 429),
        "achieved": in_span / seconds,
        "share": in_span / seconds / rate,
        "max_calendar_second": max_in_calendar_second(accepted),
        "max_sliding_second": max_in_window(accepted),
        "attempts_max_calendar_second": max_in_calendar_second(attempts),
        "attempts_max_sliding_second": max_in_window(attempts),
        "first_second": sum(1 for t in attempts if t < (attempts[0] if attempts else 0) + 1),
        "longest_gap_s": max(gaps) if gaps else 0.0,
        "duplicates": sum(n - 1 for n in bodies.values() if n > 1),
        "cpu": cpu,
    }


# ---------------------------------------------------------------------------- 3. reminders


def follow_ups_registered(database: Database, url: str) -> bool:
    return seed.REMINDER_KIND in runtime_for(database, url).handlers()


def part_reminders(dbs: Databases, kind: str, *, workdir: Path, profile: bool) -> dict[str, Any]:
    url = dbs.url(kind, "reminders")
    database = seed.fresh(url)
    try:
        where = seed.place(database)
        now = datetime.now(UTC).replace(microsecond=0)
        seeding = seed.young_people(database, where, REMINDERS_PENDING, now=now)
        seeding += seed.meetings_with_reminders(
            database, where, REMINDERS_PENDING, first_start=now + timedelta(days=3), now=now
        )
        registered = follow_ups_registered(database, url)
        # The baseline first, on the database as seeded, with no worker running.
        baseline = bare_writes(database, BASELINE, REMINDER_MESSAGES)
        env = worker_env(url, poll_seconds=1.0)
        log = workdir / f"reminders-{kind}.worker.log"
        # The runtime registers the reminder kinds itself once bot/followups.py is wired in;
        # until then the bench variant adds them (and says so in the results).
        module, args = (None, ()) if registered else ("bench.worker_variant", ("--follow-ups",))
        with WorkerProcess(env, log, module=module, args=args) as worker:
            time.sleep(3.0)  # imports and the first sweeps
            if not worker.alive():
                raise RuntimeError(f"the worker stopped:\n{worker.log_tail()}")
            measured = fire(database, dbs, kind, worker, MEASURED, profile_to=None)
            profiled = None
            if profile and measured["elapsed_s"] > REMINDER_TARGET_S and py_spy() is not None:
                output = workdir / f"reminders-{kind}.pyspy.txt"
                if measured["complete"]:
                    # About ten seconds of the same work, at the rate just measured.
                    size = int(10_000 / max(measured["per_item_ms"], 1e-3))
                    size = min(max(size, PROFILED_MIN), PROFILED[1] - PROFILED[0] + 1)
                    burst = (PROFILED[0], PROFILED[0] + size - 1)
                    profiled = fire(database, dbs, kind, worker, burst, profile_to=output)
                else:  # still busy with the same work: sample that
                    spy = start_py_spy(worker.pid, output, seconds=60)
                    time.sleep(20)
                    stop_py_spy(spy)
                    profiled = {"due": 0, "elapsed_s": float("nan")}
                profiled["hot_spots"] = hot_spots(output)
        counted = statements_per_item(database, url, COUNTED)
        baseline_items = BASELINE[1] - BASELINE[0] + 1
        baseline_per_item = baseline / baseline_items
        others = ScheduledItem.meeting_id > BASELINE[1]
        return {
            "seed_s": seeding,
            "registered_by_runtime": registered,
            "measured": measured,
            "profiled": profiled,
            "baseline_items": baseline_items,
            "baseline_per_item_ms": baseline_per_item * 1000,
            "baseline_s": baseline_per_item * measured["due"],
            "ratio": measured["processing_s"] / (baseline_per_item * measured["due"]),
            "others": REMINDERS_PENDING - BASELINE[1],
            "others_pending": count(
                database,
                sa.select(ScheduledItem.id).where(
                    others, ScheduledItem.status == ScheduledStatus.PENDING
                ),
            ),
            "counted": counted,
        }
    finally:
        database.dispose()


def fire(
    database: Database,
    dbs: Databases,
    kind: str,
    worker: WorkerProcess,
    meetings: tuple[int, int],
    *,
    profile_to: Path | None,
) -> dict[str, Any]:
    """Make ``meetings``' reminders due in the next whole second but two; wait until they have
    all run; read what happened from the rows."""
    second = math.floor(time.time()) + 3
    due = datetime.fromtimestamp(second, UTC)
    moved = seed.make_due(database, meetings, due)
    first, last = meetings
    mine = ScheduledItem.meeting_id.between(first, last)
    finished = sa.select(ScheduledItem.id).where(
        mine, ScheduledItem.status.not_in((ScheduledStatus.PENDING, ScheduledStatus.CLAIMED))
    )
    spy: subprocess.Popen[bytes] | None = None
    try:
        while time.time() < second - 0.5:
            time.sleep(0.05)
        if profile_to is not None:
            spy = start_py_spy(worker.pid, profile_to, seconds=60)
        with CpuWindow(lambda: {"worker": worker.pid}, dbs.postmaster(kind)) as cpu:
            deadline = time.monotonic() + REMINDER_DEADLINE_S
            while time.monotonic() < deadline:
                if count(database, finished) >= moved:
                    break
                time.sleep(0.2)
            detected = time.time() - second
            cpu.stop()
    finally:
        if spy is not None:
            stop_py_spy(spy)
    # The items first, then the outbox: an item's messages commit with its "done", so for
    # every item done by the first read the second read sees all its messages. Lost: a done
    # item with fewer outbox rows for its young person than it says it sent ("meeting_reminder:
    # 2 sent"); twice: more. Items not run yet (a burst cut at the deadline) are neither.
    with database.session() as session:
        items = session.execute(
            sa.select(
                ScheduledItem.young_person_id,
                ScheduledItem.status,
                ScheduledItem.outcome,
                ScheduledItem.finished_at,
            ).where(mine)
        ).all()
        people = sa.select(ScheduledItem.young_person_id).where(mine)
        in_outbox = dict(
            session.execute(
                sa.select(Message.young_person_id, sa.func.count())
                .join(OutboxEntry, OutboxEntry.message_id == Message.id)
                .where(Message.young_person_id.in_(people))
                .group_by(Message.young_person_id)
            ).all()
        )
    statuses = Counter(status for _, status, _, _ in items)
    done_at = [at for _, status, _, at in items if status is ScheduledStatus.DONE and at]
    started, ended = (min(done_at), max(done_at)) if done_at else (None, None)
    expected = {
        person: _sent_count(outcome)
        for person, status, outcome, _ in items
        if status is ScheduledStatus.DONE
    }
    lost = sum(1 for person, n in expected.items() if in_outbox.get(person, 0) < max(n, 1))
    twice = sum(1 for person, n in expected.items() if in_outbox.get(person, 0) > n)
    done = statuses.get(ScheduledStatus.DONE, 0)
    elapsed = _seconds(ended) - second if ended else float("nan")
    processing = _seconds(ended) - _seconds(started) if ended else float("nan")
    return {
        "due": moved,
        "complete": not statuses.get(ScheduledStatus.PENDING)
        and not statuses.get(ScheduledStatus.CLAIMED),
        "statuses": {str(status.value): n for status, n in statuses.items()},
        "done": done,
        "elapsed_s": elapsed,
        "first_fired_s": _seconds(started) - second if started else float("nan"),
        "processing_s": processing,
        "detected_s": detected,
        "per_item_ms": processing / max(done, 1) * 1000,
        "worker_cpu_per_item_ms": cpu.result.get("worker_cpu_s", 0.0) / max(done, 1) * 1000,
        "people_with_message": len(in_outbox),
        "not_run": statuses[ScheduledStatus.PENDING] + statuses[ScheduledStatus.CLAIMED],
        "messages_per_item": dict(Counter(str(n) for n in expected.values())),
        "lost": lost,
        "twice": twice,
        "cpu": cpu.result,
        "profiled": profile_to is not None,
    }


def statements_per_item(
    database: Database, url: str, meetings: tuple[int, int]
) -> dict[str, float]:
    """Run ``meetings``' reminders in this process, one sweep with no other thread, counting the
    SQL statements and commits the worker makes per item."""
    runtime = runtime_for(database, url)
    handlers = runtime.handlers()
    if seed.REMINDER_KIND not in handlers:
        from bot.followups import FollowUps

        handlers.update(FollowUps(runtime.conversations).handlers())
    worker = Worker(
        database=database, metrics=runtime.metrics, handlers=handlers, worker_id="bench-count"
    )
    seed.make_due(database, meetings, datetime.now(UTC) - timedelta(seconds=1))
    counts = Counter[str]()

    def statement(*_: object) -> None:
        counts["statements"] += 1

    def commit(*_: object) -> None:
        counts["commits"] += 1

    sa.event.listen(database.engine, "before_cursor_execute", statement)
    sa.event.listen(database.engine, "commit", commit)
    try:
        started = time.perf_counter()
        cpu = time.process_time()
        handled = worker.sweep_items()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", statement)
        sa.event.remove(database.engine, "commit", commit)
    items = max(handled, 1)
    return {
        "items": handled,
        "statements_per_item": counts["statements"] / items,
        "commits_per_item": counts["commits"] / items,
        "ms_per_item": elapsed / items * 1000,
        "cpu_ms_per_item": cpu / items * 1000,
    }


def _sent_count(outcome: str | None) -> int:
    """``"meeting_reminder: 2 sent"`` -> 2 (0 when the outcome says nothing of the kind)."""
    words = (outcome or "").split()
    return int(words[-2]) if len(words) >= 2 and words[-1] == "sent" and words[-2].isdigit() else 0


def bare_writes(database: Database, meetings: tuple[int, int], messages: int) -> float:
    """The baseline: the same durable writes per item, bare. For each item, one transaction that
    inserts ``messages`` message rows, each with its outbox row, and marks the item done (Core
    statements, no ORM, no dialog, no checks). Seconds for all of them."""
    first, last = meetings
    with database.session() as session:
        items = session.execute(
            sa.select(ScheduledItem.id, ScheduledItem.young_person_id)
            .where(ScheduledItem.meeting_id.between(first, last))
            .order_by(ScheduledItem.id)
        ).all()
    message = cast(sa.Table, Message.__table__)
    outbox = cast(sa.Table, OutboxEntry.__table__)
    scheduled = cast(sa.Table, ScheduledItem.__table__)
    engine = database.engine
    started = time.perf_counter()
    for item_id, person_id in items:
        now = datetime.now(UTC)
        with engine.begin() as connection:
            for _ in range(messages):
                message_id = connection.execute(
                    message.insert().returning(message.c.id),
                    {
                        "young_person_id": person_id,
                        "direction": "outbound",
                        "channel": "sms",
                        "author": "bot",
                        "text": "Hej. Husk dit møde med Karin i morgen kl. 10, Rådhuset.",
                        "status": "queued",
                        "segments": 1,
                        "created_at": now,
                    },
                ).scalar_one()
                connection.execute(
                    outbox.insert(),
                    {
                        "message_id": message_id,
                        "channel": "sms",
                        "purpose": "proactive",
                        "status": "pending",
                        "not_before": now,
                        "attempts": 0,
                        "unknown_outcomes": 0,
                        "created_at": now,
                    },
                )
            connection.execute(
                scheduled.update()
                .where(scheduled.c.id == item_id)
                .values(status="done", finished_at=now, outcome="baseline")
            )
    return time.perf_counter() - started


# ---------------------------------------------------------------------------- profiling


def py_spy() -> str | None:
    return shutil.which("py-spy") or (
        str(Path(sys.executable).parent / "py-spy")
        if (Path(sys.executable).parent / "py-spy").exists()
        else None
    )


def start_py_spy(pid: int, output: Path, *, seconds: int) -> subprocess.Popen[bytes]:
    command = [
        str(py_spy()),
        "record",
        "--pid",
        str(pid),
        "--rate",
        "200",
        "--format",
        "raw",
        "--output",
        str(output),
        "--duration",
        str(seconds),
        "--nonblocking",
        "--threads",
        "--idle",
    ]
    process = subprocess.Popen(  # noqa: S603
        command, stdout=subprocess.DEVNULL, stderr=output.with_suffix(".log").open("wb")
    )
    time.sleep(0.5)  # py-spy attaches
    return process


def stop_py_spy(process: subprocess.Popen[bytes]) -> None:
    """SIGINT: py-spy writes what it has sampled and exits."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# Where the innermost frame is, by component, first match wins.
COMPONENTS: list[tuple[str, tuple[str, ...]]] = [
    ("database calls (SQLite / psycopg)", ("do_execute", "do_commit", "psycopg/", "sqlite3")),
    ("SQLAlchemy ORM (session, unit of work, loading)", ("sqlalchemy/orm/",)),
    ("SQLAlchemy Core (statements, compiling, cache keys, results)", ("sqlalchemy/",)),
    ("Stifinder code (bot, storage, dialogs)", ("bot/", "storage/", "dialogs/")),
    ("translations and dates (Babel, gettext)", ("babel/", "gettext")),
]


def hot_spots(path: Path, *, top: int = 25) -> dict[str, Any]:
    """From a raw py-spy profile, the samples of the thread running the sweep: the share of
    every Stifinder function anywhere on the stack (inclusive), and the share of each component
    and each function as the innermost frame (self)."""
    if not path.exists():
        return {"samples": 0}
    inclusive: Counter[str] = Counter()
    innermost: Counter[str] = Counter()
    components: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit() or "sweep_items" not in stack:
            continue
        samples = int(number)
        frames = [_frame_name(frame) for frame in stack.split(";") if ".py:" in frame]
        if not frames:
            continue
        total += samples
        innermost[frames[-1]] += samples
        component = next(
            (name for name, needles in COMPONENTS if any(n in frames[-1] for n in needles)),
            "other (standard library)",
        )
        components[component] += samples
        for name in set(frames):
            if name.startswith(("bot/", "storage/", "dialogs/")):
                inclusive[name] += samples
    if total == 0:
        return {"samples": 0}
    return {
        "samples": total,
        "inclusive": [(name, n / total) for name, n in inclusive.most_common(top)],
        "self": [(name, n / total) for name, n in innermost.most_common(12)],
        "components": [(name, n / total) for name, n in components.most_common()],
    }


def _frame_name(frame: str) -> str:
    """``function (path/to/module.py:123)`` -> ``bot/module.py:function``."""
    function, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    parts = Path(path).parts
    for anchor in ("bot", "storage", "dialogs", "sqlalchemy", "psycopg", "apscheduler", "babel"):
        if anchor in parts:
            path = "/".join(parts[len(parts) - 1 - parts[::-1].index(anchor) :])
            break
    else:
        path = Path(path).name
    return f"{path}:{function.strip()}"


# ---------------------------------------------------------------------------- 4. scale-out


SCALE_SECONDS = 20  # each configuration sends for about this long


def part_scale(dbs: Databases, workdir: Path, counts: Sequence[int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    supply = 2_000
    for workers in counts:
        if rows:
            # Enough for about SCALE_SECONDS at the rate this many workers would reach if they
            # scaled perfectly from one, within bounds.
            supply = int(min(12_000, max(2_000, rows[0]["rate"] * workers * SCALE_SECONDS)))
        rows.append(scale_once(dbs, workdir, workers, supply))
        row = rows[-1]
        show(
            f"  postgresql, {workers} worker(s): {row['rate']:.0f} messages/s "
            f"({row['provider_count']} sent, each exactly once: {row['exactly_once']})"
        )
    return rows


def scale_once(dbs: Databases, workdir: Path, workers: int, supply: int) -> dict[str, Any]:
    url = dbs.url("postgresql", f"scale_{workers}")
    database = seed.fresh(url)
    try:
        where = seed.place(database)
        seed.young_people(database, where, supply, now=datetime.now(UTC))
        runtime = runtime_for(database, url)
        campaign_id = launch(runtime, where, rate_per_minute=None)
        fan_out(runtime, campaign_id)
        log = workdir / f"scale-{workers}"
        with (
            FakeProviderProcess(delay=SCALE_DELAY_S, log=log.with_suffix(".fake.log")) as fake,
            contextlib.ExitStack() as stack,
        ):
            env = worker_env(
                url,
                provider_url=fake.url,
                poll_seconds=1.0,
                sms_per_second=100_000,
                extra={"STIFINDER_TELEGRAM_MESSAGES_PER_SECOND": "100000"},
            )
            processes = [
                stack.enter_context(
                    WorkerProcess(env, workdir / f"scale-{workers}-{number}.worker.log")
                )
                for number in range(workers)
            ]

            def pids() -> dict[str, int]:
                found = {f"worker{n}": p.pid for n, p in enumerate(processes)}
                found["fake"] = fake.pid
                return found

            sent = sa.select(OutboxEntry.id).where(OutboxEntry.status == OutboxStatus.SENT)
            with CpuWindow(pids, dbs.postmaster("postgresql")) as cpu:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    if count(database, sent) >= supply:
                        break
                    if not all(p.alive() for p in processes):
                        raise RuntimeError("a worker stopped:\n" + processes[0].log_tail())
                    time.sleep(0.5)
                cpu.stop()
            for process in processes:
                process.stop()
            arrivals = fake.arrivals()
        return scale_result(database, arrivals, workers, supply, cpu.result)
    finally:
        database.dispose()


def scale_result(
    database: Database,
    arrivals: list[Arrival],
    workers: int,
    supply: int,
    cpu: dict[str, float],
) -> dict[str, Any]:
    accepted = sorted(arrivals, key=lambda a: a.at)
    times = [a.at for a in accepted]
    # The rate in the middle: from the 10th to the 90th percentile of the arrivals, so that
    # neither the workers' start nor the last half-empty batches count.
    low, high = int(len(times) * 0.1), int(len(times) * 0.9) - 1
    rate = (high - low) / (times[high] - times[low]) if high > low else float("nan")
    bodies = Counter(a.body for a in accepted)
    phones = Counter(a.to for a in accepted)
    expected = {f"Hej U{n}, vi holder åbent hus i dag." for n in range(1, supply + 1)}
    with database.session() as session:
        outbox = dict(
            session.execute(
                sa.select(OutboxEntry.status, sa.func.count()).group_by(OutboxEntry.status)
            ).all()
        )
    in_flight = [a.in_flight for a in accepted]
    middle = in_flight[low:high] or in_flight
    wall = cpu.get("wall_s", 1.0)
    worker_cpu = sum(v for k, v in cpu.items() if k.startswith("worker"))
    return {
        "workers": workers,
        "supply": supply,
        "provider_count": len(accepted),
        "rate": rate,
        "span_s": times[-1] - times[0] if times else 0.0,
        "exactly_once": set(bodies) == expected
        and all(n == 1 for n in bodies.values())
        and all(n == 1 for n in phones.values()),
        "duplicates": sum(n - 1 for n in bodies.values() if n > 1),
        "missing": len(expected - set(bodies)),
        "outbox": {str(status.value): n for status, n in outbox.items()},
        "mean_in_flight": sum(middle) / len(middle) if middle else 0.0,
        "max_in_flight": max(in_flight) if in_flight else 0,
        "worker_cpu_per_message_ms": worker_cpu / max(len(accepted), 1) * 1000,
        "worker_cores": worker_cpu / wall,
        "postgres_cores": cpu.get("postgres_cpu_s", 0.0) / wall,
        "fake_cores": cpu.get("fake_cpu_s", 0.0) / wall,
        "machine_cores": cpu.get("machine_cpu_s", 0.0) / wall,
        "other_cores": cpu.get("other_cpu_s", 0.0) / wall,
        "cpu": cpu,
    }


# ---------------------------------------------------------------------------- 5. memory


MEMORY_SECONDS = 30
MEMORY_DUE = 10_000  # of the pending items, this many are due when the worker starts


def part_memory(dbs: Databases, kind: str, workdir: Path) -> dict[str, Any]:
    url = dbs.url(kind, "memory")
    database = seed.fresh(url)
    empty_url = dbs.url(kind, "memory_empty")
    empty = seed.fresh(empty_url)
    try:
        where = seed.place(database)
        seed.place(empty)
        now = datetime.now(UTC).replace(microsecond=0)
        seeding = seed.young_people(database, where, MEMORY_PEOPLE, now=now)
        seeding += seed.meetings_with_reminders(
            database, where, MEMORY_ITEMS, first_start=now + timedelta(days=2), now=now
        )
        seed.make_due(database, (1, MEMORY_DUE), now)
        with FakeProviderProcess(log=workdir / f"memory-{kind}.fake.log") as fake:
            empty_run = memory_run(
                empty, dbs, kind, empty_url, fake.url, workdir / f"memory-{kind}-empty", 10
            )
            loaded_run = memory_run(
                database, dbs, kind, url, fake.url, workdir / f"memory-{kind}", MEMORY_SECONDS
            )
        return {
            "seed_s": seeding,
            "empty": empty_run,
            "loaded": loaded_run,
            "ratio": (loaded_run["peak_rss_kib"] or 0) / max(empty_run["peak_rss_kib"] or 1, 1),
        }
    finally:
        database.dispose()
        empty.dispose()


def memory_run(
    database: Database,
    dbs: Databases,
    kind: str,
    url: str,
    provider: str,
    log: Path,
    seconds: float,
) -> dict[str, Any]:
    registered = follow_ups_registered(database, url)
    module, args = (None, ()) if registered else ("bench.worker_variant", ("--follow-ups",))
    env = worker_env(url, provider_url=provider, poll_seconds=1.0, sms_per_second=1000)
    worker = WorkerProcess(
        env, log.with_suffix(".worker.log"), module=module, args=args, measure_rss=True
    )
    with worker, CpuWindow(lambda: {"worker": worker.pid}, dbs.postmaster(kind)) as cpu:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and worker.alive():
            time.sleep(0.5)
        cpu.stop()
        alive = worker.alive()
        worker.stop(timeout=15)
    with database.session() as session:
        statuses = dict(
            session.execute(
                sa.select(ScheduledItem.status, sa.func.count()).group_by(ScheduledItem.status)
            ).all()
        )
        sent = session.scalar(
            sa.select(sa.func.count()).where(OutboxEntry.status == OutboxStatus.SENT)
        )
    return {
        "seconds": seconds,
        "alive_until_stopped": alive,
        "killed": worker.killed,
        "peak_rss_kib": worker.peak_rss_kib(),
        "registered_by_runtime": registered,
        "items": {str(status.value): n for status, n in statuses.items()},
        "sent": int(sent or 0),
        "cpu": cpu.result,
    }


# ---------------------------------------------------------------------------- the report


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.0f} MiB"


def met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(results: dict[str, Any], info: dict[str, str], versions: dict[str, str]) -> str:
    lines = [
        BEGIN,
        "# Scheduling benchmark: campaigns, sending rate, reminders, scale-out, memory",
        "",
        f"Generated by `bench/run_scheduling.sh` on {results['started']} "
        f"({results['minutes']:.1f} minutes; `bench/scheduling.py` writes this section, between "
        "its markers, and leaves the rest of the file alone). Method: bench/README.md.",
        "",
        "## Machine",
        "",
        f"- {info['nproc']} CPUs: {info['cpu']}; {info['memory']} RAM; Linux {info['kernel']}",
        f"- Python {info['python']}; SQLAlchemy {info['sqlalchemy']}; psycopg {info['psycopg']}; "
        f"APScheduler {info['apscheduler']}; twilio {info['twilio']}",
    ]
    lines += [f"- {kind}: {version}" for kind, version in versions.items()]
    lines += [
        f"- Code measured: {info['git']}",
        f"- Load average when the run started: {info['loadavg']}. The machine is shared: the "
        "CPU used by other processes during each phase is given where it matters.",
        "",
    ]
    for part in (summary_text, campaign_text, rate_text, reminders_text, scale_text, memory_text):
        text = part(results)
        if text:
            lines += [text, ""]
    lines.append(END)
    return "\n".join(lines) + "\n"


def campaign_text(results: dict[str, Any]) -> str:
    parts = results.get("campaign")
    if not parts:
        return ""
    lines = [
        f"## 1. Campaign to {CAMPAIGN_SIZE:,} young people",
        "",
        "From `Campaigns.schedule` until a worker's sweep has run `handle_run` and committed every "
        "recipient as a pending row with its due time; the baseline is a plain `INSERT ... "
        "SELECT` of the same 100,000 ids into a scratch table (integer key, one integer column) "
        "in the same database, the faster of one run before and one after the campaign. Then "
        f"the first messages: `send_due` once with a budget of one batch ({CAMPAIGN_BATCH}), "
        f"then as the worker calls it (it stops when {OUTBOX_BACKLOG} campaign messages wait in "
        "the outbox), times counted from the same start. Target: all queued in < "
        f"{CAMPAIGN_TARGET_S:.0f} s.",
        "",
        "| database | campaign | all recipients pending | baseline copy | ratio | "
        "first messages in the outbox | outbox at the backlog cap | target |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for kind, rows in parts.items():
        for row in rows:
            lines.append(
                f"| {kind} | {row['label']} | {row['queued_s']:.2f} s ({row['pending']:,} rows, "
                f"{row['people']:,} people) | {row['baseline_s']:.2f} s | "
                f"{row['ratio']:.1f}× | {row['first_batch_messages']} at "
                f"{row['first_batch_s']:.2f} s | {row['backlog_messages']} at "
                f"{row['to_backlog_s']:.2f} s | {met(row['queued_s'] < CAMPAIGN_TARGET_S)} |"
            )
    lines += [
        "",
        "With a rate of 1,800 a minute the due times are spread over "
        + ", ".join(
            f"{kind} {row['spread_s'] / 60:.1f} min"
            for kind, rows in parts.items()
            for row in rows
            if row["rate_per_minute"]
        )
        + ", so only the recipients due by then can be in the outbox: that is the rate working, "
        "not a delay.",
    ]
    return "\n".join(lines)


LIMITERS = {
    "window": "window from the answer",
    "latency": "window from the answer, provider answering after 50 ms",
    "hand-over": "window from hand-over (before)",
    "bucket-only": "bucket only (before)",
}


def rate_ok(row: dict[str, Any]) -> bool:
    return bool(
        row["share"] >= RATE_TARGET_SHARE
        and row["attempts_max_sliding_second"] <= row["rate"]
        and row["attempts_max_calendar_second"] <= row["rate"]
    )


def rate_text(results: dict[str, Any]) -> str:
    parts = results.get("rate")
    if not parts:
        return ""
    lines = [
        "## 2. Sending rate against a provider that enforces it",
        "",
        "One `stifinder worker` (poll 1 s) sends a campaign (no campaign rate, all due at once, "
        "one GSM-7 segment each) through the real twilio SDK to `bench/fake_provider.py`, which "
        "answers 429 whenever accepting a message would put more than the set rate into the "
        "last second, and records every request's arrival. Stifinder's limit "
        "(`STIFINDER_SMS_SEGMENTS_PER_SECOND`) is the same rate. Achieved: accepted messages "
        f"in the first {RATE_SECONDS} whole seconds from the first one, divided by "
        f"{RATE_SECONDS}. Maxima over the accepted messages and, in parentheses, over every "
        "request the provider saw (429s included: what Stifinder actually sent). **bucket "
        "only** is the first limiter (`TokenBucket`, capacity = rate, starting full), run "
        f"for {BUCKET_ONLY_SECONDS} s in the same run for comparison; **window from hand-over** "
        "is the second (no more than the rate in any window of 1.03 s, each send counted from "
        "when the limiter let it go); **window from the answer** is `bot/ratelimit.py` now "
        f"(a window of {1 + MARGIN:.2f} s, each send counted from the provider's answer less "
        "the quickest round trip of the last 10 s), also run against a provider that answers "
        f"{RATE_LATENCY_S * 1000:.0f} ms after it counted each request, on the first database. "
        "Target: ≥ 95% of the set rate, never more than the set rate in a calendar or a "
        "sliding second. A window of 1.01 s means at most 99% of the set rate in the long run; "
        f"in the first {RATE_SECONDS} s the first window, which starts full and paced at twice "
        "the rate, makes up the rest.",
        "",
        "| database | limiter | set rate | achieved | share | max in a calendar second | "
        "max in any sliding second | 429s | requests in the first second | target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for kind, rows in parts.items():
        for row in rows:
            label = LIMITERS[row["variant"]]
            target = (
                met(rate_ok(row)) if row["variant"] in ("window", "latency") else "(comparison)"
            )
            lines.append(
                f"| {kind} | {label} | {row['rate']}/s | {row['achieved']:.1f}/s | "
                f"{row['share']:.1%} | {row['max_calendar_second']} "
                f"({row['attempts_max_calendar_second']}) | {row['max_sliding_second']} "
                f"({row['attempts_max_sliding_second']}) | {row['rejected_429']} | "
                f"{row['first_second']} | {target} |"
            )
    lines += ["", "Reading:", ""]
    for kind, rows in parts.items():
        for row in rows:
            if row["variant"] == "bucket-only":
                continue
            cpu = row["cpu"]
            wall = max(cpu.get("wall_s", 1.0), 1e-9)
            gaps = row.get("gaps", {})
            text = (
                f"- {kind}, {row['rate']}/s, {LIMITERS[row['variant']]}: {row['share']:.1%} "
                "of the rate "
                f"({met(row['share'] >= RATE_TARGET_SHARE)}), at most "
                f"{row['attempts_max_sliding_second']} requests in any sliding second "
                f"({met(row['attempts_max_sliding_second'] <= row['rate'])}), "
                f"{row['rejected_429']} 429s"
                + (
                    " (each came "
                    + ", ".join(f"{span:.3f} s" for span in row.get("spans_429", [])[:5])
                    + f" after the {row['rate']}th accepted message before it, where the "
                    "limiter keeps 1.03 s at hand-over: some sends took up to "
                    f"{(1.03 - min(row['spans_429'])) * 1000:.0f} ms longer than others "
                    "from the limiter to the provider)"
                    if row.get("spans_429") and row["variant"] == "hand-over"
                    else " (each came "
                    + ", ".join(f"{span:.3f} s" for span in row.get("spans_429", [])[:5])
                    + f" after the {row['rate']}th accepted message before it)"
                    if row.get("spans_429")
                    else ""
                )
                + f", {row['duplicates']} duplicates. "
                f"Pauses over 0.5 s in the counted span: "
                f"{gaps.get('dispatcher_between_batches_s', 0):.1f} s with due rows waiting in "
                f"the outbox (the dispatcher between batches), "
                f"{gaps.get('outbox_empty_s', 0):.1f} s with none (the campaign behind). "
                f"The worker used {cpu.get('worker_cpu_s', 0) / wall:.2f} cores "
                f"({cpu.get('worker_cpu_s', 0) / max(row['accepted'], 1) * 1000:.1f} ms of CPU "
                f"per message), other processes {cpu.get('other_cpu_s', 0) / wall:.2f}."
            )
            lines.append(text)
    before = [r for rows in parts.values() for r in rows if r["variant"] == "bucket-only"]
    if before:
        worst = max(before, key=lambda r: r["attempts_max_sliding_second"] / r["rate"])
        lines += [
            "",
            f"The bucket alone sent up to {worst['attempts_max_sliding_second']} requests in one "
            f"sliding second at {worst['rate']}/s (its full bucket plus a second of refill), "
            "which the provider answered with 429s; that is why `bot/ratelimit.py` changed "
            "(see bench/README.md).",
        ]
    return "\n".join(lines)


def reminders_text(results: dict[str, Any]) -> str:
    parts = results.get("reminders")
    if not parts:
        return ""
    lines = [
        f"## 3. {REMINDERS_DUE:,} meeting reminders due in the same second, "
        f"{REMINDERS_PENDING:,} pending",
        "",
        f"{REMINDERS_PENDING:,} young people, each with a planned meeting and its pending 2-hour "
        "reminder (`meeting_reminder`, rows as `storage.plans` writes them); one `stifinder "
        "worker` (poll 1 s, but it wakes when the next item falls due; no SMS provider "
        "configured, so the messages stay in the outbox). "
        f"Once it runs, {REMINDERS_DUE:,} of the meetings are moved so that their reminders are "
        "due in the same whole second S. Measured from S until the last of them is done "
        "(`finished_at`, stamped as its handler starts; the bench also polls and gives when it "
        "saw them all finished). Fired: item `done` and the dialog's messages in the outbox "
        "(the reminder dialog writes two: the reminder and its question); lost: fewer outbox "
        "rows for the young person than the item says it sent, twice: more. Baseline: the "
        f"same durable writes bare, per item one transaction inserting {REMINDER_MESSAGES} "
        "messages and their outbox rows and marking the item done (Core, no ORM, no dialog), "
        "timed on 1,000 other items in the same database before the worker starts, and scaled "
        f"to {REMINDERS_DUE:,}. Target: < "
        f"{REMINDER_TARGET_S:.0f} s.",
        "",
        "| database | S → all done | seen by polling | first fired | run (first → last) "
        "| per item | worker CPU per item | baseline | ratio | done / not run yet / lost / "
        "twice | others still pending | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for kind, row in parts.items():
        m = row["measured"]
        done = "" if m["complete"] else f" (not all done after {REMINDER_DEADLINE_S:.0f} s)"
        lines.append(
            f"| {kind} | {m['elapsed_s']:.1f} s{done} | {m['detected_s']:.1f} s | "
            f"{m['first_fired_s']:.2f} s | {m['processing_s']:.1f} s | {m['per_item_ms']:.1f} ms "
            f"| {m['worker_cpu_per_item_ms']:.1f} ms | {row['baseline_s']:.1f} s "
            f"({row['baseline_per_item_ms']:.2f} ms/item) | {row['ratio']:.1f}× | "
            f"{m['done']} / {m.get('not_run', 0)} / {m['lost']} / {m['twice']} | "
            f"{row['others_pending']:,} of "
            f"{row['others']:,} | {met(m['complete'] and m['elapsed_s'] < REMINDER_TARGET_S)} |"
        )
    lines += ["", "Reading:", ""]
    for kind, row in parts.items():
        m, counted = row["measured"], row["counted"]
        cpu = m["cpu"]
        wall = max(cpu.get("wall_s", 1.0), 1e-9)
        needed = REMINDER_TARGET_S / REMINDERS_DUE * 1000
        lines.append(
            f"- {kind}: {m['per_item_ms']:.1f} ms per reminder against the "
            f"{needed:.1f} ms that {REMINDERS_DUE:,} in {REMINDER_TARGET_S:.0f} s allow "
            f"({m['per_item_ms'] / needed:.2f}× the budget). During the burst the worker used "
            f"{cpu.get('worker_cpu_s', 0) / wall:.2f} cores (one thread runs the items, a "
            f"batch of up to {WORKER_BATCH} per transaction), the database server "
            f"{cpu.get('postgres_cpu_s', 0) / wall:.2f}, other processes "
            f"{cpu.get('other_cpu_s', 0) / wall:.2f}. In this process with no other thread, "
            f"{counted['items']} "
            f"items took {counted['ms_per_item']:.1f} ms each ({counted['cpu_ms_per_item']:.1f} "
            f"ms CPU) with {counted['statements_per_item']:.1f} SQL statements and "
            f"{counted['commits_per_item']:.2f} commits per item"
            + (
                " (and two `COPY`s per batch, which the statement count does not see). "
                if kind == "postgresql"
                else ". "
            )
            + (
                ""
                if row["registered_by_runtime"]
                else "`Runtime.handlers()` did not register `meeting_reminder`: the worker ran "
                "as `python -m bench.worker_variant --follow-ups`. "
            )
            + (f"Item statuses: {m['statuses']}. " if set(m["statuses"]) != {"done"} else "")
            + (
                f"Messages per item: {m['messages_per_item']} (the baseline wrote "
                f"{REMINDER_MESSAGES})."
                if set(m["messages_per_item"]) != {str(REMINDER_MESSAGES)}
                else ""
            )
        )
    for kind, row in parts.items():
        profiled = row.get("profiled")
        if not profiled:
            continue
        spots = profiled.get("hot_spots", {})
        burst = (
            f"a second burst of {profiled['due']:,} reminders"
            if profiled.get("due")
            else "20 s of the same burst"
        )
        lines += [
            "",
            f"### Where the time goes: {kind} (py-spy, 200 Hz, {burst})",
            "",
            f"{spots.get('samples', 0)} samples of the thread running the sweep, waiting "
            "included (`--idle`), so the shares are shares of its wall time; time spent "
            "waiting for the database server counts as the driver call that waits. Inclusive: "
            "the function is anywhere on the stack (the shares nest); self: the innermost frame.",
            "",
            "| Stifinder function (inclusive) | share |",
            "|---|---:|",
        ]
        lines += [f"| `{name}` | {share:.0%} |" for name, share in spots.get("inclusive", [])]
        lines += ["", "| innermost frame in | share |", "|---|---:|"]
        lines += [f"| {name} | {share:.0%} |" for name, share in spots.get("components", [])]
        lines += ["", "| function (self) | share |", "|---|---:|"]
        lines += [f"| `{name}` | {share:.1%} |" for name, share in spots.get("self", [])]
    return "\n".join(lines)


def scale_text(results: dict[str, Any]) -> str:
    rows = results.get("scale")
    if not rows:
        return ""
    one = rows[0]["rate"]
    lines = [
        "## 4. Scale-out on one PostgreSQL",
        "",
        "1, 2 and 4 `stifinder worker` processes (poll 1 s) on a fresh PostgreSQL database each, "
        "sending a campaign (all due at once) through the twilio SDK to a fake provider that "
        f"takes {SCALE_DELAY_S * 1000:.0f} ms per call and has no limit; Stifinder's limits at "
        "100,000/s. Rate: messages arriving at the provider between the 10th and the 90th "
        "percentile of the arrivals, per second. Exactly once: every expected body (one per "
        "young person) arrived once, no body and no phone number twice, every outbox row sent. "
        f"Baseline: one worker. Target: 4 workers ≥ {SCALE_TARGET:.0f}× one.",
        "",
        "| workers | messages | rate | × one worker | exactly once | requests in flight at the "
        "provider (mean / max) | worker CPU per message | cores: workers / PostgreSQL / fake / "
        "other |",
        "|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['workers']} | {row['provider_count']:,} | {row['rate']:.0f}/s | "
            f"{row['rate'] / one:.2f}× | {'yes' if row['exactly_once'] else 'NO'} "
            f"(duplicates {row['duplicates']}, missing {row['missing']}, outbox "
            f"{row['outbox']}) | {row['mean_in_flight']:.1f} / {row['max_in_flight']} | "
            f"{row['worker_cpu_per_message_ms']:.1f} ms | {row['worker_cores']:.2f} / "
            f"{row['postgres_cores']:.2f} / {row['fake_cores']:.2f} / {row['other_cores']:.2f} |"
        )
    four = next((r for r in rows if r["workers"] == 4), None)
    lines += ["", "Reading:", ""]
    if four is not None:
        lines.append(
            f"- 4 workers reach {four['rate'] / one:.2f}× one worker: "
            f"{met(four['rate'] / one >= SCALE_TARGET)}."
        )
    first = rows[0]
    lines.append(
        f"- One worker keeps {first['mean_in_flight']:.1f} requests in flight on average (at "
        f"most {first['max_in_flight']}), which at {SCALE_DELAY_S * 1000:.0f} ms a call is "
        f"{first['mean_in_flight'] / SCALE_DELAY_S:.0f}/s: about the rate it reached. The "
        "dispatcher sends through a pool of `Limits.concurrency` (16) threads of its own, so one "
        f"worker has up to 16 sends in flight ({16 / SCALE_DELAY_S:.0f}/s at "
        f"{SCALE_DELAY_S * 1000:.0f} ms); the next batch is claimed while one is sending, so "
        "the slots empty only when the outbox does."
    )

    def per_call(row: dict[str, Any]) -> float:
        return float(row["mean_in_flight"]) / max(float(row["rate"]), 1e-9) * 1000

    for row in rows[1:]:
        lines.append(
            f"- {row['workers']} workers keep {row['mean_in_flight']:.1f} requests in flight (at "
            f"most {row['max_in_flight']}) for {row['rate']:.0f}/s: by Little's law a call took "
            f"{per_call(row):.0f} ms on average, against {per_call(first):.0f} ms with one "
            "worker."
        )
    if four is not None:
        lines.append(
            f"- With 4 workers the workers used {four['worker_cores']:.2f} cores, PostgreSQL "
            f"{four['postgres_cores']:.2f}, other processes {four['other_cores']:.2f} (of "
            f"{os.cpu_count()}); {four['worker_cpu_per_message_ms']:.1f} ms of worker CPU per "
            f"message against {first['worker_cpu_per_message_ms']:.1f} ms with one, so claims "
            "do not get dearer with more workers (`FOR UPDATE SKIP LOCKED`: nobody waits for "
            "another's rows)."
        )
        cores = sum(
            float(four[key])
            for key in ("worker_cores", "postgres_cores", "fake_cores", "other_cores")
        )
        machine_cores = os.cpu_count() or 1
        per_message = cores / max(float(four["rate"]), 1e-9) * 1000
        lines.append(
            f"- All processes together used {cores:.2f} of the machine's {machine_cores} cores "
            f"with 4 workers, {per_message:.2f} ms of CPU per message: at that cost "
            f"{machine_cores} cores carry at most {machine_cores / per_message * 1000:.0f} "
            f"messages/s, {machine_cores / per_message * 1000 / one:.2f}× one worker. Each worker "
            f"kept {four['mean_in_flight'] / 4:.1f} of its 16 sends in flight, against "
            f"{first['mean_in_flight']:.1f} alone: "
            + (
                "the workers wait for the CPU, not for the provider or each other."
                if cores > 0.85 * machine_cores
                else "the machine still had CPU to spare."
            )
        )
    return "\n".join(lines)


def memory_text(results: dict[str, Any]) -> str:
    parts = results.get("memory")
    if not parts:
        return ""
    lines = [
        "## 5. Peak memory of a worker",
        "",
        f"`stifinder worker` under `/usr/bin/time -v` (maximum resident set size), poll 1 s, "
        f"for {MEMORY_SECONDS} s, on a database with {MEMORY_PEOPLE:,} young people and "
        f"{MEMORY_ITEMS:,} pending meeting reminders ({MEMORY_DUE:,} of them due at the start, "
        "so the sweeps have work all along), SMS to the fake provider at 1,000/s; then SIGTERM "
        "(and SIGKILL if it is still inside a sweep 15 s later). Baseline: the same worker for "
        f"10 s on an empty database. Target: < {MEMORY_TARGET_MIB:.0f} MB.",
        "",
        "| database | peak RSS | baseline (empty database) | ratio | reminders done in the "
        "run | messages sent | seeding | target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for kind, row in parts.items():
        loaded, empty = row["loaded"], row["empty"]
        peak = loaded["peak_rss_kib"]
        lines.append(
            f"| {kind} | {mib(peak)} | {mib(empty['peak_rss_kib'])} | {row['ratio']:.2f}× | "
            f"{loaded['items'].get('done', 0):,} | {loaded['sent']:,} | {row['seed_s']:.0f} s | "
            f"{met(peak is not None and peak * 1024 < MEMORY_TARGET_MIB * 1e6)} |"
        )
    return "\n".join(lines)


def summary_text(results: dict[str, Any]) -> str:
    lines = ["## Targets at a glance", ""]
    for kind, rows in results.get("campaign", {}).items():
        worst = max(row["queued_s"] for row in rows)
        lines.append(
            f"- Campaign to {CAMPAIGN_SIZE:,}, all recipients queued, {kind}: {worst:.2f} s "
            f"(< {CAMPAIGN_TARGET_S:.0f} s: {met(worst < CAMPAIGN_TARGET_S)})"
        )
    for kind, rows in results.get("rate", {}).items():
        for row in rows:
            if row["variant"] in ("window", "latency"):
                slow = ", provider answering after 50 ms" if row["variant"] == "latency" else ""
                lines.append(
                    f"- Sending at {row['rate']}/s, {kind}{slow}: {row['share']:.1%} of the rate, "
                    f"max {row['attempts_max_sliding_second']} in a sliding second, "
                    f"{row['rejected_429']} 429s ({met(rate_ok(row))})"
                )
    for kind, row in results.get("reminders", {}).items():
        m = row["measured"]
        lines.append(
            f"- {REMINDERS_DUE:,} reminders in one second, {kind}: {m['elapsed_s']:.1f} s "
            f"(< {REMINDER_TARGET_S:.0f} s: "
            f"{met(m['complete'] and m['elapsed_s'] < REMINDER_TARGET_S)}), lost {m['lost']}, "
            f"twice {m['twice']}"
        )
    rows = results.get("scale", [])
    four = next((r for r in rows if r["workers"] == 4), None)
    if rows and four is not None:
        ratio = four["rate"] / rows[0]["rate"]
        lines.append(
            f"- 4 workers against 1, postgresql: {ratio:.2f}× (≥ {SCALE_TARGET:.0f}×: "
            f"{met(ratio >= SCALE_TARGET)}), every message exactly once: "
            f"{'yes' if all(r['exactly_once'] for r in rows) else 'NO'}"
        )
    for kind, row in results.get("memory", {}).items():
        peak = row["loaded"]["peak_rss_kib"]
        lines.append(
            f"- Worker peak RSS, {kind}: {mib(peak)} (< {MEMORY_TARGET_MIB:.0f} MB: "
            f"{met(peak is not None and peak * 1024 < MEMORY_TARGET_MIB * 1e6)})"
        )
    return "\n".join(lines) if len(lines) > 2 else ""


def write_section(text: str, path: Path = RESULTS) -> None:
    """Replace the scheduling section (between its markers) or append it; keep everything else."""
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in current and END in current:
        before, rest = current.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        updated = before + text.rstrip("\n") + after
    else:
        updated = current.rstrip("\n") + ("\n\n" if current else "") + text
    path.write_text(updated, encoding="utf-8")


# ---------------------------------------------------------------------------- main


@dataclass
class Options:
    parts: tuple[int, ...]
    databases: tuple[str, ...]
    rates: tuple[int, ...]
    workers: tuple[int, ...]
    profile: bool
    keep: bool
    output: Path
    json: Path | None
    render: Path | None


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="1,2,3,4,5", help="which parts, e.g. 1,3")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--rates", default="30,100", help="provider rates for part 2")
    parser.add_argument("--workers", default="1,2,4", help="worker counts for part 4")
    parser.add_argument(
        "--no-profile", action="store_true", help="no py-spy run when reminders miss the target"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results")
    parser.add_argument(
        "--render", type=Path, default=None, help="only rewrite the section from a --json file"
    )
    args = parser.parse_args(argv)

    def numbers(text: str) -> tuple[int, ...]:
        return tuple(int(x) for x in text.split(",") if x.strip())

    return Options(
        parts=numbers(args.parts),
        databases=tuple(x.strip() for x in args.databases.split(",") if x.strip()),
        rates=numbers(args.rates),
        workers=numbers(args.workers),
        profile=not args.no_profile,
        keep=args.keep,
        output=args.output,
        json=args.json,
        render=args.render,
    )


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run(options: Options, dbs: Databases, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"started": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"}
    if 1 in options.parts:
        show("1. campaign to 100,000")
        results["campaign"] = {kind: part_campaign(dbs, kind) for kind in options.databases}
    if 2 in options.parts:
        show("2. sending rate")
        results["rate"] = {}
        for kind in options.databases:
            rows = []
            # The old limiter behaves the same on either database: compare it on the first only.
            variants = (
                ("bucket-only", "hand-over", "window", "latency")
                if kind == options.databases[0]
                else ("window",)
            )
            for rate in options.rates:
                for variant in variants:
                    row = part_rate(dbs, kind, rate, variant=variant, workdir=workdir)
                    rows.append(row)
                    show(
                        f"  {kind} {rate}/s {variant}: {row['achieved']:.1f}/s "
                        f"({row['share']:.1%}), max calendar second "
                        f"{row['attempts_max_calendar_second']}, max sliding second "
                        f"{row['attempts_max_sliding_second']}, 429s {row['rejected_429']}"
                    )
            results["rate"][kind] = rows
    if 3 in options.parts:
        show("3. 5,000 reminders due in the same second")
        results["reminders"] = {}
        for kind in options.databases:
            row = part_reminders(dbs, kind, workdir=workdir, profile=options.profile)
            results["reminders"][kind] = row
            m = row["measured"]
            show(
                f"  {kind}: {m['done']} of {m['due']} done {m['elapsed_s']:.2f}s after S "
                f"(run {m['processing_s']:.2f}s, {m['per_item_ms']:.2f} ms/item; bare writes "
                f"{row['baseline_s']:.2f}s); lost {m['lost']}, twice {m['twice']}"
            )
    if 4 in options.parts and "postgresql" in options.databases:
        show("4. scale-out on PostgreSQL")
        results["scale"] = part_scale(dbs, workdir, options.workers)
    if 5 in options.parts:
        show("5. peak memory of a worker")
        results["memory"] = {}
        for kind in options.databases:
            row = part_memory(dbs, kind, workdir)
            results["memory"][kind] = row
            show(
                f"  {kind}: peak RSS {mib(row['loaded']['peak_rss_kib'])} "
                f"(empty database {mib(row['empty']['peak_rss_kib'])})"
            )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    if options.render is not None:
        saved = json.loads(options.render.read_text(encoding="utf-8"))
        write_section(report(saved, saved["machine"], saved["versions"]), options.output)
        show(f"rewrote the scheduling section of {options.output}")
        return 0
    signal.signal(signal.SIGTERM, _terminate)
    info = machine()
    workdir = Path(tempfile.mkdtemp(prefix="stifinder-scheduling-"))
    dbs = Databases(workdir)
    started = time.monotonic()
    try:
        results = run(options, dbs, workdir)
    finally:
        dbs.close()
        if options.keep:
            show(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["minutes"] = (time.monotonic() - started) / 60
    results["machine"] = info
    results["versions"] = dbs.versions
    if options.json is not None:
        options.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    write_section(report(results, info, dbs.versions), options.output)
    show(f"\nwrote the scheduling section of {options.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
