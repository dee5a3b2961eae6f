"""The composition root: settings are read once, and everything else is built from them here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from bot.campaigns import Campaigns
from bot.channels import ChannelAdapter
from bot.channels.simulator import SimulatorChannel
from bot.channels.sms import TwilioChannel, twilio_client, twilio_sending_client
from bot.channels.telegram import TelegramChannel, telegram_bot
from bot.conversations import DIALOG_TIMEOUT, Conversations
from bot.followups import FollowUps
from bot.group_writer import GroupWriter
from bot.inbound import Inbound
from bot.lexicons import all_lexicons
from bot.metrics import Metrics
from bot.notify import Notifier
from bot.outbox import Dispatcher, Limits
from bot.pump import Pump
from bot.retention import handlers as retention_handlers
from bot.settings import Settings
from bot.web.paths import TWILIO_STATUS_PATH
from bot.worker import Handler, Worker, default_worker_id
from dialogs.engine import Engine
from dialogs.flows import CORE_DIALOGS
from dialogs.types import Channel
from storage import inbound as inbound_events
from storage.db import Database

# How long a running worker's campaign job keeps topping up the outbox before it yields.
FEED_SECONDS = 2.0


@dataclass
class Runtime:
    settings: Settings
    database: Database
    metrics: Metrics = field(default_factory=Metrics)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        return cls(settings=settings, database=Database(settings.database_url))

    @cached_property
    def engine(self) -> Engine:
        return Engine(CORE_DIALOGS)

    @cached_property
    def conversations(self) -> Conversations:
        return Conversations(
            database=self.database,
            engine=self.engine,
            sms_lookalikes=self.settings.sms_gsm7_lookalikes,
        )

    @cached_property
    def inbound(self) -> Inbound:
        return Inbound(
            database=self.database,
            conversations=self.conversations,
            lexicons=all_lexicons,
            default_language=self.settings.default_language,
        )

    def adapters(self) -> dict[Channel, ChannelAdapter]:
        """The simulator always; Telegram and SMS when their credentials are configured."""
        settings = self.settings
        adapters: dict[Channel, ChannelAdapter] = {Channel.SIMULATOR: SimulatorChannel()}
        if settings.telegram_bot_token is not None:
            adapters[Channel.TELEGRAM] = TelegramChannel(telegram_bot(settings))
        if settings.sms_enabled:
            adapters[Channel.SMS] = TwilioChannel(
                twilio_client(settings),
                from_number=settings.twilio_from_number,
                messaging_service_sid=settings.twilio_messaging_service_sid,
                status_callback=f"{settings.public_base_url.rstrip('/')}{TWILIO_STATUS_PATH}",
                validity_period=settings.sms_validity_seconds,
                gsm7_lookalikes=settings.sms_gsm7_lookalikes,
                sending=twilio_sending_client(settings),
            )
        return adapters

    @cached_property
    def dispatcher(self) -> Dispatcher:
        settings = self.settings
        return Dispatcher(
            database=self.database,
            adapters=self.adapters(),
            metrics=self.metrics,
            limits=Limits(
                telegram_per_second=settings.telegram_messages_per_second,
                sms_segments_per_second=settings.sms_segments_per_second,
            ),
            worker_id=default_worker_id(),
            sending_lease=timedelta(seconds=settings.sending_lease_seconds),
        )

    @cached_property
    def campaigns(self) -> Campaigns:
        return Campaigns(
            database=self.database,
            conversations=self.conversations,
            engine=self.engine,
            worker_id=default_worker_id(),
        )

    @cached_property
    def inbound_writer(self) -> GroupWriter:
        statement = inbound_events.insert_statement(self.database.dialect)
        return GroupWriter(self.database.engine, statement)

    @cached_property
    def pump(self) -> Pump:
        pump = Pump([self.inbound.process_pending, self.dispatcher.dispatch_due])
        # A status callback can overtake the recording of its send: it waits, and the pump
        # goes round once more when a send is recorded.
        self.dispatcher.on_recorded = pump.kick
        return pump

    @cached_property
    def notifier(self) -> Notifier:
        return Notifier(self.settings)

    def handlers(self) -> dict[str, Handler]:
        """The scheduled-item kinds this installation runs, by kind."""
        return {
            DIALOG_TIMEOUT: self.conversations.handle_timeout_item,
            **FollowUps(self.conversations).handlers(),
            **self.campaigns.handlers(),
            **self.notifier.handlers(),
            **retention_handlers(),
        }

    def worker(self) -> Worker:
        feeding = min(self.settings.worker_poll_seconds, FEED_SECONDS)

        def feed_campaigns() -> int:
            # While the dispatcher drains the outbox (here and in other workers), top the
            # campaign backlog up as it empties and wake the pump to send at once, instead of
            # waiting for the next poll on either side.
            return self.campaigns.send_due(wait_seconds=feeding, on_queued=self.pump.kick)

        return Worker(
            database=self.database,
            metrics=self.metrics,
            handlers=self.handlers(),
            poll_seconds=self.settings.worker_poll_seconds,
            lease=timedelta(seconds=self.settings.worker_lease_seconds),
            after_sweep=[
                self.inbound.process_pending,
                self.campaigns.send_due,
                self.dispatcher.dispatch_due,
            ],
            running=[
                self.inbound.process_pending,
                feed_campaigns,
                self.dispatcher.dispatch_due,
            ],
        )

    def close(self) -> None:
        if "inbound_writer" in self.__dict__:
            self.inbound_writer.stop()
        if "pump" in self.__dict__:
            self.pump.stop()
        if "dispatcher" in self.__dict__:
            self.dispatcher.close()
        self.database.dispose()
