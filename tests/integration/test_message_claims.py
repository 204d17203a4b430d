"""What the worker claims each tick: outbox rows to dispatch, webhook deliveries and e-mails
due. Each claim marks (or leases) its rows in the claiming transaction: a claim never hands
out a row twice while it is held, and a rolled-back one leaves its rows to the next."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from restitution.adapters.db import messaging
from restitution.services import emails, outbox
from restitution.services.clock import TestClock
from restitution.services.context import App
from tests.integration.conftest import ON_POSTGRES
from tests.integration.messaging import pending_outbox_rows

LEASE_SECONDS = 60
LEASE = timedelta(seconds=LEASE_SECONDS)


def _take_outbox(app: App, limit: int) -> list[Any]:
    with app.db.transaction() as conn:
        return messaging.take_outbox(conn, limit, app.clock.now())


def test_outbox_rows_are_taken_oldest_first_each_once(app: App) -> None:
    pending_outbox_rows(app, 5)

    first, rest = _take_outbox(app, 3), _take_outbox(app, 10)

    assert [row.event_id for row in first] == ["evt_000", "evt_001", "evt_002"]
    assert [row.event_id for row in rest] == ["evt_003", "evt_004"]
    assert {row.attempts for row in first + rest} == {1}
    assert all(row.delivered_at == app.clock.now() for row in first + rest)
    assert _take_outbox(app, 10) == []


def test_a_failed_dispatch_leaves_its_rows_to_the_next(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    pending_outbox_rows(app, 3)

    def broken(*_: Any) -> None:
        raise RuntimeError("the e-mail queue is broken")

    with monkeypatch.context() as patched:
        patched.setattr(emails, "queue_for_event", broken)
        with pytest.raises(RuntimeError):
            outbox.dispatch(app)

    assert outbox.dispatch(app) == 3


def _pending_emails(app: App, count: int) -> None:
    now = app.clock.now()
    with app.db.transaction() as conn:
        for n in range(count):
            messaging.insert_email(
                conn,
                {
                    "dedupe_key": f"key_{n}",
                    "role": "buyer",
                    "party_id": "b_1",
                    "case_id": None,
                    "template": "action_required",
                    "locale": "en",
                    "context": {"to": "b@example.com", "n": n},
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                },
            )


def _claim_emails(app: App, limit: int) -> list[tuple[str, int]]:
    now = app.clock.now()
    with app.db.transaction() as conn:
        rows = messaging.claim_due_emails(conn, now, now + LEASE, limit)
    return [(row.dedupe_key, row.attempts) for row in rows]


def test_emails_are_claimed_once_per_lease_with_their_attempts_counted(
    app: App, clock: TestClock
) -> None:
    _pending_emails(app, 3)

    assert _claim_emails(app, 2) == [("key_0", 1), ("key_1", 1)]
    assert _claim_emails(app, 10) == [("key_2", 1)]
    assert _claim_emails(app, 10) == []  # all leased

    clock.advance(LEASE_SECONDS)
    assert _claim_emails(app, 10) == [("key_0", 2), ("key_1", 2), ("key_2", 2)]


def _pending_delivery(app: App, delivery_id: str, *, enabled: bool = True) -> None:
    now = app.clock.now()
    endpoint_id = f"we_{delivery_id}"
    with app.db.transaction() as conn:
        messaging.insert_endpoint(
            conn,
            {
                "id": endpoint_id,
                "url": "https://example.com/hook",
                "events": ["*"],
                "secret": f"whsec_{delivery_id}",
                "enabled": enabled,
                "created_at": now,
            },
        )
        messaging.insert_deliveries(
            conn,
            [
                {
                    "id": delivery_id,
                    "endpoint_id": endpoint_id,
                    "event_id": "evt_1",
                    "event_type": "case.opened",
                    "payload": {"id": "evt_1"},
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            ],
        )


def _claim_deliveries(app: App) -> list[tuple[str, int, str]]:
    now = app.clock.now()
    with app.db.transaction() as conn:
        rows = messaging.claim_due_deliveries(conn, now, now + LEASE, 10)
    return [(row.id, row.attempts, row.secret) for row in rows]


def test_deliveries_to_enabled_endpoints_are_claimed_once_per_lease(
    app: App, clock: TestClock
) -> None:
    _pending_delivery(app, "whd_1")
    _pending_delivery(app, "whd_off", enabled=False)

    # `attempts` counts this claim; the endpoint's secret comes with the row.
    assert _claim_deliveries(app) == [("whd_1", 1, "whsec_whd_1")]
    assert _claim_deliveries(app) == []

    clock.advance(LEASE_SECONDS)
    assert _claim_deliveries(app) == [("whd_1", 2, "whsec_whd_1")]


@ON_POSTGRES
def test_concurrent_claims_skip_the_rows_another_transaction_holds(app: App) -> None:
    pending_outbox_rows(app, 5)
    _pending_emails(app, 3)
    now = app.clock.now()
    with app.db.transaction() as holding:
        held_outbox = messaging.take_outbox(holding, 3, now)
        held_emails = messaging.claim_due_emails(holding, now, now + LEASE, 2)

        def other_worker() -> tuple[list[str], list[str]]:
            with app.db.transaction() as conn:
                conn.exec_driver_sql("SET LOCAL lock_timeout = '5s'")  # never wait on `holding`
                outbox_rows = messaging.take_outbox(conn, 10, now)
                emails = messaging.claim_due_emails(conn, now, now + LEASE, 10)
            return [row.event_id for row in outbox_rows], [row.dedupe_key for row in emails]

        with ThreadPoolExecutor(max_workers=1) as pool:
            taken_outbox, taken_emails = pool.submit(other_worker).result(timeout=30)

    assert [row.event_id for row in held_outbox] == ["evt_000", "evt_001", "evt_002"]
    assert taken_outbox == ["evt_003", "evt_004"]
    assert [row.dedupe_key for row in held_emails] == ["key_0", "key_1"]
    assert taken_emails == ["key_2"]
