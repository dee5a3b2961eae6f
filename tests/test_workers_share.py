"""Three ``stifinder worker`` processes on one PostgreSQL share one campaign of 5,000 recipients.

Every recipient gets exactly one SMS through the real Twilio SDK and the fake Twilio API. In the
second test one worker is killed with SIGKILL while it is sending; the others take over what it
held, look up the sends whose outcome it never recorded, and nothing is lost or sent twice
(beyond unknown-outcome sends, which are counted and printed).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as wall_time
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.campaigns import Campaigns, Spec
from bot.runtime import Runtime
from dialogs.types import OutboxStatus, RecipientStatus, YoungPersonStatus
from storage import migrate
from storage.campaigns import Audience
from storage.db import Database
from storage.models import CampaignRecipient, Municipality, OutboxEntry, YoungPerson
from tests.conftest import make_settings
from tests.fakes.twilio import FakeTwilio
from tests.pgserver import PostgresServer

pytestmark = pytest.mark.postgres

RECIPIENTS = 5000
WORKERS = 3
FROM = "+4570123456"
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Setup:
    url: str
    fake: FakeTwilio
    campaign_id: int
    env: dict[str, str]


def _phone(number: int) -> str:
    return f"+4530{number:06d}"


@pytest.fixture
def setup(pg_server: PostgresServer, tmp_path: Path) -> Iterator[Setup]:
    url = pg_server.create_database(f"share_{os.getpid()}_{time.monotonic_ns()}")
    database = Database(url)
    migrate.upgrade(database.engine)
    with database.session() as session:
        # No quiet hours here: the test must not depend on the hour it runs at.
        place = Municipality(
            name="Aarhus Kommune",
            slug="aarhus",
            quiet_hours_start=wall_time(0),
            quiet_hours_end=wall_time(0),
        )
        session.add(place)
        session.flush()
        place_id = place.id
    with database.engine.begin() as connection:
        connection.execute(
            sa.insert(YoungPerson),
            [
                {
                    "municipality_id": place_id,
                    "first_name": f"Ung{n}",
                    "birth_date": date(2006, 1, 1),
                    "status": YoungPersonStatus.ACTIVE,
                    "phone": _phone(n),
                    "language": "da",
                    "status_changed_at": datetime.now(UTC),
                    "created_at": datetime.now(UTC),
                    "updated_at": datetime.now(UTC),
                }
                for n in range(RECIPIENTS)
            ],
        )
    fake = FakeTwilio().start()
    env = {
        **os.environ,
        "STIFINDER_ENVIRONMENT": "test",
        "STIFINDER_SECRET_KEY": "w" * 40,
        "STIFINDER_DATABASE_URL": url,
        "STIFINDER_LOG_FORMAT": "json",
        "STIFINDER_LOG_LEVEL": "WARNING",
        "STIFINDER_WORKER_POLL_SECONDS": "0.2",
        "STIFINDER_WORKER_LEASE_SECONDS": "10",
        "STIFINDER_SENDING_LEASE_SECONDS": "10",
        "STIFINDER_TWILIO_ACCOUNT_SID": fake.account_sid,
        "STIFINDER_TWILIO_AUTH_TOKEN": fake.auth_token,
        "STIFINDER_TWILIO_FROM_NUMBER": FROM,
        "STIFINDER_TWILIO_API_BASE_URL": fake.url,
        # Each worker sends at most this many a second: slow enough to kill one mid-way.
        "STIFINDER_SMS_SEGMENTS_PER_SECOND": "400",
        "STIFINDER_PROVIDER_TIMEOUT_SECONDS": "5",
    }
    runtime = Runtime.build(make_settings(database_url=url))
    campaigns = Campaigns(
        database=runtime.database, conversations=runtime.conversations, engine=runtime.engine
    )
    campaign_id = campaigns.create(
        Spec(
            municipality_id=place_id,
            name="Alle",
            audience=Audience(),
            template={"da": "Hej {first_name}, vi ses på fredag."},
        )
    )
    campaigns.schedule(campaign_id)
    runtime.close()
    database.dispose()
    yield Setup(url, fake, campaign_id, env)
    fake.stop()


def _start_workers(env: dict[str, str], count: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    workers = []
    for number in range(count):
        with (logs / f"worker{number}.log").open("wb") as log:  # the child keeps its own copy
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bot", "worker"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    return workers


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _wait_until_all_sent(url: str, timeout: float) -> dict[OutboxStatus, int]:
    database = Database(url)
    deadline = time.monotonic() + timeout
    counts: dict[OutboxStatus, int] = {}
    try:
        while time.monotonic() < deadline:
            with database.session() as session:
                counts = dict(
                    session.execute(
                        sa.select(OutboxEntry.status, sa.func.count()).group_by(OutboxEntry.status)
                    ).all()
                )
            if counts.get(OutboxStatus.SENT, 0) >= RECIPIENTS:
                return counts
            time.sleep(0.5)
    finally:
        database.dispose()
    return counts


def _check_exactly_once(setup: Setup, *, allowed_duplicates: int) -> Counter[str]:
    arrived = Counter(m["to"] for m in setup.fake.messages)
    missing = [_phone(n) for n in range(RECIPIENTS) if _phone(n) not in arrived]
    doubled = {to: n for to, n in arrived.items() if n > 1}
    assert missing == []
    assert sum(n - 1 for n in doubled.values()) <= allowed_duplicates, doubled
    for message in setup.fake.messages:
        number = int(message["to"][-6:])
        assert message["body"] == f"Hej Ung{number}, vi ses på fredag."
    database = Database(setup.url)
    try:
        with database.session() as session:
            statuses = Counter(
                session.scalars(
                    sa.select(CampaignRecipient.status).where(
                        CampaignRecipient.campaign_id == setup.campaign_id
                    )
                ).all()
            )
            queued_twice = session.scalar(
                sa.select(sa.func.count()).select_from(
                    sa.select(CampaignRecipient.young_person_id)
                    .group_by(CampaignRecipient.young_person_id)
                    .having(sa.func.count() > 1)
                    .subquery()
                )
            )
    finally:
        database.dispose()
    assert statuses == {RecipientStatus.QUEUED: RECIPIENTS}
    assert queued_twice == 0
    return arrived


def _unknown_outcomes(url: str) -> int:
    database = Database(url)
    try:
        with database.session() as session:
            return int(session.scalar(sa.select(sa.func.sum(OutboxEntry.unknown_outcomes))) or 0)
    finally:
        database.dispose()


def test_three_workers_send_each_recipient_exactly_one_message(
    setup: Setup, tmp_path: Path
) -> None:
    workers = _start_workers(setup.env, WORKERS, tmp_path)
    try:
        counts = _wait_until_all_sent(setup.url, timeout=240)
    finally:
        _stop(workers)
    assert counts.get(OutboxStatus.SENT) == RECIPIENTS, counts
    arrived = _check_exactly_once(setup, allowed_duplicates=0)
    assert len(setup.fake.messages) == RECIPIENTS
    assert sum(arrived.values()) == RECIPIENTS
    logs = [(tmp_path / f"worker{n}.log").read_text() for n in range(WORKERS)]
    assert all("Traceback" not in log for log in logs), logs
    # The work was shared: every worker process sent some of it.
    database = Database(setup.url)
    try:
        with database.session() as session:
            senders = session.scalars(sa.select(OutboxEntry.claimed_by).distinct()).all()
    finally:
        database.dispose()
    assert len(senders) == WORKERS


def test_a_worker_killed_mid_send_loses_nothing_and_doubles_nothing(
    setup: Setup, tmp_path: Path
) -> None:
    workers = _start_workers(setup.env, WORKERS, tmp_path)
    try:
        deadline = time.monotonic() + 120
        while len(setup.fake.messages) < RECIPIENTS // 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(setup.fake.messages) >= RECIPIENTS // 2, "the workers never got going"
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(timeout=10)
        killed_at = len(setup.fake.messages)
        counts = _wait_until_all_sent(setup.url, timeout=240)
    finally:
        _stop(workers)
    assert counts.get(OutboxStatus.SENT) == RECIPIENTS, counts
    unknown = _unknown_outcomes(setup.url)
    arrived = _check_exactly_once(setup, allowed_duplicates=unknown)
    duplicates = sum(arrived.values()) - RECIPIENTS
    print(  # the test's output says what the kill cost
        f"killed after {killed_at} of {RECIPIENTS} sends; unknown outcomes reconciled: "
        f"{unknown}; duplicates at the provider: {duplicates}"
    )
