"""A coordinator rewords a dialog text in a real headless Chromium: an unknown field is named,
fixed, and the text saved; axe-core finds no serious or critical violation on the way."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from storage.models import DialogTextOverride
from tests.browser import LiveApp, PageGuard, axe_check
from tests.staff_world import PASSWORD, build_world, email

pytestmark = pytest.mark.browser


def test_a_coordinator_fixes_an_unknown_field_and_saves(
    page: Page, page_guard: PageGuard, live_app: LiveApp
) -> None:
    # The refused text comes back with 400, which Chromium reports on the console.
    page_guard.expect_console_error(r"status of 400 .*/texts/en/dreams\.dream\.text\)$")
    with live_app.database.session() as session:
        build_world(session)
    page.goto(live_app.at("/sign-in"))
    page.get_by_label("E-mailadresse").fill(email("carsten"))
    page.get_by_label("Adgangskode").fill(PASSWORD)
    page.get_by_role("button", name="Log ind").click()
    page.get_by_role("link", name="Tekster").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dialogernes tekster")
    page.get_by_label("Sprog", exact=True).select_option("en")
    page.get_by_role("button", name="Vis").click()
    axe_check(page)

    page.locator('a[href="/texts/en/dreams.dream.text"]').click()
    box = page.get_by_label("Kommunens tekst på engelsk")
    box.fill("Hi {first_name}! What do you dream of, {nickname}?")
    page.get_by_role("button", name="Gem teksten").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Feltet {nickname} findes ikke i denne dialog")
    expect(box).to_have_attribute("aria-invalid", "true")
    axe_check(page)

    box.fill("Hi {first_name}! What do you dream of?")
    page.get_by_role("button", name="Gem teksten").click()
    expect(page.get_by_role("status").first).to_contain_text("Teksten er gemt")
    expect(page.get_by_role("cell", name="Hi {first_name}! What do you dream of?")).to_be_visible()
    with live_app.database.session() as session:
        rows = session.execute(
            sa.select(DialogTextOverride.language, DialogTextOverride.text)
        ).all()
    assert [tuple(row) for row in rows] == [("en", "Hi {first_name}! What do you dream of?")]
