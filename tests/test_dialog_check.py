"""``stifinder dialogs check`` and ``dialogs draw``: they pass on the shipped dialogs and catch
what they are for on broken ones."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from bot.dialog_check import run_check, samples, translation
from bot.lexicons import all_lexicons
from dialogs.check import check_structure, check_texts
from dialogs.draw import mermaid
from dialogs.flows import CORE_DIALOGS
from dialogs.i18n import N_
from dialogs.model import Ask, AskKind, Dialog, End, Option, Say, Wait

ROOT = Path(__file__).resolve().parent.parent


def test_the_shipped_dialogs_pass_in_every_language() -> None:
    assert [str(problem) for problem in run_check()] == []


def test_the_command_passes() -> None:
    result = CliRunner().invoke(app, ["dialogs", "check"], obj=object())
    assert result.exit_code == 0, result.output
    assert "dialogs ok" in result.output


BROKEN = Dialog(
    name="broken",
    start="hello",
    steps=(
        Say("hello", "Hej {first_name}, {nickname}!", next="question"),
        Ask(
            "question",
            AskKind.CHOICE,
            "Ja eller nej?",
            rephrase="Ja?",
            options=(Option(("yes",), "nowhere"),),
        ),
        Ask("free", AskKind.TEXT, "Skriv noget", rephrase="Noget?"),
        Wait("wait", timedelta(days=1), on_reply="question", on_timeout="bye"),
        End("bye"),
    ),
)


def test_structure_problems_are_found() -> None:
    found = {(p.step, p.kind, p.detail) for p in check_structure([BROKEN])}
    assert found == {
        ("hello", "unknown-variable", "nickname"),
        ("question", "unknown-target", "nowhere"),
        ("free", "dead-end", "no next step"),
        ("free", "unreachable", "no step leads here"),
        ("wait", "unreachable", "no step leads here"),
        ("bye", "unreachable", "no step leads here"),
    }


def test_text_problems_are_found() -> None:
    long_text = "Dette er en meget lang besked. " * 12
    dialog = Dialog(
        name="texts",
        start="a",
        steps=(
            Say("a", N_("Stifinder kører"), next="b"),
            Say("b", long_text, next="c"),
            Say("c", "Har du fået din kontanthjælp?", next="d"),
            End("d", "Hej 😊"),
        ),
    )
    problems = check_texts(
        [dialog],
        languages=["da", "en"],
        translation=translation,
        lexicons=all_lexicons(),
        samples=samples,
    )
    found = {(p.step, p.kind, p.language) for p in problems if p.dialog == "texts"}
    assert found == {
        ("b", "too-long", "da"),
        ("c", "sensitive-word", "da"),
        ("b", "missing-translation", "en"),
        ("c", "missing-translation", "en"),
        ("d", "missing-translation", "en"),
    }


def test_the_committed_diagrams_are_current() -> None:
    for dialog in CORE_DIALOGS:
        path = ROOT / "docs" / "dialogs" / f"{dialog.name}.mmd"
        assert path.read_text(encoding="utf-8") == mermaid(dialog), "run: stifinder dialogs draw"


def test_a_diagram_shows_every_step_and_option() -> None:
    drawing = mermaid(next(d for d in CORE_DIALOGS if d.name == "meeting_reminder"))
    assert drawing.splitlines()[1] == "flowchart TD"
    for step in ("remind", "coming", "confirmed", "cannot", "when", "agree"):
        assert f"s_{step}[" in drawing or f"s_{step}([" in drawing
    assert 's_coming -- "3: new_time" --> s_when' in drawing
