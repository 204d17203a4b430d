"""Messages leaving the system: the outbox, webhook endpoints and their deliveries, e-mails,
and the reminder rows that make each reminder go out once.

Claims lease the rows they return (`next_attempt_at` moves ahead); on PostgreSQL concurrent
workers skip rows another one holds (`FOR UPDATE SKIP LOCKED`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from restitution.adapters.db import tables as t
from restitution.adapters.db.codec import order_from_row
from restitution.adapters.db.prepared import Prepared
from restitution.adapters.db.repository import Repository, after_cursor
from restitution.domain.orders import Order

# Statements run for every outbox row dispatched (prepared.py).
_EMAIL_WRITTEN = Prepared(
    select(t.emails.c.id).where(t.emails.c.dedupe_key == bindparam("dedupe_key"))
)
_INSERT_EMAIL = Prepared(
    insert(t.emails),
    columns=[
        "dedupe_key",
        "role",
        "party_id",
        "case_id",
        "template",
        "locale",
        "context",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
    ],
)
_REFUND_FOR_CASE = Prepared(select(t.refunds).where(t.refunds.c.case_id == bindparam("case_id")))

# Statements of every worker tick, busy or idle.
_endpoint, _delivery, _email = t.webhook_endpoints.c, t.webhook_deliveries.c, t.emails.c
_ENABLED_ENDPOINTS = Prepared(
    select(_endpoint.id, _endpoint.events).where(_endpoint.enabled.is_(True))
)
_due_deliveries = (
    select(t.webhook_deliveries, _endpoint.url, _endpoint.secret)
    .join(t.webhook_endpoints, _endpoint.id == _delivery.endpoint_id)
    .where(
        _delivery.status == "pending",
        _delivery.next_attempt_at <= bindparam("now"),
        _endpoint.enabled.is_(True),
    )
    .order_by(_delivery.next_attempt_at, _delivery.id)
    .limit(bindparam("limit"))
)
_DUE_DELIVERIES = Prepared(_due_deliveries)
_DUE_DELIVERIES_SKIP_LOCKED = Prepared(
    _due_deliveries.with_for_update(skip_locked=True, of=t.webhook_deliveries)
)
_LEASE_DELIVERY = Prepared(
    update(t.webhook_deliveries)
    .where(_delivery.id == bindparam("delivery_id"))
    .values(attempts=_delivery.attempts + 1, next_attempt_at=bindparam("lease"))
)


def _claim_emails(skip_locked: bool) -> Prepared:
    due = (
        select(_email.id)
        .where(_email.status == "pending", _email.next_attempt_at <= bindparam("now"))
        .order_by(_email.next_attempt_at, _email.id)
        .limit(bindparam("limit"))
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    return Prepared(
        update(t.emails)
        .where(_email.id.in_(due))
        .values(attempts=_email.attempts + 1, next_attempt_at=bindparam("lease"))
        .returning(*t.emails.c)
    )


_CLAIM_EMAILS = _claim_emails(skip_locked=False)
_CLAIM_EMAILS_SKIP_LOCKED = _claim_emails(skip_locked=True)


def _skips_locked(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


# --------------------------------------------------------------------------- outbox


def add_outbox_event(
    conn: Connection, event_id: str, event_type: str, payload: dict[str, Any], now: datetime
) -> None:
    """One outbox row, written as every action's are (`Repository.add_outbox_rows`)."""
    Repository(conn).add_outbox_rows([(event_id, event_type, payload, now)])


def _take_outbox(skip_locked: bool) -> Prepared:
    pending = (
        select(t.outbox.c.id)
        .where(t.outbox.c.delivered_at.is_(None))
        .order_by(t.outbox.c.id)
        .limit(bindparam("limit"))
    )
    if skip_locked:
        pending = pending.with_for_update(skip_locked=True)
    return Prepared(
        update(t.outbox)
        .where(t.outbox.c.id.in_(pending))
        .values(delivered_at=bindparam("now"), attempts=t.outbox.c.attempts + 1)
        .returning(*t.outbox.c)
    )


_TAKE_OUTBOX = _take_outbox(skip_locked=False)
_TAKE_OUTBOX_SKIP_LOCKED = _take_outbox(skip_locked=True)


