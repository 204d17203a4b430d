"""A database that cannot answer now (PostgreSQL down or restarting, a connection lost, no
pooled connection free in time) is a 503 in the contract's shape with `Retry-After`, and
changes nothing; other database errors stay what they are."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg
import pytest
from psycopg_pool import PoolTimeout
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolExhausted

from restitution.services import orders
from tests.integration.conftest import ON_SQLITE, Api, order_body

CONTACTS = {"buyer": {"email": "buyer@example.com", "name": "Ana", "locale": "en"}}


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert response.json() == {
        "error": {
            "type": "api_error",
            "code": "service_unavailable",
            "message": "the database cannot answer now; ask again in a moment",
            "param": None,
        }
    }


def put_once(api: Api) -> Any:
    """The order with its buyer's contact, under one idempotency key."""
    headers = {**api.auth(), "Idempotency-Key": "k1"}
    return api.client.put("/v1/orders/o_1", json=order_body(**CONTACTS), headers=headers)


def failing(error: Exception) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail


@pytest.mark.parametrize(
    "error",
    [PoolTimeout("couldn't get a connection after 30.00 sec"), psycopg.errors.QueryCanceled()],
    ids=["busy_async_pool", "statement_timeout"],
)
def test_an_eligibility_read_the_database_cannot_answer_is_a_503(
    api: Api, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    api.put_order()
    monkeypatch.setattr(api.app.db, "read_by_key", failing(error))
    assert_unavailable(api.client.get("/v1/orders/o_1/eligibility", headers=api.auth()))


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("COMMIT", {}, psycopg.OperationalError("server closed the connection")),
        PoolExhausted("QueuePool limit of size 20 overflow 0 reached"),
    ],
    ids=["connection_lost", "busy_pool"],
)
def test_a_write_the_database_cannot_finish_is_a_503_and_changes_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    # The order is written, then its contacts fail: the transaction rolls back whole.
    monkeypatch.setattr(orders, "save_contact", failing(error))
    assert_unavailable(put_once(api))
    assert api.client.get("/v1/orders/o_1", headers=api.auth()).status_code == 404
    # Asked again once the database answers: done, not a replay of the 503.
    monkeypatch.undo()
    response = put_once(api)
    assert response.status_code == 201, response.text


@ON_SQLITE
def test_an_operational_error_of_sqlite_is_not_called_unavailable(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's operational errors are of its file or its schema: asking again would not help."""
    error = OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: orders"))
    monkeypatch.setattr(orders, "save_contact", failing(error))
    response = api.client.put("/v1/orders/o_1", json=order_body(**CONTACTS), headers=api.auth())
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
