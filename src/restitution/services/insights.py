"""Read-only questions the portal and the console ask: a party's orders and preferences,
a case's evidence, a seller's dispute rate, a buyer's history, and the platform overview.

Nothing here changes state or judges a claim; the rules stay in the domain and use cases.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from restitution.adapters.db import tables as t
from restitution.adapters.db.codec import order_from_row
from restitution.adapters.db.repository import Repository
from restitution.domain.cases import OPEN_STATUSES, Case
from restitution.domain.eligibility import Verdict, evaluate
from restitution.domain.errors import Forbidden
from restitution.domain.orders import Order
from restitution.services.auth import Principal, not_found
from restitution.services.context import App
from restitution.services.orders import may_see_order

MAX_ORDERS = 200


@dataclass(frozen=True)
class Preferences:
    """How a party reads times and numbers; None where the marketplace has not told us."""

    locale: str | None
    time_zone: str | None


def preferences(app: App, role: str, party_id: str) -> Preferences:
    with app.db.transaction(write=False) as conn:
        row = conn.execute(
            select(t.parties.c.locale, t.parties.c.time_zone).where(
                t.parties.c.role == role, t.parties.c.party_id == party_id
            )
        ).first()
    return Preferences(row.locale, row.time_zone) if row else Preferences(None, None)


def buyer_orders(app: App, principal: Principal) -> list[Order]:
    """The buyer's orders, newest first."""
    if principal.role != "buyer" or principal.party_id is None:
        raise Forbidden("buyer_only", "only a buyer has orders to list")
    o = t.orders.c
    with app.db.transaction(write=False) as conn:
        rows = conn.execute(
            select(t.orders)
            .where(o.buyer_id == principal.party_id)
            .order_by(o.placed_at.desc(), o.order_id)
            .limit(MAX_ORDERS)
        ).all()
    return [order_from_row(row) for row in rows]


def open_cases_by_line(app: App, order_id: str) -> dict[str, str]:
    """line id → the id of the case on it that is not resolved yet."""
    with app.db.transaction(write=False) as conn:
        rows = conn.execute(
            select(t.case_lines.c.line_id, t.case_lines.c.case_id).where(
                t.case_lines.c.order_id == order_id, t.case_lines.c.is_open.is_(True)
            )
        ).all()
    return {row.line_id: row.case_id for row in rows}


def claim_verdicts(
    app: App,
    principal: Principal,
    order_id: str,
    lines: Sequence[tuple[str, int]],
    reason: str,
) -> list[Verdict]:
    """The verdict for each (line, quantity) and reason now: what opening would be judged by."""
    with app.db.transaction(write=False) as conn:
        repo = Repository(conn)
        order = repo.get_order(order_id)
        if order is None or not may_see_order(repo, principal, order):
            raise not_found("order", order_id)
        granted = repo.granted_on_lines(order_id)
    now = app.clock.now()
    return [
        evaluate(
            app.policy,
            order,
            line_id,
            reason,
            now,
            quantity=quantity,
            already_refunded=granted.get(line_id, 0),
        )
        for line_id, quantity in lines
    ]


def case_attachments(app: App, case: Case) -> list[Any]:
    """The evidence on a case (the caller has checked that the viewer may see the case)."""
    a = t.attachments.c
    with app.db.transaction(write=False) as conn:
        return list(
            conn.execute(
                select(t.attachments).where(a.case_id == case.id).order_by(a.created_at, a.id)
            ).all()
        )


@dataclass(frozen=True)
class DisputeRate:
    seller_id: str
    cases: int
    orders: int

    @property
    def percent(self) -> float:
        return 100.0 * self.cases / self.orders if self.orders else 0.0


def dispute_rates(app: App, seller_id: str | None = None) -> list[DisputeRate]:
    """Cases per order for each seller (or one), highest rate first."""
    with app.db.transaction(write=False) as conn:
        order_query = select(t.orders.c.seller_id, func.count()).group_by(t.orders.c.seller_id)
        case_query = select(t.cases.c.seller_id, func.count()).group_by(t.cases.c.seller_id)
        if seller_id is not None:
            order_query = order_query.where(t.orders.c.seller_id == seller_id)
            case_query = case_query.where(t.cases.c.seller_id == seller_id)
        orders = {row[0]: int(row[1]) for row in conn.execute(order_query)}
        cases = {row[0]: int(row[1]) for row in conn.execute(case_query)}
    rates = [
        DisputeRate(seller, cases.get(seller, 0), orders.get(seller, 0))
        for seller in sorted(set(orders) | set(cases))
    ]
    return sorted(rates, key=lambda rate: (-rate.percent, rate.seller_id))


def buyer_history(app: App, buyer_id: str) -> list[Any]:
    """Every case the buyer opened, newest first: for the mediator weighing a claim."""
    c = t.cases.c
    with app.db.transaction(write=False) as conn:
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
                .limit(50)
            ).all()
        )


@dataclass(frozen=True)
class Overview:
    open_by_status: dict[str, int]
    past_deadline: int
    refunds_this_week: int
    refunded_this_week: dict[str, int]  # currency → minor units
    dispute_rates: list[DisputeRate]
    median_time_to_resolution: timedelta | None
    resolved: int


def overview(app: App, now: datetime) -> Overview:
    c = t.cases.c
    d = t.deadlines.c
    r = t.refunds.c
    week_ago = now - timedelta(days=7)
    with app.db.transaction(write=False) as conn:
        by_status = Counter(
            {
                row[0]: int(row[1])
                for row in conn.execute(
                    select(c.status, func.count()).where(c.status != "resolved").group_by(c.status)
                )
            }
        )
        past_deadline = conn.execute(
            select(func.count(func.distinct(d.case_id))).where(
                d.fired_at.is_(None), d.cleared_at.is_(None), d.due_at < now
            )
        ).scalar_one()
        refund_rows = conn.execute(
            select(r.currency, func.count(), func.sum(r.amount))
            .where(r.created_at >= week_ago)
            .group_by(r.currency)
        ).all()
        resolved_rows = conn.execute(
            select(c.created_at, c.status_since).where(c.status == "resolved")
        ).all()
    durations = [row.status_since - row.created_at for row in resolved_rows]
    return Overview(
        open_by_status={status: by_status.get(status, 0) for status in OPEN_STATUSES},
        past_deadline=int(past_deadline or 0),
        refunds_this_week=sum(int(row[1]) for row in refund_rows),
        refunded_this_week={row[0]: int(row[2] or 0) for row in refund_rows},
        dispute_rates=dispute_rates(app),
        median_time_to_resolution=statistics.median(durations) if durations else None,
        resolved=len(durations),
    )
