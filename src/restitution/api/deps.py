"""What routes get injected: the application and the authenticated principal."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hmac
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, ParamSpec, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param

from restitution.domain.errors import Forbidden
from restitution.services.auth import OPERATOR, Principal, authenticate
from restitution.services.context import App

P = ParamSpec("P")
T = TypeVar("T")

BEARER = "HTTPBearer"
BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "The operator key or a party token",
}


# The dependencies are `async def`: FastAPI runs a plain `def` dependency in the thread pool,
# one hop per dependency per request, which cost more than the work (bench/RESULTS.md).


async def get_app(request: Request) -> App:
    app: App = request.app.state.restitution
    return app


async def get_principal(request: Request) -> Principal:
    """Who is calling, from `Authorization: Bearer <token>` (read here rather than through
    FastAPI's `HTTPBearer` dependency, a level of dependency solving per request that cost
    ~12 µs; `document_bearer` still puts the scheme in the OpenAPI document)."""
    app: App = request.app.state.restitution
    operator_key: str = request.app.state.operator_key
    token = bearer_token(request.headers.get("authorization"))
    if token and hmac.compare_digest(token.encode(), operator_key.encode()):
        return OPERATOR  # no database to ask: stay on the event loop
    if not token or app.db.is_sqlite:
        # Refused without asking the database, or a local read (as SQLite's use cases).
        return authenticate(app, operator_key, token)
    # A party token on PostgreSQL: in a thread, outside the use cases' limit, so that a
    # request does not queue twice.
    return await run_in_threadpool(authenticate, app, operator_key, token)


def bearer_token(authorization: str | None) -> str | None:
    """The token of a bearer `Authorization` header, as `HTTPBearer` reads it; else None."""
    scheme, token = get_authorization_scheme_param(authorization)
    if not token or scheme.lower() != "bearer":
        return None
    return token


def document_bearer(api: FastAPI) -> None:
    """The OpenAPI document names the bearer scheme on every operation that authenticates."""
    generate = api.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()  # made once, then FastAPI's cached copy: the marks stay on it
        schema.setdefault("components", {}).setdefault("securitySchemes", {})[BEARER] = dict(
            BEARER_SCHEME
        )
        for route in api.routes:
            if not (isinstance(route, APIRoute) and route.include_in_schema):
                continue
            if _authenticates(route.dependant):
                operations = schema["paths"][route.path_format]
                for method in route.methods or ():
                    operations[method.lower()]["security"] = [{BEARER: []}]
        return schema

    api.openapi = openapi  # type: ignore[method-assign]


def _authenticates(dependant: Dependant) -> bool:
    return dependant.call is get_principal or any(
        _authenticates(sub) for sub in dependant.dependencies
    )


async def require_operator(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not principal.is_operator:
        raise Forbidden("operator_only", "this needs the operator key")
    return principal


AppDep = Annotated[App, Depends(get_app)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
OperatorDep = Annotated[Principal, Depends(require_operator)]


# Use cases running at once on PostgreSQL, each in a thread. Enough to overlap the round trips
# of a dozen statements; more only queue on the GIL: with the thread pool's 40, the write
# benchmark's p99 was 325-405 ms, with 8 it is 150-160 ms at 8 % more requests/s
# (bench/RESULTS.md). Requests beyond it wait their turn in the pool's queue, in order.
USE_CASE_THREADS = 8
# The process's own pool, handed work by asyncio directly: anyio's `to_thread.run_sync` with
# a limiter cost 75-110 µs of CPU per call here, this 25-45 µs (bench/RESULTS.md, round 7).
_use_case_threads = ThreadPoolExecutor(USE_CASE_THREADS, thread_name_prefix="use-case")


async def use_case(app: App, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a (blocking) use case for a route.

    On SQLite, inline on the event loop: its writes are serialised anyway, and a thread pool
    queueing on its write lock was the slowest way measured (CEILINGS.md; bench/RESULTS.md).
    On PostgreSQL, in a thread, at most `USE_CASE_THREADS` at once, so requests overlap
    their round trips; the thread sees the request's context variables.
    """
    if app.db.is_sqlite:
        return function(*args, **kwargs)
    call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
    running = _use_case_threads.submit(call)
    try:
        return await asyncio.wrap_future(running)
    except asyncio.CancelledError:
        # The request was cancelled (the server stopping): a use case not started yet never
        # runs; one already running is waited for, so that nothing outlives the server's
        # database (as anyio's threads were waited for).
        if not running.cancel():
            await _outlast(asyncio.wrap_future(running))
        raise


async def _outlast(running: asyncio.Future[Any]) -> None:
    """Wait until `running` is done, whatever it ends with, through further cancellations."""
    while not running.done():
        try:
            await asyncio.shield(running)
        except asyncio.CancelledError:
            continue  # cancelled again: the use case is still running
        except Exception:
            return  # its error is not the cancelled request's
