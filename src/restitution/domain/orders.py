"""The order as the marketplace pushed it: what was bought, paid, shipped and delivered."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import cached_property
from itertools import pairwise
from typing import Any

from restitution.domain.errors import Conflict, InvalidInput
from restitution.domain.money import Money, allocate


@dataclass(frozen=True)
class Address:
    name: str
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # Written out: `asdict` deep-copies every field, ~6 µs on each case written.
        return {
            "name": self.name,
            "line1": self.line1,
            "city": self.city,
            "postal_code": self.postal_code,
            "country": self.country,
            "line2": self.line2,
        }


@dataclass(frozen=True)
class SellerTerms:
    free_return_shipping: bool = False
    accepts_change_of_mind: bool = False
    return_address: Address | None = None


@dataclass(frozen=True)
class Payment:
    method: str
    reference: str | None = None


@dataclass(frozen=True)
class OrderLine:
    line_id: str
    sku: str
    title: str
    category: str
    quantity: int
    unit_amount: int
    custom_made: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Order:
    order_id: str
    buyer_id: str
    seller_id: str
    currency: str
    placed_at: datetime
    payment: Payment
    lines: tuple[OrderLine, ...]
    shipping_amount: int = 0
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    promised_delivery_by: datetime | None = None
    seller_terms: SellerTerms = field(default_factory=SellerTerms)
    return_shipping_estimate: int | None = None
    buyer_country: str | None = None

    def line(self, line_id: str) -> OrderLine | None:
        return next((line for line in self.lines if line.line_id == line_id), None)

    def shipping_shares(self) -> dict[str, int]:
        """Each line's exact share of the order's shipping charge, by line value."""
        return dict(self._shipping_shares)

    @cached_property
    def _shipping_shares(self) -> dict[str, int]:
        # Asked twice for every eligibility verdict; the order never changes (frozen).
        shares = allocate(
            self.shipping_amount, [line.unit_amount * line.quantity for line in self.lines]
        )
        return {line.line_id: share for line, share in zip(self.lines, shares, strict=True)}

    def paid_for_line(self, line_id: str) -> Money:
        """What the buyer paid for the whole line: its price plus its share of shipping."""
        line = self._line_or_raise(line_id)
        return Money(
            line.unit_amount * line.quantity + self._shipping_shares[line_id], self.currency
        )

    def full_refund_for(self, line_id: str, quantity: int) -> Money:
        """A full refund for `quantity` units: their price and their share of shipping.

        Returning every unit gives back the whole shipping share; part of the units gives
        back that fraction of it (`part_of_share`). What the parts may take together is
        capped by what was paid for the line (eligibility's `max_refund`).
        """
        line = self._line_or_raise(line_id)
        shipping = part_of_share(self._shipping_shares[line_id], quantity, line.quantity)
        return Money(line.unit_amount * quantity + shipping, self.currency)

    def _line_or_raise(self, line_id: str) -> OrderLine:
        line = self.line(line_id)
        if line is None:
            raise KeyError(line_id)
        return line


_TIMELINE = ("placed_at", "shipped_at", "delivered_at")


def check_times(order: Order) -> None:
    """An order is shipped after it is placed and delivered after it is shipped; a promise
    of delivery is made for after it was placed. Out of order, the windows counted from
    them (W1, W3) would be wrong."""
    given = [(name, getattr(order, name)) for name in _TIMELINE]
    known = [(name, moment) for name, moment in given if moment is not None]
    for (earlier, first), (later, second) in pairwise(known):
        if second < first:
            raise InvalidInput(
                "times_out_of_order", f"{later} must not be before {earlier}", param=later
            )
    promised = order.promised_delivery_by
    if promised is not None and promised < order.placed_at:
        raise InvalidInput(
            "times_out_of_order",
            "promised_delivery_by must not be before placed_at",
            param="promised_delivery_by",
        )


def part_of_share(share: int, quantity: int, of: int) -> int:
    """`quantity` units' part of a line's shipping `share` (for `of` units), rounded up: a
    line claimed unit by unit gives back its whole share, the last claim being capped by
    what is left of the line's payment. Rounded down, the rounding would be lost: 241 for
    two units would give back 120 twice."""
    if quantity >= of:
        return share
    return -(-share * quantity // of)


def paid_terms(order: Order) -> dict[str, object]:
    """What a case on the order is opened on and its refunds are capped by and paid to: who
    bought from whom, in which currency, what was paid for each line (in their order, which
    splits the shipping's odd minor units) and for shipping, and how (F1: a refund goes back
    to the original payment)."""
    return {
        "buyer_id": order.buyer_id,
        "seller_id": order.seller_id,
        "currency": order.currency,
        "shipping_amount": order.shipping_amount,
        "lines": [(line.line_id, line.quantity, line.unit_amount) for line in order.lines],
        "payment": order.payment,
    }


def check_replacement(stored: Order, new: Order) -> None:
    """Refuse to replace an order that has cases with one whose paid terms differ: its cases
    were opened, and their refunds capped, on what it says was paid, by whom and to whom
    (another price would let a refund exceed what the order then says was paid; another
    buyer would lose sight of their own case). Its dates, titles and terms may change."""
    before, after = paid_terms(stored), paid_terms(new)
    changed = [name for name in before if before[name] != after[name]]
    if changed:
        raise Conflict(
            "order_has_cases",
            f"Order {stored.order_id} has cases, which were opened on what it says was paid: "
            f"its {', '.join(changed)} can no longer change.",
            param=changed[0],
        )
