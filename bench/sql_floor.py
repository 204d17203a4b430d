"""What SQLite alone spends on a case action: the floor under the write figure's ratio.

The write figure of `make bench` compares Restitution's case actions with a FastAPI app that
does one INSERT per request (bench/ceiling_app.py). A case action must write its new state, an
event and its outbox rows in one transaction (ARCHITECTURE.md), and each of its statements,
and the COMMIT that writes their pages to the WAL, is SQLite's own work, which no change to
the Python around them can take away. This measures that work, in this process, on a database
of `make bench`'s orders:

- the write flow of `make bench` (open, counter-offer, accept with its refund) called as ASGI,
  as bench/inprocess.py does, with the time spent inside SQLite's calls summed: each statement
  of the write path sent for one row (`Prepared`) and each COMMIT. Statements sent for several
  rows at once (`run_many`), those run elsewhere and the BEGINs are not counted, so the
  figure is a floor;
- the ceiling app's INSERT, committed alone, on the same database and settings.

Given the ceiling's rate from a `make bench` run on this machine (`--ceiling`, requests/s),
it prints the best ratio the writes could reach if everything Restitution does in Python
cost nothing: the ceiling's request with its INSERT replaced by the case action's SQL.

    .venv/bin/python -m bench.sql_floor [--orders 100000] [--cases 1000] [--ceiling 5963]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import data
from bench.ceiling_app import TABLE
from bench.inprocess import Client, prepare, write_flow
from bench.run import TOKEN

REQUESTS_PER_FLOW = 3  # open, counter-offer, accept (the refund settles within the accept)


class SqlTime:
    """Seconds spent inside SQLite's calls, per statement text (COMMIT as "COMMIT")."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def add(self, sql: str, seconds: float) -> None:
        self.seconds[sql] += seconds
        self.calls[sql] += 1

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


@contextmanager
def timing_sql(into: SqlTime) -> Iterator[None]:
    """Time every statement the write path sends for one row (`Prepared._cursor`, whose body
    this repeats with a timer around the driver's call) and every COMMIT, by
    wrapping the two calls for as long as the block runs. A measuring tool's patch: the
    product has no hook for it and should not carry one."""
    from sqlalchemy.engine.default import DefaultDialect

    from restitution.adapters.db.prepared import Prepared

    cursor_of, commit = Prepared._cursor, DefaultDialect.do_commit

    def timed_cursor(self: Prepared, conn: Any, params: Any) -> Any:
        form = self._form(conn.dialect)
        cursor = conn.connection.driver_connection.cursor()
        bound = self._bound(form, params)
        started = time.perf_counter()
        cursor.execute(form.sql, bound)
        into.add(form.sql, time.perf_counter() - started)
        return cursor, form

    def timed_commit(self: DefaultDialect, dbapi_connection: Any) -> None:
        started = time.perf_counter()
        commit(self, dbapi_connection)
        into.add("COMMIT", time.perf_counter() - started)

    Prepared._cursor = timed_cursor  # type: ignore[method-assign]
    DefaultDialect.do_commit = timed_commit  # type: ignore[method-assign]
    try:
        yield
    finally:
        Prepared._cursor = cursor_of  # type: ignore[method-assign]
        DefaultDialect.do_commit = commit  # type: ignore[method-assign]


async def case_actions(orders: int, cases: int) -> SqlTime:
    from restitution import cli
    from restitution.api.app import create_api

    api = create_api(cli._build(cli._settings()), TOKEN)
    client = Client(api)
    first = orders // 2
    spent = SqlTime()
    async with api.router.lifespan_context(api):
        for n in range(100):  # warm: compiled statements, caches
            await write_flow(client, f"{data.PREFIX}_{first + n}")
        with timing_sql(spent):
            for n in range(100, 100 + cases):
                await write_flow(client, f"{data.PREFIX}_{first + n}")
    return spent


def ceiling_insert(path: str, count: int) -> float:
    """Seconds per INSERT of the ceiling app, each committed alone, on the same settings."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY, note TEXT, at TEXT)")
    statement = f"INSERT INTO {TABLE} (note, at) VALUES (?, datetime('now'))"
    for _ in range(200):
        conn.execute(statement, ("warm",))
    started = time.perf_counter()
    for n in range(count):
        conn.execute(statement, (f"note {n}",))
    seconds = (time.perf_counter() - started) / count
    conn.close()
    return seconds


def report(spent: SqlTime, requests: int, insert: float, ceiling: float | None) -> None:
    per_request = spent.total / requests * 1e6
    commits = spent.seconds["COMMIT"] / requests * 1e6
    statements = sum(n for sql, n in spent.calls.items() if sql != "COMMIT") / requests
    print(
        f"case action, SQLite's work per request: {per_request:.0f} µs "
        f"({statements:.1f} statements {per_request - commits:.0f} µs, COMMIT {commits:.0f} µs)"
    )
    for sql, seconds in sorted(spent.seconds.items(), key=lambda item: -item[1])[:8]:
        print(f"  {seconds / requests * 1e6:6.1f} µs  {sql[:100]}")
    print(f"the ceiling's INSERT, committed alone: {insert * 1e6:.0f} µs")
    if ceiling:
        request = 1e6 / ceiling
        floor = request - insert * 1e6 + per_request
        print(
            f"the ceiling's request, {request:.0f} µs, with the case action's SQL for its "
            f"INSERT: {floor:.0f} µs, so at most {request / floor:.0%} of "
            f"the ceiling with no Python of Restitution's own at all (the goal: 60 %)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--cases", type=int, default=1_000)
    parser.add_argument(
        "--ceiling", type=float, help="the one-INSERT ceiling of a `make bench` run, req/s"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="restitution-sql-floor-") as work:
        url = prepare(Path(work), args.orders)
        spent = asyncio.run(case_actions(args.orders, args.cases))
        insert = ceiling_insert(url.removeprefix("sqlite:///"), 5_000)
    report(spent, args.cases * REQUESTS_PER_FLOW, insert, args.ceiling)


if __name__ == "__main__":
    main()
