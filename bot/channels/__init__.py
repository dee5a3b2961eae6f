"""Channels: one small interface, one adapter per way of reaching a young person.

The dispatcher hands an adapter a :class:`Delivery` and gets a :class:`SendResult` back, or one of
the errors below, which say what to do next; nothing else in Stifinder knows how Telegram, Twilio
or the simulator work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dialogs.types import Channel, DeliveryStatus


@dataclass(frozen=True)
class Delivery:
    message_id: int
    young_person_id: int | None
    text: str
    phone: str | None
    telegram_chat_id: int | None


@dataclass(frozen=True)
class SendResult:
    status: DeliveryStatus
    provider_id: str | None = None
    error_code: str | None = None


class ChannelError(Exception):
    """A send that did not succeed; the subclass says why and what may happen next."""

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.code = code


class RetryLater(ChannelError):  # noqa: N818 - names the instruction, not the failure
    """The provider could not take it now (429, 5xx, the request never went out)."""

    def __init__(self, detail: str, *, after: float | None = None, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.after = after


class OutcomeUnknown(ChannelError):  # noqa: N818
    """The request went out but no answer came back: it may or may not have been sent."""


class Unreachable(ChannelError):  # noqa: N818
    """This address cannot get messages (bot blocked, unknown handset, landline...)."""


class OptedOutAtProvider(ChannelError):  # noqa: N818
    """The provider refuses because the recipient opted out there (Twilio 21610)."""


class Rejected(ChannelError):  # noqa: N818
    """Refused for good for another reason (a bad request): retrying will not help."""


class ChannelAdapter(Protocol):
    channel: Channel

    async def send(self, delivery: Delivery) -> SendResult: ...

    async def reconcile(self, delivery: Delivery, since: datetime) -> SendResult | None:
        """After an unknown outcome: what the provider knows of this message, if it can tell."""
        ...

    async def close(self) -> None: ...
