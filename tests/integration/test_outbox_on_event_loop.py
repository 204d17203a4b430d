"""`restitution serve` on SQLite dispatches its outbox on the server's event loop, where the
server makes its other writes, not from a thread of its own."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pytest
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from restitution.adapters.db import messaging
from restitution.adapters.db import tables as t
from restitution.adapters.db.repository import Repository
from restitution.api.app import create_api
from restitution.services import outbox
from restitution.services.context import App
from restitution.services.worker import Worker
from tests.integration.conftest import OPERATOR_KEY
from tests.integration.messaging import pending_outbox_rows, undispatched

ROWS = outbox.BATCH + 5  # more than a batch on either backend


async def _until_dispatched(app: App, worker: Worker) -> bool:
    """Run the worker's loop work until the outbox is empty (a test fails, never hangs):
    whether the messages thread was woken meanwhile (stopping the worker wakes it too)."""

    async def drained() -> None:
        while undispatched(app):
            await asyncio.sleep(0)  # the server's other work goes on between batches

    background = asyncio.create_task(worker.run_on_event_loop())
    try:
        await asyncio.wait_for(drained(), timeout=30)
        return worker._wake["messages"].is_set()
    finally:
        worker.request_stop()
        background.cancel()


def _webhook_endpoint(app: App) -> None:
    with app.db.transaction() as conn:
        messaging.insert_endpoint(
            conn,
            {
                "id": "whe_1",
                "url": "http://127.0.0.1:9/hook",
                "events": ["case.*"],
                "secret": "whsec_x",
                "enabled": True,
                "created_at": app.clock.now(),
            },
        )


def test_the_outbox_is_left_to_the_event_loop_and_dispatched_there(app: App) -> None:
    _webhook_endpoint(app)
    pending_outbox_rows(app, ROWS)
    worker = Worker(app, interval_seconds=3600, outbox_on_event_loop=True)

    assert worker.loops["messages"]() == 0  # its thread's step leaves the outbox alone
    assert undispatched(app) == ROWS

    woken = asyncio.run(_until_dispatched(app, worker))
    assert undispatched(app) == 0
    assert woken  # the messages thread is told of the work


def test_the_messages_thread_is_not_woken_when_a_dispatch_wrote_no_messages(app: App) -> None:
    """No endpoint, and the parties have no address: nothing to send. Each wake-up would be
    two write transactions from the messages thread, which requests would wait for."""
    pending_outbox_rows(app, ROWS)
    worker = Worker(app, interval_seconds=3600, outbox_on_event_loop=True)

    woken = asyncio.run(_until_dispatched(app, worker))
    assert undispatched(app) == 0
    assert not woken


def test_rows_committed_while_the_loop_waits_are_dispatched_without_waiting_the_interval(
    app: App,
) -> None:
    worker = Worker(app, interval_seconds=3600, outbox_on_event_loop=True)

    async def scenario() -> None:
        background = asyncio.create_task(worker.run_on_event_loop())
        try:
            while app.db.on_outbox_written is None:  # the loop's work has started
                await asyncio.sleep(0)
            for _ in range(5):  # it found nothing: now it waits (an hour, unless woken)
                await asyncio.sleep(0)
            # a commit that wrote outbox rows wakes it, here from another thread (as the
            # worker's clock thread commits a fired deadline's rows)
            writer = threading.Thread(target=pending_outbox_rows, args=(app, 3))
            writer.start()
            writer.join()

            async def drained() -> None:
                while undispatched(app):
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(drained(), timeout=30)  # fails (not hangs) if never woken
        finally:
            worker.request_stop()
            background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await background

    asyncio.run(scenario())
    assert undispatched(app) == 0
    assert app.db.on_outbox_written is None  # stopped: no one to wake


def test_a_commit_that_wrote_no_outbox_rows_wakes_no_one(app: App) -> None:
    woken: list[str] = []
    app.db.on_outbox_written = lambda: woken.append("woken")
    with app.db.transaction() as conn:
        conn.execute(
            t.parties.insert().values(role="buyer", party_id="b_9", updated_at=app.clock.now())
        )
    assert woken == []
    with pytest.raises(RuntimeError), app.db.transaction() as conn:
        Repository(conn).add_outbox_rows(
            [("evt_x", "case.opened", {"case_id": "c"}, app.clock.now())]
        )
        raise RuntimeError("rolled back")
    assert woken == []  # rolled back: nothing to dispatch
    pending_outbox_rows(app, 1)
    assert woken == ["woken"]
    # the worker's own events (a reminder, a disabled endpoint) are written the same way
    with app.db.transaction() as conn:
        messaging.add_outbox_event(
            conn, "evt_y", "webhook_endpoint.disabled", {"id": "we_1"}, app.clock.now()
        )
    assert woken == ["woken", "woken"]


def test_a_failed_dispatch_on_the_event_loop_is_logged_and_tried_again(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    pending_outbox_rows(app, 3)
    worker = Worker(app, interval_seconds=0, outbox_on_event_loop=True)
    dispatch, failures = outbox.dispatch_batch, []

    def failing_once(app: App) -> outbox.Dispatched:
        if not failures:
            failures.append("failed")
            raise RuntimeError("the database went away")
        return dispatch(app)

    monkeypatch.setattr(outbox, "dispatch_batch", failing_once)
    with capture_logs() as logs:
        asyncio.run(_until_dispatched(app, worker))

    assert failures == ["failed"] and undispatched(app) == 0
    assert [entry["event"] for entry in logs] == ["worker_step_failed"]


def test_a_worker_without_the_event_loop_dispatches_from_its_thread(app: App) -> None:
    pending_outbox_rows(app, 3)
    worker = Worker(app, interval_seconds=3600)

    assert worker.loops["messages"]() == 3
    assert undispatched(app) == 0
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
