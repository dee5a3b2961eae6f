from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from bot.cli import app
from bot.passwords import verify_password
from bot.runtime import Runtime
from dialogs.types import Role
from storage import migrate
from storage.db import Database
from storage.models import AuditEvent, Municipality, StaffUser, YoungPerson
from tests.conftest import make_settings

runner = CliRunner()


def _runtime(database: Database, **settings: object) -> Runtime:
    return Runtime(settings=make_settings(**settings), database=database)


def _empty(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'cli.db'}")


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    database = _empty(tmp_path)
    result = runner.invoke(app, ["db", "upgrade"], obj=_runtime(database))
    assert result.exit_code == 0, result.output
    assert migrate.is_at_head(database.engine)
    assert f"database at revision {migrate.head_revision()}" in result.output


def test_worker_refuses_an_outdated_schema_in_plain_danish(tmp_path: Path) -> None:
    result = runner.invoke(app, ["worker"], obj=_runtime(_empty(tmp_path)))
    assert result.exit_code == 1
    assert "Kør først: stifinder db upgrade" in result.output


def test_demo_seeds_once_and_prints_the_logins(database: Database) -> None:
    runtime = _runtime(database, environment="development")
    first = runner.invoke(app, ["demo"], obj=runtime)
    assert first.exit_code == 0, first.output
    assert "karin@demo.stifinder.dk" in first.output
    assert "carsten@demo.stifinder.dk" in first.output
    second = runner.invoke(app, ["demo"], obj=runtime)
    assert "Demodata findes allerede." in second.output
    with database.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Municipality)) == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(YoungPerson)) == 6
        karin = session.scalars(
            sa.select(StaffUser).where(StaffUser.email == "karin@demo.stifinder.dk")
        ).one()
        assert verify_password(karin.password_hash, "demo-kontaktperson")


def test_demo_is_refused_outside_development(database: Database) -> None:
    result = runner.invoke(app, ["demo"], obj=_runtime(database, environment="test"))
    assert result.exit_code == 1
    assert "udviklingstilstand" in result.output


def _municipality(database: Database) -> None:
    with database.session() as session:
        session.add(Municipality(name="Aarhus", slug="aarhus"))


def test_user_add_hashes_the_password_and_audits(database: Database) -> None:
    _municipality(database)
    result = runner.invoke(
        app,
        [
            "user",
            "add",
            "--email",
            "Karin@Aarhus.dk",
            "--name",
            "Karin Kontakt",
            "--role",
            "kontaktperson",
            "--municipality",
            "aarhus",
        ],
        input="a-long-password-1\na-long-password-1\n",
        obj=_runtime(database),
    )
    assert result.exit_code == 0, result.output
    assert "Brugeren er oprettet" in result.output
    with database.session() as session:
        user = session.scalars(sa.select(StaffUser)).one()
        assert (user.email, user.role) == ("karin@aarhus.dk", Role.KONTAKTPERSON)
        assert user.password_hash.startswith("$argon2id$")
        assert verify_password(user.password_hash, "a-long-password-1")
        assert session.scalars(sa.select(AuditEvent.action)).all() == ["staff.created"]


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (
            ["--email", "not-an-email", "--municipality", "aarhus"],
            "a-long-password-1",
            "E-mailadressen not-an-email ser ikke rigtig ud.",
        ),
        (
            ["--email", "k@x.dk", "--municipality", "odense"],
            "a-long-password-1",
            "Kommunen odense findes ikke.",
        ),
        (
            ["--email", "k@x.dk", "--municipality", "aarhus"],
            "short",
            "Adgangskoden skal være mindst 12 tegn.",
        ),
        (
            ["--email", "k@x.dk"],
            "a-long-password-1",
            "En kontaktperson eller koordinator skal høre til en kommune.",
        ),
    ],
)
def test_user_add_explains_what_is_wrong_and_creates_nothing(
    database: Database, args: list[str], password: str, message: str
) -> None:
    _municipality(database)
    result = runner.invoke(
        app,
        ["user", "add", "--name", "Karin", "--role", "kontaktperson", *args],
        input=f"{password}\n{password}\n",
        obj=_runtime(database),
    )
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    with database.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(StaffUser)) == 0


def test_a_configuration_error_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STIFINDER_ENVIRONMENT", "production")
    monkeypatch.delenv("STIFINDER_SECRET_KEY", raising=False)
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 2
    assert "STIFINDER_SECRET_KEY" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_with_demo_starts_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STIFINDER_")}
    env |= {"STIFINDER_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}", "NO_COLOR": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready is not None, "the server did not answer"
        assert ready.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert "karin@demo.stifinder.dk" in output
    assert "demo-koordinator" in output
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert "worker stopped" in output
    assert process.returncode in (0, -15), output


def _staffed_municipality(database: Database) -> None:
    with database.session() as session:
        place = Municipality(name="Aarhus", slug="aarhus")
        session.add(
            StaffUser(
                name="Karin",
                email="karin@aarhus.dk",
                role=Role.KONTAKTPERSON,
                password_hash="x",
                municipality=place,
            )
        )


GOOD = "fornavn;fødselsdato;telefon;kontaktperson\nMads;01-05-2008;20123456;karin@aarhus.dk\n"
BAD = GOOD + "Sara;31-02-2007;20123457;karin@aarhus.dk\nEmma;01-05-2007;123;karin@aarhus.dk\n"


def _import(database: Database, tmp_path: Path, content: str, *extra: str) -> str:
    source = tmp_path / "unge.csv"
    source.write_text(content, encoding="utf-8")
    result = runner.invoke(
        app, ["import", str(source), "--municipality", "aarhus", *extra], obj=_runtime(database)
    )
    return f"{result.exit_code}\n{' '.join(result.output.split())}"


def _count(database: Database) -> int:
    with database.session() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(YoungPerson)) or 0)


def test_import_command_writes_a_good_file(database: Database, tmp_path: Path) -> None:
    _staffed_municipality(database)
    output = _import(database, tmp_path, GOOD)
    assert output.startswith("0\n")
    assert "Importeret: 1 nye, 0 opdateret, 0 sprunget over." in output
    assert _count(database) == 1


def test_import_command_names_each_bad_line_and_field_and_writes_nothing(
    database: Database, tmp_path: Path
) -> None:
    _staffed_municipality(database)
    output = _import(database, tmp_path, BAD)
    assert output.startswith("1\n")
    assert "Linje 3, felt fødselsdato: Fødselsdatoen 31-02-2007 findes ikke i kalenderen." in output
    assert "Linje 4, felt telefon: Telefonnummeret 123 er ikke et gyldigt mobilnummer." in output
    assert "Intet er importeret." in output
    assert _count(database) == 0


def test_import_command_can_skip_bad_rows(database: Database, tmp_path: Path) -> None:
    _staffed_municipality(database)
    output = _import(database, tmp_path, BAD, "--skip-bad-rows")
    assert output.startswith("0\n")
    assert "Importeret: 1 nye, 0 opdateret, 2 sprunget over." in output
    assert _count(database) == 1


def test_import_command_refuses_an_unknown_municipality(database: Database, tmp_path: Path) -> None:
    source = tmp_path / "unge.csv"
    source.write_text(GOOD, encoding="utf-8")
    result = runner.invoke(
        app, ["import", str(source), "--municipality", "odense"], obj=_runtime(database)
    )
    assert result.exit_code == 1
    assert "Kommunen odense findes ikke." in result.output
