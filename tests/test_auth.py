"""Staff sign-in through the real app, on both databases: passwords, lockout, sessions, cookies,
CSRF, sign-out, the next= parameter and the audit trail."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from bot import passwords, signin
from bot.runtime import Runtime
from bot.web.app import create_app
from storage.db import Database
from storage.models import AuditEvent, SignInThrottle, StaffSession, StaffUser
from tests.conftest import make_settings
from tests.staff_world import PASSWORD, World, build_world, csrf_token, email, sign_in

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
WRONG = "E-mailadressen eller adgangskoden er forkert."
LOCKED = "Der har været for mange forkerte forsøg"
COOKIE = "stifinder_session"


@dataclass
class Site:
    client: TestClient
    runtime: Runtime
    world: World

    def new_browser(self, **kwargs: Any) -> TestClient:
        return TestClient(self.client.app, **kwargs)

    def events(self, action: str) -> list[AuditEvent]:
        with self.runtime.database.session() as session:
            return list(
                session.scalars(
                    sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
                )
            )

    def staff(self, who: str) -> StaffUser:
        with self.runtime.database.session() as session:
            return session.get_one(StaffUser, self.world.staff[who])

    def sessions(self, who: str) -> list[StaffSession]:
        with self.runtime.database.session() as session:
            return list(
                session.scalars(
                    sa.select(StaffSession)
                    .where(StaffSession.staff_id == self.world.staff[who])
                    .order_by(StaffSession.id)
                )
            )


def _site(database: Database, **settings: Any) -> Iterator[Site]:
    runtime = Runtime(settings=make_settings(**settings), database=database)
    with database.session() as session:
        world = build_world(session)
    with TestClient(create_app(runtime)) as client:
        yield Site(client, runtime, world)


@pytest.fixture
def site(database: Database) -> Iterator[Site]:
    yield from _site(database)


def _signed_in(client: TestClient) -> bool:
    response = client.get("/staff", follow_redirects=False)
    return response.status_code == 200


# ---------------------------------------------------------------------------- signing in


def test_the_right_password_opens_a_session_and_lands_on_the_staff_page(site: Site) -> None:
    response = sign_in(site.client, "karin")
    assert response.status_code == 303
    assert response.headers["location"] == "/staff"
    page = site.client.get("/staff")
    assert page.status_code == 200
    assert "Hej Karin Kontakt" in page.text
    assert "Du er logget ind som kontaktperson i Aarhus Kommune." in page.text
    # Only the token's hash is stored; the cookie holds the token itself.
    token = site.client.cookies[COOKIE]
    [row] = site.sessions("karin")
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (row.token_hash, row.csrf_secret)
    assert site.staff("karin").last_login_at is not None
    [event] = site.events("staff.signed_in")
    assert (event.staff_id, event.actor) == (site.world.staff["karin"], f"staff:{event.staff_id}")


def test_the_address_is_read_without_case_or_spaces(site: Site) -> None:
    assert sign_in(site.client, "  KARIN@Kommune.dk ").status_code == 303


def test_a_wrong_password_and_an_unknown_address_get_the_same_answer(site: Site) -> None:
    wrong = sign_in(site.client, "karin", "forkert forkert forkert")
    unknown = sign_in(site.client, "nobody@kommune.dk", "forkert forkert forkert")
    assert wrong.status_code == unknown.status_code == 400
    assert WRONG in wrong.text and WRONG in unknown.text
    # The pages differ only in the address typed and the form's token.
    assert wrong.text.replace(email("karin"), "X") == unknown.text.replace("nobody@kommune.dk", "X")
    assert not _signed_in(site.client)
    assert site.staff("karin").failed_logins == 1
    known, stranger = site.events("staff.sign_in_failed")
    assert known.staff_id == site.world.staff["karin"]
    # Nothing about the unknown address is kept in the audit trail.
    assert (stranger.staff_id, stranger.actor, stranger.details) == (
        None,
        "web",
        {"account": False},
    )


def test_an_unknown_address_costs_an_argon2_check_like_a_wrong_password(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    real = passwords.verify_password

    def spy(password_hash: str, password: str) -> bool:
        checked.append(password_hash)
        return real(password_hash, password)

    monkeypatch.setattr("bot.signin.verify_password", spy)
    sign_in(site.client, "nobody@kommune.dk", PASSWORD)
    sign_in(site.client, "karin", "forkert forkert forkert")
    dummy, karins = checked
    assert dummy == signin.dummy_hash() and dummy.startswith("$argon2id$")
    assert karins == site.staff("karin").password_hash


def test_five_wrong_passwords_lock_for_fifteen_minutes_then_it_opens_again(site: Site) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        for _ in range(4):
            assert sign_in(site.client, "karin", "forkert").status_code == 400
        locked = sign_in(site.client, "karin", "forkert")
        assert locked.status_code == 429
        assert LOCKED in locked.text and "15 min" in locked.text
        assert site.staff("karin").locked_until == T0 + timedelta(minutes=15)
        # During the lock even the right password is refused, and the lock is not extended.
        clock.shift(timedelta(minutes=10))
        still = sign_in(site.client, "karin")
        assert still.status_code == 429 and "5 min" in still.text
        assert not _signed_in(site.client)
        clock.shift(timedelta(minutes=5))
        assert sign_in(site.client, "karin").status_code == 303
        assert _signed_in(site.client)
        karin = site.staff("karin")
        assert (karin.failed_logins, karin.locked_until) == (0, None)
    [lockout] = site.events("staff.locked_out")
    assert lockout.staff_id == site.world.staff["karin"]
    [refused] = site.events("staff.sign_in_refused")
    assert refused.reason == "locked"
    assert len(site.events("staff.sign_in_failed")) == 5


def test_an_unknown_address_locks_the_same_way_so_a_lock_reveals_nothing(site: Site) -> None:
    answers = {}
    with time_machine.travel(T0, tick=False) as clock:
        for address in (email("karin"), "nobody@kommune.dk"):
            for _ in range(5):
                sign_in(site.client, address, "forkert")
            answers[address] = sign_in(site.client, address, "forkert")
        known, unknown = answers.values()
        assert known.status_code == unknown.status_code == 429
        assert known.text.replace(email("karin"), "X") == unknown.text.replace(
            "nobody@kommune.dk", "X"
        )
        clock.shift(timedelta(minutes=15))
        assert sign_in(site.client, "nobody@kommune.dk", "forkert").status_code == 400
    with site.runtime.database.session() as session:
        rows = session.scalars(sa.select(SignInThrottle)).all()
        # Keyed by a keyed hash: the address itself is nowhere.
        assert [len(r.address_hash) for r in rows] == [64]
        assert "nobody" not in rows[0].address_hash


def test_counters_of_unknown_addresses_go_once_they_cannot_matter(site: Site) -> None:
    def counted() -> int:
        with site.runtime.database.session() as session:
            return len(session.scalars(sa.select(SignInThrottle)).all())

    with time_machine.travel(T0, tick=False) as clock:
        for address in ("a@kommune.dk", "b@kommune.dk"):
            sign_in(site.client, address, "forkert")
        for _ in range(5):
            sign_in(site.client, "c@kommune.dk", "forkert")  # locked until T0 + 15 min
        assert counted() == 3
        clock.shift(timedelta(minutes=14))
        sign_in(site.client, "d@kommune.dk", "forkert")
        assert counted() == 4
        clock.shift(timedelta(minutes=2))
        sign_in(site.client, "d@kommune.dk", "forkert")
        # a, b and the ended lock of c are gone; d's recent failures still count.
        assert counted() == 1


def test_wrong_passwords_far_apart_do_not_add_up_to_a_lock(site: Site) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        for _ in range(4):
            sign_in(site.client, "karin", "forkert")
        clock.shift(timedelta(minutes=16))
        assert sign_in(site.client, "karin", "forkert").status_code == 400
        assert site.staff("karin").failed_logins == 1
        assert sign_in(site.client, "karin").status_code == 303


def test_a_deactivated_account_is_refused_even_with_the_right_password(site: Site) -> None:
    with site.runtime.database.session() as session:
        session.get_one(StaffUser, site.world.staff["karin"]).is_active = False
    refused = sign_in(site.client, "karin")
    assert refused.status_code == 403
    assert "Din konto er lukket" in refused.text
    assert not _signed_in(site.client)
    assert site.sessions("karin") == []
    # Without the right password it is just a wrong one: the state of the account stays unsaid.
    assert sign_in(site.client, "karin", "forkert").status_code == 400
    [event] = site.events("staff.sign_in_refused")
    assert event.reason == "inactive"


def test_an_outdated_hash_is_replaced_at_sign_in(site: Site) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with site.runtime.database.session() as session:
        session.get_one(StaffUser, site.world.staff["karin"]).password_hash = weak
    assert sign_in(site.client, "karin").status_code == 303
    renewed = site.staff("karin").password_hash
    assert renewed != weak and not PasswordHasher().check_needs_rehash(renewed)


# ---------------------------------------------------------------------------- cookies


def test_the_session_cookie_is_http_only_and_lax_over_http(site: Site) -> None:
    response = sign_in(site.client, "karin")
    [cookie] = [c for c in response.headers.get_list("set-cookie") if c.startswith(COOKIE)]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "samesite=lax" in cookie.lower()
    assert "secure" not in attributes and "domain" not in attributes
    assert "Max-Age=43200" in cookie  # the absolute lifetime, 12 hours


def test_over_https_the_cookies_are_secure_and_host_only(database: Database) -> None:
    for site in _site(database, public_base_url="https://stifinder.aarhus.dk"):
        browser = site.new_browser(base_url="https://testserver")
        form = browser.get("/sign-in")
        [pre] = form.headers.get_list("set-cookie")
        assert pre.startswith("__Host-stifinder_sign_in=") and "Secure" in pre
        response = sign_in(browser, "karin")
        assert response.status_code == 303
        cookies = response.headers.get_list("set-cookie")
        [cookie] = [c for c in cookies if c.startswith("__Host-stifinder_session=")]
        [gone] = [c for c in cookies if c.startswith("__Host-stifinder_sign_in=")]
        assert "Max-Age=0" in gone and "Secure" in gone
        lowered = cookie.lower()
        assert "; secure" in lowered and "; httponly" in lowered and "samesite=lax" in lowered
        assert "path=/" in lowered and "domain" not in lowered
        assert browser.get("/staff").status_code == 200
        # The plain name means nothing here.
        plain = site.new_browser(base_url="https://testserver")
        plain.cookies.set(COOKIE, browser.cookies["__Host-stifinder_session"])
        assert plain.get("/staff", follow_redirects=False).status_code == 303


# ---------------------------------------------------------------------------- sessions


def test_without_a_session_pages_go_to_sign_in_and_programs_get_401(site: Site) -> None:
    page = site.client.get("/admin/staff?municipality=1", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/sign-in?next=%2Fadmin%2Fstaff%3Fmunicipality%3D1"
    assert site.client.get("/staff", headers={"accept": "application/json"}).status_code == 401
    assert site.client.get("/staff", headers={"HX-Request": "true"}).status_code == 401


def test_a_made_up_session_cookie_is_refused_and_cleared(site: Site) -> None:
    site.client.cookies.set(COOKIE, "x" * 43)
    response = site.client.get("/staff", follow_redirects=False)
    assert response.status_code == 303
    assert any(
        c.startswith(f"{COOKIE}=") and "Max-Age=0" in c
        for c in response.headers.get_list("set-cookie")
    )


def test_a_session_ends_after_eight_idle_hours(database: Database) -> None:
    # A long absolute lifetime, so only idleness ends it.
    for site in _site(database, session_max_hours=48):
        with time_machine.travel(T0, tick=False) as clock:
            sign_in(site.client, "karin")
            clock.shift(timedelta(hours=7, minutes=59))
            assert _signed_in(site.client)  # and this counts as activity
            clock.shift(timedelta(hours=7, minutes=59))
            assert _signed_in(site.client)
            clock.shift(timedelta(hours=8))
            assert not _signed_in(site.client)


def test_a_session_ends_twelve_hours_after_sign_in_however_busy(site: Site) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        sign_in(site.client, "karin")
        for _ in range(5):
            clock.shift(timedelta(hours=2))
            assert _signed_in(site.client)
        clock.shift(timedelta(hours=1, minutes=59))
        assert _signed_in(site.client)
        clock.shift(timedelta(minutes=1))
        assert not _signed_in(site.client)


def test_short_session_settings_are_honoured(database: Database) -> None:
    for site in _site(database, session_idle_minutes=5, session_max_hours=1):
        with time_machine.travel(T0, tick=False) as clock:
            sign_in(site.client, "karin")
            clock.shift(timedelta(minutes=6))
            assert not _signed_in(site.client)


def test_sign_out_revokes_the_session_for_good(site: Site) -> None:
    sign_in(site.client, "karin")
    token = site.client.cookies[COOKIE]
    response = site.client.post(
        "/sign-out",
        data={"csrf_token": csrf_token(site.client.get("/staff").text)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?signed_out=1"
    assert "Du er logget ud." in site.client.get(response.headers["location"]).text
    [row] = site.sessions("karin")
    assert row.revoked_at is not None and row.revoked_reason == "signed_out"
    # The old cookie, replayed, opens nothing.
    replay = site.new_browser()
    replay.cookies.set(COOKIE, token)
    assert not _signed_in(replay)
    [event] = site.events("staff.signed_out")
    assert event.staff_id == site.world.staff["karin"]


def test_signing_in_again_in_the_same_browser_replaces_the_session(site: Site) -> None:
    token = csrf_token(site.client.get("/sign-in").text)
    form = {"email": email("karin"), "password": PASSWORD, "csrf_token": token}
    assert site.client.post("/sign-in", data=form, follow_redirects=False).status_code == 303
    first = site.client.cookies[COOKIE]
    # The form again, from a tab opened before (its cookie, cleared at sign-in, put back).
    site.client.cookies.set("stifinder_sign_in", token)
    assert site.client.post("/sign-in", data=form, follow_redirects=False).status_code == 303
    assert site.client.cookies[COOKIE] != first
    old, new = site.sessions("karin")
    assert old.revoked_reason == "signed_in_again" and new.revoked_at is None
    # Two browsers keep two sessions.
    other = site.new_browser()
    sign_in(other, "karin")
    assert _signed_in(other) and _signed_in(site.client)


def test_a_signed_in_visit_to_sign_in_goes_on(site: Site) -> None:
    sign_in(site.client, "karin")
    response = site.client.get("/sign-in?next=/staff", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/staff")


# ---------------------------------------------------------------------------- next=


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/staff",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/sign-out",
        "/staff\r\nLocation: https://evil.example",
        "",
    ],
)
def test_next_never_leads_off_the_site(site: Site, target: str) -> None:
    response = sign_in(site.client, "karin", next_path=target)
    assert (response.status_code, response.headers["location"]) == (303, "/staff")


def test_next_leads_to_the_page_asked_for(site: Site) -> None:
    asked = site.client.get("/admin/staff?municipality=1", follow_redirects=False)
    target = site.client.get(asked.headers["location"])
    assert 'name="next" value="/admin/staff?municipality=1"' in target.text
    response = sign_in(site.client, "carsten", next_path="/admin/staff?municipality=1")
    assert response.headers["location"] == "/admin/staff?municipality=1"


# ---------------------------------------------------------------------------- CSRF


def test_the_sign_in_form_needs_its_own_token(site: Site) -> None:
    site.client.get("/sign-in")
    base = {"email": email("karin"), "password": PASSWORD}
    missing = site.client.post("/sign-in", data=base, follow_redirects=False)
    wrong = site.client.post(
        "/sign-in", data={**base, "csrf_token": "x" * 43}, follow_redirects=False
    )
    # A token from a form without its cookie (another site's page cannot have the cookie).
    stranger = site.new_browser()
    lone = stranger.post(
        "/sign-in",
        data={**base, "csrf_token": csrf_token(site.client.get("/sign-in").text)},
        follow_redirects=False,
    )
    for response in (missing, wrong, lone):
        assert response.status_code == 403
        assert "Formularen kunne ikke sendes" in response.text
    assert site.sessions("karin") == [] and site.events("staff.sign_in_failed") == []


def test_sign_out_without_the_sessions_token_is_refused_and_changes_nothing(site: Site) -> None:
    sign_in(site.client, "karin")
    other = site.new_browser()
    sign_in(other, "ali")
    alis_token = csrf_token(other.get("/staff").text)
    for data in ({}, {"csrf_token": ""}, {"csrf_token": "x" * 43}, {"csrf_token": alis_token}):
        response = site.client.post("/sign-out", data=data, follow_redirects=False)
        assert response.status_code == 403
    assert _signed_in(site.client)
    assert [s.revoked_at for s in site.sessions("karin")] == [None]
    assert site.events("staff.signed_out") == []


def test_the_token_may_come_as_a_header(site: Site) -> None:
    sign_in(site.client, "karin")
    token = csrf_token(site.client.get("/staff").text)
    response = site.client.post(
        "/sign-out", headers={"X-CSRF-Token": token}, follow_redirects=False
    )
    assert response.status_code == 303
    assert not _signed_in(site.client)


def test_pages_are_english_on_request(site: Site) -> None:
    english = {"Accept-Language": "en"}
    page = site.client.get("/sign-in", headers=english)
    assert '<html lang="en"' in page.text and "Sign in" in page.text
    response = sign_in(site.client, "karin", "forkert", **english)
    assert "The e-mail address or the password is wrong." in response.text
    sign_in(site.client, "karin", **english)
    assert "Hi Karin Kontakt" in site.client.get("/staff", headers=english).text
