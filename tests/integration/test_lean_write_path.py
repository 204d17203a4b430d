"""The write path's lean parts: statements run on the driver (prepared.py) read and write
exactly what SQLAlchemy would, the ledger settles in the granting transaction, and a worker's
threads fire each due deadline exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import psycopg

from restitution.adapters.db import prepared
from restitution.adapters.db import tables as t
from restitution.adapters.db.codec import case_from_rows, order_from_row
from restitution.adapters.db.prepared import Prepared
from restitution.adapters.db.repository import Repository
from restitution.services import refunds as refund_service
from restitution.services.clock import TestClock
from restitution.services.deadlines import fire_due
from restitution.services.ports import GatewayResult, RefundRequest
from tests.integration.case_steps import (
    buyer,
    event_types,
    fired_per_case,
    get_case,
    ok,
    open_case,
    open_cases,
    refunds,
)
from tests.integration.conftest import Api


def test_prepared_reads_give_what_sqlalchemy_gives(api: Api) -> None:
    case_id = open_case(api)["id"]
    buyer(api, case_id, "messages", body="Any news?")
    with api.app.db.transaction(write=False) as conn:
        lean = Repository(conn).get_case(case_id)
        row = conn.execute(select(t.cases).where(t.cases.c.id == case_id)).one()
        lines = conn.execute(select(t.case_lines).where(t.case_lines.c.case_id == case_id)).all()
        offers = conn.execute(select(t.offers).where(t.offers.c.case_id == case_id)).all()
        order = conn.execute(select(t.orders).where(t.orders.c.order_id == "o_1")).one()
        assert lean == case_from_rows(row, list(lines), list(offers))
        assert Repository(conn).get_order("o_1") == order_from_row(order)
    assert lean is not None and lean.created_at.tzinfo is not None


def test_prepared_writes_read_back_through_sqlalchemy(api: Api) -> None:
    case_id = open_case(api)["id"]
    with api.app.db.transaction(write=False) as conn:
        event = conn.execute(select(t.events).where(t.events.c.case_id == case_id)).one()
        outbox = conn.execute(select(t.outbox)).all()
    assert event.at == api.app.clock.now()  # UTC in, UTC out
    assert event.data["to"] == "awaiting_seller"  # JSON in, JSON out
    assert [row.type for row in outbox] == ["case.opened"]
    assert outbox[0].payload["case_id"] == case_id


def test_a_missing_parameter_is_an_error_not_a_null(api: Api) -> None:
    statement = Prepared(
        insert(t.outbox), columns=["event_id", "type", "payload", "created_at", "next_attempt_at"]
    )
    with pytest.raises(KeyError), api.app.db.transaction() as conn:
        statement.run(conn, {"event_id": "evt_x", "type": "case.opened", "payload": {}})
    with api.app.db.transaction(write=False) as conn:
        assert conn.execute(select(func.count()).select_from(t.outbox)).scalar() == 0


def test_many_rows_go_in_statements_of_many_rows_and_read_back(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prepared, "ROWS_PER_STATEMENT", 7)  # three statements: 7, 7 and 6 rows
    statement = Prepared(
        insert(t.outbox), columns=["event_id", "type", "payload", "created_at", "next_attempt_at"]
    )
    now = api.app.clock.now()
    rows = [
        {
            "event_id": f"evt_{n:02d}",
            "type": "case.opened",
            "payload": {"n": n, "text": "50% {off}"},
            "created_at": now,
            "next_attempt_at": now,
        }
        for n in range(20)
    ]
    with api.app.db.transaction() as conn:
        assert statement.run_many(conn, rows) == 20
        many = statement._form(conn.dialect).many
    assert many is not None
    if api.app.db.is_sqlite:
        # Only the full chunk's text is kept (the 6-row one is built when needed): a
        # long-running worker would otherwise keep one text per row count.
        assert set(many._sql) == {7}
    else:  # one statement whatever the number of rows, the rows as JSON
        assert many.records is not None and many._sql == {}
    with api.app.db.transaction(write=False) as conn:
        stored = conn.execute(select(t.outbox).order_by(t.outbox.c.event_id)).all()
    assert [(row.event_id, row.payload, row.created_at) for row in stored] == [
        (row["event_id"], row["payload"], now) for row in rows
    ]

    change = Prepared(
        update(t.outbox).where(t.outbox.c.event_id == bindparam("_event_id")),
        columns=["type", "payload"],
    )
    changes = [
        {"_event_id": f"evt_{n:02d}", "type": "case.resolved", "payload": {"m": n}}
        for n in (*range(0, 20, 2), 99)  # evt_99 is not there: not counted
    ]
    with api.app.db.transaction() as conn:
        assert change.run_many(conn, changes) == 10
    with api.app.db.transaction(write=False) as conn:
        stored = conn.execute(select(t.outbox).order_by(t.outbox.c.event_id)).all()
    assert [(row.type, row.payload) for row in stored] == [
        ("case.resolved", {"m": n}) if n % 2 == 0 else ("case.opened", rows[n]["payload"])
        for n in range(20)
    ]


def _outbox_rows(now: datetime, payloads: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"evt_{n:02d}",
            "type": "case.opened",
            "payload": payload,
            "created_at": now + timedelta(microseconds=n),
            "next_attempt_at": None if n % 2 else now,
        }
        for n, payload in enumerate(payloads)
    ]


def test_many_rows_keep_every_value_as_sqlalchemy_writes_it(api: Api) -> None:
    """On PostgreSQL many rows travel as one JSON array: text that JSON or SQL would escape,
    nulls, big integers, keys that are not strings and times to the microsecond arrive
    as one row at a time through SQLAlchemy would."""
    now = api.app.clock.now().replace(microsecond=123456)
    payloads: list[Any] = [
        {"text": 'a "quote", a \\ backslash, 50% {off}, $1, \u00e9t\u00e9 \u2603 \U0001f600'},
        {"nested": [1, None, True, 2**62, -(2**63)], "empty": {}},
        {1: "integer key", "n": 1.5},
        "a bare string",
        {"none": None},
        {"nul": "a\x00b"},  # JSON carries it, `json_to_recordset` does not: as parameters
        [],
    ]
    rows = _outbox_rows(now, payloads)
    statement = Prepared(
        insert(t.outbox), columns=["event_id", "type", "payload", "created_at", "next_attempt_at"]
    )
    with api.app.db.transaction() as conn:
        assert statement.run_many(conn, rows) == len(rows)
    with api.app.db.transaction() as conn:  # the same rows, one by one, through SQLAlchemy
        for row in rows:
            conn.execute(insert(t.outbox).values({**row, "event_id": "one_" + row["event_id"]}))
    with api.app.db.transaction(write=False) as conn:
        stored = {
            row.event_id: (row.payload, row.created_at, row.next_attempt_at)
            for row in conn.execute(select(t.outbox))
        }
    for row in rows:
        assert stored[row["event_id"]] == stored["one_" + row["event_id"]]
        assert stored[row["event_id"]][1:] == (row["created_at"], row["next_attempt_at"])
    assert stored["evt_02"][0] == {"1": "integer key", "n": 1.5}  # as json.dumps makes it


def test_a_value_json_cannot_carry_goes_as_parameters(api: Api) -> None:
    """An integer beyond 64 bits (orjson refuses it): the rows are sent as VALUES instead."""
    now = api.app.clock.now()
    rows = _outbox_rows(now, [{"big": 2**70}, {"small": 1}, {"text": "x"}])
    statement = Prepared(
        insert(t.outbox), columns=["event_id", "type", "payload", "created_at", "next_attempt_at"]
    )
    with api.app.db.transaction() as conn:
        assert statement.run_many(conn, rows) == 3
    with api.app.db.transaction(write=False) as conn:
        stored = conn.execute(select(t.outbox.c.payload).order_by(t.outbox.c.event_id)).scalars()
        assert list(stored) == [{"big": 2**70}, {"small": 1}, {"text": "x"}]


def test_many_rows_are_one_text_the_server_prepares_once(api: Api) -> None:
    """Batches of any size are the same statement on PostgreSQL: prepared once per
    connection, not parsed and planned anew for each batch's VALUES list."""
    if api.app.db.is_sqlite:
        pytest.skip("PostgreSQL's server-side statements")
    now = api.app.clock.now()
    statement = Prepared(
        insert(t.outbox), columns=["event_id", "type", "payload", "created_at", "next_attempt_at"]
    )
    change = Prepared(
        update(t.outbox).where(t.outbox.c.event_id == bindparam("_event_id")), columns=["type"]
    )
    with api.app.db.transaction() as conn:
        for size in range(2, 9):  # psycopg prepares a text after its fifth run
            rows = _outbox_rows(now, [{"n": n} for n in range(size)])
            for row in rows:
                row["event_id"] += f"_{size}"
            statement.run_many(conn, rows)
            changed = [{"_event_id": row["event_id"], "type": "case.resolved"} for row in rows]
            assert change.run_many(conn, changed) == size
        prepared = conn.exec_driver_sql(
            "SELECT statement FROM pg_prepared_statements WHERE statement LIKE %(like)s",
            {"like": "%json_to_recordset%"},
        ).scalars()
        # The INSERT kept prepared; the UPDATE's join planned for each batch.
        assert [text.startswith("INSERT INTO outbox") for text in prepared] == [True]


