"""Worker processes for the scheduling benchmark: ``stifinder worker``, ``STIFINDER_*`` settings.

:class:`WorkerProcess` starts one (optionally under ``/usr/bin/time -v`` for its peak RSS), tells
its CPU time from ``/proc``, and stops it with SIGTERM (the worker's own graceful stop), then
SIGKILL if it does not end in time. Everything it starts is stopped when its ``with`` ends, also on
errors.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STIFINDER = Path(sys.executable).parent / "stifinder"
TIME = Path("/usr/bin/time")
# Made-up credentials: the benchmark's fake provider checks nothing, Twilio is never reached.
ACCOUNT_SID = "AC" + "b3" * 16
AUTH_TOKEN = "5e" * 16  # a throwaway token for a local fake
FROM_NUMBER = "+4570707070"
SECRET_KEY = "bench-" + "k" * 40  # test environment: only its length is checked


def worker_env(
    database_url: str,
    *,
    provider_url: str | None = None,
    poll_seconds: float = 1.0,
    sms_per_second: float | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a worker process: settings only through ``STIFINDER_*`` variables."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("STIFINDER_") and key not in ("TWILIO_EDGE", "TWILIO_REGION")
    }
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "STIFINDER_ENVIRONMENT": "test",
            "STIFINDER_DATABASE_URL": database_url,
            "STIFINDER_SECRET_KEY": SECRET_KEY,
            "STIFINDER_LOG_LEVEL": "WARNING",
            "STIFINDER_LOG_FORMAT": "json",
            "STIFINDER_WORKER_POLL_SECONDS": str(poll_seconds),
            "STIFINDER_PUBLIC_BASE_URL": "http://127.0.0.1:9",
            # No proxy may catch the fake provider's 127.0.0.1.
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    if provider_url is not None:
        env.update(
            {
                "STIFINDER_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                "STIFINDER_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "STIFINDER_TWILIO_FROM_NUMBER": FROM_NUMBER,
                "STIFINDER_TWILIO_API_BASE_URL": provider_url,
            }
        )
    if sms_per_second is not None:
        env["STIFINDER_SMS_SEGMENTS_PER_SECOND"] = str(sms_per_second)
    env.update(extra or {})
    return env


def process_seconds(pid: int) -> float:
    """User plus system CPU seconds of one process (all its threads); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_seconds(root: int) -> float:
    """CPU seconds of a process and its direct children (PostgreSQL's postmaster and backends,
    including backends that have ended: their time is in the parent's ``cutime``)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{root}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        total += sum(int(x) for x in fields[11:15]) / ticks
        children = Path(f"/proc/{root}/task/{root}/children").read_text().split()
    except OSError:
        return total
    for child in children:
        with contextlib.suppress(ValueError):
            total += process_seconds(int(child))
    return total


class WorkerProcess:
    """One worker process. ``module`` runs ``python -m module`` instead of ``stifinder``."""

    def __init__(
        self,
        env: Mapping[str, str],
        log: Path,
        *,
        module: str | None = None,
        args: tuple[str, ...] = (),
        measure_rss: bool = False,
    ) -> None:
        self.env = dict(env)
        self.log = log
        self.module = module
        self.args = args
        self.report = log.with_suffix(".time.txt") if measure_rss and TIME.exists() else None
        self.process: subprocess.Popen[bytes] | None = None
        self.pid = 0  # the Python process (the child of /usr/bin/time when that wraps it)
        self.killed = False  # it did not stop within the timeout and was killed

    def command(self) -> list[str]:
        if self.module is not None:
            command = [sys.executable, "-m", self.module, *self.args]
        else:
            command = [str(STIFINDER), "worker", *self.args]
        if self.report is not None:
            command = [str(TIME), "-v", "-o", str(self.report), *command]
        return command

    def start(self) -> WorkerProcess:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603
                self.command(), cwd=ROOT, env=self.env, stdout=out, stderr=out
            )
        self.pid = self.process.pid
        if self.report is not None:
            self.pid = _child_of(self.process.pid, time.monotonic() + 10)
        return self

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def cpu_seconds(self) -> float:
        return process_seconds(self.pid) if self.pid else 0.0

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM (the worker finishes its running jobs and exits), SIGKILL after ``timeout``."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # The worker itself first: /usr/bin/time then still writes its report.
                self.killed = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
        return process.returncode

    def peak_rss_kib(self) -> int | None:
        if self.report is None or not self.report.exists():
            return None
        for line in self.report.read_text().splitlines():
            if "Maximum resident set size" in line:
                return int(line.rsplit(":", 1)[1])
        return None

    def log_tail(self, characters: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-characters:] if self.log.exists() else ""


def _child_of(pid: int, deadline: float) -> int:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    while time.monotonic() < deadline:
        found = children.read_text().split() if children.exists() else []
        if found:
            return int(found[0])
        time.sleep(0.02)
    raise RuntimeError("/usr/bin/time started no child")
