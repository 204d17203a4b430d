"""Orders pushed by the marketplace, and what may be claimed on them."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from restitution.adapters.db.bulk import OrderBatch, write_orders
from restitution.adapters.db.repository import OrderClaims, Repository, read_order_with_claims
from restitution.domain.eligibility import Verdict, evaluate_line, with_case_open
from restitution.domain.errors import Conflict, Forbidden
from restitution.domain.orders import Order, check_replacement
from restitution.services.auth import Principal, can_see_order, not_found
from restitution.services.context import App
from restitution.services.parties import PartyContact, save_contact


@dataclass(frozen=True)
class SavedOrder:
    order: Order
    created: bool


def put_order(
    app: App,
    principal: Principal,
    order: Order,
    contacts: Mapping[str, PartyContact] | None = None,
) -> SavedOrder:
    """Create or replace the order; `contacts` (by role) update the buyer's and seller's
    contact details, kept per party for e-mail."""
    if not principal.is_operator:
        raise Forbidden("operator_only", "only the operator pushes orders")
    now = app.clock.now()
    with app.db.transaction() as conn:
        repo = Repository(conn)
        # Locked, as a case being opened locks it (`visible_claims(for_write=True)`): either
        # that case is committed and seen here, or it is opened on what this writes.
        stored = repo.get_order(order.order_id, for_update=True)
        if stored is not None and repo.order_has_cases(order.order_id):
            check_replacement(stored, order)
        created = repo.save_order(order, now)
        for role, contact in (contacts or {}).items():
            party_id = order.buyer_id if role == "buyer" else order.seller_id
            save_contact(conn, role, party_id, contact, now)
    return SavedOrder(order, created)


def import_orders(
    app: App,
    orders: OrderBatch,
    order_ids: Collection[str],
    contacts: Sequence[tuple[str, tuple[str, str, PartyContact]]] = (),
) -> list[tuple[str, str]]:
    """Create or replace a batch of orders in one transaction (`restitution orders import`);
    the orders refused, with why: (order id, message).

    `orders` are encoded by `adapters.db.bulk.encode_orders`, `order_ids` are theirs;
    `contacts` are (order id, (role, party id, contact)) and are saved as `put_order` saves
    them. An order with cases is replaced only as `put_order` would (`check_replacement`);
    otherwise it is written back as it was, and its record's contacts are not saved.
    """
    now = app.clock.now()
    refused: dict[str, str] = {}
    with app.db.transaction() as conn:
        repo = Repository(conn)
        repo.lock_orders(order_ids)  # as `put_order` locks one
        with_cases = repo.get_orders(repo.orders_with_cases(order_ids))
        write_orders(conn, orders)
        for stored in with_cases:
            replaced = repo.get_order(stored.order_id)
            assert replaced is not None  # just written
            try:
                check_replacement(stored, replaced)
            except Conflict as refusal:
                repo.save_order(stored, now)
                # as the import reports a bad field: "field: message"
                where = f"{refusal.param}: " if refusal.param else ""
                refused[stored.order_id] = f"{where}{refusal.message}"
        for order_id, (role, party_id, contact) in contacts:
            if order_id not in refused:
                save_contact(conn, role, party_id, contact, now)
    return list(refused.items())


def get_order(app: App, principal: Principal, order_id: str) -> Order:
    with app.db.reading() as conn:
        return visible_claims(Repository(conn), principal, order_id).order


def eligibility(app: App, principal: Principal, order_id: str) -> list[tuple[str, list[Verdict]]]:
    """Every line of the order, with a verdict for every reason, as of now."""
    with app.db.reading() as conn:
        claims = visible_claims(Repository(conn), principal, order_id)
    return _verdicts(app, claims)


async def eligibility_async(
    app: App, principal: Principal, order_id: str
) -> list[tuple[str, list[Verdict]]]:
    """`eligibility` for the API, asked on every order page of the marketplace: its one
    read statement runs on the event loop (`Database.read_by_key`: with those of the requests
    that arrived together, on PostgreSQL), with no thread hop."""
    claims = await read_order_with_claims(app.db, order_id)
    if claims is None or not may_see_claims(principal, claims):
        raise not_found("order", order_id)
    return _verdicts(app, claims)


def _verdicts(app: App, claims: OrderClaims) -> list[tuple[str, list[Verdict]]]:
    now, order, granted = app.clock.now(), claims.order, claims.granted
    answer = []
    for line in order.lines:
        verdicts = evaluate_line(
            app.policy,
            order,
            line.line_id,
            now,
            already_refunded=granted.get(line.line_id, 0),
            earlier_outcomes=claims.closed_as.get(line.line_id, ()),
        )
        if line.line_id in claims.open_lines:  # opening another would be refused
            verdicts = [with_case_open(verdict) for verdict in verdicts]
        answer.append((line.line_id, verdicts))
    return answer


def visible_claims(
    repo: Repository, principal: Principal, order_id: str, *, for_write: bool = False
) -> OrderClaims:
    """The order with what its cases claim, if `principal` may see it; `for_write`: locked
    against being replaced until the transaction ends (a case is opened on it)."""
    claims = repo.order_with_claims(order_id, for_write=for_write)
    if claims is None or not may_see_claims(principal, claims):
        raise not_found("order", order_id)
    return claims


def may_see_claims(principal: Principal, claims: OrderClaims) -> bool:
    """Parties see their own orders; mediators the orders of the cases they see (escalated
    to them, or with a refund that failed)."""
    return can_see_order(principal, claims.order) or (
        principal.role == "mediator" and claims.seen_by_mediators
    )
