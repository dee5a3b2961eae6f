"""A local SMTP server for tests (aiosmtpd, in a thread) that records every message it accepts.

::

    with FakeSmtp.running() as smtp:                       # plain SMTP, no login
        settings = make_settings(**smtp.settings())
        ...
        [received] = smtp.wait_for(1)
        received.message["Subject"], received.recipients, received.text(), received.html()

``security="starttls"`` offers STARTTLS and refuses mail before it; ``security="tls"`` speaks TLS
from the first byte (implicit TLS, port 465 style). Both use a throwaway self-signed certificate
for 127.0.0.1 made with the ``openssl`` command; ``smtp.client_context()`` trusts it.
``logins={"user": "password"}`` requires SMTP AUTH (PLAIN or LOGIN) with one of them.
``refuse={"nobody@x.dk"}`` answers 550 for those recipients.
"""

from __future__ import annotations

import email
import email.policy
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.app_server import free_port

Security = Literal["none", "starttls", "tls"]
HOST = "127.0.0.1"


class CertificateUnavailableError(RuntimeError):
    pass


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    authenticated_as: str | None
    over_tls: bool

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None, "no text/plain part"
        return str(part.get_content()).replace("\r\n", "\n")  # as a mail reader shows it

    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        assert part is not None, "no text/html part"
        return str(part.get_content()).replace("\r\n", "\n")  # as a mail reader shows it


@dataclass
class _Recorder:
    refuse: frozenset[str]
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        # STARTTLS leaves its mark on the session; implicit TLS only on the transport.
        transport = server.transport
        over_tls = session.ssl is not None or (
            transport is not None and transport.get_extra_info("ssl_object") is not None
        )
        with self.lock:
            self.received.append(
                Received(
                    sender=str(envelope.mail_from),
                    recipients=list(envelope.rcpt_tos),
                    message=message,
                    authenticated_as=None if login is None else login.decode(),
                    over_tls=over_tls,
                )
            )
        return "250 Message accepted for delivery"


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1, valid for a day, made with ``openssl``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise CertificateUnavailableError("the openssl command is not installed")
    cert, key = directory / "cert.pem", directory / "key.pem"
    result = subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={HOST}",
            "-addext",
            f"subjectAltName=IP:{HOST}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        raise CertificateUnavailableError(f"openssl failed: {result.stderr.strip()}")
    return cert, key


@dataclass
class FakeSmtp:
    port: int
    security: Security
    recorder: _Recorder
    controller: Controller
    certificate: Path | None

    @classmethod
    @contextmanager
    def running(
        cls,
        *,
        security: Security = "none",
        logins: dict[str, str] | None = None,
        refuse: Iterable[str] = (),
    ) -> Iterator[FakeSmtp]:
        recorder = _Recorder(refuse=frozenset(a.lower() for a in refuse))
        with tempfile.TemporaryDirectory(prefix="stifinder-smtp-") as directory:
            certificate: Path | None = None
            server_context: ssl.SSLContext | None = None
            if security != "none":
                certificate, key = self_signed_certificate(Path(directory))
                server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                server_context.load_cert_chain(certificate, key)
            options: dict[str, Any] = {}
            if security == "starttls":
                options.update(tls_context=server_context, require_starttls=True)
            if logins is not None:
                known = dict(logins)

                def authenticate(
                    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
                ) -> AuthResult:
                    ok = (
                        isinstance(data, LoginPassword)
                        and known.get(data.login.decode()) == data.password.decode()
                    )
                    return AuthResult(success=ok, handled=False, auth_data=data)

                options.update(
                    authenticator=authenticate,
                    auth_required=True,
                    auth_require_tls=security != "none",
                )
            port = free_port()
            controller = Controller(
                recorder,
                hostname=HOST,
                port=port,
                ssl_context=server_context if security == "tls" else None,
                server_hostname=HOST,
                **options,
            )
            controller.start()
            fake = cls(
                port=port,
                security=security,
                recorder=recorder,
                controller=controller,
                certificate=certificate,
            )
            try:
                yield fake
            finally:
                controller.stop()

    @property
    def received(self) -> list[Received]:
        with self.recorder.lock:
            return list(self.recorder.received)

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """Stifinder settings that send through this server."""
        values: dict[str, Any] = {
            "smtp_host": HOST,
            "smtp_port": self.port,
            "smtp_security": self.security,
            "smtp_from": "Stifinder <stifinder@kommune.example>",
        }
        values.update(overrides)
        return values

    def client_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts this server's certificate and nothing else."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self.certificate is not None:
            context.load_verify_locations(cafile=self.certificate)
        return context

    def wait_for(self, count: int, *, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} message(s), got {len(self.received)}")
            time.sleep(0.02)
        return self.received
