"""Run the webhook benchmark on SQLite and PostgreSQL and write bench/RESULTS.md.

    bench/run.sh                      # installs wrk and time if missing, then runs this
    .venv/bin/python -m bench.run --databases sqlite --rounds 1   # a quicker look

For each database: a fresh, migrated database; the app under uvicorn in its own process
(``bench.app:create``, one worker, uvloop, httptools, access log off), under ``/usr/bin/time -v``
for its peak RSS; then, against the same process and database,

1. warm-up: wrk for a few seconds on the baseline and on the webhook;
2. saturation, ``--rounds`` times: wrk on the baseline, then on the webhook (same request bytes);
3. fixed rate, ``--rate-rounds`` times: ``bench/constant_rate.py`` at ``--rate`` requests/s,
   baseline then webhook;
4. verification: every webhook request that got a 2xx is a row in ``inbound_event``;
5. with ``--profile``, one more webhook run under py-spy (``bench/profile.py`` sums it up);

and after the server stopped, ``bench/steps.py`` times the webhook's steps one by one.

Every process started here is stopped at the end, also on errors. Load goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import sqlalchemy as sa

from bench import profile, signed
from bench.app import ACCOUNT_SID, AUTH_TOKEN, BASELINE_PATH, FROM_NUMBER
from bot.web.paths import TWILIO_SMS_PATH
from storage.db import normalise_url

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable
LUA = HERE / "signed_post.lua"
TIME = Path("/usr/bin/time")

TARGET_RATE = 1000.0
TARGET_P99_MS = 100.0
TARGET_RATIO = 0.5
NOISY_CORES = 0.25  # CPU used by processes outside the benchmark, in cores, that distorts it


def show(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def rel(path: Path) -> str:
    """A path as written in RESULTS.md: relative to the project when inside it."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(ROOT))
    return str(path)


# ---------------------------------------------------------------------------- measuring CPU


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    with Path("/proc/stat").open() as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return total - idle, total