def test_prepared_limits_and_literals_are_bound() -> None:
    statement = Prepared(
        select(t.events.c.seq)
        .where(t.events.c.case_id == bindparam("case_id"))
        .order_by(t.events.c.seq.desc())
        .limit(1)
    )
    for dialect in (sqlite.dialect(), psycopg.dialect()):
        form = statement._form(dialect)
        assert "case_id" in form.names
        assert set(form.names) - {"case_id"} <= set(form.defaults)  # LIMIT 1 carried along


def test_the_ledger_settles_in_the_accepting_transaction(api: Api) -> None:
    case_id = open_case(api)["id"]
    accepted = ok(
        api.as_("seller", "s_1")("POST", f"/v1/cases/{case_id}/accept", json={}),
    )
    assert (accepted["status"], accepted["outcome"]) == ("resolved", "refunded")
    assert event_types(api, case_id)[-2:] == ["case.offer_accepted", "refund.succeeded"]
    with api.app.db.transaction(write=False) as conn:
        outbox = [row.type for row in conn.execute(select(t.outbox).order_by(t.outbox.c.id))]
    assert outbox == [
        "case.opened",
        "case.offer_accepted",
        "refund.requested",
        "refund.succeeded",
        "case.resolved",
    ]


@dataclass
class RefusingLedger:
    """A gateway in the database that refuses its first call."""

    name: str = "ledger"
    settles_in_transaction: bool = True
    calls: int = 0

    def refund(self, request: RefundRequest) -> GatewayResult:
        self.calls += 1
        if self.calls == 1:
            return GatewayResult(succeeded=False, error="books closed")
        return GatewayResult(succeeded=True, reference=request.idempotency_key)


