"""Statements sent together (prepared.py: `run_together`, `all_together`; on PostgreSQL one
round trip: writes as one statement, reads as one message with their values as literals)
write and read exactly what they would one by one, and an action's writes are collected by
`Repository.batched_writes` and sent when it ends."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from sqlalchemy import bindparam, func, insert, select, update

from restitution.adapters.db import prepared
from restitution.adapters.db import tables as t
from restitution.adapters.db.prepared import Prepared, all_together, run_together
from restitution.adapters.db.repository import Repository
from tests.integration.case_steps import act, get_case, ok, open_case, usd
from tests.integration.conftest import ON_POSTGRES, Api

_INSERT = Prepared(
    insert(t.outbox), columns=["event_id", "type", "payload", "created_at", "next_attempt_at"]
)
_RETYPE = Prepared(
    update(t.outbox).where(t.outbox.c.event_id == bindparam("_event_id")), columns=["type"]
)
_BY_TYPE = Prepared(
    select(t.outbox.c.event_id, t.outbox.c.payload, t.outbox.c.created_at)
    .where(t.outbox.c.type == bindparam("type"))
    .order_by(t.outbox.c.event_id)
)
# Values a literal must carry exactly: quotes, backslashes, percents, braces, non-ASCII, JSON.
AWKWARD = ["it's", "back\\slash", "50% {off} %(x)s", "naïve ✓", 'say "hi"', "semi; colon"]


def _rows(count: int, at: datetime) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"evt_{n:03d}",
            "type": AWKWARD[n % len(AWKWARD)],
            "payload": {"text": AWKWARD[n % len(AWKWARD)], "n": n, "none": None},
            "created_at": at,
            "next_attempt_at": at,
        }
        for n in range(count)
    ]


@pytest.mark.parametrize("count", [3, prepared.ROWS_TOGETHER + 5])  # together, or not
def test_statements_run_together_write_what_each_would_and_count_each(api: Api, count: int) -> None:
    at = datetime(2026, 3, 6, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    earlier, rows = _rows(1, at), _rows(count + 1, at)[1:]
    with api.app.db.transaction() as conn:
        run_together(conn, [(_INSERT, earlier)])
    retype = [{"_event_id": "evt_000", "type": "retyped"}, {"_event_id": "missing", "type": "x"}]
    with api.app.db.transaction() as conn:
        counts = run_together(conn, [(_INSERT, rows), (_RETYPE, retype), (_RETYPE, [])])
    assert counts == [count, 1, 0]
    with api.app.db.transaction(write=False) as conn:
        stored = conn.execute(select(t.outbox).order_by(t.outbox.c.event_id)).all()
    assert [(row.type, row.payload, row.created_at) for row in stored] == [
        ("retyped" if n == 0 else row["type"], row["payload"], at.astimezone(UTC))
        for n, row in enumerate(earlier + rows)
    ]


def test_a_counter_offer_clears_the_old_deadline_and_keeps_its_new_one(api: Api) -> None:
    case_id = open_case(api)["id"]
    ok(act(api, "seller", "s_1", case_id, "offers", kind="refund", amount=usd(1000)))
    with api.app.db.transaction(write=False) as conn:
        deadlines = conn.execute(
            select(t.deadlines.c.kind, t.deadlines.c.cleared_at.is_(None))
            .where(t.deadlines.c.case_id == case_id)
            .order_by(t.deadlines.c.id)
        ).all()
    assert [tuple(row) for row in deadlines] == [("D1", False), ("D2", True)]


def test_reads_together_give_each_read_its_own_rows(api: Api) -> None:
    at = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)
    rows = _rows(len(AWKWARD), at)
    with api.app.db.transaction() as conn:
        run_together(conn, [(_INSERT, rows)])
    with api.app.db.transaction(write=False) as conn:
        found = all_together(
            conn,
            [
                (_BY_TYPE, {"type": "it's"}),
                (_BY_TYPE, {"type": "none"}),
                (_BY_TYPE, {"type": "50% {off} %(x)s"}),
            ],
        )
        one_by_one = [
            _BY_TYPE.all(conn, {"type": kind}) for kind in ("it's", "none", "50% {off} %(x)s")
        ]
    assert found == one_by_one
    assert [[row.event_id for row in rows] for rows in found] == [["evt_000"], [], ["evt_002"]]
    assert found[2][0].payload == rows[2]["payload"] and found[2][0].created_at == at


def test_a_failing_statement_fails_the_whole_run(api: Api) -> None:
    at = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)
    [row] = _rows(1, at)
    with (
        pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)),
        api.app.db.transaction() as conn,
    ):
        run_together(conn, [(_INSERT, [row]), (_INSERT, [{**row, "type": None}])])  # NOT NULL
    with api.app.db.transaction(write=False) as conn:
        assert conn.execute(select(func.count()).select_from(t.outbox)).scalar() == 0


def test_writes_in_a_batch_wait_for_the_outermost_batch(api: Api) -> None:
    at = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)
    with api.app.db.transaction() as conn:
        repo = Repository(conn)

        def stored() -> int:
            return int(conn.execute(select(func.count()).select_from(t.outbox)).scalar_one())

        with repo.batched_writes():
            with repo.batched_writes():
                repo.add_outbox_rows([("evt_1", "case.opened", {}, at)])
            assert stored() == 0  # the inner batch is part of the outer one
            repo.add_outbox_rows([("evt_2", "case.opened", {}, at)])
        assert stored() == 2


def test_an_action_on_a_case_changed_since_it_was_read_is_a_conflict(api: Api) -> None:
    case_id = open_case(api)["id"]
    with api.app.db.transaction() as conn:
        conn.execute(
            update(t.cases).where(t.cases.c.id == case_id).values(version=t.cases.c.version + 1)
        )
    before = get_case(api, case_id)
    real_get_case = Repository.get_case

    def stale(self: Repository, case_id: str, *, for_write: bool = False) -> Any:
        case = real_get_case(self, case_id, for_write=for_write)
        if for_write and case is not None:
            # As another writer committing right after this read would leave it.
            self.conn.execute(
                update(t.cases).where(t.cases.c.id == case_id).values(version=t.cases.c.version + 1)
            )
        return case

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Repository, "get_case", stale)
        refused = act(api, "seller", "s_1", case_id, "offers", kind="refund", amount=usd(1000))
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "concurrent_update"
    after = get_case(api, case_id)
    assert (after["status"], after["offers"], after["version"]) == (
        before["status"],
        before["offers"],
        before["version"],
    )


@ON_POSTGRES
def test_a_batch_finds_every_row_by_its_key_whatever_the_statistics_say(api: Api) -> None:
    """The sweeper's batches (`plan_by_keys`): the lines of a batch of cases, joined to the
    table, are found through its key even while the planner thinks the table small, where
    it planned a scan of the whole table, batch after batch, until statistics caught up."""
    case_id = open_case(api)["id"]
    update_lines = Prepared(
        update(t.case_lines).where(
            t.case_lines.c.case_id == bindparam("_case_id"),
            t.case_lines.c.line_id == bindparam("_line_id"),
        ),
        columns=["is_open"],
    )
    records = update_lines._form(api.app.db.engine.dialect).many
    assert records is not None and records.records is not None
    rows = json.dumps([{"is_open": True, "_case_id": case_id, "_line_id": "l_1"}] * 200)

    def plan(by_keys: bool) -> str:
        with api.app.db.transaction() as conn:
            repo = Repository(conn)
            if by_keys:
                repo.plan_by_keys()
            cursor = psycopg.RawCursor(conn.connection.driver_connection)  # $1, as it is sent
            cursor.execute(f"EXPLAIN {records.records.sql}", [rows])
            plan = "\n".join(line for (line,) in cursor.fetchall())
            settings = conn.exec_driver_sql("SHOW plan_cache_mode").scalar()
            conn.rollback()
        return f"{plan}\nplan_cache_mode={settings}"

    assert "Seq Scan on case_lines" in plan(by_keys=False)  # a one-row table: scanned
    by_keys = plan(by_keys=True)
    assert "Seq Scan on case_lines" not in by_keys
    assert "Index Scan using pk_case_lines on case_lines" in by_keys
    assert "plan_cache_mode=force_custom_plan" in by_keys  # each foreign key check planned
