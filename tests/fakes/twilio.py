"""A fake Twilio REST API (Messages) on 127.0.0.1 that the real ``twilio`` SDK talks to.

Pointing twilio 9 at it: the SDK builds every URL as ``client.api.base_url`` + ``/2010-04-01/...``
at request time (``twilio/base/domain.py``: ``Domain.absolute_url``), so setting that attribute
on a real client is enough::

    client = Client(account_sid, auth_token)
    client.api.base_url = fake.url
    # or: client = fake.client()  (the same, plus a short timeout, no proxies from the
    # environment, TWILIO_EDGE/TWILIO_REGION ignored, and the session closed by fake.stop())

Endpoints, with HTTP basic auth (account SID, auth token) checked, in Twilio's JSON shapes:
``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (201, status "queued", or "accepted"
with a MessagingServiceSid), ``GET .../Messages/{Sid}.json`` and ``GET .../Messages.json`` with
``To``, ``From``, ``DateSent``, ``DateSent<``, ``DateSent>`` (the SDK's ``date_sent_before`` and
``date_sent_after``, on the wire ``DateSent<=`` and ``DateSent>=``) and real paging.

Errors come as ``{"code", "message", "more_info", "status"}`` and the SDK raises
``twilio.base.exceptions.TwilioRestException`` with ``.status`` (HTTP) and ``.code`` (Twilio's):
bad credentials 401/20003, unknown message 404/20404, ``reject_number`` 400/<code> (21610 opted
out, 21614 not a mobile, ...), fault ``"500"`` 500/20500, fault ``"429"`` 429/20429. Faults
``"drop_before"``/``"drop_after"`` surface as ``requests.exceptions.ConnectionError`` (after
``drop_after`` the message exists: the caller cannot know), ``"slow"`` with a client timeout
shorter than ``slow_seconds`` as ``requests.exceptions.ReadTimeout`` (the request was processed).

Status callbacks (``deliver``, or ``auto_callbacks``) are posted as Twilio posts them: a form
signed with ``X-Twilio-Signature`` over the StatusCallback URL exactly as given. Tests stay on
127.0.0.1: map a public callback URL to a local one with ``callback_routes``, or hand callbacks to
an in-process app with ``callback_sender``.
"""

from __future__ import annotations

import base64
import operator
import re
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from requests import Session
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.fakes.http import DROP, FakeHTTPServer, FaultPlan, Reply, Request

FAULT_KINDS = ("500", "429", "slow", "drop_before", "drop_after")
DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEFAULT_AUTH_TOKEN = "fa4e" * 8
API_VERSION = "2010-04-01"
MAX_BODY = 1600
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
STATUSES = frozenset(
    {"queued", "sending", "sent", "delivered", "undelivered", "failed", "read", "canceled"}
)

# Twilio's messages for the error codes the fake produces (www.twilio.com/docs/errors/<code>).
ERROR_MESSAGES = {
    20003: "Authenticate",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "Invalid 'To' Phone Number",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' "
    "number",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}

_ROUTE = re.compile(
    rf"/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages(?:/(?P<sid>[^/]+))?\.json"
)

