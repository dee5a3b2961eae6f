"""The results dashboard in a real headless Chromium: the coordinator opens it from the
navigation, sees the figures and the charts, downloads the CSV file, and axe-core finds no
serious or critical violation, at laptop and at phone size."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from dialogs.types import (
    Author,
    CaptureSource,
    Channel,
    DeliveryStatus,
    Direction,
    DreamCategory,
    HandoffReason,
    MeetingStatus,
)
from storage.models import Dream, Handoff, Meeting, Message, utcnow
from tests.browser import PHONE, LiveApp, axe_check, horizontal_overflow
from tests.staff_world import PASSWORD, build_world, email

pytestmark = pytest.mark.browser


def _history(app: LiveApp) -> None:
    """A few days of Mads and Sara (Aarhus) and Freja (Odense), all within the last 30 days."""
    now = utcnow()
    with app.database.session() as session:
        world = build_world(session)
        mads, sara, freja = (world.people[n] for n in ("mads", "sara", "freja"))
        for person, direction, author in (
            (mads, Direction.OUTBOUND, Author.BOT),
            (mads, Direction.INBOUND, Author.YOUNG_PERSON),
            (sara, Direction.OUTBOUND, Author.STAFF),
            (freja, Direction.OUTBOUND, Author.BOT),
        ):
            moment = now - timedelta(days=3)
            session.add(
                Message(
                    young_person_id=person,
                    direction=direction,
                    channel=Channel.SMS,
                    author=author,
                    text="Hej",
                    status=DeliveryStatus.DELIVERED,
                    created_at=moment,
                    sent_at=moment if direction is Direction.OUTBOUND else None,
                )
            )
        for category in (DreamCategory.EDUCATION, DreamCategory.JOB):
            session.add(
                Dream(
                    young_person_id=mads,
                    text="En drøm",
                    category=category,
                    captured_at=now - timedelta(days=2),
                    captured_via=CaptureSource.DIALOG,
                )
            )
        session.add(
            Meeting(
                young_person_id=sara,
                starts_at=now - timedelta(days=5),
                status=MeetingStatus.ATTENDED,
            )
        )
        opened = now - timedelta(days=1)
        session.add(
            Handoff(
                young_person_id=mads,
                reason=HandoffReason.ASKED,
                opened_at=opened,
                first_human_answer_at=opened + timedelta(minutes=25),
            )
        )


def test_the_coordinator_opens_the_results_and_downloads_the_csv(
    page: Page, live_app: LiveApp
) -> None:
    _history(live_app)
    page.goto(live_app.at("/sign-in"))
    page.get_by_label("E-mailadresse").fill(email("carsten"))
    page.get_by_label("Adgangskode").fill(PASSWORD)
    page.get_by_role("button", name="Log ind").click()
    page.get_by_role("navigation", name="Medarbejdermenu").get_by_role(
        "link", name="Resultater"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Resultater")

    def figure(key: str) -> str:
        return page.locator(f'tr[data-figure="{key}"] td').inner_text()

    assert (figure("reached"), figure("replied")) == ("2", "1")
    assert (figure("dreams_education"), figure("dreams_job")) == ("1", "1")
    assert (figure("attended"), figure("median")) == ("1", "25 min.")
    expect(page.get_by_role("img", name="Møder. Bekræftet af den unge: 0")).to_be_visible()
    axe_check(page)

    # Only Sara's kontaktperson's young people.
    page.get_by_label("Kontaktperson", exact=True).select_option(label="Ali Mentor")
    page.get_by_role("button", name="Vis tallene").click()
    expect(page.locator("#results-period")).to_contain_text("som Ali Mentor er kontaktperson for")
    assert (figure("reached"), figure("replied")) == ("1", "0")

    with page.expect_download() as downloading:
        page.get_by_role("link", name="Hent alle tallene som CSV").click()
    download = downloading.value
    assert download.suggested_filename.startswith("stifinder-resultater-")
    body = download.path().read_bytes()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert rows[0] == ["section", "figure", "value", "label"]
    assert ["filter", "kontaktperson", "Ali Mentor", "Kontaktperson"] in rows
    assert ["reach", "reached", "1", "Unge nået"] in rows
    assert ["meetings", "attended", "1", "Gennemført"] in rows

    page.set_viewport_size(PHONE)
    page.reload()
    assert horizontal_overflow(page) == 0
    axe_check(page)
