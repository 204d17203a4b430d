"""What a refund pays back beyond the items: the buyer's return postage (S1)."""

from __future__ import annotations

from restitution.domain.cases import Case
from restitution.domain.money import Money
from restitution.domain.policy import Policy


def return_postage_reimbursement(case: Case, policy: Policy) -> Money:
    """The postage the buyer declared for the return, when the seller pays return shipping
    (the agreed offer or the mediator's decision says so) and has not already paid it with
    a prepaid label, capped by the policy.

    It is paid on top of the item refund and is not counted against the per-line cap
    ("refunds on a line never exceed what was paid"), which covers the items only.
    """
    zero = Money.zero(case.currency)
    agreed, shipment = case.agreed_offer, case.return_shipment
    if agreed is None or agreed.return_shipping_paid_by != "seller":
        return zero
    if shipment is None or shipment.postage_paid is None or shipment.shipped_at is None:
        return zero
    if shipment.label_url is not None:
        return zero  # the seller's prepaid label paid the postage
    cap = policy.max_return_postage_reimbursement
    return Money(min(shipment.postage_paid.amount, cap), case.currency)
