"""Sub-goal check-in: done, under way, or need help (a person takes over)."""

from __future__ import annotations

from dialogs.i18n import N_
from dialogs.model import Ask, AskKind, Dialog, Do, End, HandOff, Option, SubGoalStatusSpec
from dialogs.types import GoalStatus, HandoffReason

SUB_GOAL_CHECK_IN = Dialog(
    name="sub_goal_check_in",
    start="how",
    requires=("sub_goal_id", "title"),
    description="Ask how a sub-goal (delmål) is going.",
    steps=(
        Ask(
            "how",
            AskKind.CHOICE,
            N_(
                'Hej {first_name}. Hvordan går det med "{title}"? Svar 1 hvis det er klaret, '
                "2 hvis du er i gang, eller 3 hvis du har brug for hjælp."
            ),
            rephrase=N_("Svar bare 1 (klaret), 2 (i gang) eller 3 (brug for hjælp)."),
            options=(
                Option(("done",), "done"),
                Option(("under_way",), "under_way"),
                Option(("need_help",), "help"),
            ),
        ),
        Do("done", SubGoalStatusSpec(GoalStatus.DONE), next="well_done"),
        End("well_done", N_("Flot klaret! Det er et rigtig godt skridt.")),
        Do("under_way", SubGoalStatusSpec(GoalStatus.UNDER_WAY), next="keep_going"),
        End("keep_going", N_("Godt at høre. Jeg spørger igen om lidt tid.")),
        Do("help", SubGoalStatusSpec(GoalStatus.NEEDS_HELP), next="hand_off"),
        HandOff("hand_off", HandoffReason.NEEDS_HELP),
    ),
)
