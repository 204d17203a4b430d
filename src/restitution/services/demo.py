"""Demo data for `make run`: a few buyers, sellers and orders, and cases in several states."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

from restitution.domain import cases as domain
from restitution.domain.errors import NotFound
from restitution.domain.money import Money
from restitution.domain.orders import Address, Order, OrderLine, Payment, SellerTerms
from restitution.services import attachments, cases, orders
from restitution.services.auth import OPERATOR, Principal
from restitution.services.context import App
from restitution.services.parties import PartyContact

BUYERS = ("b_alice", "b_bob")
SELLERS = ("s_gadgets", "s_style")
MEDIATOR = "m_maria"

# A 1x1 PNG, the demo's photo evidence.
PHOTO = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgAAIAAAUAAeImBZsAAAAASUVORK5CYII="
)

RETURN_ADDRESS = Address(
    name="Gadgets returns desk", line1="88 Huaqiang Road", city="Shenzhen",
    postal_code="518000", country="CN",
)  # fmt: skip


def _order(
    order_id: str,
    buyer: str,
    seller: str,
    now: datetime,
    lines: tuple[OrderLine, ...],
    *,
    delivered_days_ago: int | None,
    free_returns: bool = False,
) -> Order:
    delivered = now - timedelta(days=delivered_days_ago) if delivered_days_ago is not None else None
    return Order(
        order_id=order_id,
        buyer_id=buyer,
        seller_id=seller,
        currency="USD",
        placed_at=now - timedelta(days=25),
        shipped_at=now - timedelta(days=20),
        delivered_at=delivered,
        promised_delivery_by=now - timedelta(days=2),
        shipping_amount=499,
        payment=Payment("card", f"pi_{order_id}"),
        lines=lines,
        seller_terms=SellerTerms(free_return_shipping=free_returns, return_address=RETURN_ADDRESS),
        return_shipping_estimate=1200,
        buyer_country="US",
    )


def _line(
    line_id: str, title: str, category: str, amount: int, *, custom: bool = False
) -> OrderLine:
    return OrderLine(line_id, f"SKU-{line_id}", title, category, 1, amount, custom)


def _contact(party_id: str) -> PartyContact:
    """Demo parties get addresses on the reserved .test domain: mail is logged, never sent."""
    name = party_id.split("_", 1)[1].capitalize()
    return PartyContact(email=f"{party_id}@example.test", name=name, locale="en_US")


def load(app: App) -> bool:
    """Create the demo data once; False when the demo orders are already there."""
    try:
        orders.get_order(app, OPERATOR, "o_1001")
        return False
    except NotFound:
        pass
    now = app.clock.now()
    alice, bob = (Principal("buyer", b) for b in BUYERS)
    seller = Principal("seller", SELLERS[0])
    demo_orders = [
        _order("o_1001", "b_alice", "s_gadgets", now,
               (_line("l1", "Android phone 6.5in", "electronics/phones", 18999),
                _line("l2", "Phone case", "accessories/cases", 899)), delivered_days_ago=3),
        _order("o_1002", "b_alice", "s_style", now,
               (_line("l1", "Summer dress", "apparel/dresses", 3450),), delivered_days_ago=5),
        _order("o_1003", "b_bob", "s_gadgets", now,
               (_line("l1", "Wireless earbuds", "electronics/audio", 4999),), delivered_days_ago=9),
        _order("o_1004", "b_bob", "s_style", now,
               (_line("l1", "Cotton briefs (3 pack)", "apparel/underwear", 1299),),
               delivered_days_ago=2),
        _order("o_1005", "b_alice", "s_gadgets", now,
               (_line("l1", "USB-C charger", "electronics/chargers", 1599),),
               delivered_days_ago=None),
        _order("o_1006", "b_bob", "s_style", now,
               (_line("l1", "Mug with your name", "home/kitchen", 1499, custom=True),),
               delivered_days_ago=1),
        _order("o_1007", "b_bob", "s_gadgets", now,
               (_line("l1", "Desk lamp", "home/lighting", 2999),), delivered_days_ago=4,
               free_returns=True),
    ]  # fmt: skip
    for order in demo_orders:
        contacts = {"buyer": _contact(order.buyer_id), "seller": _contact(order.seller_id)}
        orders.put_order(app, OPERATOR, order, contacts)

    def photo(buyer: Principal) -> tuple[str, ...]:
        return (attachments.upload(app, buyer, PHOTO, "photo.png").id,)

    def refund(amount: int, *, return_required: bool = False) -> domain.OfferTerms:
        return domain.OfferTerms("refund", Money(amount, "USD"), return_required)

    def open_case(
        buyer: Principal,
        order_id: str,
        reason: str,
        text: str,
        terms: domain.OfferTerms,
        evidence: bool = True,
    ) -> str:
        command = domain.OpenCase(
            order_id,
            (domain.CaseLine("l1", 1),),
            reason,
            text,
            terms,
            photo(buyer) if evidence else (),
        )
        return cases.open_case(app, buyer, command).id

    # awaiting the seller: a cracked phone screen
    open_case(alice, "o_1001", "damaged", "The screen arrived cracked.", refund(18999 + 476))
    # awaiting the buyer: the seller offers a partial refund for a dress that runs small
    dress = open_case(alice, "o_1002", "not_as_described", "Runs two sizes small.", refund(2000))
    cases.act(app, Principal("seller", "s_style"), dress, domain.MakeOffer(refund(1200)))
    # under review: the seller rejected, the buyer escalated
    earbuds = open_case(bob, "o_1003", "quality_issue", "The left earbud crackles.", refund(2500))
    cases.act(app, seller, earbuds, domain.Reject("Works fine when tested."))
    cases.act(app, bob, earbuds, domain.Escalate("The seller will not help."))
    # resolved: a charger that never arrived, refunded in full
    charger = open_case(
        alice,
        "o_1005",
        "not_received",
        "Tracking stopped 2 weeks ago.",
        refund(1599 + 499),
        evidence=False,
    )
    cases.act(app, seller, charger, domain.Accept())
    # return agreed: the lamp goes back, the seller pays postage
    lamp = open_case(
        bob,
        "o_1007",
        "significantly_not_as_described",
        "Not the lamp pictured.",
        refund(2999 + 499, return_required=True),
    )
    cases.act(app, seller, lamp, domain.Accept())
    return True
