"""The handoff from end to end in a real headless Chromium: a young person's SMS arrives through a
signed Twilio webhook, the handoff appears in the kontaktperson's inbox without a reload, she
takes over and answers, the fake Twilio receives her answer, the bot keeps quiet while she holds
the conversation, and after she hands it back the bot answers again."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx2
import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from bot.web.paths import TWILIO_SMS_PATH
from dialogs.types import Author, Channel, Direction, YoungPersonStatus
from storage.models import Message, YoungPerson
from tests.app_server import wait_for
from tests.browser import LiveApp, StartApp, axe_check
from tests.fakes.twilio import FakeTwilio
from tests.staff_world import PASSWORD, World, build_world, email

pytestmark = pytest.mark.browser

PHONE = "+4520123456"
SENDER = "+4570202020"


@dataclass
class Scene:
    app: LiveApp
    twilio: FakeTwilio
    world: World

    def sms_in(self, body: str) -> None:
        """The young person writes, as Twilio delivers it: a signed webhook."""
        url = self.app.at(TWILIO_SMS_PATH)
        headers, form = self.twilio.signed_inbound(url, from_=PHONE, to=SENDER, body=body)
        response = httpx2.post(url, headers=headers, data=form, timeout=10)
        assert response.status_code == 200

    def texts_to_mads(self) -> list[str]:
        return [m["body"] for m in self.twilio.messages if m["to"] == PHONE]


@pytest.fixture
def scene(start_app: StartApp) -> Iterator[Scene]:
    with FakeTwilio() as twilio:
        settings = {
            "twilio_account_sid": twilio.account_sid,
            "twilio_auth_token": twilio.auth_token,
            "twilio_from_number": SENDER,
            "twilio_api_base_url": twilio.url,
            "simulator_enabled": False,
        }
        with start_app(**settings) as app:
            with app.database.session() as session:
                world = build_world(session)
                mads = session.get_one(YoungPerson, world.people["mads"])
                mads.phone = PHONE
                mads.status = YoungPersonStatus.ACTIVE
                mads.preferred_channel = Channel.SMS
            yield Scene(app, twilio, world)


def test_a_kontaktperson_takes_over_live_answers_and_hands_back(page: Page, scene: Scene) -> None:
    page.goto(scene.app.at("/sign-in"))
    page.get_by_label("E-mailadresse").fill(email("karin"))
    page.get_by_label("Adgangskode").fill(PASSWORD)
    page.get_by_role("button", name="Log ind").click()
    page.goto(scene.app.at("/inbox"))
    axe_check(page)
    page.evaluate("window.stillTheSamePage = true")  # gone if the page reloads

    scene.sms_in("jeg vil tale med en voksen")
    bot_said = wait_for(scene.texts_to_mads, what="the bot's answer at Twilio")
    inbox = page.locator("[data-live=inbox]")
    expect(inbox.get_by_role("link", name="Åbn samtalen med Mads")).to_be_visible(timeout=15_000)
    assert page.evaluate("window.stillTheSamePage === true"), "the inbox reloaded"

    page.get_by_role("link", name="Åbn samtalen med Mads").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Mads")
    axe_check(page)
    page.get_by_role("button", name="Overtag samtalen").click()
    page.get_by_label("Dit svar").fill("Hej Mads, det er Karin. Hvad kan jeg hjælpe med?")
    page.get_by_role("button", name="Send svar").click()
    wait_for(
        lambda: "Hej Mads, det er Karin. Hvad kan jeg hjælpe med?" in scene.texts_to_mads(),
        what="Karin's answer at Twilio",
    )
    answered = len(scene.texts_to_mads())

    page.evaluate("window.stillTheSamePage = true")
    scene.sms_in("tak, jeg har brug for hjælp til en ansøgning")
    thread = page.locator("[data-live=thread]")
    expect(thread.get_by_text("jeg har brug for hjælp til en ansøgning")).to_be_visible(
        timeout=15_000
    )
    assert page.evaluate("window.stillTheSamePage === true"), "the conversation reloaded"
    scene.app.runtime.pump.run_once()  # everything the message caused has run
    assert len(scene.texts_to_mads()) == answered, "the bot spoke while Karin held it"

    page.get_by_role("button", name="Giv samtalen tilbage til botten").click()
    scene.sms_in("hej")
    wait_for(lambda: len(scene.texts_to_mads()) > answered, what="the bot's answer")
    with scene.app.database.session() as session:
        outgoing = session.execute(
            sa.select(Message.author, Message.text)
            .where(Message.direction == Direction.OUTBOUND)
            .order_by(Message.id)
        ).all()
    authors = [author for author, _ in outgoing]
    assert authors[0] is Author.BOT  # the answer to "a grown-up, please"
    assert (Author.STAFF, "Hej Mads, det er Karin. Hvad kan jeg hjælpe med?") in [
        tuple(row) for row in outgoing
    ]
    assert authors[-1] is Author.BOT  # back with the bot, it answers again
    assert outgoing[-1][1] == scene.texts_to_mads()[-1]
    assert bot_said
