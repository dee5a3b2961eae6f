from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from bot.runtime import Runtime
from bot.web.app import create_app
from storage.db import Database
from tests.conftest import make_settings


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    runtime = Runtime(settings=make_settings(), database=database)
    with TestClient(create_app(runtime)) as test_client:
        yield test_client


def test_liveness(client: TestClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readiness_checks_the_database_and_its_schema(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": True, "migrations": True}}


def test_not_ready_before_migrations(tmp_path: object) -> None:
    database = Database(f"sqlite:///{tmp_path}/empty.db")
    runtime = Runtime(settings=make_settings(), database=database)
    with TestClient(create_app(runtime)) as test_client:
        response = test_client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": True, "migrations": False}


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get("/healthz")
    client.get("/healthz")
    body = client.get("/metrics").text
    assert 'stifinder_http_requests_total{route="/healthz",status="200"} 2.0' in body
    assert "stifinder_http_request_seconds_bucket" in body


def test_home_page_is_danish_by_default_and_english_on_request(client: TestClient) -> None:
    danish = client.get("/")
    assert danish.status_code == 200
    assert '<html lang="da"' in danish.text
    assert "Stifinder kører" in danish.text
    english = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert '<html lang="en"' in english.text
    assert "Stifinder is running" in english.text


def test_pages_load_nothing_from_other_hosts(client: TestClient) -> None:
    response = client.get("/")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "http" not in response.text.replace('href="/', "")
    css = client.get("/static/stifinder.css")
    assert css.status_code == 200
    assert "http" not in css.text
