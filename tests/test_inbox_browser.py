"""The inbox in a real headless Chromium: the list and a conversation pass axe-core, fit a phone,
and a kontaktperson takes over, replies and hands back with the keyboard and the mouse."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from dialogs.types import Author, Channel, DeliveryStatus, Direction, YoungPersonStatus
from storage.models import CannedReply, Message, YoungPerson, utcnow
from tests.browser import PHONE, LiveApp, PageGuard, axe_check, horizontal_overflow
from tests.staff_world import PASSWORD, build_world, email

pytestmark = pytest.mark.browser


def test_the_inbox_and_a_conversation_pass_axe_on_a_phone(
    page: Page, live_app: LiveApp, page_guard: PageGuard
) -> None:
    page_guard.expect_console_error(r"status of 400 .*/inbox/\d+/reply\)$")
    with live_app.database.session() as session:
        world = build_world(session)
        mads = session.get_one(YoungPerson, world.people["mads"])
        mads.phone = "+4520000001"
        mads.status = YoungPersonStatus.ACTIVE
        session.add(
            Message(
                young_person_id=mads.id,
                direction=Direction.OUTBOUND,
                channel=Channel.SMS,
                author=Author.BOT,
                text="Husk mødet i morgen kl. 10",
                status=DeliveryStatus.FAILED,
                error_code="30003",
                created_at=utcnow(),
            )
        )
        session.add(
            CannedReply(
                municipality_id=world.places["aarhus"],
                title="Mødetid",
                text="Hvornår passer det dig at mødes?",
            )
        )
    mads_id = world.people["mads"]
    live_app.runtime.conversations.receive(
        young_person_id=mads_id, channel=Channel.SMS, text="tal med en voksen"
    )

    page.set_viewport_size(PHONE)
    page.goto(live_app.at("/sign-in?next=/inbox"))
    page.get_by_label("E-mailadresse").fill(email("karin"))
    page.get_by_label("Adgangskode").fill(PASSWORD)
    page.get_by_role("button", name="Log ind").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Indbakke")
    expect(page.locator("#inbox-list .inbox-name")).to_have_text(["Mads"])
    assert horizontal_overflow(page) == 0
    axe_check(page)

    page.get_by_role("link", name="Åbn samtalen med Mads").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Samtale med Mads")
    expect(page.locator("#thread")).to_contain_text(
        "Telefonen kunne ikke nås. Den er måske slukket eller uden dækning."
    )
    assert horizontal_overflow(page) == 0
    axe_check(page)

    page.get_by_role("button", name="Overtag samtalen").click()
    expect(page.locator("p.notice")).to_contain_text("Du har overtaget samtalen.")
    page.get_by_label("Dit svar").fill("Hej Mads, det er Karin.")
    page.get_by_label("Standardsvar").select_option(label="Mødetid")
    page.get_by_role("button", name="Sæt ind i svaret").click()
    reply_box = page.get_by_label("Dit svar")
    expect(reply_box).to_have_value("Hej Mads, det er Karin.\nHvornår passer det dig at mødes?")
    expect(reply_box).to_be_focused()
    page.get_by_role("button", name="Send svar").click()
    expect(page.locator("#thread")).to_contain_text("Hej Mads, det er Karin.")
    axe_check(page)

    # An empty reply: the error is announced and leads to its field.
    page.get_by_role("button", name="Send svar").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Skriv et svar, før du sender.")
    axe_check(page)
    alert.get_by_role("link").click()
    expect(page.get_by_label("Dit svar")).to_be_focused()

    page.get_by_role("button", name="Giv samtalen tilbage til botten").click()
    expect(page.locator("p.notice")).to_contain_text("Samtalen er givet tilbage til botten")
    axe_check(page)


def test_the_canned_replies_page_passes_axe(page: Page, live_app: LiveApp) -> None:
    with live_app.database.session() as session:
        build_world(session)
    page.set_viewport_size(PHONE)
    page.goto(live_app.at("/sign-in?next=/canned-replies"))
    page.get_by_label("E-mailadresse").fill(email("carsten"))
    page.get_by_label("Adgangskode").fill(PASSWORD)
    page.get_by_role("button", name="Log ind").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Standardsvar")
    page.get_by_label("Titel").fill("Velkommen")
    page.get_by_label("Tekst på dansk").fill("Hej, jeg er din kontaktperson.")
    page.get_by_role("button", name="Opret standardsvaret").click()
    expect(page.locator("p.notice")).to_have_text("Standardsvaret er oprettet.")
    expect(page.get_by_role("heading", level=3)).to_have_text("Velkommen")
    assert horizontal_overflow(page) == 0
    axe_check(page)
