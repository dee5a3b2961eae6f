"""Shared fixtures: settings from a dict, and a migrated database on SQLite and PostgreSQL.

With ``CI=true`` the PostgreSQL tests fail when the server cannot start; elsewhere they are
skipped with the reason, so a laptop without PostgreSQL can still run the rest.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings
from storage import migrate
from storage.db import Database
from tests.pgserver import PostgresServer, PostgresUnavailableError

# Browser fixtures (Playwright and Debian's Chromium): live_app, page, axe_check, Keyboard.
pytest_plugins = ["tests.browser"]

IN_CI = os.environ.get("CI", "").lower() == "true"
_counter = itertools.count()


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"environment": "test", "secret_key": "t" * 40, "log_format": "json"}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer.start()
    except PostgresUnavailableError as error:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI: {error}")
        pytest.skip(f"PostgreSQL not available: {error}")
    yield server
    server.stop()


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'stifinder.db'}"


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database's URL: one per test, on the backend the test is run for."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        return _sqlite_url(tmp_path)
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database(f"t{os.getpid()}_{next(_counter)}")


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A migrated database (``alembic upgrade head``), disposed after the test."""
    db = Database(database_url)
    migrate.upgrade(db.engine)
    yield db
    db.dispose()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test that uses a database runs on both backends.
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize(
            "database_url",
            [
                pytest.param("sqlite", id="sqlite"),
                pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
            ],
            indirect=True,
        )