# (url, headers, form) -> HTTP status of the app's answer
CallbackSender = Callable[[str, dict[str, str], dict[str, str]], int]


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def error_reply(status: int, code: int, message: str | None = None) -> Reply:
    return Reply.json(
        status,
        {
            "code": code,
            "message": message or ERROR_MESSAGES.get(code, f"Error {code}"),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


class FakeTwilio(FakeHTTPServer):
    """Twilio's Messages API for one account, with the messages created and callbacks sent."""

    def __init__(
        self, account_sid: str = DEFAULT_ACCOUNT_SID, auth_token: str = DEFAULT_AUTH_TOKEN
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.slow_seconds = 1.0  # how long a "slow" fault holds the answer
        self.auto_callbacks: list[str] = []  # statuses to walk every new message through
        self.callback_delay = 0.0  # pause before each automatic callback
        self.callback_routes: dict[str, str] = {}  # public URL prefix -> local URL prefix
        self.callback_sender: CallbackSender = post_form
        self.service_sender = "+4570000000"  # the number a Messaging Service sends from
        self._faults = FaultPlan(FAULT_KINDS)
        self._cond = threading.Condition()  # guards everything below; wakes callback waiters
        self._messages: dict[str, dict[str, Any]] = {}
        self._rejected: dict[str, int] = {}
        self._callbacks: list[dict[str, Any]] = []
        self._faults_served: list[tuple[str, str]] = []
        self._sessions: list[Session] = []

    # -- set-up from tests ----------------------------------------------------------------------

    def client(
        self, account_sid: str | None = None, auth_token: str | None = None, *, timeout: float = 5
    ) -> Client:
        """A real ``twilio.rest.Client`` aimed at this fake (closed by ``stop()``)."""
        http_client = TwilioHttpClient(timeout=timeout)
        session = http_client.session
        assert session is not None
        session.trust_env = False  # a proxy named in the environment must not catch 127.0.0.1
        with self._cond:
            self._sessions.append(session)
        client = Client(
            account_sid or self.account_sid, auth_token or self.auth_token, http_client=http_client
        )
        # TWILIO_EDGE/TWILIO_REGION in the environment would rewrite the host name.
        client.edge = client.region = None
        client.api.base_url = self.url
        return client

    def fail_next(self, kind: str, count: int = 1, *, endpoint: str = "create") -> None:
        """The next ``count`` requests to ``endpoint`` ("create", "fetch", "list") get ``kind``."""
        self._faults.fail_next(endpoint, kind, count)

    def fault_rate(
        self,
        rate: float,
        kinds: Iterable[str] = ("500", "429"),
        seed: int = 0,
        endpoints: Iterable[str] | None = ("create",),
    ) -> None:
        """Fail a random share of requests (reproducible by ``seed``); ``endpoints=None``: all."""
        self._faults.fault_rate(rate, kinds, seed, endpoints)

    def clear_faults(self) -> None:
        self._faults.clear()

    def reject_number(self, phone: str, code: int = 21610) -> None:
        """Creating a message to ``phone`` answers 400 with ``code`` (21610 opted out, ...)."""
        with self._cond:
            self._rejected[phone] = code

    def accept_number(self, phone: str) -> None:
        with self._cond:
            self._rejected.pop(phone, None)

    # -- what tests read ------------------------------------------------------------------------

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Messages created, oldest first: sid, to, from, body, status, status_callback, ..."""
        with self._cond:
            return [dict(message) for message in self._messages.values()]

    @property
    def callbacks(self) -> list[dict[str, Any]]:
        """Status callbacks posted: sid, status, url, target, form, headers, response_status."""
        with self._cond:
            return [dict(callback) for callback in self._callbacks]

    @property
    def faults_served(self) -> list[tuple[str, str]]:
        """(endpoint, fault kind) for every fault injected so far."""
        with self._cond:
            return list(self._faults_served)

    def wait_for_callbacks(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until ``count`` callbacks were posted (automatic ones run in threads).

        Returns the callbacks posted by then, however many: the test asserts on them.
        """
        with self._cond:
            self._cond.wait_for(lambda: len(self._callbacks) >= count, timeout)
        return self.callbacks

    # -- Twilio calling the app -----------------------------------------------------------------

    def sign(self, url: str, params: dict[str, str]) -> str:
        """``X-Twilio-Signature`` for a form posted to ``url`` (as Twilio computes it)."""
        return str(RequestValidator(self.auth_token).compute_signature(url, params))

    def deliver(
        self, sid: str, status: str = "delivered", error_code: int | None = None
    ) -> int | None:
        """Move message ``sid`` to ``status`` and post its status callback, if it has one.

        Returns the HTTP status the app answered, or None without callback or when the post
        failed (the failure is in ``callbacks``).
        """
        if status not in STATUSES:
            raise ValueError(f"unknown message status {status!r}")
        with self._cond:
            message = self._messages[sid]
            now = datetime.now(UTC)
            message["status"] = status
            message["date_updated"] = now
            message["error_code"] = error_code
            message["error_message"] = (
                None if error_code is None else ERROR_MESSAGES.get(error_code)
            )
            if (
                status in ("sent", "delivered", "undelivered", "read")
                and message["date_sent"] is None
            ):
                message["date_sent"] = now
            if message["from"] is None:  # a Messaging Service has now picked a sender
                message["from"] = self.service_sender
            url = message["status_callback"]
            form = _status_form(message, self.account_sid)
        if not url:
            return None
        return self._post_callback(sid, status, url, form)

    def signed_inbound(
        self,
        url: str,
        *,
        from_: str,
        to: str,
        body: str,
        message_sid: str | None = None,
        messaging_service_sid: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> tuple[dict[str, str], dict[str, str]]:
        """(headers, form) of an incoming-SMS webhook to ``url``, signed as Twilio signs it.

        Twilio sends the geographic fields even when empty, and empty fields count in the
        signature, so they are kept. Post the form urlencoded with the headers.
        """
        sid = message_sid or new_sid("SM")
        form = {
            "ToCountry": "DK",
            "ToState": "",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ToCity": "",
            "FromZip": "",
            "SmsSid": sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": body,
            "FromCountry": "DK",
            "To": to,
            "ToZip": "",
            "NumSegments": str(segments(body)),
            "ReferralNumMedia": "0",
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": from_,
            "ApiVersion": API_VERSION,
        }
        if messaging_service_sid:
            form["MessagingServiceSid"] = messaging_service_sid
        form.update(extra or {})
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": self.sign(url, form),
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        }
        return headers, form

    # -- the protocol ---------------------------------------------------------------------------

    def stop(self) -> None:
        super().stop()
        with self._cond:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()  # else its pooled sockets end as ResourceWarnings

    def handle(self, request: Request) -> Reply:
        route = _ROUTE.fullmatch(request.path)
        if route is None:
            return error_reply(404, 20404, f"The requested resource {request.path} was not found")
        if not self._authorised(request):
            return error_reply(401, 20003)
        if route["account"] != self.account_sid:
            return error_reply(404, 20404, f"The requested resource {request.path} was not found")
        process: Callable[[], Reply]
        if request.method == "POST" and route["sid"] is None:
            endpoint, process = "create", lambda: self._create(request.form())
        elif request.method == "GET" and route["sid"] is not None:
            endpoint, process = "fetch", lambda: self._fetch(route["sid"], request.path)
        elif request.method == "GET":
            endpoint, process = "list", lambda: self._list(request.query)
        else:
            return error_reply(405, 20004, "Method not allowed")
        fault = self._faults.draw(endpoint)
        if fault is not None:
            with self._cond:
                self._faults_served.append((endpoint, fault))
        if fault == "drop_before":
            return DROP
        if fault == "500":
            return error_reply(500, 20500)
        if fault == "429":
            return error_reply(429, 20429)
        reply = process()
        if fault == "drop_after":
            return replace(reply, drop=True)
        if fault == "slow":
            return replace(reply, delay=self.slow_seconds)
        return reply

    def _authorised(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            return False
        return (user, password) == (self.account_sid, self.auth_token)

    def _create(self, form: dict[str, str]) -> Reply:
        to, body = form.get("To", ""), form.get("Body", "")
        sender, service = form.get("From") or None, form.get("MessagingServiceSid") or None
        if not to:
            return error_reply(400, 21604)
        if not sender and not service:
            return error_reply(400, 21603)
        if not body and not form.get("MediaUrl") and not form.get("ContentSid"):
            return error_reply(400, 21602)
        if len(body) > MAX_BODY:
            return error_reply(400, 21617)
        with self._cond:
            if to in self._rejected:
                return error_reply(400, self._rejected[to])
            now = datetime.now(UTC)
            sid = new_sid("SM")
            message: dict[str, Any] = {
                "sid": sid,
                "to": to,
                "from": sender,
                "body": body,
                "messaging_service_sid": service,
                # With a Messaging Service, Twilio answers "accepted" before picking a sender.
                "status": "accepted" if service else "queued",
                "num_segments": 0 if service else segments(body),
                "status_callback": form.get("StatusCallback"),
                "validity_period": form.get("ValidityPeriod"),
                "error_code": None,
                "error_message": None,
                "date_created": now,
                "date_updated": now,
                "date_sent": None,
            }
            self._messages[sid] = message
            resource = _resource(message, self.account_sid)
        after = (lambda: self._walk(sid)) if self.auto_callbacks else None
        return replace(Reply.json(201, resource), after=after)

    def _fetch(self, sid: str, path: str) -> Reply:
        with self._cond:
            message = self._messages.get(sid)
            if message is None:
                return error_reply(404, 20404, f"The requested resource {path} was not found")
            return Reply.json(200, _resource(message, self.account_sid))

    def _list(self, query: dict[str, str]) -> Reply:
        page_size = min(max(int(query.get("PageSize") or 50), 1), 1000)
        page = max(int(query.get("Page") or 0), 0)
        filters = {key: query[key] for key in ("To", "From") if query.get(key)}
        with self._cond:
            matching = [
                _resource(message, self.account_sid)
                for message in reversed(self._messages.values())  # newest first, as Twilio lists
                if all(message[key.lower()] == value for key, value in filters.items())
                and _sent_within(message, query)
            ]
        start = page * page_size
        records = matching[start : start + page_size]
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"

        def page_uri(number: int) -> str:
            kept = {k: v for k, v in query.items() if k not in ("Page", "PageSize", "PageToken")}
            return f"{base}?{urlencode({**kept, 'PageSize': page_size, 'Page': number})}"

        has_next = start + page_size < len(matching)
        return Reply.json(
            200,
            {
                "messages": records,
                "end": start + max(len(records) - 1, 0),
                "first_page_uri": page_uri(0),
                "next_page_uri": page_uri(page + 1) if has_next else None,
                "page": page,
                "page_size": page_size,
                "previous_page_uri": page_uri(page - 1) if page else None,
                "start": start,
                "uri": page_uri(page),
            },
        )

    def _walk(self, sid: str) -> None:
        for status in list(self.auto_callbacks):
            self.pause(self.callback_delay)
            if self.stopping:
                return
            self.deliver(sid, status)

    def _post_callback(self, sid: str, status: str, url: str, form: dict[str, str]) -> int | None:
        target = url
        for public, local in self.callback_routes.items():
            if url.startswith(public):
                target = local + url[len(public) :]
                break
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            # Signed over the URL as given in StatusCallback, whatever route it takes here.
            "X-Twilio-Signature": self.sign(url, form),
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        }
        record: dict[str, Any] = {"sid": sid, "status": status, "url": url, "target": target}
        record |= {"form": form, "headers": headers, "response_status": None, "error": None}
        try:
            record["response_status"] = self.callback_sender(target, headers, form)
        except OSError as failure:  # the app did not answer: Twilio would not retry either
            record["error"] = repr(failure)
        with self._cond:
            self._callbacks.append(record)
            self._cond.notify_all()
        return record["response_status"]  # type: ignore[no-any-return]


def post_form(url: str, headers: dict[str, str], form: dict[str, str]) -> int:
    """POST a form to a loopback URL and return the status; refuses any other host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK:
        raise ValueError(
            f"refusing to post to {url}: tests stay on 127.0.0.1 "
            "(map the URL with callback_routes or set callback_sender)"
        )
    data = urlencode(form).encode()
    # S310 warns of file: and other schemes; only http(s) to loopback gets here (checked above).
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no env proxies
    try:
        with opener.open(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as answer:  # a 4xx/5xx is still an answer
        answer.close()
        return answer.code


def segments(body: str) -> int:
    """SMS segments: GSM-7 160/153 (extension characters count twice), else UCS-2 70/67."""
    if all(char in _GSM7_BASIC or char in _GSM7_EXTENSION for char in body):
        units = sum(2 if char in _GSM7_EXTENSION else 1 for char in body)
        single, part = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2  # an emoji takes two UCS-2 units
        single, part = 70, 67
    return 1 if units <= single else -(-units // part)


_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


def _rfc2822(moment: datetime | None) -> str | None:
    return None if moment is None else format_datetime(moment)  # "Mon, 01 Jan 2024 ... +0000"


def _resource(message: dict[str, Any], account_sid: str) -> dict[str, Any]:
    """The Message resource JSON as Twilio returns it."""
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{message['sid']}"
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": message["body"],
        "date_created": _rfc2822(message["date_created"]),
        "date_sent": _rfc2822(message["date_sent"]),
        "date_updated": _rfc2822(message["date_updated"]),
        "direction": "outbound-api",
        "error_code": message["error_code"],
        "error_message": message["error_message"],
        "from": message["from"],
        "messaging_service_sid": message["messaging_service_sid"],
        "num_media": "0",
        "num_segments": str(message["num_segments"]),
        "price": None,
        "price_unit": "USD",
        "sid": message["sid"],
        "status": message["status"],
        "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
        "to": message["to"],
        "uri": f"{uri}.json",
    }


def _status_form(message: dict[str, Any], account_sid: str) -> dict[str, str]:
    """The form Twilio posts to a StatusCallback URL."""
    form = {
        "MessageSid": message["sid"],
        "SmsSid": message["sid"],
        "MessageStatus": message["status"],
        "SmsStatus": message["status"],
        "AccountSid": account_sid,
        "From": message["from"],
        "To": message["to"],
        "ApiVersion": API_VERSION,
    }
    if message["messaging_service_sid"]:
        form["MessagingServiceSid"] = message["messaging_service_sid"]
    if message["error_code"] is not None:
        form["ErrorCode"] = str(message["error_code"])
    if message["status"] == "delivered":
        form["RawDlrDoneDate"] = message["date_updated"].strftime("%y%m%d%H%M")
    return form


def _sent_within(message: dict[str, Any], query: dict[str, str]) -> bool:
    """Twilio's DateSent filters; a message not sent yet is judged by its creation time."""
    moment: datetime = message["date_sent"] or message["date_created"]
    for key, keep in (
        ("DateSent", operator.eq),
        ("DateSent<", operator.le),
        ("DateSent>", operator.ge),
    ):
        value = query.get(key)
        if not value:
            continue
        if len(value) == len("2024-01-31"):  # a date: whole days compare
            within = keep(moment.date(), date.fromisoformat(value))
        else:
            within = keep(moment, datetime.fromisoformat(value.replace("Z", "+00:00")))
        if not within:
            return False
    return True
