"""The ``stifinder`` command: the composition root for every way Stifinder is run."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy.orm import Session

from bot import demo as demo_data
from bot import logs, retention
from bot.i18n import translate, translate_plural
from bot.passwords import MIN_LENGTH, hash_password
from bot.runtime import Runtime
from bot.settings import ConfigurationError, Settings
from dialogs.i18n import N_
from dialogs.types import CampaignStatus, Channel, Role, YoungPersonStatus
from storage import migrate, staff, tokens
from storage.importing import ImportReport, import_young_people
from storage.models import Municipality

if TYPE_CHECKING:
    from bot.campaigns import DryRun

app = typer.Typer(no_args_is_help=True, help="Stifinder: outreach and handoff for young people.")
db_app = typer.Typer(no_args_is_help=True, help="The database schema.")
user_app = typer.Typer(no_args_is_help=True, help="Staff accounts.")
dialogs_app = typer.Typer(no_args_is_help=True, help="The conversation dialogs.")
telegram_app = typer.Typer(no_args_is_help=True, help="The Telegram channel.")
campaign_app = typer.Typer(
    no_args_is_help=True, help="Campaigns: a message or a dialog to a segment of young people."
)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(dialogs_app, name="dialogs")
app.add_typer(telegram_app, name="telegram")
app.add_typer(campaign_app, name="campaign")
console = Console()
errors = Console(stderr=True)
MAX_ID = 2**31 - 1


def _runtime(ctx: typer.Context) -> Runtime:
    runtime: Runtime = ctx.obj
    return runtime


@app.callback()
def _root(ctx: typer.Context) -> None:
    """Build the settings once; every command gets the same runtime."""
    if ctx.obj is not None:  # tests pass a ready runtime
        return
    try:
        settings = Settings()
    except (ConfigurationError, ValidationError) as error:
        errors.print(f"[bold red]Configuration error:[/] {error}")
        raise typer.Exit(2) from error
    logs.configure(level=settings.log_level, fmt=settings.log_format)
    ctx.obj = Runtime.build(settings)


def _require_schema(runtime: Runtime) -> None:
    if not migrate.is_at_head(runtime.database.engine):
        errors.print(
            translate(
                runtime.settings.default_language,
                "Databasen er ikke opdateret. Kør først: stifinder db upgrade",
            )
        )
        raise typer.Exit(1)


def _print_logins(language: str, base_url: str) -> None:
    sign_in = base_url.rstrip("/") + "/sign-in"
    console.print(translate(language, "Demo-kommunen er klar. Log ind på {url} med:", url=sign_in))
    for login in demo_data.LOGINS:
        console.print(f"  {login.role.value:<14} {login.email:<28} {login.password}")


def _ensure_nightly(runtime: Runtime) -> None:
    """Every municipality's next nightly retention run is in the schedule."""
    with runtime.database.session() as session:
        retention.ensure_scheduled(session, datetime.now(UTC))


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    demo: Annotated[bool, typer.Option(help="Seed demo data first (development only).")] = False,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Upgrade the schema before serving.")
    ] = True,
    telegram_polling: Annotated[
        bool, typer.Option(help="Fetch Telegram updates by polling (no public URL needed).")
    ] = False,
) -> None:
    """Run the web app and the worker in one process (the embedded default)."""
    import uvicorn

    from bot.web.app import create_app

    runtime = _runtime(ctx)
    settings = runtime.settings
    if migrate_first:
        migrate.upgrade(runtime.database.engine)
    _require_schema(runtime)
    if demo:
        _seed_demo(runtime)
        _print_logins(settings.default_language, settings.public_base_url)
    _ensure_nightly(runtime)
    application = create_app(runtime, run_worker=True)
    poller = None
    if telegram_polling:
        if not settings.telegram_enabled:
            errors.print("STIFINDER_TELEGRAM_BOT_TOKEN is not set: nothing to poll")
            raise typer.Exit(2)
        from bot.channels.telegram import telegram_bot
        from bot.telegram_polling import TelegramPoller

        poller = TelegramPoller(telegram_bot(settings), runtime.inbound, runtime.pump)
        poller.start()
    try:
        uvicorn.run(
            application,
            host=host or settings.host,
            port=port or settings.port,
            log_config=None,
            proxy_headers=True,
        )
    finally:
        if poller is not None:
            poller.stop()


