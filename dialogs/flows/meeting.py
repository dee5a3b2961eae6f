"""Meeting reminder: when, where, with whom; confirm, can't come, or a new time."""

from __future__ import annotations

from dialogs.i18n import N_
from dialogs.model import Ask, AskKind, Dialog, Do, End, HandOff, MeetingStatusSpec, Option, Say
from dialogs.types import HandoffReason, MeetingStatus


def ask_new_time(*, next: str) -> Ask:
    """ "When would suit you?", saved as ``proposed_at``: the same question wherever a meeting
    needs a new time."""
    return Ask(
        "when",
        AskKind.DATETIME,
        N_("Hvornår passer det dig? Skriv fx 'tirsdag kl 10' eller 'i morgen kl 13'."),
        rephrase=N_(
            "Det tidspunkt kunne jeg ikke læse. Prøv fx 'fredag kl 13' eller '24/11 kl 10'."
        ),
        save_as="proposed_at",
        next=next,
    )


MEETING_REMINDER = Dialog(
    name="meeting_reminder",
    start="remind",
    requires=("meeting_id", "meeting_at", "place", "with_whom"),
    description="Remind of a meeting and ask if the young person comes.",
    steps=(
        Say(
            "remind",
            N_("Hej {first_name}. Husk dit møde med {with_whom} {meeting}, {place}."),
            next="coming",
        ),
        Ask(
            "coming",
            AskKind.CHOICE,
            N_("Kommer du? Svar 1 for ja, 2 hvis du ikke kan, eller 3 hvis du vil have en ny tid."),
            rephrase=N_("Svar bare 1 (jeg kommer), 2 (jeg kan ikke) eller 3 (ny tid)."),
            options=(
                Option(("confirm", "yes"), "confirmed"),
                Option(("cannot_come", "no"), "cannot"),
                Option(("new_time",), "when"),
            ),
        ),
        Do("confirmed", MeetingStatusSpec(MeetingStatus.CONFIRMED), next="see_you"),
        End("see_you", N_("Super, tak! Vi ses.")),
        Do("cannot", MeetingStatusSpec(MeetingStatus.DECLINED), next="new_time"),
        Ask(
            "new_time",
            AskKind.CHOICE,
            N_("Øv, men tak fordi du siger det. Vil du have en ny tid?"),
            rephrase=N_("Svar ja, hvis du vil have en ny tid, eller nej, hvis ikke."),
            options=(Option(("yes", "new_time"), "when"), Option(("no",), "declined")),
        ),
        HandOff("declined", HandoffReason.DECLINED_MEETING),
        ask_new_time(next="wants_new_time"),
        Do(
            "wants_new_time",
            MeetingStatusSpec(MeetingStatus.NEW_TIME_WANTED, proposal_var="proposed_at"),
            next="agree",
        ),
        HandOff("agree", HandoffReason.DECLINED_MEETING, note_var="proposed_at"),
    ),
)
