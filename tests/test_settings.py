from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import Settings


def test_nothing_set_runs_on_a_local_sqlite_file(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("STIFINDER_"):
            monkeypatch.delenv(name)
    settings = Settings()
    assert settings.environment == "development"
    assert settings.database_url == "sqlite:///stifinder.db"
    assert settings.sqlite_path == Path("stifinder.db")
    assert not settings.telegram_enabled
    assert not settings.sms_enabled


def test_reads_the_environment_with_its_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STIFINDER_PORT", "9000")
    monkeypatch.setenv("STIFINDER_DATABASE_URL", "postgresql://db/stifinder")
    settings = Settings()
    assert (settings.port, settings.database_url) == (9000, "postgresql://db/stifinder")
    assert settings.sqlite_path is None


def test_production_refuses_the_placeholder_secret_and_names_the_variable() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(environment="production")
    assert "STIFINDER_SECRET_KEY" in str(raised.value)


def test_production_refuses_a_placeholder_provider_token() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(
            environment="production",
            secret_key="k" * 40,
            twilio_account_sid="AC123",
            twilio_auth_token="change-me",
        )
    assert "STIFINDER_TWILIO_AUTH_TOKEN" in str(raised.value)


def test_production_refuses_a_short_secret_key() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(environment="production", secret_key="short-but-not-a-placeholder")
    assert "at least 32 characters" in str(raised.value)


def test_telegram_needs_a_webhook_secret_outside_development() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(environment="production", secret_key="k" * 40, telegram_bot_token="1:abc")
    assert "STIFINDER_TELEGRAM_WEBHOOK_SECRET" in str(raised.value)


def test_production_with_real_secrets_is_accepted() -> None:
    settings = Settings(
        environment="production",
        secret_key="k" * 40,
        telegram_bot_token="1:abc",
        telegram_webhook_secret="a-real_secret-123",
    )
    assert settings.telegram_enabled
    assert not settings.is_development


def test_development_allows_placeholders() -> None:
    assert Settings(environment="development").secret_key.get_secret_value() == "change-me"
