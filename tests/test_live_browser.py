"""live.js in a real headless Chromium, under the pages' strict Content-Security-Policy: a handoff
that opens in another process's transaction appears on the open page without a reload, and is
announced in the polite live region."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from bot.conversations import Conversations
from dialogs.engine import Engine
from dialogs.flows import CORE_DIALOGS
from dialogs.types import Channel
from tests.browser import LiveApp, axe_check
from tests.staff_world import PASSWORD, build_world, email

pytestmark = pytest.mark.browser


def test_a_new_handoff_appears_and_is_announced_without_a_reload(
    page: Page, live_app: LiveApp
) -> None:
    with live_app.database.session() as session:
        world = build_world(session)
    page.goto(live_app.at("/sign-in"))
    page.get_by_label("E-mailadresse").fill(email("karin"))
    page.get_by_label("Adgangskode").fill(PASSWORD)
    page.get_by_role("button", name="Log ind").click()
    expect(page.get_by_text("Ingen overdragelser venter på dig.")).to_be_visible()
    page.evaluate("window.notReloaded = true")
    expect(page.locator("#live-status")).to_have_attribute("data-connected", "true")
    conversations = Conversations(database=live_app.database, engine=Engine(CORE_DIALOGS))
    conversations.receive(
        young_person_id=world.people["mads"],
        channel=Channel.SIMULATOR,
        text="jeg vil tale med en voksen",
    )
    waiting = page.locator('[data-live="waiting"]')
    expect(waiting.get_by_role("link", name="Mads")).to_have_attribute(
        "href", f"/inbox/{world.people['mads']}"
    )
    expect(page.locator("#live-status")).to_have_text("Ny overdragelse")
    assert page.evaluate("window.notReloaded") is True
    axe_check(page)


def test_a_thread_grows_while_someone_types_a_reply_without_disturbing_them(
    page: Page, live_app: LiveApp
) -> None:
    with live_app.database.session() as session:
        world = build_world(session)
    mads = world.people["mads"]
    conversations = Conversations(database=live_app.database, engine=Engine(CORE_DIALOGS))
    conversations.receive(young_person_id=mads, channel=Channel.SIMULATOR, text="hej")
    page.goto(live_app.at("/sign-in"))
    page.get_by_label("E-mailadresse").fill(email("karin"))
    page.get_by_label("Adgangskode").fill(PASSWORD)
    page.get_by_role("button", name="Log ind").click()
    page.goto(live_app.at(f"/inbox/{mads}"))
    expect(page.locator("#live-status")).to_have_attribute("data-connected", "true")
    reply = page.get_by_label("Dit svar")
    reply.click()
    page.keyboard.type("Hej Mads, jeg ")
    conversations.receive(young_person_id=mads, channel=Channel.SIMULATOR, text="er du der nu")
    thread = page.locator('[data-live="thread"]')
    expect(thread).to_contain_text("er du der nu")
    expect(page.locator("#live-status")).to_have_text("Ny besked")
    page.keyboard.type("er her")
    expect(reply).to_be_focused()
    expect(reply).to_have_value("Hej Mads, jeg er her")
    axe_check(page)
