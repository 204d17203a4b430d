"""The contract's error shape for every failure: {"error": {type, code, message, param}}."""

from __future__ import annotations

from typing import Any, Literal

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from restitution.adapters.db.engine import unavailable, unavailable_errors
from restitution.domain.errors import DomainError, PolicyViolation

log = structlog.get_logger()

STATUS_BY_KIND = {
    "invalid_request": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "policy_violation": 422,
    "rate_limited": 429,
}
KIND_BY_STATUS = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "invalid_request",
    409: "conflict",
    413: "invalid_request",
    415: "invalid_request",
    429: "rate_limited",
}


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # e.g. `clauses` on a policy_violation

    type: Literal[
        "invalid_request",
        "unauthenticated",
        "forbidden",
        "not_found",
        "conflict",
        "policy_violation",
        "rate_limited",
        "api_error",
    ]
    code: str
    message: str
    param: str | None


class ErrorResponse(BaseModel):
    """The contract's error shape, for every failure."""

    error: ErrorDetail


def _documented(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


# Documented on every API route, so the served OpenAPI describes the error answers too.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("invalid_request: the request is malformed"),
    401: _documented("unauthenticated: no valid token"),
    403: _documented("forbidden: this party may not do this"),
    404: _documented("not_found: no such object, or not one this party may see"),
    409: _documented("conflict: the state does not allow it, or an idempotency conflict"),
    422: _documented("policy_violation: the policy forbids it (`code` names the rule)"),
    429: _documented("rate_limited"),
    503: _documented("api_error: the database cannot answer now; ask again (`Retry-After`)"),
}

# Errors raised by routing itself, before any route runs.
CODE_BY_STATUS = {
    404: "route_not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}


def error_body(
    kind: str, code: str, message: str, param: str | None = None, **extra: Any
) -> dict[str, Any]:
    error: dict[str, Any] = {"type": kind, "code": code, "message": message, "param": param}
    error.update(extra)
    return {"error": error}


# Seconds a client is asked to wait before asking again, when the database cannot answer.
RETRY_AFTER_SECONDS = 1


def error_response(
    status: int, kind: str, code: str, message: str, param: str | None = None, **extra: Any
) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return JSONResponse(error_body(kind, code, message, param, **extra), status, headers=headers)


def database_unavailable(request: Request, error: Exception) -> JSONResponse:
    """503: the database cannot answer now (`unavailable`). The request's transaction, if it
    began one, rolled back; only a connection lost during its COMMIT leaves it in doubt."""
    log.warning(
        "database_unavailable",
        path=request.url.path,
        error_type=type(error).__name__,
        error=str(error),
    )
    return error_response(
        503,
        "api_error",
        "service_unavailable",
        "the database cannot answer now; ask again in a moment",
    )


def _param(loc: tuple[Any, ...]) -> str | None:
    # Only the leading element names the location: a field may itself be called `body`.
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or None


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        extra: dict[str, Any] = {}
        if isinstance(exc, PolicyViolation) and exc.clauses:
            extra["clauses"] = list(exc.clauses)
        return error_response(
            STATUS_BY_KIND[exc.kind], exc.kind, exc.code, exc.message, exc.param, **extra
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = tuple(first.get("loc", ()))
        if first.get("type") == "json_invalid":
            # FastAPI's location is ("body", position of the fault): no field to name.
            message = "the body is not valid JSON: " + str(
                (first.get("ctx") or {}).get("error", "JSON decode error")
            )
            if len(loc) == 2 and isinstance(loc[1], int):
                message += f" at position {loc[1]}"
            return error_response(400, "invalid_request", "invalid_json", message)
        message = str(first.get("msg", "the request is not valid"))
        param = _param(loc)
        if param:
            message = f"{param}: {message}"
        return error_response(400, "invalid_request", "invalid_field", message, param)

    async def data_error(request: Request, exc: Exception) -> JSONResponse:
        # The database refused a value from the request (e.g. NUL in a PostgreSQL text).
        log.info("data_error", path=request.url.path, error=str(getattr(exc, "orig", exc)))
        return error_response(
            400, "invalid_request", "invalid_value", "a value in the request cannot be stored"
        )

    # SQLAlchemy's, and the driver's own (raised on the async pool).
    for refused in (DataError, psycopg.DataError):
        app.add_exception_handler(refused, data_error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = KIND_BY_STATUS.get(exc.status_code, "invalid_request")
        code = CODE_BY_STATUS.get(exc.status_code, f"http_{exc.status_code}")
        return error_response(exc.status_code, kind, code, str(exc.detail))

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        if not unavailable(exc):
            raise exc  # an error of another kind: `unexpected`'s
        return database_unavailable(request, exc)

    for error_type in unavailable_errors():
        app.add_exception_handler(error_type, database_error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        if unavailable(exc):  # raised outside the routes (the idempotency keys' middleware)
            return database_unavailable(request, exc)
        log.exception("unhandled_error", path=request.url.path)
        return error_response(
            500, "api_error", "internal_error", "something went wrong on our side"
        )
