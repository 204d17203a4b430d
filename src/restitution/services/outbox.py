"""Dispatching the outbox: each event row becomes webhook deliveries and e-mails.

The outbox row was written in the state change's transaction. Dispatching it writes one
`webhook_deliveries` row per enabled endpoint whose patterns match, and the e-mails the
event asks for, and marks the row dispatched — all in one transaction, so an event is
turned into messages exactly once. On PostgreSQL, concurrent workers skip rows another
one holds (`FOR UPDATE SKIP LOCKED`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from restitution.adapters.db.messaging import enabled_endpoints, insert_deliveries, take_outbox
from restitution.domain.history import format_time
from restitution.services import emails
from restitution.services.context import App
from restitution.services.webhooks import matches

# Rows dispatched per transaction. SQLite has one write lock, and the server's requests wait
# for it on the event loop: a batch of 200 held them all back for ~0.2 s (the p99 of the
# write benchmark; bench/RESULTS.md). There, small batches, run back to back while busy.
BATCH = 200
SQLITE_BATCH = 20


class Dispatched(NamedTuple):
    events: int  # outbox rows dispatched
    messages: int  # webhook deliveries and e-mails written for them, to be sent


def dispatch(app: App, *, limit: int | None = None) -> int:
    """Dispatch up to `limit` outbox rows (default: one batch) in one transaction; returns
    how many."""
    return dispatch_batch(app, limit=limit).events


def dispatch_batch(app: App, *, limit: int | None = None) -> Dispatched:
    """`dispatch`, telling also how many messages it wrote."""
    if limit is None:
        limit = SQLITE_BATCH if app.db.is_sqlite else BATCH
    now = app.clock.now()
    with app.db.transaction() as conn:
        rows = take_outbox(conn, limit, now)
        if not rows:
            return Dispatched(0, 0)
        endpoints = enabled_endpoints(conn)
        known = emails.known_for_events(conn, [(row.type, dict(row.payload)) for row in rows])
        deliveries: list[dict[str, Any]] = []
        unaddressed = written = 0
        for row in rows:
            payload = {
                "id": row.event_id,
                "type": row.type,
                "created_at": format_time(row.created_at),
                "data": row.payload,
            }
            for endpoint in endpoints:
                if matches(endpoint.events, row.type):
                    deliveries.append(
                        {
                            "id": app.new_id("whd"),
                            "endpoint_id": endpoint.id,
                            "event_id": row.event_id,
                            "event_type": row.type,
                            "payload": payload,
                            "status": "pending",
                            "attempts": 0,
                            "next_attempt_at": now,
                            "created_at": now,
                        }
                    )
            queued = emails.queue_for_event(
                app, conn, row.event_id, row.type, dict(row.payload), known
            )
            unaddressed += queued.unaddressed
            written += queued.written
        if deliveries:
            insert_deliveries(conn, deliveries)
    emails.report_unaddressed(unaddressed, events=len(rows))
    return Dispatched(len(rows), len(deliveries) + written)


def dispatch_all(app: App) -> int:
    total = 0
    while count := dispatch(app):
        total += count
    return total
