"""The HTTP application: the contract's routes, its error shape, idempotency."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI
from fastapi.telemetry import TelemetryConfig
from opentelemetry import _logs as otel_logs
from opentelemetry import metrics, trace

from restitution import __version__
from restitution.api import errors
from restitution.api.deps import document_bearer
from restitution.api.idempotency import IdempotencyMiddleware
from restitution.api.routes import attachments, cases, orders, refunds, system, tokens, webhooks
from restitution.services.context import App
from restitution.web.app import mount_web

log = structlog.get_logger()

DESCRIPTION = """Buyer protection for marketplaces: disputes, returns and refunds.

Authenticate with `Authorization: Bearer <operator key or party token>`. Money is
`{"amount": <integer minor units>, "currency": "USD"}`; times are RFC 3339 in UTC.
Every POST accepts `Idempotency-Key`."""


def add_routes(api: FastAPI, router: APIRouter) -> None:
    """The router's routes (their paths already prefixed), straight on the application.

    `include_router` would wrap each router in a layer that FastAPI matches a request against
    before, and again after, choosing the route: ~18 µs of every request (bench/RESULTS.md).
    The routers carry their own tags and error responses, so the OpenAPI document is the same.
    The routes are the routers' own objects, shared by every application made: FastAPI's
    `dependency_overrides` do not reach them (Restitution does not use them).
    """
    api.router.routes.extend(router.routes)


# OpenTelemetry's stand-ins until a deployment sets a provider (opentelemetry has no public
# "is one set?"; FastAPI asks the same way).
_PROVIDER_STAND_INS = frozenset(
    {"ProxyTracerProvider", "_ProxyMeterProvider", "ProxyLoggerProvider"}
)


def fastapi_telemetry() -> TelemetryConfig | None:
    """FastAPI's own OpenTelemetry (a span, metrics and logs per request) as the deployment
    set it up before the server started: on (FastAPI's defaults) when a tracer, meter or
    logger provider is set (say by `opentelemetry-instrument`) or `FASTAPI_OTEL_AUTO_CONFIGURE`
    is `true`; otherwise off. Left on without a provider, FastAPI asks on every request whether
    one has been set since: ~4-7 µs, more than choosing the route (bench/RESULTS.md, round 6).
    """
    if os.environ.get("FASTAPI_OTEL_AUTO_CONFIGURE", "").lower() == "true":
        return None
    providers = (
        trace.get_tracer_provider(),
        metrics.get_meter_provider(),
        otel_logs.get_logger_provider(),
    )
    if any(type(provider).__name__ not in _PROVIDER_STAND_INS for provider in providers):
        return None
    return {"tracing": False, "metrics": False, "logs": False}


def _log_if_failed(task: asyncio.Task[None]) -> None:
    """Background work on the event loop must not end in silence before the server does."""
    if not task.cancelled() and task.exception() is not None:
        log.error("event_loop_work_failed", exc_info=task.exception())


def create_api(
    app: App,
    operator_key: str,
    *,
    on_event_loop: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> FastAPI:
    """The application; `on_event_loop`, background work that runs on the server's event
    loop from start-up to shutdown (the worker's, in `restitution serve` on SQLite)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # PostgreSQL: the hot reads' async connections live as long as the server's loop.
        await app.db.open_async_reads()
        background = asyncio.create_task(on_event_loop()) if on_event_loop else None
        if background is not None:
            background.add_done_callback(_log_if_failed)
        try:
            yield
        finally:
            try:
                if background is not None:
                    background.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await background
            finally:
                await app.db.close_async_reads()

    api = FastAPI(
        telemetry=fastapi_telemetry(),
        lifespan=lifespan,
        title="Restitution API",
        version=__version__,
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
    )
    api.state.restitution = app
    api.state.operator_key = operator_key
    errors.install(api)
    api.add_middleware(IdempotencyMiddleware)
    modules = (system, tokens, orders, cases, attachments, refunds, webhooks)
    routers = [module.router for module in modules]
    if app.settings.test_clock:
        routers.append(system.test_clock_router)
    for router in routers:
        add_routes(api, router)
    mount_web(api, app, operator_key)
    document_bearer(api)
    return api
