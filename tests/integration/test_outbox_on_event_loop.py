"""`restitution serve` on SQLite dispatches its outbox on the server's event loop, where the
server makes its other writes, not from a thread of its own."""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from restitution.adapters.db import tables as t
from restitution.adapters.db.repository import Repository
from restitution.api.app import create_api
from restitution.services.context import App
from restitution.services.worker import Worker
from tests.integration.conftest import OPERATOR_KEY


def _outbox_rows(app: App, count: int) -> None:
    now = app.clock.now()
    with app.db.transaction() as conn:
        Repository(conn).add_outbox_rows(
            [(f"evt_{n:03}", "case.opened", {"case_id": f"case_{n}"}, now) for n in range(count)]
        )


def _undispatched(app: App) -> int:
    with app.db.transaction(write=False) as conn:
        query = select(func.count()).select_from(t.outbox).where(t.outbox.c.delivered_at.is_(None))
        return int(conn.execute(query).scalar_one())


def test_the_outbox_is_left_to_the_event_loop_and_dispatched_there(app: App) -> None:
    _outbox_rows(app, 45)  # more than a batch on either backend's first turns
    worker = Worker(app, interval_seconds=3600, outbox_on_event_loop=True)

    assert worker.loops["messages"]() == 0  # its thread's step leaves the outbox alone
    assert _undispatched(app) == 45

    async def serve() -> None:
        background = asyncio.create_task(worker.run_on_event_loop())
        while _undispatched(app):
            await asyncio.sleep(0)  # the server's other work goes on between batches
        worker.request_stop()
        background.cancel()

    asyncio.run(serve())
    assert _undispatched(app) == 0


def test_a_worker_without_the_event_loop_dispatches_from_its_thread(app: App) -> None:
    _outbox_rows(app, 3)
    worker = Worker(app, interval_seconds=3600)

    assert worker.loops["messages"]() == 3
    assert _undispatched(app) == 0
    asyncio.run(worker.run_on_event_loop())  # nothing to do on the loop: returns at once


def test_the_server_runs_its_event_loop_work_from_start_up_to_shutdown(app: App) -> None:
    seen: list[str] = []

    async def work() -> None:
        seen.append("started")
        try:
            await asyncio.Event().wait()
        finally:
            seen.append("stopped")

    with TestClient(create_api(app, OPERATOR_KEY, on_event_loop=work)) as client:
        assert client.get("/healthz").status_code == 200
        assert seen == ["started"]
    assert seen == ["started", "stopped"]
