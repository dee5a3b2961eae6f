"""The browser fixtures catch what they promise to: foreign requests, script and console errors,
axe-core violations, invisible focus and sideways scrolling."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page

from tests.browser import (
    PHONE,
    Keyboard,
    LiveApp,
    PageGuard,
    axe_check,
    horizontal_overflow,
    is_local,
    open_context,
)

pytestmark = pytest.mark.browser

BARE = (
    '<!doctype html><html lang="da"><head><title>Prøve</title></head>'
    "<body><main>{}</main></body></html>"
)


def test_only_127_0_0_1_counts_as_local() -> None:
    assert is_local("http://127.0.0.1:8000/static/stifinder.css")
    assert is_local("ws://127.0.0.1:8000/live")
    assert is_local("data:image/png;base64,AAAA")
    assert not is_local("http://localhost:8000/")
    assert not is_local("https://cdn.example.com/htmx.min.js")
    assert not is_local("http://127.0.0.1.example.com/")


def test_a_request_to_another_host_is_blocked_and_reported(browser: Browser) -> None:
    guard = PageGuard()
    context = open_context(browser, guard)
    try:
        page = context.new_page()
        # Stifinder's pages forbid this in their Content Security Policy; a blank page does not.
        page.set_content(BARE.format('<img src="http://example.invalid/pixel.png" alt="">'))
    finally:
        context.close()
    assert guard.foreign_requests == ["http://example.invalid/pixel.png"]
    assert guard.problems()[0] == (
        "requested a URL not on 127.0.0.1: http://example.invalid/pixel.png"
    )


def test_a_script_the_policy_refuses_and_a_script_error_are_reported(
    browser: Browser, live_app: LiveApp
) -> None:
    guard = PageGuard()
    context = open_context(browser, guard)
    try:
        page = context.new_page()
        page.goto(live_app.at("/"))
        page.evaluate(
            """() => {
              const script = document.createElement("script");
              script.src = "https://cdn.example.com/htmx.min.js";
              document.head.appendChild(script);
              setTimeout(() => { throw new Error("boom"); }, 0);
            }"""
        )
        page.wait_for_timeout(200)
    finally:
        context.close()
    problems = guard.problems()
    assert any("Content Security Policy" in p for p in problems), problems
    assert "uncaught script error: Error: boom" in problems


def test_axe_check_fails_with_a_readable_report(page: Page) -> None:
    page.set_content(BARE.format('<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'))
    with pytest.raises(pytest.fail.Exception) as failure:
        axe_check(page)
    report = str(failure.value)
    assert "[critical] image-alt: Images must have alternative text" in report
    assert "at img" in report


def test_best_practices_outside_wcag_are_not_checked(page: Page) -> None:
    # Skipping a heading level is axe's "heading-order", a best practice but no WCAG failure.
    page.set_content(BARE.format("<h1>Et</h1><h3>Tre</h3>"))
    assert axe_check(page) == []


def test_tabbing_fails_where_focus_cannot_be_seen(page: Page) -> None:
    page.set_content(BARE.format('<button style="outline: none">Gem</button>'))
    with pytest.raises(pytest.fail.Exception, match='focus is not visible on button "Gem"'):
        Keyboard(page).tab_to("button")


def test_tabbing_fails_when_the_target_is_never_reached(page: Page) -> None:
    page.set_content(BARE.format('<a href="#a">A</a><div id="x">no stop</div>'))
    with pytest.raises(pytest.fail.Exception, match="#x was not reached in 3 presses"):
        Keyboard(page).tab_to("#x", limit=3)


def test_sideways_scrolling_is_measured(page: Page) -> None:
    page.set_viewport_size(PHONE)
    page.set_content(BARE.format('<div style="width: 500px">bred</div>'))
    assert horizontal_overflow(page) == 8 + 500 - PHONE["width"]  # the body's margin is 8px