@app.command()
def worker(ctx: typer.Context) -> None:
    """Run only the worker (any number of them can share one PostgreSQL database)."""
    runtime = _runtime(ctx)
    _require_schema(runtime)
    _ensure_nightly(runtime)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        runtime.worker().run_until(stop)
    finally:
        # The pump may be sending what the campaign job woke it for: let it record that.
        runtime.close()


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Upgrade the database schema to the newest migration."""
    runtime = _runtime(ctx)
    migrate.upgrade(runtime.database.engine)
    console.print(f"database at revision {migrate.current_revision(runtime.database.engine)}")


@db_app.command("check")
def db_check(ctx: typer.Context) -> None:
    """Fail if the models and the migrations disagree."""
    migrate.check(_runtime(ctx).database.engine)
    console.print("models and migrations agree")


def _seed_demo(runtime: Runtime) -> bool:
    with runtime.database.session() as session:
        return demo_data.seed(
            session, now=datetime.now(UTC), development=runtime.settings.is_development
        )


@app.command()
def demo(ctx: typer.Context) -> None:
    """Create the demo municipality, staff and young people (development only)."""
    runtime = _runtime(ctx)
    language = runtime.settings.default_language
    if not runtime.settings.is_development:
        errors.print(translate(language, "Demodata kan kun oprettes i udviklingstilstand."))
        raise typer.Exit(1)
    migrate.upgrade(runtime.database.engine)
    if not _seed_demo(runtime):
        console.print(translate(language, "Demodata findes allerede."))
    _print_logins(language, runtime.settings.public_base_url)


def _print_report(report: ImportReport, language: str) -> None:
    for error in report.errors:
        where = (
            translate(language, "Linje {line}, felt {field}", line=error.line, field=error.field)
            if error.field
            else translate(language, "Linje {line}", line=error.line)
        )
        errors.print(f"{where}: {translate(language, error.message, **error.params)}")
    if not report.written:
        errors.print(
            translate(
                language,
                "Intet er importeret. Ret fejlene, eller brug --skip-bad-rows for at springe "
                "de forkerte rækker over.",
            )
        )
        return
    console.print(
        translate(
            language,
            "Importeret: {created} nye, {updated} opdateret, {skipped} sprunget over.",
            created=report.created,
            updated=report.updated,
            skipped=report.skipped,
        )
    )


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV or Excel (.xlsx) file.")
    ],
    municipality: Annotated[str, typer.Option(help="The municipality's short name (slug).")],
    skip_bad_rows: Annotated[
        bool, typer.Option(help="Import the good rows even if some rows are bad.")
    ] = False,
    encoding: Annotated[str, typer.Option(help="The file's encoding, e.g. cp1252.")] = "utf-8",
) -> None:
    """Import young people from a CSV or Excel (.xlsx) file; nothing is written if a row is bad."""
    runtime = _runtime(ctx)
    language = runtime.settings.default_language
    _require_schema(runtime)
    data = file.read_bytes()
    with runtime.database.session() as session:
        place = staff.municipality_by_slug(session, municipality)
        if place is None:
            errors.print(translate(language, "Kommunen {slug} findes ikke.", slug=municipality))
            raise typer.Exit(1)
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
        ) as bar:
            task = bar.add_task(translate(language, "Importerer"), total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = import_young_people(
                session,
                municipality=place,
                data=data,
                encoding=encoding,
                skip_bad_rows=skip_bad_rows,
                actor="cli",
                progress=advance,
            )
        for outcome, count in (("created", report.created), ("updated", report.updated)):
            runtime.metrics.imported_rows.labels(outcome).inc(count)
    _print_report(report, language)
    if not report.written:
        raise typer.Exit(1)


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    email: Annotated[str, typer.Option(help="Sign-in e-mail.")],
    name: Annotated[str, typer.Option(help="Full name.")],
    role: Annotated[Role, typer.Option(help="kontaktperson, coordinator or admin.")],
    municipality: Annotated[
        str | None, typer.Option(help="The municipality's slug (not needed for an admin).")
    ] = None,
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
) -> None:
    """Create a staff account."""
    runtime = _runtime(ctx)
    language = runtime.settings.default_language
    _require_schema(runtime)
    if len(password) < MIN_LENGTH:
        errors.print(translate(language, "Adgangskoden skal være mindst {n} tegn.", n=MIN_LENGTH))
        raise typer.Exit(1)
    try:
        with runtime.database.session() as session:
            place = None
            if municipality is not None:
                place = staff.municipality_by_slug(session, municipality)
                if place is None:
                    errors.print(
                        translate(language, "Kommunen {slug} findes ikke.", slug=municipality)
                    )
                    raise typer.Exit(1)
            user = staff.add_staff(
                session,
                name=name,
                email=email,
                role=role,
                password_hash=hash_password(password),
                municipality=place,
            )
            user_id = user.id
    except staff.StaffError as error:
        errors.print(translate(language, error.message, **error.params))
        raise typer.Exit(1) from error
    console.print(translate(language, "Brugeren er oprettet (nr. {id}).", id=user_id))


@user_app.command("token")
def user_token(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The staff member's sign-in e-mail.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "api",
) -> None:
    """Issue a personal API token; it is printed once and only its hash is kept."""
    runtime = _runtime(ctx)
    language = runtime.settings.default_language
    _require_schema(runtime)
    try:
        with runtime.database.session() as session:
            member = staff.find_by_email(session, email)
            if member is None:
                errors.print(
                    translate(language, "Der findes ingen bruger med {email}.", email=email)
                )
                raise typer.Exit(1)
            row, token = tokens.issue(session, member, name=name, now=datetime.now(UTC))
            token_id, address = row.id, member.email
    except tokens.TokenError as error:
        errors.print(translate(language, error.message, **error.params))
        raise typer.Exit(1) from error
    console.print(
        translate(
            language,
            "API-nøgle nr. {id} til {email}. Den vises kun denne ene gang, så gem den nu:",
            id=token_id,
            email=address,
        )
    )
    console.print(token, markup=False, highlight=False, soft_wrap=True)


@user_app.command("revoke-token")
def user_revoke_token(
    ctx: typer.Context,
    token_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=MAX_ID, help="Token number.")],
) -> None:
    """Revoke an API token at once."""
    runtime = _runtime(ctx)
    language = runtime.settings.default_language
    _require_schema(runtime)
    try:
        with runtime.database.session() as session:
            tokens.revoke(session, token_id, now=datetime.now(UTC))
    except tokens.TokenError as error:
        errors.print(translate(language, error.message, **error.params))
        raise typer.Exit(1) from error
    console.print(translate(language, "API-nøgle nr. {id} er tilbagekaldt.", id=token_id))


@dialogs_app.command("check")
def dialogs_check(
    ctx: typer.Context,
    municipality: Annotated[
        str | None,
        typer.Option(help="Also check this municipality's own texts (its slug)."),
    ] = None,
) -> None:
    """Validate every dialog: structure, variables, translations, SMS length, sensitive words."""
    from bot.dialog_check import run_check

    problems = [str(problem) for problem in run_check()]
    if municipality is not None:
        from bot.dialog_texts import check_municipality
        from storage import dialog_texts

        runtime = _runtime(ctx)
        with runtime.database.session() as session:
            place = staff.municipality_by_slug(session, municipality)
            if place is None:
                language = runtime.settings.default_language
                errors.print(translate(language, "Kommunen {slug} findes ikke.", slug=municipality))
                raise typer.Exit(2)
            own = check_municipality(dialog_texts.overrides(session, place.id))
        problems += [f"{municipality}: {problem}" for problem in own]
    for problem in problems:
        errors.print(problem, markup=False, highlight=False)
    if problems:
        errors.print(f"{len(problems)} problem(s)")
        raise typer.Exit(1)
    console.print("dialogs ok")


@dialogs_app.command("draw")
def dialogs_draw(
    out: Annotated[Path, typer.Option(help="Folder for the .mmd files.")] = Path("docs/dialogs"),
) -> None:
    """Write a Mermaid diagram of each dialog."""
    from dialogs.draw import mermaid
    from dialogs.flows import CORE_DIALOGS

    out.mkdir(parents=True, exist_ok=True)
    for dialog in CORE_DIALOGS:
        (out / f"{dialog.name}.mmd").write_text(mermaid(dialog), encoding="utf-8")
        console.print(str(out / f"{dialog.name}.mmd"))


def _find_young_person(runtime: Runtime, who: str) -> tuple[int, str]:
    import sqlalchemy as sa

    from storage.models import YoungPerson
    from storage.phones import InvalidPhone, normalise_phone

    with runtime.database.session() as session:
        query = sa.select(YoungPerson.id, YoungPerson.first_name)
        if who.isdigit() and len(who) < 8:
            rows = session.execute(query.where(YoungPerson.id == int(who))).all()
        else:
            try:
                phone = normalise_phone(who)
            except InvalidPhone:
                phone = None
            condition = (
                YoungPerson.phone == phone
                if phone
                else sa.func.lower(YoungPerson.first_name) == who.lower()
            )
            rows = session.execute(query.where(condition)).all()
    if len(rows) != 1:
        language = runtime.settings.default_language
        errors.print(translate(language, "Fandt ikke præcis én ung, der passer på {who}.", who=who))
        raise typer.Exit(1)
    return int(rows[0][0]), str(rows[0][1])


@app.command()
def chat(
    ctx: typer.Context,
    who: Annotated[str, typer.Option("--as", help="The young person: id, phone or first name.")],
) -> None:
    """Write to the bot as a young person, in the terminal (the simulator channel)."""
    from bot.conversations import Sent
    from dialogs.types import Channel

    runtime = _runtime(ctx)
    _require_schema(runtime)
    person_id, first_name = _find_young_person(runtime, who)
    language = runtime.settings.default_language
    console.print(translate(language, "Du skriver som {name}. Afslut med Ctrl+D.", name=first_name))

    def show(sent: list[Sent]) -> None:
        runtime.dispatcher.dispatch_due(young_person_id=person_id)
        for message in sent:
            console.print(f"[bold]Stifinder:[/] {message.text}", highlight=False)

    try:
        while True:
            try:
                text = console.input("[bold]> [/]")
            except EOFError:
                break
            if not text.strip():
                continue
            show(
                runtime.conversations.receive(
                    young_person_id=person_id, channel=Channel.SIMULATOR, text=text
                )
            )
    finally:
        runtime.close()


@telegram_app.command("set-webhook")
def telegram_set_webhook(ctx: typer.Context) -> None:
    """Tell Telegram to post updates to STIFINDER_PUBLIC_BASE_URL, with the secret token."""
    import asyncio

    from bot.channels.telegram import telegram_bot
    from bot.web.paths import TELEGRAM_PATH

    settings = _runtime(ctx).settings
    if not settings.telegram_enabled or settings.telegram_webhook_secret is None:
        errors.print("Set STIFINDER_TELEGRAM_BOT_TOKEN and STIFINDER_TELEGRAM_WEBHOOK_SECRET first")
        raise typer.Exit(2)
    url = settings.public_base_url.rstrip("/") + TELEGRAM_PATH
    secret = settings.telegram_webhook_secret.get_secret_value()

    async def register() -> bool:
        async with telegram_bot(settings) as bot:
            return await bot.set_webhook(
                url=url, secret_token=secret, allowed_updates=["message", "my_chat_member"]
            )

    if not asyncio.run(register()):
        errors.print("Telegram did not accept the webhook")
        raise typer.Exit(1)
    console.print(f"webhook set: {url}")


@telegram_app.command("link")
def telegram_link(
    ctx: typer.Context,
    who: Annotated[str, typer.Option("--as", help="The young person: id, phone or first name.")],
) -> None:
    """Print a young person's invitation link (a fresh one if theirs was used or expired)."""
    from storage.invitations import fresh_invite_code

    runtime = _runtime(ctx)
    _require_schema(runtime)
    username = runtime.settings.telegram_bot_username
    if not username:
        errors.print("Set STIFINDER_TELEGRAM_BOT_USERNAME first")
        raise typer.Exit(2)
    person_id, _ = _find_young_person(runtime, who)
    with runtime.database.session() as session:
        code = fresh_invite_code(session, person_id, now=datetime.now(UTC), actor="cli")
    console.print(f"https://t.me/{username}?start={code}")


