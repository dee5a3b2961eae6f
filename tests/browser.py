"""Browser tests: the real app on a real port, driven by Playwright in Debian's headless Chromium.

Registered as a pytest plugin by ``tests/conftest.py``. What it gives a test:

- ``live_app``: the app served by uvicorn on 127.0.0.1 over a fresh, migrated SQLite database
  (``start_app`` builds one with other settings);
- ``page``: a fresh browser page whose requests are guarded: anything not on 127.0.0.1 is
  blocked, and so are uncaught script errors and console errors (a Content Security Policy
  violation is one); any of them fails the test when it ends;
- ``axe_check(page)``: runs axe-core in the page and fails on a "serious" or "critical" WCAG 2.1
  A/AA violation, with every violation printed;
- ``Keyboard``: Tab to an element and check that focus is visible on the way.

Chromium comes from Debian (``apt-get install chromium``), never from Playwright's downloads. Like
PostgreSQL, a missing or broken Chromium skips the browser tests with the reason, but fails them
with ``CI=true``. Every test that uses a browser is marked ``browser`` (``-m "not browser"`` leaves
them out).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    Playwright,
    Route,
    ViewportSize,
    WebSocket,
    sync_playwright,
)

from bot.runtime import Runtime
from bot.settings import Settings
from storage import migrate
from storage.db import Database
from tests.app_server import free_port, serving

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")
# Playwright's own launch flags already turn off background networking, component updates, sync
# and the first-run dialogs; these keep a root process in a container quiet as well.
CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic", "--disable-dev-shm-usage"]
PHONE: ViewportSize = {"width": 375, "height": 667}
LAPTOP: ViewportSize = {"width": 1280, "height": 800}
# Long enough for two shared cores under the whole suite, short enough to fail in good time.
TIMEOUT_MS = 15_000
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING_IMPACTS = ("serious", "critical")
LOCAL_HOST = "127.0.0.1"
INNOCENT_SCHEMES = frozenset({"data", "blob", "about"})


class BrowserUnavailableError(RuntimeError):
    pass


def find_chromium() -> Path:
    """Debian's Chromium, or ``STIFINDER_TEST_CHROMIUM`` if set."""
    explicit = os.environ.get("STIFINDER_TEST_CHROMIUM")
    if explicit:
        if not Path(explicit).exists():
            raise BrowserUnavailableError(f"STIFINDER_TEST_CHROMIUM={explicit} does not exist")
        return Path(explicit)
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return Path(found)
    raise BrowserUnavailableError(
        "no Chromium found (apt-get install chromium, or set STIFINDER_TEST_CHROMIUM)"
    )


