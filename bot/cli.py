"""The ``stifinder`` command: the composition root for every way Stifinder is run."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from bot import demo as demo_data
from bot import logs
from bot.i18n import translate
from bot.passwords import MIN_LENGTH, hash_password
from bot.runtime import Runtime
from bot.settings import ConfigurationError, Settings
from dialogs.types import Role
from storage import migrate, staff
from storage.importing import ImportReport, import_young_people

app = typer.Typer(no_args_is_help=True, help="Stifinder: outreach and handoff for young people.")
db_app = typer.Typer(no_args_is_help=True, help="The database schema.")
user_app = typer.Typer(no_args_is_help=True, help="Staff accounts.")
dialogs_app = typer.Typer(no_args_is_help=True, help="The conversation dialogs.")
telegram_app = typer.Typer(no_args_is_help=True, help="The Telegram channel.")
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(dialogs_app, name="dialogs")
app.add_typer(telegram_app, name="telegram")
console = Console()
errors = Console(stderr=True)


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
    console.print(translate(language, "Demo-kommunen er klar. Log ind på {url} med:", url=base_url))
    for login in demo_data.LOGINS:
        console.print(f"  {login.role.value:<14} {login.email:<28} {login.password}")


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
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runtime.worker().run_until(stop)


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
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV file.")],
    municipality: Annotated[str, typer.Option(help="The municipality's short name (slug).")],
    skip_bad_rows: Annotated[
        bool, typer.Option(help="Import the good rows even if some rows are bad.")
    ] = False,
    encoding: Annotated[str, typer.Option(help="The file's encoding, e.g. cp1252.")] = "utf-8",
) -> None:
    """Import young people from a CSV file; nothing is written if a row is bad."""
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


@dialogs_app.command("check")
def dialogs_check() -> None:
    """Validate every dialog: structure, variables, translations, SMS length, sensitive words."""
    from bot.dialog_check import run_check

    problems = run_check()
    for problem in problems:
        errors.print(str(problem))
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


def main() -> None:
    app()