# ---------------------------------------------------------------------------- campaigns

CAMPAIGN_STATUS = {
    CampaignStatus.DRAFT.value: N_("kladde"),
    CampaignStatus.SCHEDULED.value: N_("planlagt"),
    CampaignStatus.RUNNING.value: N_("kører"),
    CampaignStatus.PAUSED.value: N_("på pause"),
    CampaignStatus.FINISHED.value: N_("færdig"),
    CampaignStatus.CANCELLED.value: N_("annulleret"),
}
RECIPIENT_STATUS = {
    "pending": N_("venter"),
    "queued": N_("i kø"),
    "sent": N_("sendt"),
    "delivered": N_("leveret"),
    "replied": N_("har svaret"),
    "failed": N_("fejlet"),
    "skipped": N_("sprunget over"),
}
REASONS = {
    "opted_out": N_("har frameldt sig"),
    "closed": N_("afsluttet"),
    "no_channel": N_("ingen kanal"),
    "meeting_changed": N_("mødet er flyttet eller aflyst"),
    "conversation_busy": N_("midt i en anden samtale"),
    "with_staff": N_("en medarbejder har samtalen"),
    "campaign_cancelled": N_("kampagnen er annulleret"),
    "quiet_hours": N_("stille timer"),
    "due_time": N_("sendetidspunktet"),
}
AUDIENCE_EXAMPLE = '{"tags": ["fgu"], "min_age": 18}'
MESSAGE_EXAMPLE = '{"da": "Hej {first_name}", "en": "Hi {first_name}"}'


