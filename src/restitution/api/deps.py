"""What routes get injected: the application and the authenticated principal."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from restitution.domain.errors import Forbidden
from restitution.services.auth import OPERATOR, Principal, authenticate
from restitution.services.context import App

P = ParamSpec("P")
T = TypeVar("T")

bearer = HTTPBearer(auto_error=False, description="The operator key or a party token")


# The dependencies are `async def`: FastAPI runs a plain `def` dependency in the thread pool,
# one hop per dependency per request, which cost more than the work (bench/RESULTS.md).


async def get_app(request: Request) -> App:
    app: App = request.app.state.restitution
    return app


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    app: App = request.app.state.restitution
    operator_key: str = request.app.state.operator_key
    token = credentials.credentials if credentials else None
    if token and hmac.compare_digest(token.encode(), operator_key.encode()):
        return OPERATOR  # no database to ask: stay on the event loop
    # A party token is looked up in the database: off the event loop.
    return await run_in_threadpool(authenticate, app, operator_key, token)


async def require_operator(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not principal.is_operator:
        raise Forbidden("operator_only", "this needs the operator key")
    return principal


AppDep = Annotated[App, Depends(get_app)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
OperatorDep = Annotated[Principal, Depends(require_operator)]


async def use_case(app: App, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a (blocking) use case for a route.

    On SQLite, inline on the event loop: its writes are serialised anyway, and a thread pool
    queueing on its write lock was the slowest way measured (CEILINGS.md; bench/RESULTS.md).
    On PostgreSQL, in the thread pool, so requests overlap their round trips.
    """
    if app.db.is_sqlite:
        return function(*args, **kwargs)
    return await run_in_threadpool(function, *args, **kwargs)