def test_a_refused_settlement_is_counted_and_tried_again_after_the_commit(api: Api) -> None:
    gateway = RefusingLedger()
    api.app.refund_gateway = gateway
    case_id = open_case(api)["id"]
    accepted = ok(api.as_("seller", "s_1")("POST", f"/v1/cases/{case_id}/accept", json={}))
    assert accepted["status"] == "refund_pending"  # as committed; the retry came after
    [refund] = refunds(api, case_id)
    assert (refund["status"], gateway.calls) == ("succeeded", 2)
    with api.app.db.transaction(write=False) as conn:
        tried = conn.execute(
            select(t.refund_attempts.c.idempotency_key, t.refund_attempts.c.status).order_by(
                t.refund_attempts.c.idempotency_key
            )
        ).all()
    assert [tuple(row) for row in tried] == [
        (f"{refund['id']}:1", "failed"),
        (f"{refund['id']}:2", "succeeded"),
    ]
    assert get_case(api, case_id)["outcome"] == "refunded"
    assert refund_service.retry_due(api.app) == 0


@pytest.mark.parametrize("threads", [1, 4])
def test_threads_fire_each_due_deadline_once(api: Api, threads: int) -> None:
    case_ids = open_cases(api, 12)
    clock = api.app.clock
    assert isinstance(clock, TestClock)
    clock.advance(30 * 24 * 3600)  # every seller's D1 has passed, nothing fired it yet
    assert fire_due(api.app, threads=threads) == 12
    assert fire_due(api.app, threads=threads) == 0
    assert fired_per_case(api) == dict.fromkeys(case_ids, 1)
    assert {get_case(api, case_id)["outcome"] for case_id in case_ids} == {"refunded"}
