"""A fake Telegram Bot API on 127.0.0.1 that the real python-telegram-bot talks to.

Pointing PTB at it: PTB appends the token to ``base_url`` and posts to
``{base_url}{token}/{method}`` as a form, every non-string value JSON-encoded (see
``telegram/_bot.py`` and ``telegram/request/_requestparameter.py``)::

    with FakeTelegram() as fake:
        async with fake.bot() as bot:  # = Bot(fake.token, base_url=fake.base_url), no env proxy
            ...
        app = ApplicationBuilder().token(fake.token).base_url(fake.base_url).updater(None).build()

What it answers, in the Bot API's own shapes (``{"ok": true, "result": ...}`` and
``{"ok": false, "error_code": ..., "description": ...}``): ``getMe``, ``sendMessage``,
``setWebhook``/``deleteWebhook``/``getWebhookInfo``, ``getUpdates`` (updates queued with
``queue_update``/``queue_text``) and any method given a canned result with ``answer()``. A wrong
token gets 401 and an unknown method 404, as from Telegram.

Faults (``fail_next``/``fault_rate``/``block_chat``) and what PTB 22 raises for them:

- ``"429"``: ``telegram.error.RetryAfter``. Its ``retry_after`` is a ``timedelta`` only with the
  environment variable ``PTB_TIMEDELTA=1``; without it PTB 22.8 emits a ``PTBDeprecationWarning``
  while *building* the exception, which ``filterwarnings = error`` turns into the error raised.
- ``"403"`` and ``block_chat``: ``telegram.error.Forbidden`` ("Forbidden: bot was blocked by the
  user"); nothing is recorded as sent.
- ``"500"``: ``telegram.error.NetworkError`` (the description is the message).
- ``"drop_before"``/``"drop_after"``: ``NetworkError("httpx.RemoteProtocolError: ...")``; after
  ``drop_after`` the message *is* in ``sent``: the caller cannot know.
- ``"slow"``: the request is processed at once, the answer waits ``slow_seconds``; with a shorter
  read timeout PTB raises ``telegram.error.TimedOut`` (a ``NetworkError``).
- wrong token: ``telegram.error.InvalidToken``; unknown method through ``do_api_request``:
  ``telegram.error.EndPointNotFound``; ``getUpdates`` while a webhook is set:
  ``telegram.error.Conflict``; empty or too long text: ``telegram.error.BadRequest``.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from telegram import Bot
from telegram.request import HTTPXRequest

from tests.fakes.http import DROP, FakeHTTPServer, FaultPlan, Reply, Request

FAULT_KINDS = ("500", "429", "403", "slow", "drop_before", "drop_after")
DEFAULT_TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijklm"
MAX_TEXT_LENGTH = 4096
BLOCKED = "Forbidden: bot was blocked by the user"

# Parameters that stay strings even when they look like JSON (text "42" is text, not a number).
_STRING_PARAMS = frozenset(
    {"text", "caption", "url", "secret_token", "parse_mode", "ip_address", "certificate"}
)
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_PATH = re.compile(r"/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)")

Params = dict[str, Any]
Result = tuple[int, dict[str, Any]]  # HTTP status and the Bot API's JSON answer


def ok(result: object, description: str | None = None) -> Result:
    answer: dict[str, Any] = {"ok": True, "result": result}
    if description:
        answer["description"] = description
    return 200, answer


def error(code: int, description: str, **parameters: object) -> Result:
    answer: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        answer["parameters"] = parameters
    return code, answer


class FakeTelegram(FakeHTTPServer):
    """The Bot API for one bot, with the calls it got and the messages it "sent"."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, username: str = "stifinder_test_bot") -> None:
        super().__init__()
        self.token = token
        self.username = username
        self.retry_after = 1  # seconds named in a "429" fault
        self.slow_seconds = 1.0  # how long a "slow" fault holds the answer
        self.max_poll_seconds = 1.0  # caps getUpdates' long poll so tests stay quick
        self._faults = FaultPlan(FAULT_KINDS)
        self._cond = threading.Condition()  # guards everything below; wakes long polls
        self._calls: list[tuple[str, Params]] = []
        self._sent: list[dict[str, Any]] = []
        self._faults_served: list[tuple[str, str]] = []
        self._blocked: set[int | str] = set()
        self._message_ids: dict[int | str, itertools.count[int]] = {}
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._webhook: dict[str, Any] | None = None
        self._canned: dict[str, object] = {}
        self._methods: dict[str, Callable[[Params], Result]] = {
            "getMe": lambda _params: ok(self.bot_user()),
            "sendMessage": self._send_message,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
        }

    # -- set-up from tests ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """For ``Bot(token, base_url=...)`` and ``ApplicationBuilder().base_url(...)``."""
        return f"{self.url}/bot"

    def bot(self, *, read_timeout: float = 5.0, token: str | None = None) -> Bot:
        """A real ``telegram.Bot`` aimed at this fake: ``async with fake.bot() as bot: ...``."""

        def request() -> HTTPXRequest:
            # trust_env=False: a proxy named in the environment must not catch 127.0.0.1.
            return HTTPXRequest(read_timeout=read_timeout, httpx_kwargs={"trust_env": False})

        return Bot(
            token or self.token,
            base_url=self.base_url,
            request=request(),
            get_updates_request=request(),
        )

    def answer(self, method: str, result: object) -> None:
        """Answer ``method`` with ``{"ok": true, "result": result}`` (built in or not)."""
        with self._cond:
            self._canned[method.lower()] = result

    def fail_next(self, method: str, kind: str, count: int = 1) -> None:
        """The next ``count`` calls of ``method`` get fault ``kind`` (see the module docstring)."""
        self._faults.fail_next(self._canonical(method), kind, count)

    def fault_rate(
        self,
        rate: float,
        kinds: Iterable[str] = ("500", "429"),
        seed: int = 0,
        methods: Iterable[str] | None = ("sendMessage",),
    ) -> None:
        """Fail a random share of calls (reproducible by ``seed``); ``methods=None``: all."""
        keys = None if methods is None else [self._canonical(m) for m in methods]
        self._faults.fault_rate(rate, kinds, seed, keys)

    def clear_faults(self) -> None:
        self._faults.clear()

    def block_chat(self, chat_id: int | str) -> None:
        """Every sendMessage to this chat answers 403, as when the user blocked the bot."""
        with self._cond:
            self._blocked.add(_chat_key(chat_id))

    def unblock_chat(self, chat_id: int | str) -> None:
        with self._cond:
            self._blocked.discard(_chat_key(chat_id))

    def queue_update(self, update: dict[str, Any]) -> int:
        """Queue an Update for getUpdates; an ``update_id`` is assigned if missing."""
        with self._cond:
            update = dict(update)
            update.setdefault("update_id", self._next_update_id)
            self._next_update_id = max(self._next_update_id, int(update["update_id"])) + 1
            self._updates.append(update)
            self._cond.notify_all()
            return int(update["update_id"])

    def queue_text(
        self, chat_id: int, text: str, *, first_name: str = "Test", username: str | None = None
    ) -> int:
        """Queue a private text message from user ``chat_id``, shaped like Telegram's."""
        user: dict[str, Any] = {"id": chat_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        chat = {key: value for key, value in user.items() if key != "is_bot"} | {"type": "private"}
        with self._cond:
            message_id = next(self._counter(chat_id))
        message = {
            "message_id": message_id,
            "from": user,
            "chat": chat,
            "date": int(time.time()),
            "text": text,
        }
        if text.startswith("/"):  # Telegram marks commands, which PTB's CommandHandler needs
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self.queue_update({"message": message})

    # -- what tests read ------------------------------------------------------------------------

    @property
    def calls(self) -> list[tuple[str, Params]]:
        """Every authorised call, faulted ones included: (method, decoded parameters)."""
        with self._cond:
            return list(self._calls)

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Messages Telegram would have delivered: the sendMessage parameters plus message_id."""
        with self._cond:
            return [dict(message) for message in self._sent]

    @property
    def faults_served(self) -> list[tuple[str, str]]:
        """(method, fault kind) for every fault injected so far."""
        with self._cond:
            return list(self._faults_served)

    @property
    def webhook(self) -> dict[str, Any] | None:
        """The webhook as set: url, secret_token, allowed_updates, max_connections."""
        with self._cond:
            return None if self._webhook is None else dict(self._webhook)

    def bot_user(self) -> dict[str, Any]:
        return {
            "id": int(self.token.split(":")[0]),
            "is_bot": True,
            "first_name": "Stifinder",
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    # -- the protocol ---------------------------------------------------------------------------

    def stop(self) -> None:
        with self._cond:
            self._cond.notify_all()  # ends long polls now rather than after their timeout
        super().stop()

    def handle(self, request: Request) -> Reply:
        match = _PATH.fullmatch(request.path)
        if match is None:
            return _reply(error(404, "Not Found"))
        if match["token"] != self.token:
            return _reply(error(401, "Unauthorized"))
        method = self._canonical(match["method"])
        params = _decode({**request.query, **request.form()})
        with self._cond:
            self._calls.append((method, params))
        handler = self._handler(method)
        if handler is None:
            return _reply(error(404, "Not Found"))
        fault = self._faults.draw(method)
        if fault is not None:
            with self._cond:
                self._faults_served.append((method, fault))
        if fault == "drop_before":
            return DROP  # never processed: nothing is sent
        if fault in ("500", "429", "403"):
            return _reply(self._fault_result(fault))
        reply = _reply(handler(params))
        if fault == "drop_after":
            return replace(reply, drop=True)  # processed (maybe sent), but no answer
        if fault == "slow":
            return replace(reply, delay=self.slow_seconds)
        return reply

    def _handler(self, method: str) -> Callable[[Params], Result] | None:
        with self._cond:
            # A canned answer overrides the built-in one, so a test can reshape e.g. getMe.
            if method.lower() in self._canned:
                result = self._canned[method.lower()]
                return lambda _params: ok(result)
        return self._methods.get(method)

    def _fault_result(self, kind: str) -> Result:
        if kind == "429":
            seconds = self.retry_after
            return error(429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)
        if kind == "403":
            return error(403, BLOCKED)
        return error(500, "Internal Server Error")

    def _send_message(self, params: Params) -> Result:
        chat_id, text = params.get("chat_id"), params.get("text")
        if chat_id in (None, ""):
            return error(400, "Bad Request: chat_id is empty")
        if not isinstance(text, str) or not text.strip():
            return error(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT_LENGTH:
            return error(400, "Bad Request: message is too long")
        key = _chat_key(chat_id)
        with self._cond:
            if key in self._blocked:
                return error(403, BLOCKED)
            message_id = next(self._counter(key))
            date = int(time.time())
            self._sent.append({**params, "chat_id": key, "message_id": message_id, "date": date})
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": self.bot_user(),
            "chat": _chat(key),
            "date": date,
            "text": text,
        }
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # Telegram echoes inline keyboards only
        return ok(message)

    def _get_updates(self, params: Params) -> Result:
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        wait = min(float(params.get("timeout") or 0), self.max_poll_seconds)
        deadline = time.monotonic() + wait
        with self._cond:
            if self._webhook is not None:
                return error(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            # An offset confirms (forgets) every update before it; a negative one keeps the last.
            if offset > 0:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            elif offset < 0:
                self._updates = self._updates[offset:]
            while not self._updates and not self.stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return ok(self._updates[:limit])

    def _set_webhook(self, params: Params) -> Result:
        url = params.get("url") or ""
        secret = params.get("secret_token")
        if not url:
            return self._delete_webhook(params)
        if not str(url).startswith("https://"):
            return error(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        if secret is not None and not _SECRET_TOKEN.fullmatch(str(secret)):
            return error(400, "Bad Request: secret token contains unallowed characters")
        with self._cond:
            already = self._webhook is not None and self._webhook["url"] == url
            self._webhook = {
                "url": url,
                "secret_token": secret,
                "allowed_updates": params.get("allowed_updates"),
                "max_connections": params.get("max_connections", 40),
            }
            if params.get("drop_pending_updates"):
                self._updates.clear()
        return ok(True, "Webhook is already set" if already else "Webhook was set")

    def _delete_webhook(self, params: Params) -> Result:
        with self._cond:
            existed = self._webhook is not None
            self._webhook = None
            if params.get("drop_pending_updates"):
                self._updates.clear()
        return ok(True, "Webhook was deleted" if existed else "Webhook is already deleted")

    def _get_webhook_info(self, _params: Params) -> Result:
        with self._cond:
            info: dict[str, Any] = {
                "url": "",
                "has_custom_certificate": False,
                "pending_update_count": len(self._updates),
            }
            if self._webhook is not None:
                info |= {
                    "url": self._webhook["url"],
                    "max_connections": self._webhook["max_connections"],
                    "ip_address": "127.0.0.1",
                }
                if self._webhook["allowed_updates"] is not None:
                    info["allowed_updates"] = self._webhook["allowed_updates"]
        return ok(info)

    def _counter(self, chat: int | str) -> itertools.count[int]:
        # Message ids count per chat, as Telegram's do in private chats. Caller holds the lock.
        return self._message_ids.setdefault(chat, itertools.count(1))

    def _canonical(self, method: str) -> str:
        # Bot API method names are case-insensitive.
        for known in self._methods:
            if known.lower() == method.lower():
                return known
        return method


def _reply(result: Result) -> Reply:
    status, payload = result
    return Reply.json(status, payload)


def _decode(raw: dict[str, str]) -> Params:
    """PTB JSON-encodes every non-string value; undo that, except for known string fields."""
    params: Params = {}
    for key, value in raw.items():
        if key in _STRING_PARAMS:
            params[key] = value
            continue
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def _chat_key(chat_id: object) -> int | str:
    """Chat ids as ints when numeric, so 42 and "42" are the same chat."""
    if isinstance(chat_id, int):
        return chat_id
    text = str(chat_id)
    return int(text) if text.lstrip("-").isdigit() else text


def _chat(chat_id: int | str) -> dict[str, Any]:
    if isinstance(chat_id, str):  # "@channelname"
        username = chat_id.lstrip("@")
        return {"id": -1001000000001, "type": "channel", "title": "Test", "username": username}
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": "Test"}
    kind = "supergroup" if str(chat_id).startswith("-100") else "group"
    return {"id": chat_id, "type": kind, "title": "Test group"}
