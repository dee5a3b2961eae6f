"""The shared vocabulary: what a channel, a status or a reason can be.

These enums are stored by value in the database (``storage``) and used by the runtime (``bot``);
they live here because the conversation core is the innermost layer.
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    SMS = "sms"
    TELEGRAM = "telegram"
    SIMULATOR = "simulator"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Author(StrEnum):
    YOUNG_PERSON = "young_person"
    BOT = "bot"
    STAFF = "staff"


class Role(StrEnum):
    KONTAKTPERSON = "kontaktperson"
    COORDINATOR = "coordinator"
    ADMIN = "admin"


class YoungPersonStatus(StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    PAUSED = "paused"
    OPTED_OUT = "opted_out"
    CLOSED = "closed"


class ConsentKind(StrEnum):
    CONSENT_GIVEN = "consent_given"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"


class ConsentSource(StrEnum):
    YOUNG_PERSON = "young_person"
    STAFF = "staff"
    PROVIDER = "provider"
    IMPORT = "import"


class Holder(StrEnum):
    """Who holds a conversation: while a human holds it, the bot stays silent."""

    BOT = "bot"
    WAITING_FOR_HUMAN = "waiting_for_human"
    HUMAN = "human"


class DeliveryStatus(StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    UNKNOWN = "unknown"


class DreamCategory(StrEnum):
    EDUCATION = "education"
    JOB = "job"
    LEISURE = "leisure"
    HOUSING = "housing"
    HEALTH = "health"
    NETWORK = "network"
    OTHER = "other"


class CaptureSource(StrEnum):
    DIALOG = "dialog"
    STAFF = "staff"
    IMPORT = "import"


class GoalStatus(StrEnum):
    PLANNED = "planned"
    UNDER_WAY = "under_way"
    NEEDS_HELP = "needs_help"
    DONE = "done"
    DROPPED = "dropped"


class MeetingStatus(StrEnum):
    PLANNED = "planned"
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    NEW_TIME_WANTED = "new_time_wanted"
    ATTENDED = "attended"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


class HandoffReason(StrEnum):
    ASKED = "asked"
    NOT_UNDERSTOOD = "not_understood"
    DECLINED_MEETING = "declined_meeting"
    CRISIS = "crisis"
    CAMPAIGN_REPLY = "campaign_reply"
    CANNOT_REACH = "cannot_reach"
    NEEDS_HELP = "needs_help"
    NO_SHOW = "no_show"


class HandoffPriority(StrEnum):
    URGENT = "urgent"
    NORMAL = "normal"


class HandoffStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    CANCELLED = "cancelled"


class RecipientStatus(StrEnum):
    PENDING = "pending"  # waiting for its due time (or for the campaign's rate)
    QUEUED = "queued"  # its message is in the outbox
    SENT = "sent"
    DELIVERED = "delivered"
    REPLIED = "replied"
    FAILED = "failed"
    SKIPPED = "skipped"


class ScheduledStatus(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    UNKNOWN = "unknown"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Purpose(StrEnum):
    """Why a message is sent; decides quiet hours and what may reach an opted-out person."""

    REPLY = "reply"  # an answer to a message just received: never deferred
    PROACTIVE = "proactive"  # on the bot's own initiative: deferred in quiet hours
    CRISIS = "crisis"  # help lines: never deferred, never withheld
    OPT_OUT = "opt_out"  # the one confirmation of a STOP
    STAFF = "staff"  # written by a staff member in the inbox


class InboundStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class Occupation(StrEnum):
    """What the young person is doing; a change to NONE under 18 starts the KUI deadlines."""

    EDUCATION = "education"
    JOB = "job"
    ACTIVITY = "activity"  # e.g. an FGU course, an internship, a municipal offer
    NONE = "none"


class AlertKind(StrEnum):
    """Something a staff member should act on; shown in the inbox (never sent to a young person)."""

    SUB_GOAL_OVERDUE = "sub_goal_overdue"
    KUI_CONTACT_DUE = "kui_contact_due"
    KUI_CONTACT_MISSED = "kui_contact_missed"
    KUI_OFFER_DUE = "kui_offer_due"
    KUI_OFFER_MISSED = "kui_offer_missed"
    HANDOFF_OPENED = "handoff_opened"
    HANDOFF_UNANSWERED = "handoff_unanswered"
