"""Every table of Stifinder; importing this package registers them all on ``Base.metadata``."""

from storage.models.audit import AuditEvent
from storage.models.auth import SignInThrottle, StaffSession
from storage.models.base import Base, utcnow
from storage.models.console import DialogTextOverride, ImportDraft
from storage.models.conversation import Conversation, Handoff, InboundEvent, Message
from storage.models.inbox import CannedReply, StaffNote
from storage.models.people import AppendOnlyError, ConsentEvent, YoungPerson, YoungPersonTag
from storage.models.plan import Dream, Goal, Meeting, SubGoal
from storage.models.scheduling import (
    Campaign,
    CampaignRecipient,
    KuiCase,
    OutboxEntry,
    ScheduledItem,
    StaffAlert,
)
from storage.models.tenants import DEFAULT_HELP_LINES, Municipality, StaffUser
from storage.models.tokens import ApiToken

__all__ = [
    "DEFAULT_HELP_LINES",
    "ApiToken",
    "AppendOnlyError",
    "AuditEvent",
    "Base",
    "Campaign",
    "CampaignRecipient",
    "CannedReply",
    "ConsentEvent",
    "Conversation",
    "DialogTextOverride",
    "Dream",
    "Goal",
    "Handoff",
    "ImportDraft",
    "InboundEvent",
    "KuiCase",
    "Meeting",
    "Message",
    "Municipality",
    "OutboxEntry",
    "ScheduledItem",
    "SignInThrottle",
    "StaffAlert",
    "StaffNote",
    "StaffSession",
    "StaffUser",
    "SubGoal",
    "YoungPerson",
    "YoungPersonTag",
    "utcnow",
]
