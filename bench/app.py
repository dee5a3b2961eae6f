"""The real Stifinder app, built the way the service builds it, plus a baseline route.

``POST /bench/baseline`` does one durable insert (one row, one commit) into a table of its own,
through the app's engine in the thread pool (``run_in_threadpool``), and nothing else: the floor
against which the webhook's cost is measured in the same server process and database.

During a benchmark inbound events are only stored, never processed: ``runtime.pump.kick`` is a
no-op, so the numbers are those of the webhook up to its 2xx. Processing happens after the 2xx
and is covered by the test suite.

Run under uvicorn with ``--factory bench.app:create`` and the environment variables
``BENCH_DATABASE_URL`` and ``BENCH_PUBLIC_BASE_URL``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import sqlalchemy as sa
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from bot import logs
from bot.runtime import Runtime
from bot.settings import Settings
from bot.web.app import create_app
from bot.web.webhooks import EMPTY_TWIML
from storage import migrate

BASELINE_PATH = "/bench/baseline"
# Made-up credentials: the benchmark signs its own requests and never reaches Twilio.
ACCOUNT_SID = "AC" + "b3" * 16
AUTH_TOKEN = "5e" * 16  # a throwaway token for signing local requests
FROM_NUMBER = "+4570707070"

metadata = sa.MetaData()
baseline_table = sa.Table(
    "bench_baseline",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)


BASELINE_INSERT = baseline_table.insert()


def insert_baseline(engine: sa.Engine, payload: str) -> None:
    """The baseline's whole work: one row, one commit."""
    with engine.begin() as connection:
        connection.execute(BASELINE_INSERT, {"payload": payload, "received_at": datetime.now(UTC)})


def bench_settings(database_url: str, public_base_url: str) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        public_base_url=public_base_url,
        secret_key="k" * 40,
        log_level="WARNING",
        log_format="json",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from_number=FROM_NUMBER,
    )


def _store_only() -> None:
    """Stands in for ``Pump.kick``: the benchmark measures storing, not processing."""


def build(database_url: str, public_base_url: str) -> FastAPI:
    settings = bench_settings(database_url, public_base_url)
    logs.configure(level=settings.log_level, fmt=settings.log_format)
    runtime = Runtime.build(settings)
    engine = runtime.database.engine
    migrate.upgrade(engine)
    metadata.create_all(engine)
    runtime.pump.kick = _store_only  # type: ignore[method-assign]
    app = create_app(runtime, run_worker=False)

    @app.post(BASELINE_PATH, include_in_schema=False)
    async def baseline(request: Request) -> Response:
        body = await request.body()
        await run_in_threadpool(insert_baseline, engine, body.decode("utf-8"))
        return Response(EMPTY_TWIML, media_type="application/xml")

    return app


def create() -> FastAPI:
    """The factory for ``uvicorn --factory bench.app:create``."""
    return build(os.environ["BENCH_DATABASE_URL"], os.environ["BENCH_PUBLIC_BASE_URL"])
