"""Mermaid diagrams of the dialogs (``stifinder dialogs draw``)."""

from __future__ import annotations

from dialogs.model import Ask, AskKind, Branch, Dialog, Do, End, HandOff, Say, SetVar, Step, Wait


def _id(name: str) -> str:
    return "s_" + "".join(ch if ch.isalnum() else "_" for ch in name)


def _label(step: Step) -> str:
    kind = type(step).__name__
    if isinstance(step, Ask):
        kind = f"Ask {step.kind.value}"
    if isinstance(step, HandOff):
        kind = f"HandOff {step.reason.value}"
    if isinstance(step, Do):
        kind = f"Do {type(step.effect).__name__.removesuffix('Spec')}"
    return f"{step.name}<br/><i>{kind}</i>"


def mermaid(dialog: Dialog) -> str:
    lines = [f"%% {dialog.name}: {dialog.description}", "flowchart TD"]
    lines.append(f'    start(("start")) --> {_id(dialog.start)}')
    for step in dialog.steps:
        shape = ("([", "])") if isinstance(step, End | HandOff) else ("[", "]")
        lines.append(f'    {_id(step.name)}{shape[0]}"{_label(step)}"{shape[1]}')
    for step in dialog.steps:
        source = _id(step.name)
        match step:
            case Say() | SetVar() | Do():
                lines.append(f"    {source} --> {_id(step.next)}")
            case Ask():
                for number, option in enumerate(step.options, start=1):
                    label = f"{number}: {' / '.join(option.intents)}"
                    lines.append(f'    {source} -- "{label}" --> {_id(option.next)}')
                if step.next is not None and (step.kind is not AskKind.CHOICE):
                    lines.append(f'    {source} -- "{step.kind.value}" --> {_id(step.next)}')
                if step.on_timeout is not None and step.timeout is not None:
                    lines.append(
                        f'    {source} -. "after {step.timeout}" .-> {_id(step.on_timeout)}'
                    )
            case Branch():
                for value, target in step.cases.items():
                    lines.append(f'    {source} -- "{step.var} = {value}" --> {_id(target)}')
                lines.append(f'    {source} -- "otherwise" --> {_id(step.default)}')
            case Wait():
                lines.append(f'    {source} -- "reply" --> {_id(step.on_reply)}')
                lines.append(f'    {source} -. "after {step.timeout}" .-> {_id(step.on_timeout)}')
            case End():
                if step.then is not None:
                    lines.append(f'    {source} --> next_{step.then}[["{step.then}"]]')
            case HandOff():
                pass
    return "\n".join(lines) + "\n"