def process_seconds(pid: int) -> float:
    """User plus system CPU seconds of one process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tree_seconds(root: int | None) -> dict[int, float]:
    """CPU seconds of a process and of its children (PostgreSQL's postmaster and backends)."""
    if root is None:
        return {}
    pids = [root]
    with contextlib.suppress(OSError, ValueError):
        pids += [int(x) for x in Path(f"/proc/{root}/task/{root}/children").read_text().split()]
    seconds: dict[int, float] = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            seconds[pid] = process_seconds(pid)
    return seconds


@dataclass
class CpuWindow:
    """CPU used while one load phase ran: by the server, the database server, the load
    generator, and everything else on the machine (other users' work: the noise)."""

    server_pid: int
    database_pid: int | None = None
    start_database: dict[int, float] = field(default_factory=dict)
    start_busy: int = 0
    start_total: int = 0
    start_server: float = 0.0
    start_children: float = 0.0
    start_wall: float = 0.0
    result: dict[str, float] = field(default_factory=dict)

    def __enter__(self) -> CpuWindow:
        self.start_busy, self.start_total = machine_ticks()
        self.start_server = process_seconds(self.server_pid)
        self.start_children = children_seconds()
        self.start_database = tree_seconds(self.database_pid)
        self.start_wall = time.monotonic()
        return self

    def __exit__(self, *_: object) -> None:
        busy, total = machine_ticks()
        wall = time.monotonic() - self.start_wall
        cores = os.cpu_count() or 1
        machine = (busy - self.start_busy) / max(1, total - self.start_total) * cores * wall
        server = process_seconds(self.server_pid) - self.start_server
        load = children_seconds() - self.start_children
        ended = tree_seconds(self.database_pid)
        database = sum(t - self.start_database.get(pid, 0.0) for pid, t in ended.items())
        self.result = {
            "wall_s": wall,
            "server_cpu_s": server,
            "database_cpu_s": database,
            "loadgen_cpu_s": load,
            "other_cpu_s": max(0.0, machine - server - load - database),
        }


# ---------------------------------------------------------------------------- request files


class Pool:
    """Signed request files, one per load phase, each with its own Sids; shared by databases
    (they are separate databases) and grown when a later phase needs more lines."""

    def __init__(self, directory: Path, url: str) -> None:
        self.directory = directory
        self.url = url
        self.files: dict[str, tuple[Path, list[str]]] = {}

    def get(self, name: str, count: int) -> tuple[Path, list[str]]:
        known = self.files.get(name)
        if known is not None and len(known[1]) >= count:
            return known
        started = time.monotonic()
        requests = signed.generate(
            count,
            url=self.url,
            auth_token=AUTH_TOKEN,
            to=FROM_NUMBER,
            account_sid=ACCOUNT_SID,
            seed=zlib.crc32(name.encode()),
        )
        path = self.directory / f"{name}.tsv"
        signed.write(requests, path)
        self.files[name] = (path, [r.sid for r in requests])
        show(f"  generated {count} signed requests for {name} ({time.monotonic() - started:.1f}s)")
        return self.files[name]


# ---------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(port: int) -> list[str]:
    return [
        PYTHON,
        "-m",
        "uvicorn",
        "bench.app:create",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--lifespan",
        "on",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    pid: int  # the Python process (the child of /usr/bin/time when that wraps it)
    log: Path
    time_report: Path | None

    def peak_rss_kb(self) -> int | None:
        if self.time_report is None or not self.time_report.exists():
            return None
        for line in self.time_report.read_text().splitlines():
            if "Maximum resident set size" in line:
                return int(line.rsplit(":", 1)[1])
        return None


def _child_of(pid: int, deadline: float) -> int:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    while time.monotonic() < deadline:
        found = children.read_text().split() if children.exists() else []
        if found:
            return int(found[0])
        time.sleep(0.02)
    raise RuntimeError("/usr/bin/time started no child")


@contextlib.contextmanager
def serving(
    database_url: str, port: int, public: str, workdir: Path, name: str
) -> Iterator[Server]:
    env = dict(os.environ, BENCH_DATABASE_URL=database_url, BENCH_PUBLIC_BASE_URL=public)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    log = workdir / f"server-{name}.log"
    report = workdir / f"time-{name}.txt" if TIME.exists() else None
    command = server_command(port)
    if report is not None:
        command = [str(TIME), "-v", "-o", str(report), *command]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)  # noqa: S603
    try:
        pid = process.pid if report is None else _child_of(process.pid, time.monotonic() + 10)
        server = Server(process=process, pid=pid, log=log, time_report=report)
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{log.read_text()[-3000:]}")
            probe = f"{public}/healthz"  # http://127.0.0.1 only
            with contextlib.suppress(OSError), urllib.request.urlopen(probe, timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield server
    finally:
        _stop(process, report is not None)


def _stop(process: subprocess.Popen[bytes], wrapped: bool) -> None:
    """SIGINT to uvicorn (graceful); /usr/bin/time ignores SIGINT and writes its report when the
    child is gone. SIGKILL to the same processes if that takes too long."""
    if process.poll() is not None:
        return
    target = process.pid
    if wrapped:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        found = children.read_text().split() if children.exists() else []
        target = int(found[0]) if found else process.pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(target, signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        for pid in dict.fromkeys([target, process.pid]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=10)


# ---------------------------------------------------------------------------- load


@dataclass
class Command:
    """A command as run, for RESULTS.md (paths in the temporary directory shortened)."""

    argv: list[str]

    def text(self, workdir: Path) -> str:
        shown = [
            a.replace(str(workdir), "$WORK").replace(PYTHON, ".venv/bin/python") for a in self.argv
        ]
        return shlex.join(shown)


def wrk(
    url: str, path: str, data: Path, *, threads: int, connections: int, seconds: float
) -> tuple[dict[str, Any], Command]:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "-s",
        str(LUA),
        url + path,
        "--",
        str(data),
        path,
        str(threads),
    ]
    done = subprocess.run(  # noqa: S603 - our own command line
        argv, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    lines = [x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("BENCH_JSON "))
    threads_ = result["threads"]
    result["ok"] = sum(t["ok"] for t in threads_)
    result["other"] = sum(t["other"] for t in threads_)
    result["issued"] = sum(t["issued"] for t in threads_)
    result["exhausted"] = any(t["exhausted"] for t in threads_)
    result["seconds"] = result["duration_us"] / 1e6
    result["rate"] = result["ok"] / result["seconds"]
    return result, Command(argv)


def constant_rate(
    url: str, path: str, data: Path, *, rate: float, seconds: float, out: Path
) -> tuple[dict[str, Any], Command]:
    argv = [
        PYTHON,
        "-m",
        "bench.constant_rate",
        "--url",
        url + path,
        "--data",
        str(data),
        "--rate",
        f"{rate:g}",
        "--duration",
        f"{seconds:g}",
        "--out",
        str(out),
    ]
    done = subprocess.run(  # noqa: S603 - our own command line
        argv, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"constant_rate failed: {done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result, Command(argv)


def steps(database_url: str, out: Path) -> tuple[list[dict[str, Any]], Command]:
    argv = [PYTHON, "-m", "bench.steps", "--database-url", database_url, "--out", str(out)]
    done = subprocess.run(  # noqa: S603 - our own command line
        argv, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"steps failed: {done.stdout}\n{done.stderr}")
    results: list[dict[str, Any]] = json.loads(out.read_text())
    return results, Command(argv)


def py_spy() -> str | None:
    return shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(PYTHON).parent))


def profiled_run(
    public: str, data: Path, server: Server, options: Options, out: Path
) -> tuple[dict[str, list[tuple[str, float]]], list[Command]]:
    """One more webhook run under wrk while py-spy samples the GIL holder (not in the table)."""
    spy = py_spy()
    assert spy is not None
    seconds = 8.0
    load = [
        "wrk",
        f"-t{options.threads}",
        f"-c{options.connections}",
        f"-d{seconds:g}s",
        "-s",
        str(LUA),
        public + TWILIO_SMS_PATH,
        "--",
        str(data),
        TWILIO_SMS_PATH,
        str(options.threads),
    ]
    record = [spy, "record", "--gil", "--nonblocking", "-r", "97", "-f", "raw"]
    record += ["-p", str(server.pid), "-d", f"{seconds - 3:g}", "-o", str(out)]
    wrk_process = subprocess.Popen(  # noqa: S603 - our own command line
        load, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(1.5)
        subprocess.run(  # noqa: S603 - our own command line
            record, capture_output=True, timeout=seconds + 30, check=True
        )
    finally:
        try:
            wrk_process.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            wrk_process.kill()
            wrk_process.wait(timeout=10)
    return profile.summarise(out), [Command(load), Command(record)]


# ---------------------------------------------------------------------------- the database


def counts(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        events = connection.scalar(sa.text("SELECT count(*) FROM inbound_event"))
        baseline = connection.scalar(sa.text("SELECT count(*) FROM bench_baseline"))
    return int(events or 0), int(baseline or 0)


def settle(engine: sa.Engine, *, quiet: float = 0.5, limit: float = 20.0) -> tuple[int, int]:
    """Wait until requests still in the server when the load generator stopped are done."""
    deadline = time.monotonic() + limit
    last = counts(engine)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = counts(engine)
        if now == last:
            return now
        last = now
    return last


def stored_sids(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT dedupe_key FROM inbound_event WHERE channel = 'sms'")
        )
        return [str(row[0]) for row in rows]


def issued_sids(result: dict[str, Any], sids: list[str], threads: int) -> list[str]:
    """The Sids wrk's threads took, in order: thread n took lines n-1, n-1+threads, ..."""
    taken: list[str] = []
    for thread in result["threads"]:
        start = thread["id"] - 1
        taken += sids[start::threads][: thread["issued"]]
    return taken


# ---------------------------------------------------------------------------- one database


@dataclass
class Options:
    databases: list[str]
    rounds: int
    seconds: float
    warmup: float
    threads: int
    connections: int
    rate: float
    rate_seconds: float
    rate_rounds: int
    keep: bool
    output: Path
    steps: bool
    profile: bool


@dataclass
class Outcome:
    database: str
    version: str
    saturation: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fixed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)
    peak_rss_kb: int | None = None
    commands: list[str] = field(default_factory=list)
    server_command: str = ""
    seconds: float = 0.0
    steps: list[dict[str, Any]] = field(default_factory=list)
    steps_error: str = ""
    profile: dict[str, list[tuple[str, float]]] = field(default_factory=dict)


@dataclass
class Database:
    url: str
    version: str
    another: Callable[[str], str]  # one more fresh database on the same server, by name
    pid: int | None = None  # PostgreSQL's postmaster


@contextlib.contextmanager
def database(kind: str, workdir: Path) -> Iterator[Database]:
    """A fresh database; a throwaway PostgreSQL server for ``postgresql``."""
    if kind == "sqlite":

        def another_file(name: str) -> str:
            return f"sqlite:///{workdir / (name + '.db')}"

        yield Database(another_file("bench"), f"SQLite {sqlite3.sqlite_version}", another_file)
        return
    from tests.pgserver import PostgresServer

    server = PostgresServer.start()
    try:
        url = server.create_database("bench")
        engine = sa.create_engine(normalise_url(url))
        with engine.connect() as connection:
            version = str(connection.scalar(sa.text("SHOW server_version")))
            settings = {
                name: str(connection.scalar(sa.text(f"SHOW {name}")))
                for name in ("fsync", "synchronous_commit", "full_page_writes")
            }
        engine.dispose()
        details = ", ".join(f"{k}={v}" for k, v in settings.items())
        postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
        yield Database(
            url,
            f"PostgreSQL {version} (tests/pgserver.py: {details})",
            server.create_database,
            postmaster,
        )
    finally:
        server.stop()


def run_database(kind: str, options: Options, pool: Pool, port: int, workdir: Path) -> Outcome:
    public = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    show(f"== {kind}")
    with database(kind, workdir) as db:
        outcome = Outcome(database=kind, version=db.version)
        outcome.server_command = Command(
            [
                *([str(TIME), "-v", "-o", "$WORK/time.txt"] if TIME.exists() else []),
                *server_command(port),
            ]
        ).text(workdir)
        engine = sa.create_engine(normalise_url(db.url))
        try:
            with serving(db.url, port, public, workdir, kind) as server:
                _measure(outcome, options, pool, public, server, db.pid, engine, workdir)
            outcome.peak_rss_kb = server.peak_rss_kb()
        finally:
            engine.dispose()
        if options.steps:
            try:
                outcome.steps, command = steps(db.another("steps"), workdir / f"steps-{kind}.json")
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                show(f"  bench/steps.py failed; the rest of the results stand: {error}")
                outcome.steps_error = (str(error).strip().splitlines() or ["?"])[-1][:300]
            else:
                outcome.commands.append(command.text(workdir))
            for step in outcome.steps:
                show(f"  step {step['us']:8.1f} us {step['ratio']:5.2f}x  {step['step']}")
    outcome.seconds = time.monotonic() - started
    return outcome


def _measure(
    outcome: Outcome,
    options: Options,
    pool: Pool,
    public: str,
    server: Server,
    database_pid: int | None,
    engine: sa.Engine,
    workdir: Path,
) -> None:
    threads, connections = options.threads, options.connections
    # Each webhook phase: (result, its Sids in file order, the Sids it took).
    sent: list[tuple[str, dict[str, Any], list[str]]] = []
    commands: list[Command] = []

    def saturate(name: str, seconds: float, lines: int) -> tuple[dict[str, Any], dict[str, Any]]:
        data, sids = pool.get(name, lines)
        results = []
        for label, path in (("baseline", BASELINE_PATH), ("webhook", TWILIO_SMS_PATH)):
            with CpuWindow(server.pid, database_pid) as cpu:
                result, command = wrk(
                    public, path, data, threads=threads, connections=connections, seconds=seconds
                )
            result["cpu"] = cpu.result
            commands.append(command)
            settle(engine)
            if label == "webhook":
                sent.append((name, result, issued_sids(result, sids, threads)))
            if result["exhausted"]:
                raise RuntimeError(f"{name}: wrk ran out of fresh requests; raise the pool size")
            show(
                f"  {name:<10} {label:<8} {result['rate']:8.0f}/s  2xx {result['ok']:>6}  "
                f"non-2xx {result['other']}  server CPU {cpu.result['server_cpu_s']:.1f}s  "
                f"database CPU {cpu.result['database_cpu_s']:.1f}s  "
                f"other processes' CPU {cpu.result['other_cpu_s']:.1f}s"
            )
            results.append(result)
        return results[0], results[1]

    base, hook = saturate("warmup", options.warmup, 20_000)
    best = max(base["rate"], hook["rate"])
    outcome.saturation = {"baseline": [], "webhook": []}
    for number in range(options.rounds):
        lines = max(20_000, int(2 * best * options.seconds) + 2_000)
        base, hook = saturate(f"round{number + 1}", options.seconds, lines)
        outcome.saturation["baseline"].append(base)
        outcome.saturation["webhook"].append(hook)
        best = max(best, base["rate"], hook["rate"])

    count = round(options.rate * options.rate_seconds)
    fixed_ok: list[str] = []
    fixed_all: list[str] = []
    outcome.fixed = {"baseline": [], "webhook": []}
    for number in range(1, options.rate_rounds + 1):
        data, sids = pool.get(f"fixed{number}", count)
        for label, path in (("baseline", BASELINE_PATH), ("webhook", TWILIO_SMS_PATH)):
            with CpuWindow(server.pid, database_pid) as cpu:
                result, command = constant_rate(
                    public,
                    path,
                    data,
                    rate=options.rate,
                    seconds=options.rate_seconds,
                    out=workdir / f"fixed{number}-{outcome.database}-{label}.json",
                )
            result["cpu"] = cpu.result
            commands.append(command)
            settle(engine)
            latency = result["latency_ms"]
            show(
                f"  fixed{number:<5} {label:<8} {options.rate:8.0f}/s  2xx {result['ok']:>6}  "
                f"p50 {latency['p50']:.1f} ms  p99 {latency['p99']:.1f} ms  "
                f"max {latency['max']:.1f} ms  statuses {result['statuses']}"
            )
            outcome.fixed[label].append(result)
            if label == "webhook":
                failed = set(result["not_ok"])
                fixed_ok += [sid for i, sid in enumerate(sids[:count]) if i not in failed]
                fixed_all += sids[:count]
    outcome.verification = _verify(engine, sent, outcome.fixed["webhook"], fixed_ok, fixed_all)
    if options.profile:
        # After the verification: these rows are not counted, and the table is not affected.
        data, _ = pool.get("profile", max(20_000, int(2 * best * 8) + 2_000))
        raw = workdir / f"py-spy-{outcome.database}.txt"
        outcome.profile, more = profiled_run(public, data, server, options, raw)
        commands += more
        settle(engine)
    outcome.commands = _unique_texts(commands, workdir)


def _unique_texts(commands: Sequence[Command], workdir: Path) -> list[str]:
    return list(dict.fromkeys(c.text(workdir) for c in commands))


def _verify(
    engine: sa.Engine,
    sent: list[tuple[str, dict[str, Any], list[str]]],
    fixed: list[dict[str, Any]],
    fixed_ok: list[str],
    fixed_all: list[str],
) -> dict[str, Any]:
    """Compare what the load generators saw with the rows in ``inbound_event``."""
    stored = stored_sids(engine)
    rows = set(stored)
    phases = []
    for name, result, issued in sent:
        issued_set = set(issued)
        in_db = len(issued_set & rows)
        # issued[0] is thread 1's first line: the one wrk's request check took and never sent.
        missing = issued_set - rows
        phases.append(
            {
                "phase": name,
                "issued": len(issued),
                "answered_2xx": result["ok"],
                "answered_other": result["other"],
                "unanswered": len(issued) - result["ok"] - result["other"],
                "stored": in_db,
                "lost": max(0, result["ok"] - in_db),
                "all_sent_stored": missing <= {issued[0]} if issued else True,
            }
        )
    fixed_rows = len(set(fixed_all) & rows)
    ok_missing = len(set(fixed_ok) - rows)
    expected_total = sum(p["stored"] for p in phases) + fixed_rows
    return {
        "rows": len(stored),
        "distinct_sids": len(rows),
        "wrk": phases,
        "fixed": {
            "sent": len(fixed_all),
            "answered_2xx": sum(r["ok"] for r in fixed),
            "stored": fixed_rows,
            "answered_2xx_missing": ok_missing,
            "exact": fixed_rows == sum(r["ok"] for r in fixed) and ok_missing == 0,
        },
        "no_strangers": expected_total == len(stored) == len(rows),
        "nothing_lost": ok_missing == 0
        and all(p["lost"] == 0 and p["all_sent_stored"] for p in phases),
    }


# ---------------------------------------------------------------------------- the report


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
    wrk_version = subprocess.run(  # noqa: S603
        [shutil.which("wrk") or "wrk", "--version"], capture_output=True, text=True, check=False
    ).stdout.split("\n")[0]

    def version(name: str) -> str:
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
        "uvicorn": version("uvicorn"),
        "uvloop": version("uvloop"),
        "httptools": version("httptools"),
        "fastapi": version("fastapi"),
        "starlette": version("starlette"),
        "sqlalchemy": version("sqlalchemy"),
        "psycopg": version("psycopg"),
        "sqlite": sqlite3.sqlite_version,
        "wrk": wrk_version.strip(),
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "git": git_state(),
    }


def git_state() -> str:
    """The commit measured, and the application files that differed from it."""

    def git(*args: str) -> str:
        done = subprocess.run(  # noqa: S603
            [shutil.which("git") or "git", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--", "bot", "storage", "dialogs").splitlines()
    if not changed:
        return f"commit {commit}, application code (bot, storage, dialogs) unmodified"
    files = ", ".join(f"`{line[3:]}`" for line in changed)
    return f"commit {commit} plus uncommitted changes in {files}"


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def summarise(outcome: Outcome) -> dict[str, Any]:
    base = [r["rate"] for r in outcome.saturation["baseline"]]
    hook = [r["rate"] for r in outcome.saturation["webhook"]]
    ratios = [h / b for h, b in zip(hook, base, strict=True) if b]

    def cpu_ms(results: Sequence[dict[str, Any]]) -> float:
        seconds = sum(r["cpu"]["server_cpu_s"] for r in results)
        answered = sum(r["ok"] + r["other"] for r in results)
        return 1000 * seconds / answered if answered else float("nan")

    return {
        "baseline_rate": mean(base),
        "webhook_rate": mean(hook),
        "baseline_rates": base,
        "webhook_rates": hook,
        "ratio": mean(hook) / mean(base) if base and mean(base) else float("nan"),
        "ratios": ratios,
        "baseline_fixed": [r["latency_ms"] for r in outcome.fixed["baseline"]],
        "webhook_fixed": [r["latency_ms"] for r in outcome.fixed["webhook"]],
        "baseline_cpu_ms": cpu_ms(outcome.saturation["baseline"]),
        "webhook_cpu_ms": cpu_ms(outcome.saturation["webhook"]),
        "baseline_sat_p99": mean(
            [r["latency_us"]["p99"] / 1000 for r in outcome.saturation["baseline"]]
        ),
        "webhook_sat_p99": mean(
            [r["latency_us"]["p99"] / 1000 for r in outcome.saturation["webhook"]]
        ),
        "other_cpu": mean(
            [
                r["cpu"]["other_cpu_s"] / r["cpu"]["wall_s"]
                for rs in outcome.saturation.values()
                for r in rs
            ]
        ),
        "fixed_other_cpu": [
            r["cpu"]["other_cpu_s"] / r["cpu"]["wall_s"] for r in outcome.fixed["webhook"]
        ],
    }


def table(outcomes: Sequence[Outcome]) -> str:
    head = (
        "| database | webhook msg/s | baseline inserts/s | ratio | webhook p50 / p99 at "
        "fixed rate | baseline p50 / p99 at fixed rate | server CPU per request (webhook / "
        "baseline) | peak RSS |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    rows = [head]
    for outcome in outcomes:
        s = summarise(outcome)
        w = "; ".join(f"{x['p50']:.1f} / {x['p99']:.1f}" for x in s["webhook_fixed"])
        b = "; ".join(f"{x['p50']:.1f} / {x['p99']:.1f}" for x in s["baseline_fixed"])
        rss = f"{outcome.peak_rss_kb / 1024:.0f} MiB" if outcome.peak_rss_kb else "n/a"
        rows.append(
            f"| {outcome.database} | {s['webhook_rate']:.0f} | {s['baseline_rate']:.0f} | "
            f"{s['ratio']:.2f} | {w} ms | {b} ms | {s['webhook_cpu_ms']:.2f} / "
            f"{s['baseline_cpu_ms']:.2f} ms | {rss} |"
        )
    return "\n".join(rows)


def verdict(value: float, target: float, *, below: bool = False) -> str:
    met = value < target if below else value >= target
    return "met" if met else "**missed**"


def reading(outcomes: Sequence[Outcome], options: Options) -> str:
    lines = []
    for outcome in outcomes:
        s = summarise(outcome)
        p99s = [x["p99"] for x in s["webhook_fixed"]]
        fixed = outcome.fixed["webhook"]
        answered = sum(r["ok"] for r in fixed)
        sent_ = sum(r["sent"] for r in fixed)
        met = sum(p < TARGET_P99_MS for p in p99s)
        noisy = [f"{x:.2f}" for x in s["fixed_other_cpu"]]
        v = outcome.verification
        lines.append(
            f"- **{outcome.database}**: {s['webhook_rate']:.0f} messages/s at saturation "
            f"(target ≥ {TARGET_RATE:.0f}: {verdict(s['webhook_rate'], TARGET_RATE)}); "
            f"p99 {', '.join(f'{p:.1f}' for p in p99s)} ms at {options.rate:g}/s in "
            f"{len(p99s)} runs of {options.rate_seconds:g} s (target < {TARGET_P99_MS:.0f} ms: "
            + ("met" if met == len(p99s) else f"**missed** in {len(p99s) - met} of {len(p99s)}")
            + f"; {answered} of {sent_} answered 2xx); {s['ratio']:.2f} of the baseline's rate "
            f"(target ≥ {TARGET_RATIO}: "
            f"{verdict(s['ratio'], TARGET_RATIO)}; per round "
            f"{', '.join(f'{r:.2f}' for r in s['ratios'])}). Server CPU per request: "
            f"{s['webhook_cpu_ms']:.2f} ms for the webhook, {s['baseline_cpu_ms']:.2f} ms for "
            f"the baseline. Processes outside the benchmark used {s['other_cpu']:.2f} cores on "
            f"average during the saturation runs and {', '.join(noisy)} during the webhook's "
            "fixed-rate runs"
            + (
                " (enough to distort a p99 on 2 cores: read it with care)"
                if max(s["fixed_other_cpu"]) > NOISY_CORES
                else ""
            )
            + f". Nothing lost: {'yes' if v['nothing_lost'] and v['no_strangers'] else '**NO**'}."
            + (
                f" {options.rate:g}/s is above what the webhook sustains here, so requests queue "
                "and the fixed-rate latency is mostly waiting."
                if s["webhook_rate"] < options.rate
                else ""
            )
        )
    return "\n".join(lines)


def verification_text(outcome: Outcome) -> str:
    v = outcome.verification
    lines = [
        f"- **{outcome.database}**: `inbound_event` holds {v['rows']} rows "
        f"({v['distinct_sids']} distinct MessageSids), every one a request the load generators "
        f"sent: {'yes' if v['no_strangers'] else '**no**'}."
    ]
    for phase in v["wrk"]:
        lines.append(
            f"  - wrk {phase['phase']}: {phase['answered_2xx']} answered 2xx, "
            f"{phase['answered_other']} other, {phase['unanswered']} without an answer when wrk "
            f"stopped (of {phase['issued']} taken by its threads); rows: {phase['stored']}; "
            f"2xx without a row: {phase['lost']}; "
            + (
                "every request wrk sent has its row (the only Sid without one is the line "
                "wrk's request check took)."
                if phase["all_sent_stored"]
                else "**some requests wrk sent have no row**."
            )
        )
    f = v["fixed"]
    if f["exact"]:
        verdict_ = "exactly as many rows as 2xx answers"
    elif f["answered_2xx_missing"] == 0:
        verdict_ = (
            "every 2xx has its row; the other rows are requests the generator gave up on "
            "(timeout) that the server still stored, so the sender's retry would be deduplicated"
        )
    else:
        verdict_ = "**2xx answers without a row: lost messages**"
    lines.append(
        f"  - fixed rate (all runs): {f['sent']} sent, {f['answered_2xx']} answered 2xx, rows: "
        f"{f['stored']}; 2xx without a row: {f['answered_2xx_missing']} — {verdict_}."
    )
    return "\n".join(lines)


def cpu_cells(cpu: dict[str, float]) -> str:
    return " | ".join(
        f"{cpu[key]:.1f} s"
        for key in ("server_cpu_s", "database_cpu_s", "loadgen_cpu_s", "other_cpu_s")
    )


def details(outcome: Outcome) -> str:
    rows = [
        "| phase | endpoint | 2xx/s | 2xx | not 2xx (incl. socket errors, timeouts) | latency | "
        "server CPU | PostgreSQL CPU | load generator CPU | other processes (noise) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label in ("baseline", "webhook"):
        for number, result in enumerate(outcome.saturation[label], start=1):
            lat, cpu = result["latency_us"], result["cpu"]
            errors = sum(result["errors"].values()) - result["errors"]["status"]
            rows.append(
                f"| round {number} | {label} | {result['rate']:.0f} | {result['ok']} | "
                f"{result['other'] + errors} | p50 {lat['p50'] / 1000:.1f}, p99 "
                f"{lat['p99'] / 1000:.1f} ms (wrk, closed loop) | {cpu_cells(cpu)} |"
            )
    for label in ("baseline", "webhook"):
        for number, result in enumerate(outcome.fixed[label], start=1):
            lat, cpu = result["latency_ms"], result["cpu"]
            rows.append(
                f"| fixed {result['rate']:g}/s, run {number} | {label} | "
                f"{result['achieved_rate']:.0f} sent/s | {result['ok']} | "
                f"{result['sent'] - result['ok']} | p50 {lat['p50']:.1f}, p90 {lat['p90']:.1f}, "
                f"p99 {lat['p99']:.1f}, max {lat['max']:.1f} ms (open loop) | {cpu_cells(cpu)} |"
            )
    return "\n".join(rows)


def steps_text(outcomes: Sequence[Outcome]) -> str:
    measured = [o for o in outcomes if o.steps]
    failed = "".join(
        f"\n\nbench/steps.py failed on {o.database}: {o.steps_error}"
        for o in outcomes
        if o.steps_error
    )
    if not measured:
        return "Not measured in this run." + failed
    head = "| step | " + " | ".join(o.database for o in measured) + " |"
    rows = [head, "|---|" + "---:|" * len(measured)]
    for index, step in enumerate(measured[0].steps):
        cells = [
            f"{o.steps[index]['us']:.0f} µs ({o.steps[index]['ratio']:.2f}×)" for o in measured
        ]
        rows.append(f"| {step['step']} | " + " | ".join(cells) + " |")
    notes = []
    for o in measured:
        base = o.steps[0]["us"]
        front = sum(
            step["us"]
            for step in o.steps
            if step["step"].startswith(("form parsing", "signature check"))
        )
        stored = [step["us"] for step in o.steps if "requests at a time" in step["step"]]
        summary = summarise(o)
        more_cpu = 1000 * (summary["webhook_cpu_ms"] - summary["baseline_cpu_ms"])
        notes.append(
            f"- {o.database}: parsing and the signature check cost {front:.0f} µs per webhook "
            "(the baseline has none); storing costs "
            + (f"{stored[-1]:.0f} µs a row with many requests at a time" if stored else "n/a")
            + f" against {base:.0f} µs for the baseline's insert. Under load the server spent "
            f"{more_cpu:+.0f} µs of CPU per webhook compared with a baseline request."
        )
    return (
        "`bench/steps.py`, no HTTP, a fresh database on the same server, best of 3 × 1000 "
        "calls; in parentheses the ratio to the baseline's insert measured in the same run.\n\n"
        + "\n".join(rows)
        + "\n\n"
        + "\n".join(notes)
        + failed
    )


def profile_text(outcomes: Sequence[Outcome]) -> str:
    profiled = [o for o in outcomes if o.profile]
    if not profiled:
        return ""
    parts = [
        "py-spy (`--gil --nonblocking`, 97 Hz) on the server during one more 8 s webhook run "
        "under wrk, not part of the table; shares of the samples in which a thread held the GIL "
        "(`bench/profile.py`)."
    ]
    for o in profiled:
        parts.append(f"**{o.database}**\n\n{profile.as_markdown(o.profile)}")
    return "\n\n".join(parts)


def report(outcomes: Sequence[Outcome], options: Options, info: dict[str, str]) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    versions = "\n".join(f"- {o.database}: {o.version}" for o in outcomes)
    commands = "\n\n".join(
        f"{o.database}:\n\n```sh\n{o.server_command}\n" + "\n".join(o.commands) + "\n```"
        for o in outcomes
    )
    argv = shlex.join(["bench/run.sh", *sys.argv[1:]])
    sections = [
        "# Webhook benchmark: signed Twilio inbound SMS through uvicorn",
        f"Generated by `{argv}` on {now} (bench/run.py writes this file; the reading of the "
        "profile and what would help are in bench/PROFILE.md).",
        "## Machine",
        f"- {info['nproc']} CPUs: {info['cpu']}; {info['memory']} RAM; Linux {info['kernel']}\n"
        f"- Python {info['python']}; uvicorn {info['uvicorn']} (uvloop {info['uvloop']}, "
        f"httptools {info['httptools']}); FastAPI {info['fastapi']}; Starlette "
        f"{info['starlette']}; SQLAlchemy {info['sqlalchemy']}; psycopg {info['psycopg']}\n"
        f"{versions}\n"
        f"- {info['wrk']}\n"
        f"- Code measured: {info['git']}\n"
        f"- Load average when the run started: {info['loadavg']}. The machine is shared: other "
        "processes' CPU during each phase is in the details below.",
        "## What was measured",
        f"- **webhook**: `POST {TWILIO_SMS_PATH}`, a signed Twilio inbound-SMS form post (19 "
        "fields, unique MessageSid each, Danish text), through the real app (`bot.runtime."
        "Runtime`, `create_app(runtime, run_worker=False)`), doing what the app's code at the "
        "commit below does: signature check, form parsing, its row in `inbound_event` committed "
        "before the answer (since commit 03e9270 through the group writer, `bot/group_writer.py`: "
        "one thread commits the rows of all waiting requests in one transaction), empty TwiML. "
        "Inbound events are **only stored, not processed**: `runtime.pump.kick` is a no-op during "
        "the run. Processing happens after the 2xx and is measured separately by the tests.\n"
        f"- **baseline**: `POST {BASELINE_PATH}` in the same server process and database: reads "
        "the same request body and inserts it as one row (id, payload text, received_at) with one "
        "commit per request, through `runtime.database.engine` in the thread pool "
        "(`run_in_threadpool`, as the webhook stored before group commit), behind the same "
        "middleware. Nothing else.\n"
        f"- **saturation**: wrk, {options.threads} threads, {options.connections} keep-alive "
        f"connections, {options.seconds:g} s per run, {options.rounds} rounds of baseline then "
        f"webhook after a {options.warmup:g} s warm-up of each; the rate is 2xx answers per "
        "second. The ratio is webhook / baseline.\n"
        f"- **fixed rate**: `bench/constant_rate.py`, open loop, {options.rate:g} requests/s for "
        f"{options.rate_seconds:g} s on keep-alive connections, {options.rate_rounds} runs of "
        "baseline then webhook; latency counted from when each request was due (no coordinated "
        "omission).\n"
        "- Durability as configured by the project: SQLite in WAL mode with "
        "`synchronous=NORMAL` (a commit survives a crash of the process, not necessarily of the "
        "machine); PostgreSQL from `tests/pgserver.py`, which runs with `fsync=off` and "
        "`synchronous_commit=off` (the same for webhook and baseline, so the ratio holds, but "
        "absolute PostgreSQL numbers are those of a test server, not of a durable one).",
        "## Results",
        table(outcomes),
        "Rates are means over the rounds; p50/p99 are from the fixed-rate runs, one pair per "
        "run; server CPU per "
        "request is the server process's user+system CPU during the saturation runs divided by "
        "the answers.",
        "## Reading against the targets",
        f"Targets on this 2-core machine: ≥ {TARGET_RATE:.0f} inbound messages/s, p99 < "
        f"{TARGET_P99_MS:.0f} ms at {options.rate:g}/s, ≥ {TARGET_RATIO} of the baseline's "
        "rate.\n\n" + reading(outcomes, options),
        "## Nothing lost",
        "After each database's run the MessageSids in `inbound_event` were compared with the "
        "requests the load generators sent. wrk cannot stop gracefully: requests in flight when "
        "its time is up get no answer it counts, though the server still stores them, and wrk "
        "calls the Lua `request()` once more before the start to check the request, so thread 1 "
        "takes one line it never sends.\n\n" + "\n".join(verification_text(o) for o in outcomes),
        "## Where the webhook's time goes",
        steps_text(outcomes)
        + ("\n\n" + profile_text(outcomes) if profile_text(outcomes) else "")
        + "\n\nWhat this means and what would help: bench/PROFILE.md.",
        "## Details",
        "\n\n".join(f"### {o.database} ({o.seconds:.0f} s)\n\n{details(o)}" for o in outcomes),
        "## Commands",
        "`$WORK` is a temporary directory (removed afterwards); the server runs with "
        "`BENCH_DATABASE_URL` and `BENCH_PUBLIC_BASE_URL` set.\n\n" + commands,
    ]
    return "\n\n".join(sections) + "\n"


# ---------------------------------------------------------------------------- main


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=2, help="saturation rounds")
    parser.add_argument("--seconds", type=float, default=10.0, help="per saturation run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--rate", type=float, default=500.0, help="fixed rate, requests/s")
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    parser.add_argument("--rate-rounds", type=int, default=2, help="fixed-rate runs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--no-steps", dest="steps", action="store_false", help="skip bench/steps.py"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="one more webhook run under py-spy (pip install py-spy into .venv first)",
    )
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args(argv)
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if not set(databases) <= {"sqlite", "postgresql"}:
        parser.error("--databases takes sqlite and/or postgresql")
    if (args.seconds * args.rounds + args.warmup + args.rate_seconds * 2 * args.rate_rounds) > 100:
        parser.error("keep each database's run within about two minutes")
    return Options(
        databases=databases,
        rounds=args.rounds,
        seconds=args.seconds,
        warmup=args.warmup,
        threads=args.threads,
        connections=args.connections,
        rate=args.rate,
        rate_seconds=args.rate_seconds,
        rate_rounds=args.rate_rounds,
        keep=args.keep,
        output=args.output,
        steps=args.steps,
        profile=args.profile,
    )


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def kept_sections(path: Path) -> str:
    """Sections other benchmarks wrote into the same file between their markers, kept as they are
    (``<!-- scheduling:begin -->`` ... ``<!-- scheduling:end -->`` from bench/scheduling.py)."""
    if not path.exists():
        return ""
    old = path.read_text(encoding="utf-8")
    kept = []
    for name in ("scheduling",):
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        if begin in old and end in old:
            kept.append(old[old.index(begin) : old.index(end) + len(end)])
    return "".join(f"\n{section}\n" for section in kept)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    if shutil.which("wrk") is None:
        show("wrk is missing: run bench/run.sh (it installs it) or apt-get install -y wrk")
        return 2
    if options.profile and py_spy() is None:
        show(
            "py-spy is missing: .venv/bin/pip install py-spy (a one-off; not a project dependency)"
        )
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    info = machine()
    workdir = Path(tempfile.mkdtemp(prefix="stifinder-bench-"))
    port = free_port()
    pool = Pool(workdir, f"http://127.0.0.1:{port}{TWILIO_SMS_PATH}")
    outcomes: list[Outcome] = []
    try:
        for kind in options.databases:
            outcomes.append(run_database(kind, options, pool, port, workdir))
    finally:
        if options.keep:
            show(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    text = report(outcomes, options, info)
    options.output.write_text(text + kept_sections(options.output), encoding="utf-8")
    show("")
    show(table(outcomes))
    show("")
    show(reading(outcomes, options))
    show(f"\nwrote {rel(options.output)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
