"""Reminders, each sent exactly once (the `reminders` row's key):

- to the party that must act, `reminder_hours_before_deadline` before a case deadline:
  a `case.deadline_approaching` outbox event (webhooks, and the e-mail it asks for);
- to the buyer, `window_reminder_hours` before the return window (W1/W2) closes on a
  delivered order line that has no case: an e-mail.

Reminders are rows, never inferred from elapsed time: a deadline's reminder is due from
`due_at - hours` until `due_at`; one whose deadline has fired or cleared is not sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from restitution.adapters.db import messaging as db
from restitution.domain.history import format_time
from restitution.services import emails
from restitution.services.context import App
from restitution.services.parties import get_contacts


def send_due(app: App, now: datetime | None = None) -> int:
    now = now or app.clock.now()
    return _deadline_reminders(app, now) + _window_reminders(app, now)


def _deadline_reminders(app: App, now: datetime, batch: int = 200) -> int:
    ahead = timedelta(hours=app.policy.reminder_hours_before_deadline)
    sent = 0
    while True:
        with app.db.transaction() as conn:
            rows = db.deadlines_to_remind(conn, now, now + ahead, batch)
            for row in rows:
                sent += _remind_deadline(app, conn, row, now)
            if rows:
                db.mark_deadlines_reminded(conn, [row.id for row in rows], now)
        if len(rows) < batch:
            return sent


def _remind_deadline(app: App, conn: Connection, row: Any, now: datetime) -> int:
    party_id = {"buyer": row.buyer_id, "seller": row.seller_id}.get(row.party, "mediators")
    if not db.claim_reminder(conn, f"deadline:{row.id}", row.party, party_id, row.due_at, now,
                             case_id=row.case_id):  # fmt: skip
        return 0
    deadline = {
        "kind": row.kind,
        "action": row.action,
        "party": row.party,
        "due_at": format_time(row.due_at),
        "auto": row.auto,
    }
    db.add_outbox_event(
        conn,
        app.new_id("evt"),
        "case.deadline_approaching",
        {
            "case_id": row.case_id,
            "order_id": row.order_id,
            "buyer_id": row.buyer_id,
            "seller_id": row.seller_id,
            "status": row.status,
            "outcome": row.outcome,
            "deadline": deadline,
        },
        now,
    )
    return 1


def _window_reminders(app: App, now: datetime) -> int:
    """Delivered lines whose window closes within the reminder period and that have no case."""
    policy = app.policy
    ahead = timedelta(hours=policy.window_reminder_hours)
    windows = [policy.return_window_days, *policy.category_windows.values()]
    # Only orders delivered recently enough that some window may be closing now.
    earliest = now - timedelta(days=max(windows))
    latest = now + ahead - timedelta(days=min(windows))
    sent = unaddressed = 0
    with app.db.transaction() as conn:
        orders = db.orders_delivered_between(conn, earliest, latest)
        contacts = get_contacts(conn, {("buyer", order.buyer_id) for order in orders})
        for order in orders:
            assert order.delivered_at is not None
            for line in order.lines:
                days, _ = policy.window_days_for(line.category)
                closes_at = order.delivered_at + timedelta(days=days)
                if not now < closes_at <= now + ahead:
                    continue
                has_case = db.line_has_case(conn, order.order_id, line.line_id)
                key = f"window:{order.order_id}:{line.line_id}"
                if has_case or not db.claim_reminder(
                    conn, key, "buyer", order.buyer_id, closes_at, now,
                    order_id=order.order_id, line_id=line.line_id,
                ):  # fmt: skip
                    continue
                base = app.settings.public_url.rstrip("/")
                queued = emails.queue(
                    app,
                    conn,
                    emails.Recipient("buyer", order.buyer_id, "return_window_closing"),
                    key,
                    {
                        "order_id": order.order_id,
                        "line_id": line.line_id,
                        "title": line.title or line.sku or line.line_id,
                        "window_closes_at": format_time(closes_at),
                        "order_url": f"{base}/portal/orders/{order.order_id}",
                    },
                    contacts,
                )
                sent += 1
                unaddressed += queued.unaddressed
    emails.report_unaddressed(unaddressed, reminders=sent)
    return sent
