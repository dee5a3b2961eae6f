"""SMS through the twilio SDK: sends over its asynchronous HTTP client (aiohttp) on the
dispatcher's event loop, and the rare lookups of an unknown outcome over its blocking client in a
worker thread, so the event loop never blocks."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from bot.channels import (
    Delivery,
    OptedOutAtProvider,
    OutcomeUnknown,
    Rejected,
    RetryLater,
    SendResult,
    Unreachable,
)
from bot.settings import Settings
from dialogs.sms import sms_text
from dialogs.types import Channel, DeliveryStatus

OPTED_OUT = 21610
TWILIO_API = "https://api.twilio.com"
CONNECTIONS = 32  # kept open to the provider: more than the dispatcher ever has in flight
# The number cannot get SMS at all: not a mobile, not a valid number, not routable.
NOT_REACHABLE = {21211, 21214, 21612, 21614, 21408}

TWILIO_STATUS = {
    "accepted": DeliveryStatus.SENDING,
    "queued": DeliveryStatus.SENDING,
    "scheduled": DeliveryStatus.SENDING,
    "sending": DeliveryStatus.SENDING,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}


class TwilioChannel:
    channel = Channel.SMS

    def __init__(
        self,
        client: Client,
        *,
        from_number: str | None,
        messaging_service_sid: str | None,
        status_callback: str | None,
        validity_period: int | None = None,
        gsm7_lookalikes: bool = True,
        sending: Callable[[], Client],
    ) -> None:
        if not (from_number or messaging_service_sid):
            raise ValueError("an SMS sender needs a from number or a Messaging Service")
        self.client = client
        # The client for sends is built on the event loop that sends (aiohttp's session
        # belongs to one loop), at the first send.
        self._sending = sending
        self._sender: Client | None = None
        self._timeout = client.http_client.timeout
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.status_callback = status_callback
        self.validity_period = validity_period
        self.gsm7_lookalikes = gsm7_lookalikes

    def _options(self, delivery: Delivery) -> dict[str, Any]:
        options: dict[str, Any] = {"to": delivery.phone, "body": self.body(delivery.text)}
        if self.messaging_service_sid:
            options["messaging_service_sid"] = self.messaging_service_sid
        else:
            options["from_"] = self.from_number
        if self.status_callback:
            options["status_callback"] = self.status_callback
        if self.validity_period:
            options["validity_period"] = self.validity_period
        return options

    async def send(self, delivery: Delivery) -> SendResult:
        if not delivery.phone:
            raise Unreachable("no phone number for this young person")
        if self._sender is None:
            self._sender = self._sending()
        try:
            # The SDK passes no timeout to aiohttp: the whole call is bounded here.
            message = await asyncio.wait_for(
                self._sender.messages.create_async(**self._options(delivery)), self._timeout
            )
        except TwilioRestException as error:
            raise _meaning(error) from error
        except aiohttp.ClientConnectorError as error:
            # Never connected (refused, no route, name or certificate trouble): nothing was sent.
            raise RetryLater(str(error)) from error
        except (TimeoutError, aiohttp.ClientError) as error:
            # Cut off after the request may have left: Twilio may have created the message.
            raise OutcomeUnknown(f"{type(error).__name__}: {error}") from error
        status = TWILIO_STATUS.get(str(message.status), DeliveryStatus.SENDING)
        return SendResult(status, provider_id=str(message.sid))

    async def reconcile(self, delivery: Delivery, since: datetime) -> SendResult | None:
        """Look the message up at Twilio (same recipient and text, sent since ``since``)."""
        if not delivery.phone:
            return None

        body = self.body(delivery.text)

        def lookup() -> Any:
            # Every page since the message was written: a young person may have had many.
            for message in self.client.messages.stream(
                to=delivery.phone, date_sent_after=since, page_size=100
            ):
                if message.body == body:
                    return message
            return None

        try:
            found = await asyncio.to_thread(lookup)
        except (TwilioRestException, requests.exceptions.RequestException) as error:
            raise RetryLater(f"lookup failed: {error}") from error
        if found is None:
            return None
        status = TWILIO_STATUS.get(str(found.status), DeliveryStatus.SENDING)
        return SendResult(status, provider_id=str(found.sid))

    def body(self, text: str) -> str:
        return sms_text(text) if self.gsm7_lookalikes else text

    async def close(self) -> None:
        session = getattr(self.client.http_client, "session", None)
        if session is not None:
            session.close()
        if self._sender is not None:
            await self._sender.http_client.close()
            self._sender = None


def twilio_client(settings: Settings) -> Client:
    """The real SDK client; ``twilio_api_base_url`` points it at another host (tests)."""
    assert settings.twilio_auth_token is not None
    # The SDK waits forever by default; a send that hangs must become "outcome unknown".
    base_url = (settings.twilio_api_base_url or TWILIO_API).rstrip("/")
    # requests looks up the proxy and CA bundle variables in the environment on every call
    # (a quarter of a send's CPU); they are read once, here, and the session trusts only that.
    http = TwilioHttpClient(
        timeout=settings.provider_timeout_seconds,
        proxy=requests.utils.get_environ_proxies(base_url),
    )
    assert http.session is not None  # pooled connections, the SDK's default
    http.session.trust_env = False
    http.session.verify = (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    )
    # The SDK keeps min(32, CPUs + 4) connections (6 on two cores) while the dispatcher has up
    # to 16 sends in flight: the others would each open, and throw away, a connection (a TLS
    # handshake every time). Enough for every send in flight to keep its connection.
    for scheme in ("https://", "http://"):
        http.session.mount(scheme, HTTPAdapter(pool_maxsize=CONNECTIONS))
    client = Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        http_client=http,
    )
    if settings.twilio_api_base_url:
        # The SDK builds every Messages URL from this (twilio.rest.api.ApiBase).
        client.api.base_url = base_url
    return client


def twilio_sending_client(settings: Settings) -> Callable[[], Client]:
    """What builds the SDK client for sends, over aiohttp, on the event loop that will use it
    (an aiohttp session belongs to one loop).

    The proxy and CA bundle variables are read now, once, as for the blocking client; the
    client keeps a connection for every send in flight.
    """
    assert settings.twilio_auth_token is not None
    account, token = settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value()
    base_url = (settings.twilio_api_base_url or TWILIO_API).rstrip("/")
    proxies = requests.utils.get_environ_proxies(base_url)
    proxy = proxies.get(urlsplit(base_url).scheme) or proxies.get("all")
    cafile = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")

    def build() -> Client:
        http = AsyncTwilioHttpClient(pool_connections=False)
        http.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=CONNECTIONS,
                ssl=ssl.create_default_context(cafile=cafile) if cafile else True,
            ),
            proxy=proxy,
            trust_env=False,
        )
        client = Client(account, token, http_client=http)
        if settings.twilio_api_base_url:
            client.api.base_url = base_url
        return client

    return build


def _meaning(error: TwilioRestException) -> Exception:
    code = error.code
    text = f"Twilio {error.status} {code}: {error.msg}"
    if code == OPTED_OUT:
        return OptedOutAtProvider(text, code=str(code))
    if code in NOT_REACHABLE:
        return Unreachable(text, code=str(code))
    if error.status == 429 or error.status >= 500:
        return RetryLater(text, after=1.0 if error.status == 429 else None, code=str(code))
    return Rejected(text, code=str(code) if code else str(error.status))
