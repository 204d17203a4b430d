"""Routes that skip FastAPI's per-request machinery where it has nothing to do.

A route whose parameters are path strings, at most one JSON body of a Pydantic model, and
dependencies on the request alone (the application, the principal), and whose endpoint answers
a `Response` itself, needs little of what FastAPI's request handler does around it: solving a
tree of dependencies through its generic checks, decoding the body to Python and validating
that, validating and serialising a return value, the telemetry of each step. On the
eligibility check, asked on every order page of a marketplace, that machinery cost ~58 µs of
~228 (in-process; bench/RESULTS.md, round 5). `LeanRoute` calls such an endpoint directly:
the path strings checked against their declared lengths, the body validated from its JSON by
its model, the dependencies awaited in order, each once per request (as FastAPI caches them).

Anything else, and any request that does not pass those checks (a path value outside its
lengths, a body that is missing, not `application/json`, or invalid), goes through FastAPI's
own handler, which therefore still answers every validation error, in the same words. The
route is declared, documented and matched as any `APIRoute`.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from enum import Enum
from typing import Any

import fastapi.routing
from annotated_types import MaxLen, MinLen
from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_typed_return_annotation
from fastapi.routing import APIRoute, APIRouter
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from restitution.api.errors import ERROR_RESPONSES

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def api_router(*, tags: list[str | Enum], prefix: str = "") -> APIRouter:
    """A router of the contract: its operations document the error responses, and those
    that can be called directly are (`LeanRoute`)."""
    return APIRouter(prefix=prefix, tags=tags, responses=ERROR_RESPONSES, route_class=LeanRoute)


@dataclass(frozen=True)
class _Call:
    """A dependency, or the endpoint: what it takes from the request (path parameters and
    the body, by name; the request itself) and from other calls."""

    call: Callable[..., Awaitable[Any]]
    given: tuple[str, ...]
    request_as: str | None
    calls: tuple[tuple[str, _Call], ...]


@dataclass(frozen=True)
class _Body:
    name: str
    model: type[BaseModel]
    required: bool


@dataclass(frozen=True)
class _Plan:
    endpoint: _Call
    lengths: tuple[tuple[str, int, int], ...]  # path parameter, shortest, longest
    body: _Body | None


class LeanRoute(APIRoute):
    """An `APIRoute` that calls a plain endpoint directly (see the module's text)."""

    def get_route_handler(self) -> Handler:
        fastapi_handler = super().get_route_handler()
        if _included_elsewhere():
            # `include_router` makes the handler of a copy with the including router's own
            # dependencies and prefix, which this plan (of `self`) would not see.
            return fastapi_handler
        plan = lean_plan(self.dependant) if not self._embed_body_fields else None
        if plan is None:
            return fastapi_handler

        async def handler(request: Request) -> Response:
            given = request.path_params
            for name, shortest, longest in plan.lengths:
                if not shortest <= len(given[name]) <= longest:
                    return await fastapi_handler(request)  # its error, in its words
            if plan.body is not None:
                # Starlette keeps the body on the request: FastAPI's handler reads it again.
                try:
                    body = await request.body()
                except Exception:  # e.g. the client went away: as FastAPI answers it
                    return await fastapi_handler(request)
                if body:
                    if request.headers.get("content-type") != "application/json":
                        return await fastapi_handler(request)
                    try:
                        value: BaseModel | None = plan.body.model.model_validate_json(body)
                    except ValidationError:
                        return await fastapi_handler(request)
                elif plan.body.required:
                    return await fastapi_handler(request)
                else:
                    value = None
                given = {**given, plan.body.name: value}
            response: Response = await _resolve(plan.endpoint, request, given, {})
            return response

        return handler


async def _resolve(
    node: _Call, request: Request, given: dict[str, Any], solved: dict[Any, Any]
) -> Any:
    kwargs: dict[str, Any] = {name: given[name] for name in node.given}
    if node.request_as is not None:
        kwargs[node.request_as] = request
    for name, dependency in node.calls:
        if dependency.call in solved:
            kwargs[name] = solved[dependency.call]
        else:
            kwargs[name] = solved[dependency.call] = await _resolve(
                dependency, request, given, solved
            )
    return await node.call(**kwargs)


def _included_elsewhere() -> bool:
    """Whether FastAPI is making this route's handler for `include_router` (FastAPI 0.165's
    context of the including router; `add_routes` puts the routes on the app directly)."""
    context = getattr(fastapi.routing, "_effective_route_context_var", None)
    return context is not None and context.get() is not None


def lean_plan(dependant: Dependant) -> _Plan | None:
    """How to call the endpoint directly, or None when FastAPI's handler must."""
    call = dependant.call
    if call is None or get_typed_return_annotation(call) is not Response:
        return None
    body = _body(dependant.body_params)
    if dependant.body_params and body is None:
        return None
    lengths: dict[str, tuple[int, int]] = {}
    endpoint = _plan_call(dependant, lengths, body=body is not None)
    if endpoint is None:
        return None
    return _Plan(endpoint, tuple((name, *bounds) for name, bounds in lengths.items()), body)


def _plan_call(
    dependant: Dependant, lengths: dict[str, tuple[int, int]], *, body: bool = False
) -> _Call | None:
    call = dependant.call
    if (
        call is None
        or not inspect.iscoroutinefunction(call)
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or (dependant.body_params and not body)
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or not dependant.use_cache
    ):
        return None
    for field in dependant.path_params:
        bounds = _string_lengths(field.field_info.annotation, field.field_info.metadata)
        if bounds is None:
            return None
        if field.name in lengths:  # declared again by a dependency: both hold
            earlier = lengths[field.name]
            bounds = (max(bounds[0], earlier[0]), min(bounds[1], earlier[1]))
        lengths[field.name] = bounds
    calls = []
    for sub in dependant.dependencies:
        planned = _plan_call(sub, lengths)
        if planned is None or sub.name is None:
            return None
        calls.append((sub.name, planned))
    given = [field.name for field in dependant.path_params]
    given += [field.name for field in dependant.body_params]
    return _Call(call, tuple(given), dependant.request_param_name, tuple(calls))


def _string_lengths(annotation: Any, metadata: list[Any]) -> tuple[int, int] | None:
    """A path parameter declared `str` with at most a length range; else None."""
    if annotation is not str:
        return None
    shortest, longest = 0, 2**63
    for constraint in metadata:
        if isinstance(constraint, MinLen):
            shortest = constraint.min_length
        elif isinstance(constraint, MaxLen):
            longest = constraint.max_length
        else:
            return None
    return shortest, longest


def _body(fields: list[Any]) -> _Body | None:
    """One JSON body of a model (`Model`, or `Model | None` defaulting to None), declared
    with no constraints of its own; else None."""
    if len(fields) != 1:
        return None
    field = fields[0]
    info = field.field_info
    if type(info) is not params.Body or info.metadata or info.alias not in (None, field.name):
        return None
    annotation = info.annotation
    required = info.is_required()
    if not required:
        if info.default is not None or typing.get_origin(annotation) not in (
            typing.Union,
            types.UnionType,
        ):
            return None
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(members) != 1 or len(typing.get_args(annotation)) != 2:
            return None
        annotation = members[0]
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return None
    return _Body(field.name, annotation, required)
