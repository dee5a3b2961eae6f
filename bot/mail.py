"""E-mail to staff over SMTP, with nothing but the standard library.

The caller brings the subject and the bodies already translated into the reader's language;
this module only sends. :meth:`Mailer.send` blocks (for the worker's threads), and
:meth:`Mailer.send_async` runs it in a thread so an event loop never waits on a mail server.
Nothing raises when the server is down or refuses: the failure is logged with the reason and
returned in a :class:`Delivery`, so a caller can note it and try again later.

Security follows ``STIFINDER_SMTP_SECURITY``: ``starttls`` (the default) refuses to go on if the
server does not offer STARTTLS, rather than send in clear; ``tls`` speaks TLS from the first
byte; ``none`` is for a relay on the same machine. Certificates are checked against the
system's trusted authorities. Logs never hold a subject, a body or an address.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from urllib.parse import urlsplit

from bot.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class Email:
    """One message: plain text always, and an HTML alternative when given.

    Both bodies arrive finished: translated, and the HTML rendered by an autoescaping template.
    """

    to: Sequence[str]
    subject: str
    text: str
    html: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.to, str):
            raise TypeError("to is a list of addresses, not one string")
        if not self.to:
            raise ValueError("an e-mail needs at least one recipient")
        for address in self.to:
            if "\r" in address or "\n" in address or "@" not in parseaddr(address)[1]:
                raise ValueError(f"not an e-mail address: {address!r}")


@dataclass(frozen=True)
class Delivery:
    """What became of one e-mail: ``sent`` when the server accepted it for someone."""

    sent: bool
    error: str | None = None
    refused: tuple[str, ...] = field(default=())


class Mailer:
    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self.tls_context = tls_context
        # The name we greet the server with: our public host, never a slow reverse DNS lookup.
        self.local_hostname = urlsplit(settings.public_base_url).hostname or "localhost"

    @property
    def enabled(self) -> bool:
        return self.settings.mail_enabled

    def build(self, email: Email) -> EmailMessage:
        """The message as it goes on the wire: UTF-8, a subject encoded for any server."""
        sender = self.settings.smtp_from or ""
        message = EmailMessage()
        message["From"] = sender
        message["To"] = ", ".join(email.to)
        # A header may not break lines: fold whatever a translation holds onto one line.
        message["Subject"] = " ".join(email.subject.split())
        message["Date"] = formatdate(usegmt=True)
        domain = Address(addr_spec=parseaddr(sender)[1]).domain or self.local_hostname
        message["Message-ID"] = make_msgid(domain=domain)
        # Quoted-printable keeps the wire ASCII, so a server without 8BITMIME takes æøå too.
        message.set_content(email.text, charset="utf-8", cte="quoted-printable")
        if email.html is not None:
            message.add_alternative(
                email.html, subtype="html", charset="utf-8", cte="quoted-printable"
            )
        return message

    def send(self, email: Email) -> Delivery:
        """Send now, blocking; a disabled mailer sends nothing and says so."""
        if not self.enabled:
            return Delivery(sent=False, error="e-mail is not configured (STIFINDER_SMTP_HOST)")
        message = self.build(email)
        settings = self.settings
        where = {
            "smtp_host": settings.smtp_host,
            "smtp_port": settings.smtp_port_or_default,
            "security": settings.smtp_security,
            "recipients": len(email.to),
        }
        try:
            with self._connect() as smtp:
                refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            reason = f"every recipient was refused ({_codes(error.recipients)})"
            log.error("e-mail not sent: %s", reason, extra=where)
            return Delivery(sent=False, error=reason, refused=tuple(error.recipients))
        except (smtplib.SMTPException, OSError) as error:
            reason = _explain(error)
            log.error("e-mail not sent: %s", reason, extra=where)
            return Delivery(sent=False, error=reason)
        if refused:
            log.warning(
                "e-mail sent, but some recipients were refused (%s)",
                _codes(refused),
                extra={**where, "refused": len(refused)},
            )
        else:
            log.info("e-mail sent", extra=where)
        return Delivery(sent=True, refused=tuple(refused))

    async def send_async(self, email: Email) -> Delivery:
        """:meth:`send` in a worker thread: the event loop goes on meanwhile."""
        return await asyncio.to_thread(self.send, email)

    def _context(self) -> ssl.SSLContext:
        return self.tls_context if self.tls_context is not None else ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        host, port = settings.smtp_host or "", settings.smtp_port_or_default
        smtp: smtplib.SMTP
        if settings.smtp_security == "tls":
            smtp = smtplib.SMTP_SSL(
                host,
                port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=self._context(),
            )
        else:
            smtp = smtplib.SMTP(
                host, port, local_hostname=self.local_hostname, timeout=self.timeout
            )
        try:
            if settings.smtp_security == "starttls":
                smtp.starttls(context=self._context())
            if settings.smtp_username is not None and settings.smtp_password is not None:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        except BaseException:
            smtp.close()
            raise
        return smtp


def _codes(refused: dict[str, tuple[int, bytes]]) -> str:
    return ", ".join(sorted({str(code) for code, _ in refused.values()}))


def _explain(error: BaseException) -> str:
    """A reason an operator can act on, without the message's contents."""
    if isinstance(error, smtplib.SMTPNotSupportedError) and "STARTTLS" in str(error):
        return "the server does not offer STARTTLS; set STIFINDER_SMTP_SECURITY to match it"
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return f"the server does not support this: {error}"
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return f"the server refused the login ({error.smtp_code})"
    if isinstance(error, smtplib.SMTPSenderRefused):
        return f"the server refused the sender ({error.smtp_code})"
    if isinstance(error, smtplib.SMTPResponseException):
        return f"the server answered {error.smtp_code}: {_text(error.smtp_error)}"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"the server's certificate is not trusted: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed: {error.reason or error}"
    if isinstance(error, socket.gaierror):
        return f"the host name could not be resolved ({error.strerror})"
    if isinstance(error, ConnectionRefusedError):
        return "the server refused the connection (is it running, on this port?)"
    # smtplib reports a read that timed out as a disconnection.
    if isinstance(error, TimeoutError) or "timed out" in str(error):
        return "the server did not answer in time"
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return f"the server closed the connection ({error})"
    return f"{type(error).__name__}: {error}"


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
