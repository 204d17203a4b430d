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

from restitution.adapters.db import insights as db
from restitution.adapters.db.parties import find_party
from restitution.adapters.db.repository import Repository
from restitution.domain.cases import OPEN_STATUSES, Case
from restitution.domain.eligibility import Verdict, evaluate
from restitution.domain.errors import Forbidden
from restitution.domain.orders import Order
from restitution.services.auth import Principal
from restitution.services.context import App
from restitution.services.orders import visible_claims

MAX_ORDERS = 200


@dataclass(frozen=True)
class Preferences:
    """How a party reads times and numbers; None where the marketplace has not told us."""

    locale: str | None
    time_zone: str | None


def preferences(app: App, role: str, party_id: str) -> Preferences:
    with app.db.transaction(write=False) as conn:
        row = find_party(conn, role, party_id)
    return Preferences(row.locale, row.time_zone) if row else Preferences(None, None)


def buyer_orders(app: App, principal: Principal) -> list[Order]:
    """The buyer's orders, newest first."""
    if principal.role != "buyer" or principal.party_id is None:
        raise Forbidden("buyer_only", "only a buyer has orders to list")
    with app.db.transaction(write=False) as conn:
        return db.buyer_orders(conn, principal.party_id, MAX_ORDERS)


def case_items(app: App, cases: Sequence[Case]) -> dict[str, str]:
    """case id → the title of the case's first line, the orders read in one query. Only for
    cases the caller may already see (their orders' titles are on the case page)."""
    with app.db.transaction(write=False) as conn:
        found = Repository(conn).get_orders({case.order_id for case in cases})
    titles = {(o.order_id, line.line_id): line.title for o in found for line in o.lines}
    items = {}
    for case in cases:
        title = titles.get((case.order_id, case.lines[0].line_id)) if case.lines else None
        if title:
            more = len(case.lines) - 1
            items[case.id] = f"{title} and {more} more" if more else title
    return items


def open_cases_by_line(app: App, order_id: str) -> dict[str, str]:
    """line id → the id of the case on it that is not resolved yet."""
    with app.db.transaction(write=False) as conn:
        return db.open_cases_by_line(conn, order_id)


def claim_verdicts(
    app: App,
    principal: Principal,
    order_id: str,
    lines: Sequence[tuple[str, int]],
    reason: str,
) -> list[Verdict]:
    """The verdict for each (line, quantity) and reason now: what opening would be judged by."""
    with app.db.reading() as conn:
        claims = visible_claims(Repository(conn), principal, order_id)
    now, order, granted = app.clock.now(), claims.order, claims.granted
    return [
        evaluate(
            app.policy,
            order,
            line_id,
            reason,
            now,
            quantity=quantity,
            already_refunded=granted.get(line_id, 0),
            earlier_outcomes=claims.closed_as.get(line_id, ()),
        )
        for line_id, quantity in lines
    ]


def case_attachments(app: App, case: Case) -> list[Any]:
    """The evidence on a case (the caller has checked that the viewer may see the case)."""
    with app.db.transaction(write=False) as conn:
        return db.case_attachments(conn, case.id)


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
        orders = db.orders_per_seller(conn, seller_id)
        cases = db.cases_per_seller(conn, seller_id)
    rates = [
        DisputeRate(seller, cases.get(seller, 0), orders.get(seller, 0))
        for seller in sorted(set(orders) | set(cases))
    ]
    return sorted(rates, key=lambda rate: (-rate.percent, rate.seller_id))


def buyer_history(app: App, buyer_id: str) -> list[Any]:
    """Every case the buyer opened, newest first: for the mediator weighing a claim."""
    with app.db.transaction(write=False) as conn:
        return db.buyer_cases(conn, buyer_id, limit=50)


@dataclass(frozen=True)
class Overview:
    open_by_status: dict[str, int]
    past_deadline: int
    deadlines_failing: int  # failed to fire, waiting to be tried again (services.deadlines)
    refunds_this_week: int
    refunded_this_week: dict[str, int]  # currency → minor units
    dispute_rates: list[DisputeRate]
    median_time_to_resolution: timedelta | None
    resolved: int


def overview(app: App, now: datetime) -> Overview:
    week_ago = now - timedelta(days=7)
    with app.db.transaction(write=False) as conn:
        by_status = Counter(db.unresolved_cases_by_status(conn))
        past_deadline = db.cases_past_deadline(conn, now)
        deadlines_failing = db.deadlines_failing(conn)
        refund_rows = db.refunds_since(conn, week_ago)
        resolved_rows = db.resolved_case_times(conn)
    durations = [row.status_since - row.created_at for row in resolved_rows]
    return Overview(
        open_by_status={status: by_status.get(status, 0) for status in OPEN_STATUSES},
        past_deadline=past_deadline,
        deadlines_failing=deadlines_failing,
        refunds_this_week=sum(int(row[1]) for row in refund_rows),
        refunded_this_week={row[0]: int(row[2] or 0) for row in refund_rows},
        dispute_rates=dispute_rates(app),
        median_time_to_resolution=statistics.median(durations) if durations else None,
        resolved=len(durations),
    )
