"""The young people's list and page in a real headless Chromium: axe-core finds no serious or
critical violation (also with form errors shown), the forms work with the keyboard, and both
pages fit a phone."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from dialogs.types import CaptureSource, Channel, DreamCategory
from storage import plans
from storage.models import Dream, YoungPerson, utcnow
from tests.browser import PHONE, Keyboard, LiveApp, PageGuard, axe_check, horizontal_overflow
from tests.staff_world import PASSWORD, World, build_world, email

pytestmark = pytest.mark.browser


def _world(app: LiveApp) -> World:
    with app.database.session() as session:
        world = build_world(session)
        mads = session.get_one(YoungPerson, world.people["mads"])
        mads.phone = "+4512345678"
        now = utcnow()
        session.add(
            Dream(
                young_person_id=mads.id,
                text="Jeg vil gerne være kok",
                category=DreamCategory.JOB,
                captured_at=now,
                captured_via=CaptureSource.DIALOG,
                channel=Channel.SMS,
            )
        )
        goal = plans.add_goal(session, mads, title="Kokkeskole", now=now)
        plans.add_sub_goal(
            session, goal, title="Besøge skolen", now=now, due_date=now.date() + timedelta(days=9)
        )
        plans.create_meeting(session, mads, starts_at=now + timedelta(days=4), now=now)
        return world


def _sign_in(page: Page, app: LiveApp, who: str) -> None:
    page.goto(app.at("/sign-in"))
    page.get_by_label("E-mailadresse").fill(email(who))
    page.get_by_label("Adgangskode").fill(PASSWORD)
    page.get_by_role("button", name="Log ind").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()


@pytest.mark.parametrize("who", ["karin", "carsten"])
def test_the_list_and_the_page_pass_axe_and_fit_a_phone(
    page: Page, live_app: LiveApp, who: str
) -> None:
    world = _world(live_app)
    _sign_in(page, live_app, who)
    for size in (None, PHONE):
        if size is not None:
            page.set_viewport_size(size)
        page.goto(live_app.at("/young-people"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Unge")
        assert horizontal_overflow(page) == 0
        axe_check(page)
        page.goto(live_app.at(f"/young-people/{world.people['mads']}"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Mads")
        expect(page.locator("main")).to_have_attribute("data-live", "young-person")
        # Every form open, as someone working through the page would have them.
        for summary in page.locator("details > summary").all():
            summary.click()
        assert horizontal_overflow(page) == 0
        axe_check(page)


def test_searching_and_opening_a_young_person_with_the_keyboard(
    page: Page, live_app: LiveApp
) -> None:
    world = _world(live_app)
    _sign_in(page, live_app, "carsten")
    page.goto(live_app.at("/young-people"))
    keyboard = Keyboard(page)
    keyboard.tab_to("#q")
    keyboard.type("mad")
    keyboard.press("Enter")
    expect(page.locator("#result-count")).to_have_text("1 ung.")
    keyboard.tab_to(f'a[href="/young-people/{world.people["mads"]}"]')
    keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mads")


def test_adding_a_goal_and_a_meeting_and_a_form_error(
    page: Page, live_app: LiveApp, page_guard: PageGuard
) -> None:
    page_guard.expect_console_error(r"status of 400 .*/young-people/\d+/meetings\)$")
    world = _world(live_app)
    _sign_in(page, live_app, "karin")
    page.goto(live_app.at(f"/young-people/{world.people['mads']}"))
    page.get_by_text("Tilføj et mål", exact=True).click()
    page.get_by_label("Mål", exact=True).fill("Få et fritidsjob")
    page.get_by_role("button", name="Tilføj målet").click()
    expect(page.locator("p.notice")).to_have_text("Målet er tilføjet.")
    expect(page.get_by_role("heading", name="Få et fritidsjob")).to_be_visible()

    # A meeting with a time that is not one: the error is announced and leads to its field.
    page.get_by_text("Opret et møde", exact=True).click()
    zone = ZoneInfo("Europe/Copenhagen")
    day = (utcnow().astimezone(zone).date() + timedelta(days=6)).isoformat()
    page.locator("#meeting-date").fill(day)
    page.locator("#meeting-time").evaluate("element => { element.type = 'text'; }")
    page.locator("#meeting-time").fill("kl. 25")
    page.get_by_role("button", name="Opret mødet").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Skriv et klokkeslæt")
    axe_check(page)
    summary.get_by_role("link").click()
    expect(page.locator("#meeting-time")).to_be_focused()
    page.locator("#meeting-time").fill("14:30")
    page.get_by_role("button", name="Opret mødet").click()
    expect(page.locator("p.notice")).to_have_text(
        "Mødet er oprettet, og påmindelserne er planlagt."
    )
    expect(page.locator("#meetings")).to_contain_text("kl. 14.30")
    axe_check(page)