def _refuse(message: str) -> NoReturn:
    """Bad input: say what is wrong and stop with exit code 2, as for a bad option."""
    errors.print(message, markup=False, highlight=False)
    raise typer.Exit(2)


def _campaign_error(language: str, error: ValueError) -> NoReturn:
    # The engine's messages name the field (e.g. "cron: ..."); they are kept as they are.
    _refuse(translate(language, "Fejl i kampagnen: {error}", error=str(error)))


def _label(language: str, labels: Mapping[str, str], value: str) -> str:
    return translate(language, labels[value]) if value in labels else value


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M %Z}" if moment is not None else "-"


def _audience(
    session: Session,
    place: Municipality,
    language: str,
    as_json: str | None,
    flags: dict[str, Any],
    emails: list[str],
) -> dict[str, Any]:
    """The audience from ``--audience`` or from the single filters, never both."""
    from bot.web.api import AudienceBody

    chosen = {name: value for name, value in flags.items() if value not in (None, [])}
    if as_json is not None:
        if chosen or emails:
            _refuse(
                translate(
                    language,
                    "Brug enten --audience eller de enkelte filtre (--min-age, --tag osv.), "
                    "ikke begge.",
                )
            )
        try:
            data = json.loads(as_json)
        except json.JSONDecodeError as error:
            _refuse(translate(language, "--audience er ikke gyldig JSON: {error}", error=error))
        if not isinstance(data, dict):
            _refuse(
                translate(
                    language,
                    "--audience skal være et JSON-objekt, fx {example}",
                    example=AUDIENCE_EXAMPLE,
                )
            )
        try:
            checked = AudienceBody.model_validate(data)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
                for problem in error.errors()
            )
            _refuse(translate(language, "Fejl i kampagnen: {error}", error=problems))
        return checked.model_dump(exclude_none=True, mode="json")
    ids: list[int] = []
    for email in emails:
        member = staff.find_by_email(session, email)
        if member is None or member.municipality_id != place.id:
            _refuse(
                translate(
                    language,
                    "Der er ingen kontaktperson med {email} i {slug}.",
                    email=email,
                    slug=place.slug,
                )
            )
        ids.append(member.id)
    if ids:
        chosen["kontaktperson_ids"] = ids
    return chosen


