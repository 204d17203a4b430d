"""Advice for the buyer (the seed's tips made into features), each citing the clauses behind it.

- return or keep: when return postage the buyer would pay is a large share of the item's price,
  suggest keeping the item and asking for a partial refund (S1, R2);
- when the refund should arrive, in business days for the payment method (F1);
- what evidence to gather for the chosen reason (E1);
- when the return window of a delivered line closes (W1/W2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache

from restitution.domain.calendar import add_business_days
from restitution.domain.history import format_time
from restitution.domain.money import Money
from restitution.domain.orders import Order, OrderLine
from restitution.domain.policy import Policy

KEEP_AND_ASK_PARTIAL_REFUND = "keep_and_ask_partial_refund"
REFUND_ETA = "refund_eta"
EVIDENCE_CHECKLIST = "evidence_checklist"
WINDOW_CLOSING = "window_closing"


@dataclass(frozen=True)
class Advice:
    """One tip: a stable `code`, a sentence for the buyer, plain `data`, and the clause ids."""

    code: str
    message: str
    data: Mapping[str, object] = field(default_factory=dict)
    clauses: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "data": dict(self.data),
            "clauses": list(self.clauses),
        }


def describe_moment(moment: datetime) -> str:
    """`27 November 2026, 10:00 UTC`: a time as a buyer reads it."""
    return _describe_moment(moment, moment.fold)


@lru_cache(maxsize=4096)
def _describe_moment(moment: datetime, fold: int) -> str:
    # Equal datetimes (with the same fold) are the same instant, so they read the same in
    # UTC: safe to cache (asked on most eligibility verdicts; bench/RESULTS.md).
    moment = moment.astimezone(UTC)
    return f"{moment.day} {moment:%B %Y, %H:%M} UTC"


def expected_refund_by(
    policy: Policy, method: str, from_time: datetime, country: str | None = None
) -> datetime:
    """When a refund issued at `from_time` should reach the buyer (F1): business days later."""
    return add_business_days(
        from_time, policy.refund_days_for(method), country or policy.holiday_country
    )


def refund_eta(
    policy: Policy, method: str, from_time: datetime, country: str | None = None
) -> Advice:
    days = policy.refund_days_for(method)
    arrives_by = add_business_days(from_time, days, country or policy.holiday_country)
    return Advice(
        code=REFUND_ETA,
        message=_refund_eta_message(method, days, arrives_by.date()),
        data={"method": method, "business_days": days, "expected_by": format_time(arrives_by)},
        clauses=("F1",),
    )


@lru_cache(maxsize=1024)
def _refund_eta_message(method: str, days: int, arrives_on: date) -> str:
    # Kept per day of arrival (read in the asking time's own zone), not per instant asked:
    # a server asks at a new instant every time.
    return (
        f"A refund goes back to your {method.replace('_', ' ')} and should arrive within "
        f"{days} business days, by {arrives_on.day} {arrives_on:%B %Y}."
    )


def return_or_keep(
    policy: Policy,
    order: Order,
    line: OrderLine,
    reason: str,
    quantity: int,
    return_shipping_paid_by: str,
) -> Advice | None:
    """Suggest keeping the item when the buyer's return postage is a large share of its price."""
    estimate = order.return_shipping_estimate
    if (
        estimate is None
        or return_shipping_paid_by != "buyer"
        or reason not in policy.partial_refund_reasons
    ):
        return None
    price = Money(line.unit_amount * quantity, order.currency)
    threshold = policy.return_or_keep_threshold_percent
    if estimate * 100 < threshold * price.amount:
        return None
    postage = Money(estimate, order.currency)
    return Advice(
        code=KEEP_AND_ASK_PARTIAL_REFUND,
        message=(
            f"Sending it back would cost you about {postage}, at least {threshold}% of the item's "
            f"price ({price}); consider keeping it and asking the seller for a partial refund."
        ),
        data={
            "return_shipping_estimate": estimate,
            "item_price": price.amount,
            "currency": order.currency,
            "threshold_percent": threshold,
        },
        clauses=("S1", "R2"),
    )


def evidence_checklist(policy: Policy, reason: str) -> Advice | None:
    items = policy.evidence_checklist.get(reason, ())
    if not items:
        return None
    required = reason in policy.evidence_required_reasons
    if items.__class__ is tuple:
        return _evidence_checklist(items, required)
    return _checklist_advice(items, required)


@lru_cache(maxsize=256)
def _evidence_checklist(items: tuple[str, ...], required: bool) -> Advice:
    return _checklist_advice(items, required)


def _checklist_advice(items: Sequence[str], required: bool) -> Advice:
    lead = "Attach at least one photo or video" if required else "It helps to attach"
    return Advice(
        code=EVIDENCE_CHECKLIST,
        message=f"{lead}: " + "; ".join(items) + ".",
        data={"items": list(items), "required": required},
        clauses=("E1",) if required else (),
    )


def window_closing(closes_at: datetime, clause_id: str) -> Advice:
    return _window_closing(closes_at, closes_at.fold, clause_id)


@lru_cache(maxsize=1024)
def _window_closing(closes_at: datetime, fold: int, clause_id: str) -> Advice:
    # Read in UTC only: equal instants give the same advice, which is immutable and shared.
    return Advice(
        code=WINDOW_CLOSING,
        message=f"The window to open a case for this item closes on {describe_moment(closes_at)}.",
        data={"closes_at": format_time(closes_at)},
        clauses=(clause_id,),
    )
