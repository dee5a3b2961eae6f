"""Channels: one small interface, one adapter per way of reaching a young person.

The dispatcher hands an adapter a :class:`Delivery` and gets a :class:`SendResult` back; nothing
else in Stifinder knows how Telegram, Twilio or the simulator work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dialogs.types import Channel, DeliveryStatus


@dataclass(frozen=True)
class Delivery:
    message_id: int
    young_person_id: int
    text: str
    phone: str | None
    telegram_chat_id: int | None


@dataclass(frozen=True)
class SendResult:
    status: DeliveryStatus
    provider_id: str | None = None
    error_code: str | None = None


class ChannelAdapter(Protocol):
    channel: Channel

    async def send(self, delivery: Delivery) -> SendResult: ...
