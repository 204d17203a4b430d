"""Orders pushed by the marketplace, and what may be claimed on them."""

from __future__ import annotations

from dataclasses import dataclass

from restitution.adapters.db.repository import Repository
from restitution.domain.eligibility import Verdict, evaluate_line
from restitution.domain.errors import Forbidden
from restitution.domain.orders import Order
from restitution.services.auth import Principal, can_see_order, not_found
from restitution.services.context import App


@dataclass(frozen=True)
class SavedOrder:
    order: Order
    created: bool


def put_order(app: App, principal: Principal, order: Order) -> SavedOrder:
    if not principal.is_operator:
        raise Forbidden("operator_only", "only the operator pushes orders")
    with app.db.transaction() as conn:
        created = Repository(conn).save_order(order, app.clock.now())
    return SavedOrder(order, created)


def get_order(app: App, principal: Principal, order_id: str) -> Order:
    with app.db.transaction(write=False) as conn:
        repo = Repository(conn)
        order = repo.get_order(order_id)
        if order is None or not may_see_order(repo, principal, order):
            raise not_found("order", order_id)
    return order


def eligibility(app: App, principal: Principal, order_id: str) -> list[tuple[str, list[Verdict]]]:
    """Every line of the order, with a verdict for every reason, as of now."""
    with app.db.transaction(write=False) as conn:
        repo = Repository(conn)
        order = repo.get_order(order_id)
        if order is None or not may_see_order(repo, principal, order):
            raise not_found("order", order_id)
        granted = repo.granted_on_lines(order_id)
    now = app.clock.now()
    return [
        (
            line.line_id,
            evaluate_line(
                app.policy, order, line.line_id, now, already_refunded=granted.get(line.line_id, 0)
            ),
        )
        for line in order.lines
    ]


def may_see_order(repo: Repository, principal: Principal, order: Order) -> bool:
    """Parties see their own orders; mediators the orders of cases escalated to them."""
    if can_see_order(principal, order):
        return True
    return principal.role == "mediator" and repo.order_has_escalated_case(order.order_id)
