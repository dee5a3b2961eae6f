"""Sign-in and the staff pages in a real headless Chromium: every page, its error states included,
passes axe-core, works with the keyboard alone and fits a phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser import PHONE, Keyboard, LiveApp, PageGuard, axe_check, horizontal_overflow
from tests.staff_world import PASSWORD, World, build_world, email

pytestmark = pytest.mark.browser


def _world(app: LiveApp) -> World:
    with app.database.session() as session:
        return build_world(session)


def _sign_in(page: Page, app: LiveApp, who: str, password: str = PASSWORD) -> None:
    page.goto(app.at("/sign-in"))
    page.get_by_label("E-mailadresse").fill(email(who))
    page.get_by_label("Adgangskode").fill(password)
    page.get_by_role("button", name="Log ind").click()


def test_signing_in_and_out_with_the_keyboard_alone(page: Page, live_app: LiveApp) -> None:
    _world(live_app)
    page.goto(live_app.at("/sign-in"))
    axe_check(page)
    keyboard = Keyboard(page)
    keyboard.tab_to("#email")
    keyboard.type(email("karin"))
    keyboard.tab_to("#password")
    keyboard.type(PASSWORD)
    keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hej Karin Kontakt")
    axe_check(page)
    keyboard.tab_to("button.link-button")
    keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Du er logget ud.")
    page.goto(live_app.at("/staff"))
    assert "/sign-in?next=%2Fstaff" in page.url


def test_a_wrong_password_is_announced_and_tied_to_the_fields(
    page: Page, live_app: LiveApp, page_guard: PageGuard
) -> None:
    page_guard.expect_console_error(r"status of 400 .*/sign-in\)$")
    _world(live_app)
    _sign_in(page, live_app, "karin", "forkert")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("E-mailadressen eller adgangskoden er forkert.")
    expect(page.get_by_label("Adgangskode")).to_have_attribute("aria-describedby", "sign-in-error")
    axe_check(page)


@pytest.mark.parametrize("who", ["ada", "carsten", "karin"])
def test_every_staff_page_passes_axe_and_fits_a_phone(
    page: Page, live_app: LiveApp, page_guard: PageGuard, who: str
) -> None:
    page_guard.expect_console_error(r"status of 403 .*/admin\)$")  # Karin's refusal
    world = _world(live_app)
    _sign_in(page, live_app, who)
    pages = {
        "ada": ["/staff", "/admin", "/admin/staff", "/admin/staff/new"],
        "carsten": ["/staff", "/admin/staff", f"/admin/staff/{world.staff['ali']}"],
        "karin": ["/staff", "/admin"],  # the last one: the page that says no
    }[who]
    if who == "ada":
        pages.append(f"/admin/staff/{world.staff['ali']}")
    page.set_viewport_size(PHONE)
    for path in pages:
        page.goto(live_app.at(path))
        assert horizontal_overflow(page) == 0, path
        axe_check(page)


def test_form_errors_pass_axe_and_lead_to_their_fields(
    page: Page, live_app: LiveApp, page_guard: PageGuard
) -> None:
    page_guard.expect_console_error(r"status of 400 .*/admin/staff(/\d+/absence)?\)$")
    world = _world(live_app)
    _sign_in(page, live_app, "ada")
    page.goto(live_app.at("/admin/staff/new"))
    page.get_by_label("Navn").fill("Karin To")
    page.get_by_label("E-mailadresse").fill(email("karin"))
    page.get_by_label("Rolle").select_option("kontaktperson")
    page.get_by_label("Kommune").select_option(str(world.places["aarhus"]))
    page.get_by_label("Første adgangskode").fill("et langt nyt kodeord")
    page.get_by_role("button", name="Opret medarbejderen").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Der findes allerede en bruger med")
    axe_check(page)
    summary.get_by_role("link").click()
    expect(page.get_by_label("E-mailadresse")).to_be_focused()
    page.goto(live_app.at(f"/admin/staff/{world.staff['ali']}"))
    page.get_by_label("Første fraværsdag").fill("2026-12-10")
    page.get_by_label("Sidste fraværsdag").fill("2026-12-01")
    page.get_by_role("button", name="Gem fravær og stedfortræder").click()
    expect(page.get_by_role("alert")).to_contain_text("Fraværet skal slutte efter, det begynder.")
    axe_check(page)