def _unavailable(message: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"Chromium is required in CI: {message}")
    pytest.skip(f"Chromium not available: {message}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module.

    Module-scoped rather than session-scoped: Playwright's sync API keeps an event loop of its
    own on the main thread, and no other test module should run beside it.
    """
    try:
        executable = find_chromium()
    except BrowserUnavailableError as error:
        _unavailable(str(error))
    manager = sync_playwright()
    try:
        playwright: Playwright = manager.start()
    except Error as error:
        _unavailable(f"Playwright's driver did not start: {error.message.splitlines()[0]}")
    try:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
    except Error as error:
        manager.__exit__(None, None, None)
        _unavailable(f"{executable} did not start: {error.message.splitlines()[0]}")
    try:
        yield launched
    finally:
        launched.close()
        manager.__exit__(None, None, None)


def is_local(url: str) -> bool:
    """True for what a Stifinder page may load: its own host (127.0.0.1) and inline data."""
    parts = urlsplit(url)
    if parts.scheme in INNOCENT_SCHEMES:
        return True
    return parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname == LOCAL_HOST


@dataclass
class PageGuard:
    """What went wrong in a page: foreign requests, script errors, console errors."""

    foreign_requests: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    expected_console: list[re.Pattern[str]] = field(default_factory=list)

    def expect_console_error(self, pattern: str) -> None:
        """Let a test that provokes an error (a failed request, say) say which one it expects."""
        self.expected_console.append(re.compile(pattern))

    def on_route(self, route: Route) -> None:
        url = route.request.url
        if is_local(url):
            route.continue_()
        else:
            self.foreign_requests.append(url)
            route.abort("blockedbyclient")

    def on_websocket(self, socket: WebSocket) -> None:
        if not is_local(socket.url):
            self.foreign_requests.append(socket.url)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url', '?')})")

    def on_page_error(self, error: Error) -> None:
        self.page_errors.append(f"{error.name}: {error.message}")

    def problems(self) -> list[str]:
        found = [f"requested a URL not on {LOCAL_HOST}: {url}" for url in self.foreign_requests]
        found += [f"uncaught script error: {error}" for error in self.page_errors]
        found += [
            f"console error: {text}"
            for text in self.console_errors
            if not any(pattern.search(text) for pattern in self.expected_console)
        ]
        return found


def open_context(browser: Browser, guard: PageGuard, **options: Any) -> BrowserContext:
    """A browser context whose pages report to ``guard`` and reach nothing but 127.0.0.1."""
    options.setdefault("viewport", LAPTOP)
    options.setdefault("locale", "da-DK")
    context = browser.new_context(service_workers="block", **options)
    context.set_default_timeout(TIMEOUT_MS)
    context.route("**/*", guard.on_route)

    def watch(page: Page) -> None:
        page.on("websocket", guard.on_websocket)
        page.on("console", guard.on_console)
        page.on("pageerror", guard.on_page_error)

    context.on("page", watch)
    return context


@pytest.fixture
def page_guard() -> PageGuard:
    return PageGuard()


@pytest.fixture
def page(browser: Browser, page_guard: PageGuard) -> Iterator[Page]:
    """A fresh page at laptop size (``page.set_viewport_size(PHONE)`` for a phone).

    When the test ends, a request to another host, an uncaught script error or an unexpected
    console error fails it.
    """
    context = open_context(browser, page_guard)
    try:
        yield context.new_page()
    finally:
        context.close()
    problems = page_guard.problems()
    if problems:
        pytest.fail("the page misbehaved:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class LiveApp:
    url: str
    runtime: Runtime
    database: Database

    def at(self, path: str) -> str:
        return self.url + path


StartApp = Callable[..., AbstractContextManager[LiveApp]]


@pytest.fixture
def start_app(tmp_path: Path) -> StartApp:
    """``with start_app(**settings) as app:`` the app on a real port over a fresh SQLite file."""

    @contextmanager
    def start(**overrides: Any) -> Iterator[LiveApp]:
        values: dict[str, Any] = {
            "environment": "test",
            "secret_key": "t" * 40,
            "log_format": "json",
            "simulator_enabled": True,
        }
        values.update(overrides)
        port = free_port()
        values.setdefault("public_base_url", f"http://{LOCAL_HOST}:{port}")
        directory = Path(tmp_path) / f"app-{port}"
        directory.mkdir()
        database = Database(f"sqlite:///{directory / 'stifinder.db'}")
        migrate.upgrade(database.engine)
        runtime = Runtime(settings=Settings(**values), database=database)
        try:
            with serving(runtime, port) as url:
                yield LiveApp(url=url, runtime=runtime, database=database)
        finally:
            database.dispose()

    return start


@pytest.fixture
def live_app(start_app: StartApp) -> Iterator[LiveApp]:
    """The app with the simulator on, served on 127.0.0.1 for the length of one test."""
    with start_app() as app:
        yield app


@dataclass(frozen=True)
class Violation:
    id: str
    impact: str
    help: str
    help_url: str
    nodes: list[tuple[str, str]]

    def describe(self) -> str:
        lines = [f"[{self.impact}] {self.id}: {self.help} ({self.help_url})"]
        for target, summary in self.nodes:
            lines.append(f"    at {target}")
            lines += [f"      {line}" for line in summary.splitlines() if line.strip()]
        return "\n".join(lines)


def _axe_source() -> str:
    """axe-core's ``axe.min.js`` as bundled by the ``axe-playwright-python`` package (PyPI)."""
    return resources.files("axe_playwright_python").joinpath("axe.min.js").read_text("utf-8")


_AXE_RUN = """
async (tags) => {
  const results = await window.axe.run(document, {
    runOnly: { type: "tag", values: tags },
    resultTypes: ["violations"],
  });
  return {
    version: results.testEngine.version,
    violations: results.violations.map((v) => ({
      id: v.id,
      impact: v.impact || "unknown",
      help: v.help,
      helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => [n.target.join(" "), n.failureSummary || ""]),
    })),
  };
}
"""


def axe_violations(page: Page, *, tags: list[str] = WCAG_21_AA) -> list[Violation]:
    """Every axe-core violation of ``tags`` on the page as it is now.

    axe is evaluated through the DevTools protocol, which the page's Content Security Policy does
    not govern: the page itself still loads nothing but Stifinder's own files.
    """
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    result: dict[str, Any] = page.evaluate(_AXE_RUN, tags)
    return [
        Violation(
            id=v["id"],
            impact=v["impact"],
            help=v["help"],
            help_url=v["helpUrl"],
            nodes=[(str(target), str(summary)) for target, summary in v["nodes"]],
        )
        for v in result["violations"]
    ]


def axe_check(page: Page, *, impacts: tuple[str, ...] = BLOCKING_IMPACTS) -> list[Violation]:
    """Fail on any WCAG 2.1 A/AA violation of these impacts; return all violations found."""
    violations = axe_violations(page)
    blocking = [v for v in violations if v.impact in impacts]
    if blocking:
        report = "\n".join(v.describe() for v in blocking)
        pytest.fail(
            f"axe-core found {len(blocking)} {'/'.join(impacts)} violation(s) on {page.url}:\n"
            f"{report}",
            pytrace=False,
        )
    return violations


_DESCRIBE_FOCUS = """
() => {
  const element = document.activeElement;
  if (!element || element === document.body) { return null; }
  const style = window.getComputedStyle(element);
  const outlined = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  const shadowed = style.boxShadow && style.boxShadow !== "none";
  let name = element.tagName.toLowerCase();
  if (element.id) { name += "#" + element.id; }
  const label = (element.getAttribute("aria-label") || element.textContent || "").trim();
  if (label) { name += ' "' + label.slice(0, 40) + '"'; }
  return { name: name, visible: outlined || Boolean(shadowed) };
}
"""


@dataclass
class Keyboard:
    """Use a page with the keyboard alone, as someone who cannot use a mouse would."""

    page: Page
    visited: list[str] = field(default_factory=list)

    def focused(self) -> str | None:
        """The focused element as ``tag#id "label"``, or None when nothing is focused."""
        description = self.page.evaluate(_DESCRIBE_FOCUS)
        return None if description is None else str(description["name"])

    def tab_to(self, selector: str, *, limit: int = 40, backwards: bool = False) -> list[str]:
        """Press Tab until ``selector`` has focus, checking each stop shows a focus indicator.

        Returns the stops on the way (the tab order); fails with them if ``selector`` is never
        reached or a stop's focus cannot be seen.
        """
        target = self.page.locator(selector)
        key = "Shift+Tab" if backwards else "Tab"
        for _ in range(limit):
            self.page.keyboard.press(key)
            description = self.page.evaluate(_DESCRIBE_FOCUS)
            if description is None:
                continue
            self.visited.append(str(description["name"]))
            if not description["visible"]:
                pytest.fail(f"focus is not visible on {description['name']}", pytrace=False)
            if target.evaluate("element => element === document.activeElement"):
                return list(self.visited)
        pytest.fail(
            f"{selector} was not reached in {limit} presses of {key}; focus went to: "
            + ", ".join(self.visited),
            pytrace=False,
        )

    def type(self, text: str) -> None:
        self.page.keyboard.type(text)

    def press(self, key: str) -> None:
        self.page.keyboard.press(key)


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than its viewport (0 when nothing scrolls sideways)."""
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return int(overflow)


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test that uses a browser is a browser test, whether or not it says so.
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
