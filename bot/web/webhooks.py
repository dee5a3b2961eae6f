"""Provider webhooks: verify, parse, store, answer. The bot's work happens after, in the pump.

A forged or unsigned request gets 403, a malformed one 400, an oversized one 413; a valid one is
committed to the database before the provider hears 2xx, so nothing it sent can be lost.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool
from telegram import Update
from twilio.request_validator import RequestValidator

from bot.inbound import apply_twilio_status
from bot.runtime import Runtime
from bot.web.paths import TELEGRAM_PATH, TWILIO_SMS_PATH, TWILIO_STATUS_PATH

log = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
FORM = "application/x-www-form-urlencoded"


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise HTTPException(413 if declared.isdigit() else 400, "body too large or malformed")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, "body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _form(body: bytes, content_type: str) -> dict[str, str]:
    if content_type.split(";")[0].strip().lower() != FORM:
        raise HTTPException(400, "expected a form post")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as error:
        raise HTTPException(400, "malformed form") from error
    return dict(pairs)


def router(runtime: Runtime) -> APIRouter:
    routes = APIRouter()
    settings = runtime.settings
    limit = settings.max_webhook_bytes
    public = settings.public_base_url.rstrip("/")

    if settings.sms_enabled:
        assert settings.twilio_auth_token is not None
        validator = RequestValidator(settings.twilio_auth_token.get_secret_value())

        async def signed_form(request: Request) -> dict[str, str]:
            signature = request.headers.get("x-twilio-signature")
            if not signature:
                raise HTTPException(403, "missing signature")
            body = await _body(request, limit)
            form = _form(body, request.headers.get("content-type", ""))
            # Twilio signed the public URL; behind a TLS proxy the URL we see is another.
            url = public + request.url.path
            if request.url.query:
                url += "?" + request.url.query
            if not validator.validate(url, form, signature):
                raise HTTPException(403, "bad signature")
            return form

        @routes.post(TWILIO_SMS_PATH, include_in_schema=False)
        async def twilio_sms(request: Request) -> Response:
            form = await signed_form(request)
            if not form.get("MessageSid") or not form.get("From"):
                raise HTTPException(400, "MessageSid and From are required")
            await _store(runtime, runtime.inbound.twilio_row(form))
            return Response(EMPTY_TWIML, media_type="application/xml")

        @routes.post(TWILIO_STATUS_PATH, include_in_schema=False)
        async def twilio_status(request: Request) -> Response:
            form = await signed_form(request)
            if not (form.get("MessageSid") or form.get("SmsSid")) or not (
                form.get("MessageStatus") or form.get("SmsStatus")
            ):
                raise HTTPException(400, "MessageSid and MessageStatus are required")
            known = await run_in_threadpool(apply_twilio_status, runtime.inbound, form)
            if not known:
                # It may have overtaken the recording of the send: keep it and apply it then.
                log.info("status for a message we do not know (yet)")
                await _store(runtime, runtime.inbound.status_row(form))
            return Response(status_code=204)

    if settings.telegram_enabled:
        secret = (
            settings.telegram_webhook_secret.get_secret_value().encode()
            if settings.telegram_webhook_secret
            else None
        )

        @routes.post(TELEGRAM_PATH, include_in_schema=False)
        async def telegram(request: Request) -> Response:
            given = request.headers.get("x-telegram-bot-api-secret-token", "").encode()
            if secret is None or not hmac.compare_digest(given, secret):
                raise HTTPException(403, "bad secret token")
            body = await _body(request, limit)
            try:
                # Strict JSON: Python also reads Infinity and NaN, which no database stores.
                update: Any = json.loads(body, parse_constant=_not_json)
            except (UnicodeDecodeError, ValueError) as error:
                raise HTTPException(400, "malformed JSON") from error
            if (
                not isinstance(update, dict)
                or not isinstance(update.get("update_id"), int)
                or isinstance(update.get("update_id"), bool)
            ):
                raise HTTPException(400, "an update needs an integer update_id")
            try:
                # PTB's own parser decides what a well-formed update is.
                Update.de_json(update, None)
            except Exception as error:
                raise HTTPException(400, "malformed update") from error
            await _store(runtime, runtime.inbound.telegram_row(update))
            return Response(status_code=200)

    return routes


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


async def _store(runtime: Runtime, row: dict[str, Any]) -> None:
    """Commit the event (with whatever else is arriving) before the provider hears 2xx."""
    try:
        await runtime.inbound_writer.store(row)
    except Exception as error:
        # The provider retries a non-2xx answer: nothing is lost.
        raise HTTPException(503, "could not store the message; try again") from error
    runtime.pump.kick()
