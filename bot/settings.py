"""Configuration, read once from the environment (prefix ``STIFINDER_``) in the composition root.

Nothing else reads the environment: the CLI builds one :class:`Settings` and passes it down, and
tests build theirs from a dict.
"""

from __future__ import annotations

import re
from email.utils import parseaddr
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDERS = frozenset({"", "change-me", "changeme", "secret", "password", "placeholder", "xxx"})
DEV_SECRET_KEY = "change-me"  # noqa: S105 - the development placeholder that production refuses


class ConfigurationError(ValueError):
    """Settings that cannot run as given; the message names the variable to set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STIFINDER_", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    database_url: str = "sqlite:///stifinder.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_base_url: str = "http://127.0.0.1:8000"
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    default_language: str = "da"
    default_timezone: str = "Europe/Copenhagen"
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    worker_poll_seconds: float = Field(default=5.0, gt=0)
    # A scheduled item claimed longer ago than this belonged to a worker that stopped: run it again.
    worker_lease_seconds: float = Field(default=300.0, gt=0)
    # A send still "sending" this long after its claim belonged to a process that died mid-send:
    # look it up at the provider before sending it again.
    sending_lease_seconds: float = Field(default=600.0, gt=0)
    # The simulator lets anyone write as any young person: on by default only in development.
    simulator_enabled: bool | None = None

    telegram_bot_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_bot_username: str | None = None
    # Another Bot API server (a local one, or a test fake): "http://127.0.0.1:8081/bot".
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_messages_per_second: float = Field(default=30.0, gt=0)

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    # Another REST API host for Twilio (a test fake): "http://127.0.0.1:8082".
    twilio_api_base_url: str | None = None
    # The sender's throughput in segments a second, and how long Twilio may queue a message.
    sms_segments_per_second: float = Field(default=10.0, gt=0)
    sms_validity_seconds: int = Field(default=4 * 3600, ge=1, le=36000)
    # How long a call to a provider may take before its outcome counts as unknown.
    provider_timeout_seconds: float = Field(default=15.0, gt=0)
    # Replace curly quotes and dashes so a message stays in GSM-7 (cheaper, 160 a segment).
    sms_gsm7_lookalikes: bool = True
    # What one SMS segment costs, in øre, for the campaign builder's estimate; a municipality's
    # own price (sender_settings["sms_segment_price_ore"]) wins.
    sms_segment_price_ore: int = Field(default=50, ge=0, le=100_000)
    max_webhook_bytes: int = 64 * 1024

    # Staff sign-in: a session ends after this long without a request, and in any case this long
    # after sign-in; this many wrong passwords in a row close sign-in for the lockout period.
    session_idle_minutes: int = Field(default=8 * 60, ge=1, le=7 * 24 * 60)
    session_max_hours: float = Field(default=12.0, gt=0, le=7 * 24)
    sign_in_max_failures: int = Field(default=5, ge=1, le=100)
    sign_in_lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)

    # E-mail to staff (bot/mail.py); none is sent while the host is unset. "starttls" upgrades a
    # plain connection (port 587 by default), "tls" speaks TLS from the first byte (465), "none"
    # is for a relay on the same machine (25) and carries no password outside development.
    smtp_host: str | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = None
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def simulator(self) -> bool:
        return self.is_development if self.simulator_enabled is None else self.simulator_enabled

    @property
    def secure_cookies(self) -> bool:
        """Browsers reach Stifinder over https: cookies are ``Secure`` and ``__Host-``."""
        return self.public_base_url.strip().lower().startswith("https://")

    @property
    def telegram_enabled(self) -> bool:
        return self.telegram_bot_token is not None

    @property
    def sms_enabled(self) -> bool:
        return self.twilio_account_sid is not None and self.twilio_auth_token is not None

    @property
    def mail_enabled(self) -> bool:
        return bool(self.smtp_host)

    @property
    def smtp_port_or_default(self) -> int:
        defaults = {"starttls": 587, "tls": 465, "none": 25}
        return self.smtp_port if self.smtp_port is not None else defaults[self.smtp_security]

    @property
    def sqlite_path(self) -> Path | None:
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix) and ":memory:" not in self.database_url:
            return Path(self.database_url[len(prefix) :])
        return None

    @model_validator(mode="after")
    def _telegram_secret_shape(self) -> Settings:
        secret = self.telegram_webhook_secret
        if secret is not None and not re.fullmatch(
            r"[A-Za-z0-9_-]{1,256}", secret.get_secret_value()
        ):
            raise ConfigurationError(
                "STIFINDER_TELEGRAM_WEBHOOK_SECRET may hold only A-Z a-z 0-9 _ - (1 to 256 "
                "characters): Telegram refuses anything else"
            )
        return self

    @model_validator(mode="after")
    def _smtp_complete(self) -> Settings:
        if not self.mail_enabled:
            return self
        if self.smtp_from is None or "@" not in parseaddr(self.smtp_from)[1]:
            raise ConfigurationError(
                "STIFINDER_SMTP_FROM must be an address (Stifinder <noreply@kommune.dk>) when "
                "STIFINDER_SMTP_HOST is set"
            )
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ConfigurationError(
                "STIFINDER_SMTP_USERNAME and STIFINDER_SMTP_PASSWORD go together: set both or "
                "neither"
            )
        if (
            self.smtp_security == "none"
            and self.smtp_password is not None
            and not self.is_development
        ):
            raise ConfigurationError(
                "STIFINDER_SMTP_SECURITY=none would send STIFINDER_SMTP_PASSWORD unencrypted; "
                "use starttls or tls"
            )
        return self

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.is_development:
            return self
        secrets: dict[str, SecretStr | None] = {
            "STIFINDER_SECRET_KEY": self.secret_key,
            "STIFINDER_TELEGRAM_WEBHOOK_SECRET": self.telegram_webhook_secret,
            "STIFINDER_TWILIO_AUTH_TOKEN": self.twilio_auth_token,
            "STIFINDER_SMTP_PASSWORD": self.smtp_password,
        }
        for variable, value in secrets.items():
            if value is None and variable != "STIFINDER_SECRET_KEY":
                continue
            text = value.get_secret_value() if value is not None else ""
            if text.strip().lower() in PLACEHOLDERS:
                raise ConfigurationError(
                    f"{variable} is unset or a placeholder; set it to a real secret "
                    f"(environment is {self.environment!r}; only 'development' allows placeholders)"
                )
        if len(self.secret_key.get_secret_value()) < 32:
            raise ConfigurationError(
                "STIFINDER_SECRET_KEY must be at least 32 characters outside development; "
                'generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        if self.telegram_enabled and self.telegram_webhook_secret is None:
            raise ConfigurationError(
                "STIFINDER_TELEGRAM_WEBHOOK_SECRET must be set when STIFINDER_TELEGRAM_BOT_TOKEN is"
            )
        return self