def take_outbox(conn: Connection, limit: int, now: datetime) -> list[Any]:
    """The oldest outbox rows not dispatched yet, up to `limit`, marked dispatched at `now`
    (in this transaction: its rollback leaves them to dispatch), in the order written."""
    take = _TAKE_OUTBOX_SKIP_LOCKED if _skips_locked(conn) else _TAKE_OUTBOX
    return sorted(take.all(conn, {"limit": limit, "now": now}), key=lambda row: row.id)


# --------------------------------------------------------------------------- webhook endpoints


def insert_endpoint(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(t.webhook_endpoints).values(**values))


def list_endpoints(conn: Connection) -> list[Any]:
    return list(
        conn.execute(select(t.webhook_endpoints).order_by(t.webhook_endpoints.c.created_at))
    )


def enabled_endpoints(conn: Connection) -> list[Any]:
    """(id, events) of every enabled endpoint."""
    return _ENABLED_ENDPOINTS.all(conn)


def find_endpoint(conn: Connection, endpoint_id: str) -> Any:
    return conn.execute(
        select(t.webhook_endpoints).where(t.webhook_endpoints.c.id == endpoint_id)
    ).first()


def update_endpoint(conn: Connection, endpoint_id: str, values: dict[str, Any]) -> None:
    conn.execute(
        update(t.webhook_endpoints).where(t.webhook_endpoints.c.id == endpoint_id).values(**values)
    )


def disable_endpoint(conn: Connection, endpoint_id: str, now: datetime) -> None:
    update_endpoint(conn, endpoint_id, {"enabled": False, "disabled_at": now})


def reset_endpoint_failures(conn: Connection, endpoint_id: str) -> None:
    e = t.webhook_endpoints.c
    conn.execute(
        update(t.webhook_endpoints)
        .where(e.id == endpoint_id, e.consecutive_failures != 0)
        .values(consecutive_failures=0)
    )


def count_endpoint_failure(conn: Connection, endpoint_id: str) -> Any:
    """Add one to the endpoint's consecutive failures; returns the row's
    (consecutive_failures, enabled, url) after it."""
    e = t.webhook_endpoints.c
    return conn.execute(
        update(t.webhook_endpoints)
        .where(e.id == endpoint_id)
        .values(consecutive_failures=e.consecutive_failures + 1)
        .returning(e.consecutive_failures, e.enabled, e.url)
    ).one()


# --------------------------------------------------------------------------- webhook deliveries


def insert_deliveries(conn: Connection, deliveries: list[dict[str, Any]]) -> None:
    conn.execute(insert(t.webhook_deliveries), deliveries)


def list_deliveries(
    conn: Connection, endpoint_id: str, *, limit: int, starting_after: str | None
) -> tuple[list[Any], bool]:
    """A page of the endpoint's deliveries, newest first, and whether more follow."""
    d = t.webhook_deliveries.c
    conditions: list[Any] = [d.endpoint_id == endpoint_id]
    if starting_after is not None:
        conditions.append(
            after_cursor(conn, t.webhook_deliveries, "delivery", starting_after, *conditions)
        )
    rows = conn.execute(
        select(t.webhook_deliveries)
        .where(*conditions)
        .order_by(d.created_at.desc(), d.id.desc())
        .limit(limit + 1)
    ).all()
    return list(rows[:limit]), len(rows) > limit


def claim_due_deliveries(
    conn: Connection, now: datetime, lease_until: datetime, limit: int
) -> list[Any]:
    """Pending deliveries due by `now` to enabled endpoints (with the endpoint's url and
    secret), the earliest due up to `limit`, their attempts counted and leased until
    `lease_until`. `attempts` in the rows returned counts this claim (as for e-mails)."""
    due = _DUE_DELIVERIES_SKIP_LOCKED if _skips_locked(conn) else _DUE_DELIVERIES
    rows = due.all(conn, {"now": now, "limit": limit})
    if rows:
        _LEASE_DELIVERY.run_many(
            conn, [{"delivery_id": row.id, "lease": lease_until} for row in rows]
        )
    return [row._replace(attempts=row.attempts + 1) for row in rows]


