"""The eligibility read: one statement for an order and what its cases claim, run outside a
transaction (`Database.reading`) and, for the API, on the event loop (`Database.read_by_key`:
an async pool on PostgreSQL, the reads of requests that arrive together as one statement);
pooled PostgreSQL connections are pinged only after idling."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from restitution.adapters.db import engine as engine_module
from restitution.adapters.db.repository import OrderClaims, Repository, read_order_with_claims
from restitution.services import orders
from restitution.services.auth import OPERATOR
from restitution.services.context import App
from tests.integration.case_steps import FULL_L1, buyer, escalated_case, ok, open_case, seller
from tests.integration.conftest import ON_POSTGRES, ON_SQLITE, Api, order_body


def claims_of(app: App, order_id: str) -> OrderClaims | None:
    with app.db.reading() as conn:
        return Repository(conn).order_with_claims(order_id)


def test_an_order_without_cases_claims_nothing(api: Api) -> None:
    api.put_order()
    claims = claims_of(api.app, "o_1")
    assert claims is not None
    assert claims.order.order_id == "o_1" and [line.line_id for line in claims.order.lines] == [
        "l1",
        "l2",
    ]
    assert (claims.granted, claims.open_lines, claims.seen_by_mediators) == ({}, set(), False)
    assert claims_of(api.app, "o_nope") is None


def test_claims_sum_what_every_case_granted_per_line(api: Api) -> None:
    first = open_case(api)
    seller(api, first["id"], "accept")  # l1 refunded in full: resolved, the line freed
    claims = claims_of(api.app, "o_1")
    assert claims is not None
    assert claims.granted == {"l1": FULL_L1} and claims.open_lines == set()
    second = ok(
        api.open_case(
            lines=[{"line_id": "l2", "quantity": 1}],
            request={"kind": "refund", "amount": {"amount": 1375, "currency": "USD"}},
        ),
        201,
    )
    claims = claims_of(api.app, "o_1")
    assert claims is not None
    assert claims.granted == {"l1": FULL_L1, "l2": 0} and claims.open_lines == {"l2"}
    assert not claims.seen_by_mediators
    buyer(api, second["id"], "withdraw")
    claims = claims_of(api.app, "o_1")
    assert claims is not None and claims.open_lines == set() and claims.granted["l2"] == 0


def test_an_escalated_case_shows_the_order_to_mediators(api: Api) -> None:
    escalated_case(api)
    claims = claims_of(api.app, "o_1")
    assert claims is not None and claims.seen_by_mediators and claims.open_lines == {"l1"}
    mediator = api.as_("mediator", "m_1")
    assert mediator("GET", "/v1/orders/o_1/eligibility").status_code == 200
    assert ok(mediator("GET", "/v1/orders/o_1"))["order_id"] == "o_1"


def test_a_mediator_does_not_see_an_order_without_an_escalated_case(api: Api) -> None:
    open_case(api)
    mediator = api.as_("mediator", "m_1")
    for path in ("/v1/orders/o_1/eligibility", "/v1/orders/o_1"):
        response = mediator("GET", path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "resource_missing"


def test_the_async_read_answers_what_the_transactional_read_answers(api: Api) -> None:
    """`api` runs the server's lifespan: on PostgreSQL the async pool is open on its loop."""
    escalated_case(api)
    assert api.app.db.async_reads_open == (not api.app.db.is_sqlite)
    via_api = ok(api.client.get("/v1/orders/o_1/eligibility", headers=api.auth()))
    with api.app.db.transaction(write=False) as conn:
        in_transaction = Repository(conn).order_with_claims("o_1")
    assert claims_of(api.app, "o_1") == in_transaction
    expected = orders.eligibility(api.app, OPERATOR, "o_1")
    assert [line["line_id"] for line in via_api["lines"]] == [line for line, _ in expected]
    assert via_api["lines"][0]["reasons"] == [verdict.to_dict() for verdict in expected[0][1]]


