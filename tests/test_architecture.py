"""The dependency direction of ARCHITECTURE.md, read from the imports themselves."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    # dialogs/ is the pure core: no I/O frameworks, no outer layers.
    "dialogs": {
        "bot",
        "storage",
        "sqlalchemy",
        "fastapi",
        "starlette",
        "telegram",
        "twilio",
        "httpx",
        "alembic",
        "apscheduler",
        "uvicorn",
        "typer",
        "jinja2",
        "psycopg",
    },
    # storage/ may use dialogs' types but never the runtime or the channels.
    "storage": {
        "bot",
        "fastapi",
        "starlette",
        "telegram",
        "twilio",
        "apscheduler",
        "uvicorn",
        "typer",
        "jinja2",
    },
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layer_imports_only_what_it_may(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & FORBIDDEN[package])
        for path in sorted((ROOT / package).rglob("*.py"))
        if _imports(path) & FORBIDDEN[package]
    }
    assert offenders == {}


def test_the_check_itself_sees_imports() -> None:
    assert _imports(ROOT / "bot" / "runtime.py") >= {"bot", "storage"}
