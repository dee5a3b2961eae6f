"""The simulator channel: talk to the bot with no Telegram or Twilio account.

Delivery is immediate: the message is stored, so the simulator's page, API and CLI read it back.
It goes through the same engine, storage, outbox and dispatcher as the real channels.
"""

from __future__ import annotations

from datetime import datetime

from bot.channels import Delivery, SendResult
from dialogs.types import Channel, DeliveryStatus


class SimulatorChannel:
    channel = Channel.SIMULATOR

    async def send(self, delivery: Delivery) -> SendResult:
        return SendResult(DeliveryStatus.DELIVERED, provider_id=f"sim-{delivery.message_id}")

    async def reconcile(self, delivery: Delivery, since: datetime) -> SendResult | None:
        return None

    async def close(self) -> None:
        return None
