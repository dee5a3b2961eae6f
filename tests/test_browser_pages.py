"""The pages that exist today, in a real headless Chromium: they load, pass axe-core, work with
the keyboard alone and at a phone's width, and load nothing from other hosts."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser import (
    PHONE,
    Keyboard,
    LiveApp,
    PageGuard,
    axe_check,
    horizontal_overflow,
)
from tests.people import add_mads

pytestmark = pytest.mark.browser


def _mads(app: LiveApp) -> int:
    with app.database.session() as session:
        return add_mads(session).id


def test_home_page_loads_in_danish_and_passes_axe(page: Page, live_app: LiveApp) -> None:
    response = page.goto(live_app.at("/"))
    assert response is not None and response.status == 200
    expect(page.locator("html")).to_have_attribute("lang", "da")
    expect(page.get_by_role("heading", level=1)).to_have_text("Stifinder kører")
    axe_check(page)


def test_home_page_in_english_and_right_to_left_arabic(page: Page, live_app: LiveApp) -> None:
    page.goto(live_app.at("/?lang=en"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    axe_check(page)
    page.goto(live_app.at("/?lang=ar"))
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    axe_check(page)


def test_skip_link_is_the_first_stop_and_moves_to_the_content(
    page: Page, live_app: LiveApp
) -> None:
    page.goto(live_app.at("/"))
    keyboard = Keyboard(page)
    assert keyboard.tab_to("a.skip") == ['a "Spring til indholdet"']
    expect(page.locator("a.skip")).to_be_in_viewport()
    keyboard.press("Enter")
    assert page.url.endswith("#main")


def test_simulator_list_passes_axe_and_leads_to_a_phone(page: Page, live_app: LiveApp) -> None:
    person = _mads(live_app)
    page.goto(live_app.at("/simulator"))
    axe_check(page)
    keyboard = Keyboard(page)
    keyboard.tab_to(f'a[href="/simulator/{person}"]')
    keyboard.press("Enter")
    page.wait_for_url(f"**/simulator/{person}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Du skriver som Mads")


def test_simulator_is_usable_with_the_keyboard_alone(page: Page, live_app: LiveApp) -> None:
    person = _mads(live_app)
    page.goto(live_app.at(f"/simulator/{person}"))
    axe_check(page)
    keyboard = Keyboard(page)
    keyboard.tab_to("#text")
    keyboard.type("hjælp")
    keyboard.press("Enter")
    thread = page.get_by_role("log")
    expect(thread.locator(".bubble.mine")).to_have_text(["hjælp"])
    expect(thread.locator(".bubble.bot").first).to_contain_text("Jeg er Stifinder")
    expect(page.locator("#text")).to_be_focused()
    expect(page.locator("#text")).to_have_value("")
    # With the conversation on screen, the page still passes.
    axe_check(page)


def test_simulator_tells_when_a_message_could_not_be_sent(
    page: Page, live_app: LiveApp, page_guard: PageGuard
) -> None:
    person = _mads(live_app)
    page.goto(live_app.at(f"/simulator/{person}"))
    page_guard.expect_console_error(r"status of 422")
    # More than an SMS webhook carries: the field stops it, so take its limit away first.
    page.locator("#text").evaluate("element => element.removeAttribute('maxlength')")
    page.locator("#text").fill("x" * 1601)
    page.locator("#text").press("Enter")
    expect(page.locator(".bubble.error")).to_have_text("Beskeden kunne ikke sendes. Prøv igen.")
    axe_check(page)


@pytest.mark.parametrize("path", ["/", "/simulator", "/simulator/{person}"])
def test_pages_fit_a_phone_without_sideways_scrolling(
    page: Page, live_app: LiveApp, path: str
) -> None:
    person = _mads(live_app)
    page.set_viewport_size(PHONE)
    page.goto(live_app.at(path.format(person=person)))
    if path == "/simulator/{person}":
        page.locator("#text").fill("Jeg vil gerne være tømrer, og så vil jeg have et kørekort ")
        page.locator("#text").press("Enter")
        expect(page.locator(".bubble.bot").first).to_be_visible()
        send = page.locator("#composer button").bounding_box()
        assert send is not None and send["x"] + send["width"] <= PHONE["width"]
    assert horizontal_overflow(page) == 0
    axe_check(page)
