"""The FastAPI application factory."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.metrics import Metrics
from bot.runtime import Runtime
from bot.web import (
    admin,
    api,
    auth,
    campaign_pages,
    importer,
    inbox,
    live,
    people,
    protection,
    results,
    simulator,
    staff,
    texts,
    webhooks,
)
from bot.web.pages import Pages
from storage import migrate

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    # Nothing is loaded from third-party hosts: every script and stylesheet is Stifinder's own.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class Observe:
    """Metrics by route template and the security headers, as plain ASGI middleware (Starlette's
    ``BaseHTTPMiddleware`` costs a task group and a stream copy on every request)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            # The router leaves the matched route in the scope: label by its template.
            route = str(getattr(scope.get("route"), "path", "unmatched"))
            self.metrics.http_latency.labels(route).observe(time.perf_counter() - started)
            self.metrics.http_requests.labels(route, str(status)).inc()


def settle_memory() -> None:
    """Move what start-up built (modules, the app, catalogs) out of the garbage collector's way.

    A full collection walks every tracked object; with everything loaded that took about 100 ms,
    and every request arriving meanwhile waited for it. Frozen objects are never walked again.
    """
    gc.collect()
    gc.freeze()


def create_app(runtime: Runtime, *, run_worker: bool = False) -> FastAPI:
    """Build the app; with ``run_worker`` the worker runs in the same process (``serve``)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        worker = runtime.worker() if run_worker else None
        if worker is not None:
            worker.start()
        settle_memory()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            runtime.close()

    app = FastAPI(title="Stifinder", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.runtime = runtime
    pages = Pages(runtime.settings.default_language)
    metrics = runtime.metrics

    app.add_middleware(Observe, metrics=metrics)

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        """Readiness: the database answers and its schema is at the newest migration."""
        database = runtime.database
        checks = {"database": database.ping()}
        checks["migrations"] = checks["database"] and migrate.is_at_head(database.engine)
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        return pages.render(
            request,
            "home.html",
            telegram=runtime.settings.telegram_enabled,
            sms=runtime.settings.sms_enabled,
            simulator=runtime.settings.simulator,
        )

    auth.install(app, runtime, pages)
    app.include_router(auth.router(runtime, pages))
    app.include_router(staff.router(runtime, pages))
    app.include_router(inbox.router(runtime, pages))
    app.include_router(live.router(runtime))
    app.include_router(admin.router(runtime, pages))
    app.include_router(people.router(runtime, pages))
    app.include_router(campaign_pages.router(runtime, pages))
    app.include_router(importer.router(runtime, pages))
    app.include_router(protection.router(runtime, pages))
    app.include_router(texts.router(runtime, pages))
    app.include_router(results.router(runtime, pages))
    if runtime.settings.simulator:
        app.include_router(simulator.router(runtime, pages))
    app.include_router(webhooks.router(runtime))
    app.include_router(api.router(runtime))

    return app