def _template(
    language: str, message: str | None, message_file: Path | None
) -> dict[str, str] | None:
    if message is not None and message_file is not None:
        _refuse(translate(language, "Brug enten --message eller --message-file, ikke begge."))
    if message is not None:
        return {"da": message}
    if message_file is None:
        return None
    try:
        data = json.loads(message_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        _refuse(translate(language, "--message-file er ikke gyldig JSON: {error}", error=error))
    if not isinstance(data, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in data.items()
    ):
        _refuse(
            translate(
                language,
                "--message-file skal være et JSON-objekt med en tekst pr. sprog, fx {example}",
                example=MESSAGE_EXAMPLE,
            )
        )
    return data


def _starts_at(language: str, value: str | None, zone: ZoneInfo) -> datetime | None:
    """An ISO time; without an offset it is the municipality's local time."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        _refuse(
            translate(
                language,
                "--at: {value} er ikke et tidspunkt. Skriv fx 2026-12-01T10:00 (kommunens tid) "
                "eller 2026-12-01T10:00+01:00.",
                value=value,
            )
        )
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _audit_campaign(runtime: Runtime, action: str, campaign_id: int, **details: object) -> None:
    from storage import audit
    from storage.models import Campaign

    with runtime.database.session() as session:
        campaign = session.get_one(Campaign, campaign_id)
        audit.record(
            session,
            actor="cli",
            action=action,
            municipality_id=campaign.municipality_id,
            details={"campaign_id": campaign_id, **details},
        )


def _print_dry_run(language: str, result: DryRun, dialog: str | None) -> None:
    console.print(
        translate_plural(
            language, "{n} ung er i målgruppen.", "{n} unge er i målgruppen.", result.count
        )
    )
    if result.without_channel:
        console.print(
            translate(
                language,
                "{n} af dem kan ikke nås lige nu: ingen telefon eller Telegram.",
                n=result.without_channel,
            )
        )
    if result.in_quiet_hours:
        console.print(
            translate(
                language, "Starttidspunktet er i de stille timer: beskederne venter til morgenen."
            )
        )
    if result.previews:
        table = Table(title=translate(language, "Eksempler"))
        for header in (
            N_("Navn"),
            N_("Sprog"),
            N_("Kanal"),
            N_("Besked"),
            N_("Kodning"),
            N_("Segmenter"),
        ):
            table.add_column(translate(language, header))
        for preview in result.previews:
            text = preview.text
            if text is None:
                text = translate(language, "(dialogen {dialog})", dialog=dialog or "")
            table.add_row(
                preview.first_name,
                preview.language,
                preview.channel.value if preview.channel else translate(language, "ingen kanal"),
                text,
                preview.encoding or "-",
                str(preview.segments) if preview.segments is not None else "-",
            )
        console.print(table)
    console.print(translate(language, "Prøvekørsel: intet er oprettet."))


@campaign_app.command("create")
def campaign_create(
    ctx: typer.Context,
    municipality: Annotated[str, typer.Option(help="The municipality's slug.")],
    name: Annotated[
        str, typer.Option(help="The campaign's name (not needed with --dry-run).")
    ] = "",
    dialog: Annotated[str | None, typer.Option(help="Start this dialog, e.g. dreams.")] = None,
    message: Annotated[
        str | None, typer.Option(help="The message in Danish; {first_name} is filled in.")
    ] = None,
    message_file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help='JSON: {"da": "...", "en": "..."}.'),
    ] = None,
    audience: Annotated[
        str | None, typer.Option(help=f"The audience as JSON, e.g. {AUDIENCE_EXAMPLE}.")
    ] = None,
    min_age: Annotated[int | None, typer.Option(min=0, max=130, help="At least this old.")] = None,
    max_age: Annotated[int | None, typer.Option(min=0, max=130, help="At most this old.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="Has this tag (repeat: any of them).")
    ] = None,
    status: Annotated[
        list[YoungPersonStatus] | None,
        typer.Option(help="In this status (repeat: any of them); default active."),
    ] = None,
    channel: Annotated[Channel | None, typer.Option(help="Reachable on this channel.")] = None,
    kontaktperson: Annotated[
        list[str] | None, typer.Option(help="Their kontaktperson's e-mail (repeat: any of them).")
    ] = None,
    min_days_since_contact: Annotated[
        int | None, typer.Option(min=0, max=36500, help="Wrote last at least this many days ago.")
    ] = None,
    max_days_since_contact: Annotated[
        int | None, typer.Option(min=0, max=36500, help="Wrote within this many days.")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(help="Start time, ISO 8601; without an offset, the municipality's time."),
    ] = None,
    cron: Annotated[
        str | None,
        typer.Option(help='Recurrence in the municipality\'s time, e.g. "0 10 * * mon".'),
    ] = None,
    relative_meeting_minutes: Annotated[
        int | None,
        typer.Option(help="Send at each coming meeting plus N minutes (negative: before it)."),
    ] = None,
    rate: Annotated[
        int | None, typer.Option(min=1, max=100_000, help="At most this many messages a minute.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count and preview; create nothing.")
    ] = False,
    schedule: Annotated[bool, typer.Option("--schedule", help="Make it live at once.")] = False,
) -> None:
    """Create a campaign (a draft unless --schedule), or preview it with --dry-run."""
    from bot.campaigns import CampaignError
    from bot.web.api import audit_preview, build_spec
    from storage.campaigns import AudienceError

    runtime = _runtime(ctx)
    language = runtime.settings.default_language
    _require_schema(runtime)
    template = _template(language, message, message_file)
    with runtime.database.session() as session:
        place = staff.municipality_by_slug(session, municipality)
        if place is None:
            _refuse(translate(language, "Kommunen {slug} findes ikke.", slug=municipality))
        zone = ZoneInfo(place.timezone)
        flags: dict[str, Any] = {
            "min_age": min_age,
            "max_age": max_age,
            "tags": tag or [],
            "statuses": [s.value for s in status or []],
            "channel": channel.value if channel else None,
            "min_days_since_contact": min_days_since_contact,
            "max_days_since_contact": max_days_since_contact,
        }
        chosen = _audience(session, place, language, audience, flags, kontaktperson or [])
        relative = (
            {"anchor": "meeting", "offset_minutes": relative_meeting_minutes}
            if relative_meeting_minutes is not None
            else None
        )
        try:
            spec = build_spec(
                session,
                place,
                name=name or ("dry run" if dry_run else ""),
                audience=chosen,
                dialog=dialog,
                template=template,
                starts_at=_starts_at(language, at, zone),
                cron=cron,
                relative=relative,
                rate_per_minute=rate,
            )
        except (CampaignError, AudienceError) as error:
            _campaign_error(language, error)
    try:
        if dry_run:
            result = runtime.campaigns.dry_run(spec)
        else:
            campaign_id = runtime.campaigns.create(spec)
    except (CampaignError, AudienceError) as error:
        _campaign_error(language, error)
    if dry_run:
        with runtime.database.session() as session:
            audit_preview(session, result, municipality_id=spec.municipality_id, actor="cli")
        _print_dry_run(language, result, dialog)
        return
    _audit_campaign(runtime, "campaign.created", campaign_id)
    console.print(translate(language, "Kampagnen er oprettet (nr. {id}).", id=campaign_id))
    if schedule:
        _schedule(runtime, language, campaign_id, zone)
    else:
        console.print(
            translate(
                language,
                "Den er en kladde. Sæt den i gang med: stifinder campaign schedule {id}",
                id=campaign_id,
            )
        )


def _schedule(runtime: Runtime, language: str, campaign_id: int, zone: ZoneInfo) -> None:
    from bot.campaigns import CampaignError

    try:
        first_due = runtime.campaigns.schedule(campaign_id)
    except CampaignError as error:
        _campaign_error(language, error)
    _audit_campaign(runtime, "campaign.scheduled", campaign_id, first_due_at=first_due.isoformat())
    console.print(
        translate(
            language,
            "Kampagne nr. {id} er planlagt. Første kørsel: {when}.",
            id=campaign_id,
            when=_local(first_due, zone),
        )
    )


def _content(language: str, content: Mapping[str, Any]) -> str:
    if "dialog" in content:
        return translate(language, "dialogen {dialog}", dialog=content["dialog"])
    languages = ", ".join(sorted(content.get("template") or {}))
    return translate(language, "besked på {languages}", languages=languages)


CampaignIdArgument = Annotated[
    int, typer.Argument(metavar="ID", min=1, max=MAX_ID, help="The campaign's number.")
]


def _zone_of(runtime: Runtime, language: str, campaign_id: int) -> ZoneInfo:
    from storage.models import Campaign

    with runtime.database.session() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            _refuse(translate(language, "Der findes ingen kampagne nr. {id}.", id=campaign_id))
        return ZoneInfo(session.get_one(Municipality, campaign.municipality_id).timezone)


@campaign_app.command("list")
def campaign_list(
    ctx: typer.Context,
    municipality: Annotated[
        str | None, typer.Option(help="Only this municipality's campaigns (its slug).")
    ] = None,
) -> None:
    """The campaigns, newest first."""
    import sqlalchemy as sa

    from bot.web.api import next_run_at
    from storage.models import Campaign

    runtime = _runtime(ctx)
    language = runtime.settings.default_language
    _require_schema(runtime)
    table = Table()
    for header in (
        N_("Nr."),
        N_("Navn"),
        N_("Kommune"),
        N_("Status"),
        N_("Indhold"),
        N_("Næste kørsel"),
    ):
        table.add_column(translate(language, header))
    with runtime.database.session() as session:
        query = (
            sa.select(Campaign, Municipality)
            .join(Municipality, Municipality.id == Campaign.municipality_id)
            .order_by(Campaign.id.desc())
        )
        if municipality is not None:
            if staff.municipality_by_slug(session, municipality) is None:
                _refuse(translate(language, "Kommunen {slug} findes ikke.", slug=municipality))
            query = query.where(Municipality.slug == municipality)
        rows = session.execute(query).all()
        for campaign, place in rows:
            table.add_row(
                str(campaign.id),
                campaign.name,
                place.slug,
                _label(language, CAMPAIGN_STATUS, campaign.status.value),
                _content(language, campaign.content),
                _local(next_run_at(session, campaign.id), ZoneInfo(place.timezone)),
            )
    if not rows:
        console.print(translate(language, "Der er ingen kampagner."))
        return
    console.print(table)


@campaign_app.command("show")
def campaign_show(ctx: typer.Context, campaign_id: CampaignIdArgument) -> None:
    """One campaign: what, to whom, when, and how far it has come."""
    from bot.web.api import next_run_at
    from storage.models import Campaign

    runtime = _runtime(ctx)
    language = runtime.settings.default_language
    _require_schema(runtime)
    zone = _zone_of(runtime, language, campaign_id)
    progress = runtime.campaigns.progress(campaign_id)

    def row(label: str, value: str) -> None:
        facts.add_row(translate(language, label), value)

    facts = Table(show_header=False, box=None)
    facts.add_column(style="bold")
    facts.add_column()
    with runtime.database.session() as session:
        campaign = session.get_one(Campaign, campaign_id)
        place = session.get_one(Municipality, campaign.municipality_id)
        row(N_("Navn"), campaign.name)
        row(N_("Kommune"), place.slug)
        row(N_("Status"), _label(language, CAMPAIGN_STATUS, campaign.status.value))
        row(N_("Indhold"), _content(language, campaign.content))
        chosen = {k: v for k, v in campaign.audience.items() if v not in (None, [], {})}
        row(N_("Målgruppe"), json.dumps(chosen, ensure_ascii=False))
        row(N_("Start"), _local(campaign.starts_at, zone))
        if campaign.cron:
            row(N_("Gentagelse"), campaign.cron)
        if campaign.relative_schedule:
            minutes = int(campaign.relative_schedule.get("offset_minutes", 0))
            row(N_("I forhold til møder"), translate(language, "{n} minutter", n=minutes))
        if campaign.rate_per_minute:
            row(N_("Hastighed"), translate(language, "{n} i minuttet", n=campaign.rate_per_minute))
        row(N_("Næste kørsel"), _local(next_run_at(session, campaign_id), zone))
    console.print(translate(language, "Kampagne nr. {id}", id=campaign_id), style="bold")
    console.print(facts)
    table = Table(title=translate(language, "Modtagere"))
    table.add_column(translate(language, "Status"))
    table.add_column(translate(language, "Antal"), justify="right")
    details = {"skipped": progress["skipped"], "pending": progress["waiting"]}
    for status, count in progress["by_status"].items():
        table.add_row(_label(language, RECIPIENT_STATUS, status), str(count))
        for reason, number in details.get(status, {}).items():
            table.add_row(f"  - {_label(language, REASONS, reason)}", str(number))
    table.add_row(translate(language, "I alt"), str(progress["total"]), style="bold")
    console.print(table)


@campaign_app.command("schedule")
def campaign_schedule(ctx: typer.Context, campaign_id: CampaignIdArgument) -> None:
    """Make a draft live: its first run is at its start time (or its next cron time)."""
    runtime = _runtime(ctx)
    language = runtime.settings.default_language
    _require_schema(runtime)
    _schedule(runtime, language, campaign_id, _zone_of(runtime, language, campaign_id))


@campaign_app.command("pause")
def campaign_pause(ctx: typer.Context, campaign_id: CampaignIdArgument) -> None:
    """Stop sending at once; resume goes on where it stopped."""
    _campaign_action(ctx, campaign_id, "pause")


@campaign_app.command("resume")
def campaign_resume(ctx: typer.Context, campaign_id: CampaignIdArgument) -> None:
    """Go on with a paused campaign."""
    _campaign_action(ctx, campaign_id, "resume")


@campaign_app.command("cancel")
def campaign_cancel(ctx: typer.Context, campaign_id: CampaignIdArgument) -> None:
    """Stop for good: nothing more is sent, also what waits in the outbox."""
    _campaign_action(ctx, campaign_id, "cancel")


def _campaign_action(ctx: typer.Context, campaign_id: int, action: str) -> None:
    from bot.campaigns import CampaignError

    runtime = _runtime(ctx)
    language = runtime.settings.default_language
    _require_schema(runtime)
    _zone_of(runtime, language, campaign_id)  # refuses an unknown campaign
    campaigns = runtime.campaigns
    try:
        if action == "pause":
            campaigns.pause(campaign_id)
            _audit_campaign(runtime, "campaign.paused", campaign_id)
            done = translate(language, "Kampagne nr. {id} er sat på pause.", id=campaign_id)
        elif action == "resume":
            campaigns.resume(campaign_id)
            _audit_campaign(runtime, "campaign.resumed", campaign_id)
            done = translate(language, "Kampagne nr. {id} kører igen.", id=campaign_id)
        else:
            skipped = campaigns.cancel(campaign_id)
            _audit_campaign(runtime, "campaign.cancelled", campaign_id, skipped=skipped)
            done = translate_plural(
                language,
                "Kampagne nr. {id} er annulleret; {n} modtager blev sprunget over.",
                "Kampagne nr. {id} er annulleret; {n} modtagere blev sprunget over.",
                skipped,
                id=campaign_id,
            )
    except CampaignError as error:
        _campaign_error(language, error)
    console.print(done)


def main() -> None:
    app()
