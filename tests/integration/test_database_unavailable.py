"""A database that cannot answer now (PostgreSQL down or restarting, a connection lost, no
pooled connection free in time) is a 503 in the contract's shape with `Retry-After`: the
request's transaction rolled back, and the same request with the same `Idempotency-Key` is
done once it answers again. Other database errors stay what they are."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg
import pytest
from psycopg_pool import PoolTimeout
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolExhausted

from restitution.services import cases, idempotency
from tests.integration.case_steps import ok
from tests.integration.conftest import ON_SQLITE, Api

CONNECTION_LOST = OperationalError(
    "COMMIT", {}, psycopg.OperationalError("server closed the connection unexpectedly")
)


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


def failing(error: Exception) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail


def buyers_cases(api: Api) -> list[Any]:
    listed = ok(api.client.get("/v1/cases", headers=api.auth("buyer", "b_1")))
    return list(listed["data"])


@pytest.mark.parametrize(
    "error",
    [PoolTimeout("couldn't get a connection after 30.00 sec"), psycopg.errors.QueryCanceled()],
    ids=["busy_async_pool", "statement_timeout"],
)
def test_an_eligibility_read_the_database_cannot_answer_is_a_503(
    api: Api, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    api.put_order()
    db = api.app.db
    monkeypatch.setattr(db, "read_all", failing(error))  # SQLite's path
    monkeypatch.setattr(db._together, "_read_all", failing(error))  # PostgreSQL's, together
    assert_unavailable(api.client.get("/v1/orders/o_1/eligibility", headers=api.auth()))


@pytest.mark.parametrize(
    "error",
    [CONNECTION_LOST, PoolExhausted("QueuePool limit of size 20 overflow 0 reached")],
    ids=["connection_lost", "busy_pool"],
)
def test_a_write_the_database_cannot_finish_is_a_503_and_done_once_sent_again(
    api: Api, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    api.put_order()
    attachment = api.upload("buyer", "b_1")
    headers = {**api.auth("buyer", "b_1"), "Idempotency-Key": "open-1"}

    def send() -> Any:
        body = {
            "order_id": "o_1",
            "lines": [{"line_id": "l1", "quantity": 1}],
            "reason": "damaged",
            "description": "The screen is cracked.",
            "request": {"kind": "refund", "amount": {"amount": 2749, "currency": "USD"}},
            "attachments": [attachment],
        }
        return api.client.post("/v1/cases", json=body, headers=headers)

    # The case and its lines are written, then its event fails: the transaction rolls back.
    monkeypatch.setattr(cases, "record", failing(error))
    assert_unavailable(send())
    assert buyers_cases(api) == []
    monkeypatch.undo()
    # Sent again once the database answers: done, not the 503 replayed.
    created = send()
    assert created.status_code == 201, created.text
    assert [case["id"] for case in buyers_cases(api)] == [created.json()["id"]]
    # And from then on replayed.
    again = send()
    assert again.status_code == 201 and again.json()["id"] == created.json()["id"]


def test_the_idempotency_keys_table_out_of_reach_is_a_503(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key is reserved before any route runs, by the middleware."""
    monkeypatch.setattr(idempotency, "reserve", failing(CONNECTION_LOST))
    response = api.client.post(
        "/v1/party_tokens",
        json={"role": "buyer", "party_id": "b_1"},
        headers={**api.auth(), "Idempotency-Key": "token-1"},
    )
    assert_unavailable(response)


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.ProgramLimitExceeded("index row size exceeds maximum"),
        psycopg.errors.InvalidPassword("password authentication failed"),
        OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: orders")),
    ],
    ids=["postgres_limit", "postgres_login", "sqlite_schema"],
)
@ON_SQLITE
def test_errors_that_asking_again_would_meet_again_are_not_called_unavailable(
    api: Api, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    api.put_order()
    monkeypatch.setattr(api.app.db, "read_all", failing(error))
    response = api.client.get("/v1/orders/o_1/eligibility", headers=api.auth())
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"


def test_a_value_the_driver_refuses_on_the_async_read_is_an_invalid_request(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.put_order()
    refused = psycopg.errors.UntranslatableCharacter("cannot be converted")
    monkeypatch.setattr(api.app.db, "read_all", failing(refused))
    monkeypatch.setattr(api.app.db._together, "_read_all", failing(refused))
    response = api.client.get("/v1/orders/o_1/eligibility", headers=api.auth())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_value"
