"""Read-only queries for the portal and the console: lists, counts and the overview's figures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from restitution.adapters.db import tables as t
from restitution.adapters.db.codec import order_from_row
from restitution.domain.orders import Order


def buyer_orders(conn: Connection, buyer_id: str, limit: int) -> list[Order]:
    """The buyer's orders, newest first."""
    o = t.orders.c
    rows = conn.execute(
        select(t.orders)
        .where(o.buyer_id == buyer_id)
        .order_by(o.placed_at.desc(), o.order_id)
        .limit(limit)
    ).all()
    return [order_from_row(row) for row in rows]


def open_cases_by_line(conn: Connection, order_id: str) -> dict[str, str]:
    """line id → the id of the case on it that is not resolved yet."""
    cl = t.case_lines.c
    rows = conn.execute(
        select(cl.line_id, cl.case_id).where(cl.order_id == order_id, cl.is_open.is_(True))
    ).all()
    return {row.line_id: row.case_id for row in rows}


def case_attachments(conn: Connection, case_id: str) -> list[Any]:
    a = t.attachments.c
    return list(
        conn.execute(
            select(t.attachments).where(a.case_id == case_id).order_by(a.created_at, a.id)
        ).all()
    )


def orders_per_seller(conn: Connection, seller_id: str | None = None) -> dict[str, int]:
    """seller id → how many orders, for every seller (or the one given)."""
    query = select(t.orders.c.seller_id, func.count()).group_by(t.orders.c.seller_id)
    if seller_id is not None:
        query = query.where(t.orders.c.seller_id == seller_id)
    return {row[0]: int(row[1]) for row in conn.execute(query)}


def cases_per_seller(conn: Connection, seller_id: str | None = None) -> dict[str, int]:
    """seller id → how many cases, for every seller (or the one given)."""
    query = select(t.cases.c.seller_id, func.count()).group_by(t.cases.c.seller_id)
    if seller_id is not None:
        query = query.where(t.cases.c.seller_id == seller_id)
    return {row[0]: int(row[1]) for row in conn.execute(query)}


def buyer_cases(conn: Connection, buyer_id: str, limit: int) -> list[Any]:
    """A summary row of each case the buyer opened, newest first."""
    c = t.cases.c
    return list(
        conn.execute(
            select(
                c.id,
                c.order_id,
                c.seller_id,
                c.reason,
                c.status,
                c.outcome,
                c.refundable_amount,
                c.refunded_amount,
                c.currency,
                c.created_at,
            )
            .where(c.buyer_id == buyer_id)
            .order_by(c.created_at.desc(), c.id.desc())
            .limit(limit)
        ).all()
    )


def unresolved_cases_by_status(conn: Connection) -> dict[str, int]:
    c = t.cases.c
    query = select(c.status, func.count()).where(c.status != "resolved").group_by(c.status)
    return {row[0]: int(row[1]) for row in conn.execute(query)}


def cases_past_deadline(conn: Connection, now: datetime) -> int:
    """How many cases have a deadline that is open and due before `now`."""
    d = t.deadlines.c
    count = conn.execute(
        select(func.count(func.distinct(d.case_id))).where(
            d.fired_at.is_(None), d.cleared_at.is_(None), d.due_at < now
        )
    ).scalar_one()
    return int(count or 0)


def deadlines_failing(conn: Connection) -> int:
    """How many deadlines still to fire have failed to (`deadlines.attempts`)."""
    d = t.deadlines.c
    count = conn.execute(
        select(func.count()).where(d.fired_at.is_(None), d.cleared_at.is_(None), d.attempts > 0)
    ).scalar_one()
    return int(count or 0)


def refunds_since(conn: Connection, since: datetime) -> list[Any]:
    """(currency, count, sum of amounts) of the refunds created since `since`."""
    r = t.refunds.c
    return list(
        conn.execute(
            select(r.currency, func.count(), func.sum(r.amount))
            .where(r.created_at >= since)
            .group_by(r.currency)
        ).all()
    )


def resolved_case_times(conn: Connection) -> list[Any]:
    """(created_at, status_since) of every resolved case."""
    c = t.cases.c
    return list(
        conn.execute(select(c.created_at, c.status_since).where(c.status == "resolved")).all()
    )
