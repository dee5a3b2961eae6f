"""The core dialogs. Danish is the source text; every text is translated through the catalogs."""

from __future__ import annotations

from dialogs.flows.dreams import DREAMS
from dialogs.flows.meeting import MEETING_REMINDER
from dialogs.flows.no_show import NO_SHOW_FOLLOW_UP
from dialogs.flows.silence import SILENCE_FOLLOW_UP
from dialogs.flows.subgoal import SUB_GOAL_CHECK_IN
from dialogs.flows.welcome import WELCOME
from dialogs.model import Dialog

CORE_DIALOGS: tuple[Dialog, ...] = (
    WELCOME,
    DREAMS,
    MEETING_REMINDER,
    SUB_GOAL_CHECK_IN,
    SILENCE_FOLLOW_UP,
    NO_SHOW_FOLLOW_UP,
)
