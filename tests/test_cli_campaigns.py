"""``stifinder campaign ...`` and ``stifinder user token``, on both databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from bot.cli import app
from bot.runtime import Runtime
from bot.web.app import create_app
from dialogs.types import Channel, Direction, Role, YoungPersonStatus
from storage.db import Database
from storage.models import (
    ApiToken,
    AuditEvent,
    Campaign,
    CampaignRecipient,
    Message,
    Municipality,
    StaffUser,
    YoungPerson,
    YoungPersonTag,
)
from tests.conftest import make_settings

runner = CliRunner()


@pytest.fixture
def runtime(database: Database) -> Iterator[Runtime]:
    with database.session() as session:
        # No quiet hours, so that a sweep sends whatever the hour the tests run at.
        place = Municipality(
            name="Aarhus Kommune", slug="aarhus", quiet_hours_start=time(0), quiet_hours_end=time(0)
        )
        karin = StaffUser(
            name="Karin",
            email="karin@x.dk",
            role=Role.KONTAKTPERSON,
            password_hash="x",
            municipality=place,
        )
        carsten = StaffUser(
            name="Carsten",
            email="carsten@x.dk",
            role=Role.COORDINATOR,
            password_hash="x",
            municipality=place,
        )
        session.add_all([place, karin, carsten])
        for name, tags, language in (("Mads", ["fgu"], "da"), ("Sara", ["job"], "en")):
            person = YoungPerson(
                municipality=place,
                first_name=name,
                birth_date=date(2006, 5, 1),
                kontaktperson=karin,
                status=YoungPersonStatus.ACTIVE,
                language=language,
                preferred_channel=Channel.SIMULATOR,
            )
            person.tags = [YoungPersonTag(tag=t) for t in tags]
            session.add(person)
    built = Runtime(settings=make_settings(), database=database)
    yield built
    built.close()


def _run(runtime: Runtime, *args: str) -> Result:
    return runner.invoke(app, list(args), obj=runtime)


def _flat(result: Result) -> str:
    """The output on one line: rich wraps long lines and table cells."""
    return " ".join(result.output.split())


def _count(runtime: Runtime, table: type[object]) -> int:
    with runtime.database.session() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


CREATE = ("campaign", "create", "--municipality", "aarhus")


def test_a_dry_run_counts_and_previews_and_creates_nothing(runtime: Runtime) -> None:
    result = _run(runtime, *CREATE, "--message", "Hej {first_name}!", "--tag", "fgu", "--dry-run")
    assert result.exit_code == 0, result.output
    output = _flat(result)
    assert "1 ung er i målgruppen." in output
    assert "Mads" in output
    assert "Hej Mads!" in output
    assert "Sara" not in output
    assert "Prøvekørsel: intet er oprettet." in output
    for table in (Campaign, CampaignRecipient, Message):
        assert _count(runtime, table) == 0
    with runtime.database.session() as session:
        events = session.execute(
            sa.select(AuditEvent.actor, AuditEvent.young_person_id, AuditEvent.details).where(
                AuditEvent.action == "campaign.preview"
            )
        ).all()
        mads = session.scalar(sa.select(YoungPerson.id).where(YoungPerson.first_name == "Mads"))
    assert [tuple(e) for e in events] == [("cli", mads, {"count": 1, "shown": 1})]


def test_create_schedule_send_show_and_list(runtime: Runtime, tmp_path: Path) -> None:
    texts = tmp_path / "texts.json"
    texts.write_text(
        json.dumps({"da": "Hej {first_name}, åbent hus!", "en": "Hi {first_name}, open house!"}),
        encoding="utf-8",
    )
    result = _run(
        runtime,
        *CREATE,
        "--name",
        "Åbent hus",
        "--message-file",
        str(texts),
        "--kontaktperson",
        "karin@x.dk",
        "--schedule",
    )
    assert result.exit_code == 0, result.output
    output = _flat(result)
    assert "Kampagnen er oprettet (nr. 1)." in output
    assert "Kampagne nr. 1 er planlagt. Første kørsel:" in output
    runtime.worker().sweep()
    runtime.worker().sweep()
    with runtime.database.session() as session:
        sent = set(
            session.scalars(sa.select(Message.text).where(Message.direction == Direction.OUTBOUND))
        )
    assert sent == {"Hej Mads, åbent hus!", "Hi Sara, open house!"}

    shown = _run(runtime, "campaign", "show", "1")
    assert shown.exit_code == 0, shown.output
    output = _flat(shown)
    assert "Kampagne nr. 1" in output
    assert "Åbent hus" in output
    assert "besked på da, en" in output
    assert "leveret │ 2" in output
    assert "I alt │ 2" in output

    listed = _run(runtime, "campaign", "list", "--municipality", "aarhus")
    assert listed.exit_code == 0, listed.output
    assert "Åbent hus" in _flat(listed)
    assert "færdig" in _flat(listed)


def test_pause_resume_and_cancel(runtime: Runtime) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    result = _run(runtime, *CREATE, "--name", "Senere", "--message", "Hej", "--at", tomorrow)
    assert result.exit_code == 0, result.output
    assert "stifinder campaign schedule 1" in _flat(result)
    paused = _run(runtime, "campaign", "pause", "1")
    assert paused.exit_code == 2
    assert "Fejl i kampagnen: status: cannot pause a campaign that is draft" in _flat(paused)
    assert _run(runtime, "campaign", "schedule", "1").exit_code == 0
    assert "er sat på pause" in _run(runtime, "campaign", "pause", "1").output
    assert "kører igen" in _run(runtime, "campaign", "resume", "1").output
    cancelled = _run(runtime, "campaign", "cancel", "1")
    assert cancelled.exit_code == 0, cancelled.output
    assert "Kampagne nr. 1 er annulleret; 0 modtagere blev sprunget over." in _flat(cancelled)
    again = _run(runtime, "campaign", "cancel", "1")
    assert again.exit_code == 2
    assert "already cancelled" in _flat(again)
    assert "annulleret" in _flat(_run(runtime, "campaign", "show", "1"))
    unknown = _run(runtime, "campaign", "show", "99")
    assert unknown.exit_code == 2
    assert "Der findes ingen kampagne nr. 99." in _flat(unknown)
    with runtime.database.session() as session:
        actions = session.scalars(
            sa.select(AuditEvent.action)
            .where(AuditEvent.action.like("campaign.%"))
            .order_by(AuditEvent.id)
        ).all()
    assert actions == [
        "campaign.created",
        "campaign.scheduled",
        "campaign.paused",
        "campaign.resumed",
        "campaign.cancelled",
    ]


def test_a_local_time_and_a_meeting_offset_are_understood(runtime: Runtime) -> None:
    result = _run(
        runtime,
        *CREATE,
        "--name",
        "Dagen før",
        "--message",
        "Hej {first_name}, vi ses i morgen.",
        "--at",
        "2030-01-15T10:00",
        "--relative-meeting-minutes",
        "-1440",
    )
    assert result.exit_code == 0, result.output
    with runtime.database.session() as session:
        campaign = session.scalars(sa.select(Campaign)).one()
        # 10:00 in Copenhagen in winter is 09:00 UTC.
        assert campaign.starts_at == datetime(2030, 1, 15, 9, 0, tzinfo=UTC)
        assert campaign.relative_schedule == {"anchor": "meeting", "offset_minutes": -1440}
    assert "-1440 minutter" in _flat(_run(runtime, "campaign", "show", "1"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cron", "every monday"], "Fejl i kampagnen: cron:"),
        (["--message", "Hej {cpr}"], "template[da]: unknown variable {cpr}"),
        (["--at", "tomorrow"], "--at: tomorrow er ikke et tidspunkt."),
        (["--status", "sleeping"], "Invalid value for '--status'"),
        (["--status", "opted_out"], "statuses: opted-out and closed young people are never"),
        (["--min-age", "20", "--max-age", "18"], "min_age is above max_age"),
        (["--min-age", "-1"], "Invalid value for '--min-age'"),
        (["--rate", "0"], "Invalid value for '--rate'"),
        (["--channel", "fax"], "Invalid value for '--channel'"),
        (["--audience", '{"colour": "blue"}'], "colour: Extra inputs are not permitted"),
        (["--audience", "{nope"], "--audience er ikke gyldig JSON"),
        (["--audience", "{}", "--tag", "fgu"], "Brug enten --audience eller de enkelte filtre"),
        (
            ["--kontaktperson", "nobody@x.dk"],
            "Der er ingen kontaktperson med nobody@x.dk i aarhus.",
        ),
        (["--kontaktperson", "carsten@x.dk", "--dialog", "dreams"], "content: choose either"),
        (["--message-file", "texts.json"], "Brug enten --message eller --message-file"),
        (["--municipality", "odense"], "Kommunen odense findes ikke."),
    ],
)
def test_bad_flags_get_a_clear_error_and_exit_code_2(
    runtime: Runtime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "texts.json").write_text('{"da": "Hej"}', encoding="utf-8")
    result = _run(runtime, *CREATE, "--name", "Forkert", "--message", "Hej {first_name}", *args)
    assert result.exit_code == 2, result.output
    assert message in _flat(result)
    assert _count(runtime, Campaign) == 0


def test_a_token_from_the_cli_works_against_the_api_until_it_is_revoked(
    runtime: Runtime,
) -> None:
    issued = _run(runtime, "user", "token", "Carsten@x.dk", "--name", "rapport")
    assert issued.exit_code == 0, issued.output
    assert "Den vises kun denne ene gang" in _flat(issued)
    token = issued.stdout.strip().splitlines()[-1]
    with runtime.database.session() as session:
        row = session.scalars(sa.select(ApiToken)).one()
        assert (row.name, row.revoked_at) == ("rapport", None)
        assert token not in row.token_hash  # only the hash is kept
    headers = {"Authorization": f"Bearer {token}"}
    api_runtime = Runtime(settings=make_settings(), database=runtime.database)
    with TestClient(create_app(api_runtime)) as client:
        assert client.get("/api/v1/campaigns", headers=headers).json() == {"campaigns": []}
        revoked = _run(runtime, "user", "revoke-token", str(row.id))
        assert revoked.exit_code == 0, revoked.output
        assert f"API-nøgle nr. {row.id} er tilbagekaldt." in _flat(revoked)
        assert client.get("/api/v1/campaigns", headers=headers).status_code == 401
    again = _run(runtime, "user", "revoke-token", str(row.id))
    assert again.exit_code == 1
    assert "er allerede tilbagekaldt" in _flat(again)
    nobody = _run(runtime, "user", "token", "nobody@x.dk")
    assert nobody.exit_code == 1
    assert "Der findes ingen bruger med nobody@x.dk." in _flat(nobody)