def test_read_all_outside_the_servers_loop_falls_back_to_a_blocking_read(api: Api) -> None:
    """A loop other than the one that opened the pool (or none open) still reads."""
    api.put_order()
    found = asyncio.run(read_order_with_claims(api.app.db, "o_1"))
    assert found is not None and found.order.order_id == "o_1"
    assert asyncio.run(read_order_with_claims(api.app.db, "o_nope")) is None


@ON_POSTGRES
def test_reads_asked_together_on_the_servers_loop_go_as_one_statement(api: Api) -> None:
    """Requests that arrive together: one connection checked out of the async pool, one
    statement, and each order's own claims, as the transactional read finds them."""
    escalated_case(api)  # o_1: a case on l1, escalated
    api.put_order("o_2")
    order_ids = ["o_1", "o_2", "o_nope", "o_1"]
    expected = [claims_of(api.app, order_id) for order_id in order_ids]
    pool = api.app.db._async_pool

    async def together() -> tuple[list[OrderClaims | None], int]:
        before = pool.get_stats().get("requests_num", 0)
        found = await asyncio.gather(
            *(read_order_with_claims(api.app.db, order_id) for order_id in order_ids)
        )
        return list(found), pool.get_stats().get("requests_num", 0) - before

    assert api.client.portal is not None  # the server's loop, where its pool was opened
    found, checkouts = api.client.portal.call(together)
    assert found == expected and found[0] is not None and found[0].seen_by_mediators
    assert checkouts == 1


def test_an_eligibility_read_after_a_write_sees_what_it_wrote(api: Api) -> None:
    """Read your writes: each answer of the API, read on the event loop (and on PostgreSQL
    with the reads that arrived with it), follows the commit of the request before it."""
    lines = order_body()["lines"]
    for count in (1, 2, 1):
        api.put_order(lines=lines[:count])
        answer = ok(api.client.get("/v1/orders/o_1/eligibility", headers=api.auth()))
        assert [line["line_id"] for line in answer["lines"]] == ["l1", "l2"][:count]


@ON_SQLITE
def test_reading_on_sqlite_opens_no_transaction(api: Api) -> None:
    api.put_order()
    with api.app.db.reading() as conn:
        Repository(conn).order_with_claims("o_1")
        assert not conn.in_transaction()
        assert conn.connection.driver_connection.in_transaction is False  # type: ignore[union-attr]


def _terminate_other_backends(app: App) -> int:
    """Kill every session of the app on the test database (a server restart, as pooled
    connections see it), from a connection of the test's own; returns how many."""
    url = app.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


@ON_POSTGRES
def test_the_async_pool_reads_again_after_its_connection_died(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.put_order()
    assert api.app.db.async_reads_open
    assert ok(api.client.get("/v1/orders/o_1/eligibility", headers=api.auth()))["lines"]
    assert _terminate_other_backends(api.app) >= 1
    # Idle pooled connections are dead now: pinged (idle long enough) or retried, never a 500.
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    for _ in range(3):
        response = api.client.get("/v1/orders/o_1/eligibility", headers=api.auth())
        assert response.status_code == 200, response.text
    api.put_order(buyer_country="FR")  # a write on a fresh pooled connection, too


@ON_POSTGRES
def test_a_pooled_connection_idle_past_the_limit_is_pinged_and_replaced(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    with app.db.transaction() as conn:
        conn.execute(text("SELECT 1"))
    assert _terminate_other_backends(app) >= 1
    pings: list[Any] = []
    real_ping = app.db.engine.dialect.do_ping
    monkeypatch.setattr(app.db.engine.dialect, "do_ping", lambda c: pings.append(c) or real_ping(c))
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    with app.db.transaction() as conn:  # the dead one is pinged, dropped, and replaced
        assert conn.execute(text("SELECT 1")).scalar() == 1
    assert len(pings) == 1 and pings[0].closed  # the dead one; its replacement is new


@ON_POSTGRES
def test_a_connection_in_use_moments_ago_is_not_pinged(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings: list[Any] = []
    monkeypatch.setattr(app.db.engine.dialect, "do_ping", lambda c: pings.append(c) or True)
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 3600.0)
    for _ in range(3):
        with app.db.transaction() as conn:
            conn.execute(text("SELECT 1"))
    assert pings == []
