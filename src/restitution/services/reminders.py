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

from sqlalchemy import Connection, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from restitution.adapters.db import tables as t
from restitution.adapters.db.codec import order_from_row
from restitution.domain.history import format_time
from restitution.services import emails
from restitution.services.context import App


def send_due(app: App, now: datetime | None = None) -> int:
    now = now or app.clock.now()
    return _deadline_reminders(app, now) + _window_reminders(app, now)


def _deadline_reminders(app: App, now: datetime, batch: int = 200) -> int:
    ahead = timedelta(hours=app.policy.reminder_hours_before_deadline)
    d = t.deadlines.c
    sent = 0
    while True:
        with app.db.transaction() as conn:
            query = (
                select(t.deadlines, t.cases.c.order_id, t.cases.c.buyer_id, t.cases.c.seller_id,
                       t.cases.c.status, t.cases.c.outcome)
                .join(t.cases, t.cases.c.id == d.case_id)
                .where(d.fired_at.is_(None), d.cleared_at.is_(None), d.reminded_at.is_(None),
                       d.due_at > now, d.due_at <= now + ahead)
                .order_by(d.due_at, d.id)
                .limit(batch)
            )  # fmt: skip
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=t.deadlines)
            rows = conn.execute(query).all()
            for row in rows:
                sent += _remind_deadline(app, conn, row, now)
            if rows:
                conn.execute(
                    update(t.deadlines)
                    .where(d.id.in_([row.id for row in rows]))
                    .values(reminded_at=now)
                )
        if len(rows) < batch:
            return sent


def _remind_deadline(app: App, conn: Connection, row: Any, now: datetime) -> int:
    party_id = {"buyer": row.buyer_id, "seller": row.seller_id}.get(row.party, "mediators")
    if not _claim_key(conn, f"deadline:{row.id}", row.party, party_id, row.due_at, now,
                      case_id=row.case_id):  # fmt: skip
        return 0
    deadline = {
        "kind": row.kind,
        "action": row.action,
        "party": row.party,
        "due_at": format_time(row.due_at),
        "auto": row.auto,
    }
    conn.execute(
        insert(t.outbox).values(
            event_id=app.new_id("evt"),
            type="case.deadline_approaching",
            payload={
                "case_id": row.case_id,
                "order_id": row.order_id,
                "buyer_id": row.buyer_id,
                "seller_id": row.seller_id,
                "status": row.status,
                "outcome": row.outcome,
                "deadline": deadline,
            },
            created_at=now,
            next_attempt_at=now,
        )
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
    sent = 0
    with app.db.transaction() as conn:
        rows = conn.execute(
            select(t.orders).where(
                t.orders.c.delivered_at.is_not(None),
                t.orders.c.delivered_at > earliest,
                t.orders.c.delivered_at <= latest,
            )
        ).all()
        for row in rows:
            order = order_from_row(row)
            assert order.delivered_at is not None
            for line in order.lines:
                days, _ = policy.window_days_for(line.category)
                closes_at = order.delivered_at + timedelta(days=days)
                if not now < closes_at <= now + ahead:
                    continue
                has_case = conn.execute(
                    select(
                        exists().where(
                            t.case_lines.c.order_id == order.order_id,
                            t.case_lines.c.line_id == line.line_id,
                        )
                    )
                ).scalar()
                key = f"window:{order.order_id}:{line.line_id}"
                if has_case or not _claim_key(
                    conn, key, "buyer", order.buyer_id, closes_at, now,
                    order_id=order.order_id, line_id=line.line_id,
                ):  # fmt: skip
                    continue
                base = app.settings.public_url.rstrip("/")
                emails.queue(
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
                )
                sent += 1
    return sent


def _claim_key(
    conn: Connection,
    key: str,
    role: str,
    party_id: str,
    due_at: datetime,
    now: datetime,
    **where: str | None,
) -> bool:
    """Write the reminder's row; False when it was sent before (its key exists)."""
    if conn.execute(select(t.reminders.c.key).where(t.reminders.c.key == key)).first():
        return False
    try:
        with conn.begin_nested():
            conn.execute(
                insert(t.reminders).values(
                    key=key,
                    party_role=role,
                    party_id=party_id,
                    due_at=due_at,
                    sent_at=now,
                    **where,
                )
            )
    except IntegrityError:  # another worker sent it just now
        return False
    return True
