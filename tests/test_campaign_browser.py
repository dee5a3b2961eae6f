"""A campaign from end to end in a real headless Chromium: the coordinator builds it for a tagged
segment, watches the count follow the filter, previews it in Danish and Arabic, schedules it for
now, and the fake Twilio receives exactly the segment's messages while the campaign's page counts
them as sent without a reload."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import time

import pytest
from playwright.sync_api import Page, expect

from dialogs.types import Channel, YoungPersonStatus
from storage.models import Municipality, YoungPerson, YoungPersonTag
from tests.app_server import wait_for
from tests.browser import LiveApp, StartApp, axe_check
from tests.fakes.twilio import FakeTwilio
from tests.staff_world import PASSWORD, World, build_world, email

pytestmark = pytest.mark.browser

SENDER = "+4570202020"
# Mads (Danish) and Sara (Arabic) are tagged "fgu"; Emil is not; Freja is Odense's.
PEOPLE = {
    "mads": ("+4520000001", "da", ["fgu"]),
    "sara": ("+4520000002", "ar", ["fgu"]),
    "emil": ("+4520000003", "da", []),
    "freja": ("+4520000004", "da", ["fgu"]),
}
DANISH = "Hej {first_name}, vi holder åbent hus på fredag. Kom forbi!"
ARABIC = "مرحبا {first_name}، نلتقي يوم الجمعة."


@dataclass
class Scene:
    app: LiveApp
    twilio: FakeTwilio
    world: World


@pytest.fixture
def scene(start_app: StartApp) -> Iterator[Scene]:
    with FakeTwilio() as twilio:
        twilio.auto_callbacks = ["sent"]  # Twilio reports each message sent
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
                for place_id in world.places.values():
                    place = session.get_one(Municipality, place_id)
                    place.quiet_hours_start = place.quiet_hours_end = time(0)
                for name, (phone, language, tags) in PEOPLE.items():
                    person = session.get_one(YoungPerson, world.people[name])
                    person.phone = phone
                    person.language = language
                    person.status = YoungPersonStatus.ACTIVE
                    person.preferred_channel = Channel.SMS
                    person.tags = [YoungPersonTag(tag=tag) for tag in tags]
            yield Scene(app, twilio, world)


def test_a_coordinator_builds_previews_and_sends_a_campaign_to_a_segment(
    page: Page, scene: Scene
) -> None:
    page.goto(scene.app.at("/sign-in"))
    page.get_by_label("E-mailadresse").fill(email("carsten"))
    page.get_by_label("Adgangskode").fill(PASSWORD)
    page.get_by_role("button", name="Log ind").click()
    page.get_by_role("link", name="Kampagner").click()
    page.get_by_role("link", name="Lav en ny kampagne").click()
    axe_check(page)

    count = page.locator("#audience-count")
    expect(count).to_have_text("Kampagnen når 3 unge.")  # every active young person of Aarhus
    page.get_by_role("checkbox", name="fgu").check()
    expect(count).to_have_text("Kampagnen når 2 unge.")  # by the script, without a reload
    page.get_by_label("Kampagnens navn").fill("Åbent hus")
    page.get_by_label("Beskeden på dansk (da)").fill(DANISH)
    page.get_by_text("Beskeden på andre sprog").click()
    page.get_by_label("Beskeden på arabisk (ar)").fill(ARABIC)
    page.get_by_role("button", name="Vis forhåndsvisning").click()

    preview = page.locator("#preview")
    danish = preview.locator("article[lang=da]")
    arabic = preview.locator("article[lang=ar]")
    expect(danish.locator("[data-preview-text]")).to_have_text(
        "Hej Mads, vi holder åbent hus på fredag. Kom forbi!"
    )
    expect(danish.locator("[data-field=encoding]")).to_have_text("GSM-7")
    expect(danish.locator("[data-field=lix]")).to_contain_text("let")
    expect(arabic.locator("[data-preview-text]")).to_have_text("مرحبا Sara، نلتقي يوم الجمعة.")
    expect(arabic.locator("[data-field=encoding]")).to_have_text("UCS-2")
    expect(arabic.locator("[data-field=segments]")).to_have_text("1")
    expect(preview).not_to_contain_text("Emil")
    axe_check(page)

    page.get_by_role("button", name="Opret og planlæg").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Åbent hus")
    expect(page.get_by_role("status").filter(has_text="planlagt")).to_be_visible()
    axe_check(page)

    worker = scene.app.runtime.worker()

    def both_sent() -> bool:
        worker.sweep()
        return len(scene.twilio.messages) >= 2

    wait_for(both_sent, what="the campaign's messages at Twilio")
    received = {(m["to"], m["body"]) for m in scene.twilio.messages}
    assert received == {
        ("+4520000001", "Hej Mads, vi holder åbent hus på fredag. Kom forbi!"),
        ("+4520000002", "مرحبا Sara، نلتقي يوم الجمعة."),
    }
    scene.twilio.wait_for_callbacks(2)

    def both_reported() -> bool:
        worker.sweep()  # a report that came before its send was stored is taken again
        progress = scene.app.runtime.campaigns.progress(campaign_id)
        return bool(progress["by_status"].get("sent") == 2)

    campaign_id = int(page.url.split("/campaigns/")[1].split("?")[0])
    wait_for(both_reported, timeout=30, what="Twilio's reports of both messages")
    # The page follows without a reload, every two seconds.
    expect(page.locator("[data-count=sent]")).to_have_text("2", timeout=15_000)
    expect(page.locator("[data-field=total]")).to_have_text("2")
    # Everyone is reached: the campaign is finished, and pausing it is no longer offered.
    expect(page.locator("[data-field=status_label]")).to_have_text("Færdig")
    expect(page.get_by_role("button", name="Sæt på pause")).to_be_hidden()
    axe_check(page)

    page.get_by_role("button", name="Stop kampagnen").click()
    confirm = page.get_by_role("alertdialog", name="Vil du stoppe kampagnen for altid?")
    expect(confirm).to_be_focused()
    axe_check(page)
    confirm.get_by_role("button", name="Ja, stop kampagnen").click()
    expect(page.locator("[data-field=status_label]")).to_have_text("Stoppet")