def finish_delivery_attempt(conn: Connection, delivery_id: str, values: dict[str, Any]) -> bool:
    """Record an attempt's outcome; False when the delivery is no longer pending."""
    d = t.webhook_deliveries.c
    changed = conn.execute(
        update(t.webhook_deliveries)
        .where(d.id == delivery_id, d.status == "pending")
        .values(**values)
    ).rowcount
    return bool(changed)


# --------------------------------------------------------------------------- e-mails


def email_written(conn: Connection, dedupe_key: str) -> bool:
    return _EMAIL_WRITTEN.first(conn, {"dedupe_key": dedupe_key}) is not None


def insert_email(conn: Connection, values: dict[str, Any]) -> None:
    _INSERT_EMAIL.run(conn, values)


_CASE_DEADLINES = select(t.cases.c.id, t.cases.c.deadline).where(
    t.cases.c.id.in_(bindparam("ids", expanding=True))
)  # built once, its IN list a parameter (as parties.find_parties)


def case_deadlines(conn: Connection, case_ids: Collection[str]) -> dict[str, Any]:
    """Each case's current deadline (a JSON object, or None), by case id; one statement."""
    if not case_ids:
        return {}
    rows = conn.execute(_CASE_DEADLINES, {"ids": list(case_ids)})
    return {row.id: row.deadline for row in rows}


def refund_for_case(conn: Connection, case_id: str) -> Any:
    return _REFUND_FOR_CASE.first(conn, {"case_id": case_id})


def claim_due_emails(
    conn: Connection, now: datetime, lease_until: datetime, limit: int
) -> list[Any]:
    """Pending e-mails due by `now`, the earliest due up to `limit`, their attempts counted
    and leased until `lease_until`, in one statement; in the order written. `attempts` in
    the rows returned counts this claim."""
    claim = _CLAIM_EMAILS_SKIP_LOCKED if _skips_locked(conn) else _CLAIM_EMAILS
    rows = claim.all(conn, {"now": now, "lease": lease_until, "limit": limit})
    return sorted(rows, key=lambda row: row.id)


def finish_email_attempt(conn: Connection, email_id: int, values: dict[str, Any]) -> None:
    """Record an attempt's outcome, unless the e-mail is no longer pending."""
    conn.execute(
        update(t.emails)
        .where(t.emails.c.id == email_id, t.emails.c.status == "pending")
        .values(**values)
    )


# --------------------------------------------------------------------------- reminders


def deadlines_to_remind(conn: Connection, now: datetime, until: datetime, limit: int) -> list[Any]:
    """Open deadlines not reminded of, due after `now` and by `until`, with their case's
    order_id, buyer_id, seller_id, status and outcome; locked for this transaction."""
    d, c = t.deadlines.c, t.cases.c
    query = (
        select(t.deadlines, c.order_id, c.buyer_id, c.seller_id, c.status, c.outcome)
        .join(t.cases, c.id == d.case_id)
        .where(d.fired_at.is_(None), d.cleared_at.is_(None), d.reminded_at.is_(None),
               d.due_at > now, d.due_at <= until)
        .order_by(d.due_at, d.id)
        .limit(limit)
    )  # fmt: skip
    if _skips_locked(conn):
        query = query.with_for_update(skip_locked=True, of=t.deadlines)
    return list(conn.execute(query).all())


def mark_deadlines_reminded(conn: Connection, deadline_ids: Sequence[int], now: datetime) -> None:
    conn.execute(
        update(t.deadlines).where(t.deadlines.c.id.in_(deadline_ids)).values(reminded_at=now)
    )


def orders_delivered_between(conn: Connection, after: datetime, until: datetime) -> list[Order]:
    """Orders delivered after `after` and by `until`."""
    o = t.orders.c
    rows = conn.execute(
        select(t.orders).where(
            o.delivered_at.is_not(None), o.delivered_at > after, o.delivered_at <= until
        )
    ).all()
    return [order_from_row(row) for row in rows]


def line_has_case(conn: Connection, order_id: str, line_id: str) -> bool:
    cl = t.case_lines.c
    query = select(exists().where(cl.order_id == order_id, cl.line_id == line_id))
    return bool(conn.execute(query).scalar())


def claim_reminder(
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
