"""The young people's console in a real headless Chromium: the coordinator uploads a CSV file with
two bad rows and sees both named by line and field, uploads the fixed file, imports it and finds
the young people in the list; then assigns kontaktpersoner one by one and in bulk, invites a young
person and filters the list. axe-core finds no serious or critical violation on the pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from storage.models import YoungPerson
from tests.browser import LiveApp, PageGuard, StartApp, axe_check
from tests.staff_world import PASSWORD, build_world, email

pytestmark = pytest.mark.browser

DATA = Path(__file__).parent / "data" / "import"


def test_a_coordinator_fixes_a_file_with_two_bad_rows_and_imports_it(
    page: Page, live_app: LiveApp, page_guard: PageGuard
) -> None:
    with live_app.database.session() as session:
        build_world(session)
    page.goto(live_app.at("/sign-in"))
    page.get_by_label("E-mailadresse").fill(email("carsten"))
    page.get_by_label("Adgangskode").fill(PASSWORD)
    page.get_by_role("button", name="Log ind").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()

    page.get_by_role("link", name="Importér").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Importér unge")
    axe_check(page)
    page.get_by_label("Fil", exact=True).set_input_files(DATA / "unge_med_fejl.csv")
    page.get_by_role("button", name="Se forhåndsvisning").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Forhåndsvisning af importen")
    errors = page.get_by_role("alert")
    expect(errors).to_contain_text("Filen har fejl, så intet kan importeres")
    rows = errors.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("3")
    expect(rows.nth(0)).to_contain_text("fødselsdato")
    expect(rows.nth(0)).to_contain_text("Fødselsdatoen 31-02-2007 findes ikke i kalenderen.")
    expect(rows.nth(1)).to_contain_text("4")
    expect(rows.nth(1)).to_contain_text("telefon")
    expect(rows.nth(1)).to_contain_text("Telefonnummeret 1234 er ikke et gyldigt mobilnummer.")
    expect(page.get_by_role("button", name="Importér", exact=True)).to_have_count(0)
    axe_check(page)

    page.get_by_role("link", name="Upload en rettet fil").click()
    page.get_by_label("Fil", exact=True).set_input_files(DATA / "unge.csv")
    page.get_by_role("button", name="Se forhåndsvisning").click()
    expect(page.locator("#import-plan")).to_have_text(
        "3 nye unge bliver oprettet, og 0 bliver opdateret."
    )
    expect(page.locator("table.import-rows tbody tr")).to_have_count(3)
    axe_check(page)
    page.get_by_role("button", name="Importér", exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Importen er gennemført")
    expect(page.locator("p.notice")).to_have_text("3 nye unge og 0 opdateret fra unge.csv.")
    axe_check(page)
    page.get_by_role("link", name="Se listen over unge").click()
    for name in ("Nora", "Yusuf", "Liva"):
        expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()


def test_a_coordinator_assigns_invites_and_filters_in_the_browser(
    page: Page, start_app: StartApp
) -> None:
    with start_app(telegram_bot_username="stifinder_test_bot") as app:
        with app.database.session() as session:
            world = build_world(session)
            session.get_one(YoungPerson, world.people["mads"]).phone = "+4520000001"
        page.goto(app.at("/sign-in"))
        page.get_by_label("E-mailadresse").fill(email("carsten"))
        page.get_by_label("Adgangskode").fill(PASSWORD)
        page.get_by_role("button", name="Log ind").click()
        expect(page.get_by_role("heading", level=1)).to_be_visible()

        page.goto(app.at(f"/young-people/{world.people['mads']}"))
        page.get_by_label("Skift kontaktperson").select_option(label="Ali Mentor")
        page.get_by_role("button", name="Gem kontaktperson").click()
        expect(page.locator("p.notice")).to_have_text("Kontaktpersonen er skiftet.")
        page.get_by_role("button", name="Lav et nyt link").click()
        link = page.get_by_label("Kopiér linket, og giv det til Mads. Det virker én gang.")
        expect(link).to_have_value(re.compile(r"^https://t\.me/stifinder_test_bot\?start=\S+$"))
        page.get_by_role("button", name="Send invitation på sms").click()
        expect(page.locator("p.notice")).to_contain_text("Invitationen er lagt i kø")
        expect(page.get_by_role("button", name="Send invitation på sms")).to_have_count(0)
        axe_check(page)

        page.goto(app.at("/young-people"))
        page.get_by_label("Vælg Emil").check()
        page.get_by_label("Vælg Sara").check()
        page.get_by_label("Ny kontaktperson").select_option(label="Karin Kontakt")
        page.get_by_role("button", name="Tildel de valgte").click()
        expect(page.locator("p.notice")).to_have_text("2 unge har fået en ny kontaktperson.")
        page.get_by_text("Filtrér på alder", exact=False).click()
        page.get_by_role("group", name="Kontaktperson").get_by_label("Karin Kontakt").check()
        page.get_by_role("button", name="Søg").click()
        expect(page.locator("#result-count")).to_have_text("2 unge.")
        for name in ("Emil", "Sara"):
            expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
        axe_check(page)
