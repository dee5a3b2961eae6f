"""E-mail to staff: real messages through a local SMTP server, and every way sending can fail
without taking anything down."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pydantic import ValidationError

from bot.mail import Email, Mailer
from tests.app_server import free_port
from tests.conftest import IN_CI, make_settings
from tests.fakes.smtp import CertificateUnavailableError, FakeSmtp, Security

SUBJECT = "Mads vil tale med dig — svar i indbakken"
TEXT = "Hej Karin\n\nMads har bedt om at tale med en voksen. Åbn Stifinder for at svare.\n\nÆØÅ æøå"
HTML = (
    "<p>Hej Karin</p><p>Mads har bedt om at tale med en voksen. "
    "<strong>Åbn Stifinder</strong> for at svare.</p><p>ÆØÅ æøå</p>"
)


def _handoff(*to: str) -> Email:
    return Email(to=to or ("karin@aarhus.example",), subject=SUBJECT, text=TEXT, html=HTML)


@contextmanager
def _fake(security: Security = "none", **options: Any) -> Iterator[FakeSmtp]:
    try:
        with FakeSmtp.running(security=security, **options) as smtp:
            yield smtp
    except CertificateUnavailableError as error:
        if IN_CI:
            pytest.fail(f"a TLS certificate is required in CI: {error}")
        pytest.skip(f"no TLS certificate for the fake server: {error}")


def test_sends_danish_text_with_an_html_alternative_to_every_recipient() -> None:
    with _fake() as smtp:
        mailer = Mailer(make_settings(**smtp.settings(smtp_security="none")))
        delivery = mailer.send(_handoff("karin@aarhus.example", "Bo Backup <bo@aarhus.example>"))
        [received] = smtp.wait_for(1)
    assert (delivery.sent, delivery.error, delivery.refused) == (True, None, ())
    assert received.sender == "stifinder@kommune.example"
    assert received.recipients == ["karin@aarhus.example", "bo@aarhus.example"]
    message = received.message
    assert message["Subject"] == SUBJECT
    assert message["From"] == "Stifinder <stifinder@kommune.example>"
    assert message["To"] == "karin@aarhus.example, Bo Backup <bo@aarhus.example>"
    assert message["Message-ID"].endswith("@kommune.example>")
    assert message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    assert received.text() == TEXT + "\n"
    assert received.html() == HTML + "\n"
    # On the wire the subject is encoded, so a server without SMTPUTF8 takes it too.
    raw = message.as_bytes()
    raw.decode("ascii")
    assert b"=?utf-8?" in raw


def test_plain_text_alone_when_there_is_no_html() -> None:
    with _fake() as smtp:
        mailer = Mailer(make_settings(**smtp.settings(smtp_security="none")))
        email = Email(to=["karin@aarhus.example"], subject="Påmindelse", text="Møde i morgen.")
        assert mailer.send(email).sent
        [received] = smtp.wait_for(1)
    assert received.message.get_content_type() == "text/plain"
    assert received.text() == "Møde i morgen.\n"


def test_starttls_with_a_login() -> None:
    with _fake("starttls", logins={"stifinder": "rigtigt-kodeord"}) as smtp:
        settings = make_settings(
            **smtp.settings(smtp_username="stifinder", smtp_password="rigtigt-kodeord")
        )
        delivery = Mailer(settings, tls_context=smtp.client_context()).send(_handoff())
        [received] = smtp.wait_for(1)
    assert delivery.sent
    assert (received.over_tls, received.authenticated_as) == (True, "stifinder")
    assert received.message["Subject"] == SUBJECT


def test_implicit_tls() -> None:
    with _fake("tls") as smtp:
        mailer = Mailer(make_settings(**smtp.settings()), tls_context=smtp.client_context())
        assert mailer.send(_handoff()).sent
        [received] = smtp.wait_for(1)
    assert received.over_tls


def _failure(caplog: pytest.LogCaptureFixture, mailer: Mailer, email: Email) -> str:
    with caplog.at_level(logging.INFO, logger="bot.mail"):
        delivery = mailer.send(email)
    assert not delivery.sent
    assert delivery.error is not None
    [record] = [r for r in caplog.records if r.name == "bot.mail"]
    assert record.levelno == logging.ERROR
    assert record.getMessage() == f"e-mail not sent: {delivery.error}"
    # The log tells where, never what or to whom.
    assert SUBJECT not in caplog.text and "karin@" not in caplog.text
    return delivery.error


def test_a_server_that_is_down_is_logged_and_nothing_crashes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_from="s@x.dk")
    error = _failure(caplog, Mailer(settings), _handoff())
    assert error == "the server refused the connection (is it running, on this port?)"
    [record] = caplog.records
    assert record.smtp_port == settings.smtp_port  # type: ignore[attr-defined]


def test_starttls_is_never_given_up_for_clear_text(caplog: pytest.LogCaptureFixture) -> None:
    with _fake("none") as smtp:
        mailer = Mailer(make_settings(**smtp.settings(smtp_security="starttls")))
        error = _failure(caplog, mailer, _handoff())
        assert smtp.received == []
    assert "does not offer STARTTLS" in error


def test_an_untrusted_certificate_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    with _fake("starttls") as smtp:
        error = _failure(caplog, Mailer(make_settings(**smtp.settings())), _handoff())
        assert smtp.received == []
    assert error.startswith("the server's certificate is not trusted")


def test_a_wrong_password_is_explained(caplog: pytest.LogCaptureFixture) -> None:
    with _fake("starttls", logins={"stifinder": "rigtigt-kodeord"}) as smtp:
        settings = make_settings(
            **smtp.settings(smtp_username="stifinder", smtp_password="forkert-kodeord")
        )
        mailer = Mailer(settings, tls_context=smtp.client_context())
        error = _failure(caplog, mailer, _handoff())
        assert smtp.received == []
    assert error == "the server refused the login (535)"


def test_refused_recipients(caplog: pytest.LogCaptureFixture) -> None:
    with _fake(refuse={"gone@aarhus.example"}) as smtp:
        mailer = Mailer(make_settings(**smtp.settings(smtp_security="none")))
        some = mailer.send(_handoff("karin@aarhus.example", "gone@aarhus.example"))
        assert (some.sent, some.refused) == (True, ("gone@aarhus.example",))
        assert [r.recipients for r in smtp.wait_for(1)] == [["karin@aarhus.example"]]
        caplog.clear()
        error = _failure(caplog, mailer, _handoff("gone@aarhus.example"))
    assert error == "every recipient was refused (550)"


def test_a_server_that_never_answers_times_out_without_holding_up_the_event_loop() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # connections are accepted by the kernel, and then nothing is said
        settings = make_settings(
            smtp_host="127.0.0.1",
            smtp_port=silent.getsockname()[1],
            smtp_from="s@x.dk",
            smtp_security="none",
        )
        mailer = Mailer(settings, timeout=1.0)

        async def send_while_ticking() -> tuple[str | None, int]:
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticker = asyncio.create_task(tick())
            delivery = await mailer.send_async(_handoff())
            ticker.cancel()
            return delivery.error, ticks

        started = time.monotonic()
        error, ticks = asyncio.run(send_while_ticking())
    assert error == "the server did not answer in time"
    assert 0.9 < time.monotonic() - started < 10
    assert ticks > 20  # the loop ran all along


def test_without_a_host_nothing_is_sent() -> None:
    mailer = Mailer(make_settings())
    assert not mailer.enabled
    delivery = mailer.send(_handoff())
    assert (delivery.sent, delivery.error) == (
        False,
        "e-mail is not configured (STIFINDER_SMTP_HOST)",
    )


def test_a_subject_cannot_add_headers_and_addresses_are_checked() -> None:
    mailer = Mailer(make_settings(smtp_host="127.0.0.1", smtp_from="s@x.dk"))
    message = mailer.build(Email(to=["k@x.dk"], subject="Hej\r\nBcc: alle@x.dk", text="."))
    assert message["Subject"] == "Hej Bcc: alle@x.dk"
    assert message["Bcc"] is None
    for bad in ([], ["karin"], ["k@x.dk\r\nBcc: alle@x.dk"]):
        with pytest.raises(ValueError, match=r"recipient|not an e-mail address"):
            Email(to=bad, subject="s", text="t")
    with pytest.raises(TypeError, match="list of addresses"):
        Email(to="k@x.dk", subject="s", text="t")


@pytest.mark.parametrize(("security", "port"), [("starttls", 587), ("tls", 465), ("none", 25)])
def test_the_port_follows_the_security_unless_set(security: str, port: int) -> None:
    settings = make_settings(smtp_host="mail.x.dk", smtp_from="s@x.dk", smtp_security=security)
    assert settings.smtp_port_or_default == port
    assert make_settings(smtp_security=security, smtp_port=2525).smtp_port_or_default == 2525


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"smtp_from": None}, "STIFINDER_SMTP_FROM"),
        ({"smtp_from": "Stifinder"}, "STIFINDER_SMTP_FROM"),
        ({"smtp_username": "s"}, "STIFINDER_SMTP_USERNAME and STIFINDER_SMTP_PASSWORD"),
        (
            {"smtp_username": "s", "smtp_password": "a-real-secret", "smtp_security": "none"},
            "STIFINDER_SMTP_SECURITY=none",
        ),
        ({"smtp_username": "s", "smtp_password": "change-me"}, "STIFINDER_SMTP_PASSWORD"),
    ],
)
def test_incomplete_or_unsafe_smtp_settings_are_refused(fields: dict[str, Any], named: str) -> None:
    values = {"smtp_host": "mail.x.dk", "smtp_from": "s@x.dk", **fields}
    with pytest.raises(ValidationError) as raised:
        make_settings(environment="production", **values)
    assert named in str(raised.value)
