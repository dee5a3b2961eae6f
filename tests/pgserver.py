"""A throwaway PostgreSQL server for the test suite, started from Debian's binaries.

It runs as an unprivileged user when the tests run as root (``initdb`` refuses root), listens on
127.0.0.1 on a free port, and is removed when the session ends.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailableError(RuntimeError):
    pass


def find_bindir() -> Path:
    explicit = os.environ.get("STIFINDER_TEST_PG_BINDIR")
    candidates = [explicit] if explicit else []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise PostgresUnavailableError(
        "no PostgreSQL server binaries found (apt-get install postgresql, "
        "or set STIFINDER_TEST_PG_BINDIR)"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    bindir: Path
    root: Path
    port: int
    user: str

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)

    @classmethod
    def start(cls) -> PostgresServer:
        bindir = find_bindir()
        root = Path(tempfile.mkdtemp(prefix="stifinder-pg-"))
        user = pwd.getpwuid(os.geteuid()).pw_name
        if os.geteuid() == 0:
            user = "postgres"
            try:
                entry = pwd.getpwnam(user)
            except KeyError as error:
                raise PostgresUnavailableError(
                    "running as root but there is no 'postgres' user"
                ) from error
            os.chown(root, entry.pw_uid, entry.pw_gid)
        server = cls(bindir=bindir, root=root, port=_free_port(), user=user)
        result = server._run(
            "initdb",
            "-D",
            str(server.data),
            "-U",
            user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        if result.returncode != 0:
            raise PostgresUnavailableError(f"initdb failed: {result.stderr.strip()}")
        options = (
            f"-p {server.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        result = server._run(
            "pg_ctl",
            "-D",
            str(server.data),
            "-o",
            options,
            "-l",
            str(root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        if result.returncode != 0:
            log = (root / "log").read_text() if (root / "log").exists() else ""
            message = f"PostgreSQL did not start: {result.stderr.strip()} {log}"
            raise PostgresUnavailableError(message)
        return server

    def create_database(self, name: str) -> str:
        result = self._run(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name
        )
        if result.returncode != 0:
            raise PostgresUnavailableError(f"createdb failed: {result.stderr.strip()}")
        return self.url(name)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                shutil.rmtree(self.root)
                return
            except OSError:
                time.sleep(0.2)
