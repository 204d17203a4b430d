"""May a buyer open a case for this order line and reason, now? And on what terms?

`evaluate` is pure: the policy, the order and `now` are arguments. It checks, in order, the
line and quantity, whether an earlier case closed the line for good (X1, D3), the window
(W1/W2 after delivery, W3 for not received), the hygiene (H1) and custom-made (H2)
exclusions, change of mind (R3) and what is left to refund, and answers a `Verdict` that
cites every clause that decided it, refusing clause first.

Not received without a promised delivery date: the claim may be opened as soon as the order
has shipped (or, never shipped, once it was placed); the seller answers it in the case.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

from restitution.domain import advice as tips
from restitution.domain.advice import Advice, describe_moment
from restitution.domain.errors import InvalidInput, PolicyViolation
from restitution.domain.history import format_optional_time
from restitution.domain.money import Money
from restitution.domain.orders import Order, OrderLine, part_of_share
from restitution.domain.policy import REASONS, Clause, Policy

FULL_REFUND = "full_refund"
RETURN_AND_REFUND = "return_and_refund"
PARTIAL_REFUND = "partial_refund"
REPLACEMENT = "replacement"
REMEDIES: tuple[str, ...] = (FULL_REFUND, RETURN_AND_REFUND, PARTIAL_REFUND, REPLACEMENT)

REFUSAL_CODES: tuple[str, ...] = (
    "unknown_line",
    "invalid_quantity",
    "not_yet_eligible",
    "already_delivered",
    "return_window_closed",
    "not_returnable_hygiene",
    "not_returnable_custom_made",
    "change_of_mind_not_accepted",
    "nothing_left_to_refund",
    "case_already_open",
    "case_already_decided",
)

REASON_NAMES: dict[str, str] = {
    "not_received": "not received",
    "damaged": "damaged",
    "significantly_not_as_described": "significantly not as described",
    "not_as_described": "not as described",
    "quality_issue": "quality issue",
    "changed_mind": "change of mind",
}


class Verdict(NamedTuple):
    """Immutable, as a frozen dataclass would be, and made ~4x faster (an eligibility answer
    makes one per reason per line; bench/RESULTS.md, round 5)."""

    line_id: str
    reason: str
    eligible: bool
    code: str | None
    message: str
    window_closes_at: datetime | None
    remedies: tuple[str, ...]
    max_refund: Money
    return_shipping_paid_by: str
    evidence_required: bool
    clauses: tuple[Clause, ...]
    advice: tuple[Advice, ...] = ()

    @property
    def clause_ids(self) -> tuple[str, ...]:
        return tuple(clause.id for clause in self.clauses)

    def to_dict(self) -> dict[str, object]:
        """The eligibility ENTRY of the API contract, plus the refusal `code` and `message`."""
        return {
            "line_id": self.line_id,
            "reason": self.reason,
            "eligible": self.eligible,
            "code": self.code,
            "message": self.message,
            "window_closes_at": format_optional_time(self.window_closes_at),
            "remedies": list(self.remedies),
            "max_refund": self.max_refund.to_dict(),
            "return_shipping_paid_by": self.return_shipping_paid_by,
            "evidence_required": self.evidence_required,
            "clauses": [clause.to_dict() for clause in self.clauses],
            "advice": [item.to_dict() for item in self.advice],
        }


def return_shipping_paid_by(policy: Policy, order: Order, reason: str) -> str:
    """S1: the buyer pays return postage unless the seller offers it free or is at fault."""
    if order.seller_terms.free_return_shipping or reason in policy.seller_pays_return_reasons:
        return "seller"
    return "buyer"


def with_case_open(verdict: Verdict) -> Verdict:
    """The verdict on a line that has a case not resolved yet: whatever the policy allows,
    no other case may be opened on it until that one is (one open case per line)."""
    return verdict._replace(
        eligible=False,
        code="case_already_open",
        message="This item already has a case that is not resolved; follow that case, or "
        "open another once it is resolved.",
        remedies=(),
        max_refund=_zero(verdict.max_refund.currency),
        advice=(),
    )


def require_evidence(policy: Policy, reason: str, attachment_count: int) -> None:
    """E1: refuse a claim that needs a photo or video and has none."""
    if reason in policy.evidence_required_reasons and attachment_count < 1:
        raise PolicyViolation(
            "evidence_required",
            f"A “{REASON_NAMES.get(reason, reason)}” claim needs at least one photo or video.",
            param="attachments",
            clauses=("E1",),
        )


def evaluate_line(
    policy: Policy,
    order: Order,
    line_id: str,
    now: datetime,
    already_refunded: int = 0,
    *,
    earlier_outcomes: Collection[str] = (),
) -> list[Verdict]:
    """The verdict for every reason, in the order of `REASONS`: each what `evaluate` answers,
    with what the reasons share (the line, its windows, the most that can be refunded, the
    refund ETA) worked out once for them all (an eligibility answer asks every reason of
    every line; bench/RESULTS.md, round 6)."""
    shared = _Shared(_line(order, line_id))
    return [
        _evaluate(
            policy, order, line_id, reason, now, None, already_refunded, earlier_outcomes, shared
        )
        for reason in REASONS
    ]


def evaluate(
    policy: Policy,
    order: Order,
    line_id: str,
    reason: str,
    now: datetime,
    *,
    quantity: int | None = None,
    already_refunded: int = 0,
    earlier_outcomes: Collection[str] = (),
) -> Verdict:
    """Whether `quantity` units (default: all) of a line may be claimed for `reason` at `now`.

    `already_refunded` is what other cases have refunded or have pending on this line, in
    minor units; the refund offered never exceeds what was paid for the line minus that.
    `earlier_outcomes` are the outcomes of the resolved cases on this line: `rejected` or
    `expired` among them refuses the line for every reason (`case_already_decided`).
    """
    shared = _Shared(_line(order, line_id))
    return _evaluate(
        policy, order, line_id, reason, now, quantity, already_refunded, earlier_outcomes, shared
    )


def _evaluate(
    policy: Policy,
    order: Order,
    line_id: str,
    reason: str,
    now: datetime,
    quantity: int | None,
    already_refunded: int,
    earlier_outcomes: Collection[str],
    shared: _Shared,
) -> Verdict:
    if reason not in REASONS:
        raise InvalidInput(
            "invalid_reason", f"reason must be one of {', '.join(REASONS)}", param="reason"
        )
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if type(already_refunded) is not int or already_refunded < 0:
        raise InvalidInput(
            "invalid_amount", "already_refunded must be a non-negative integer of minor units"
        )
    verdict = _VerdictBuilder(policy, order, line_id, reason, shared)

    line = shared.line
    if line is None:
        return verdict.refuse("unknown_line", f"The order has no line {line_id!r}.")
    if quantity is None:
        quantity = line.quantity
    if type(quantity) is not int or not 1 <= quantity <= line.quantity:
        return verdict.refuse(
            "invalid_quantity", f"The quantity must be a whole number from 1 to {line.quantity}."
        )
    if earlier_outcomes:
        decided = _decided(policy, line, earlier_outcomes)
        if decided is not None:
            return verdict.refuse(*decided)

    window_clause, closes_at, refusal = shared.window(policy, order, line, reason, now)
    verdict.closes_at = closes_at
    if refusal is not None:
        code, message = refusal
        return verdict.refuse(code, message, window_clause)
    verdict.applied.append(window_clause)

    if policy.category_facts(line.category)[2]:
        if reason not in policy.hygiene_exempt_reasons:
            return verdict.refuse(
                "not_returnable_hygiene",
                f"For hygiene reasons “{line.title}” cannot be returned for "
                f"“{REASON_NAMES[reason]}”; only when it arrives damaged, does not arrive or is "
                "significantly not as described.",
                "H1",
            )
        verdict.applied.append("H1")
    if line.custom_made:
        if reason not in policy.custom_made_exempt_reasons:
            return verdict.refuse(
                "not_returnable_custom_made",
                f"“{line.title}” was made for you and cannot be returned for "
                f"“{REASON_NAMES[reason]}”; only when it is significantly not as described or "
                "does not arrive.",
                "H2",
            )
        verdict.applied.append("H2")

    remedy_clause, remedies = remedies_for(policy, reason)
    if (
        remedy_clause == "R3"
        and policy.change_of_mind_needs_seller_terms
        and not order.seller_terms.accepts_change_of_mind
    ):
        return verdict.refuse(
            "change_of_mind_not_accepted",
            "This seller does not accept returns for a change of mind.",
            "R3",
        )

    max_refund = shared.max_refund(order, line, quantity, already_refunded)
    if not max_refund.is_positive:
        return verdict.refuse(
            "nothing_left_to_refund",
            "Everything paid for this line has already been refunded or is being refunded.",
            remedy_clause,
        )
    return verdict.allow(line, quantity, remedy_clause, remedies, max_refund, now)


class _Shared:
    """What the reasons asked about one line of one order, at one `now` and with the same
    amount already refunded, have in common: worked out for the first reason that needs it."""

    __slots__ = ("_max_refund", "_refund_eta", "_windows", "line")

    def __init__(self, line: OrderLine | None) -> None:
        self.line = line
        self._windows: dict[bool, tuple[str, datetime | None, _Refusal | None]] = {}
        self._max_refund: tuple[int, Money] | None = None  # per quantity
        self._refund_eta: Advice | None = None

    def window(
        self, policy: Policy, order: Order, line: OrderLine, reason: str, now: datetime
    ) -> tuple[str, datetime | None, _Refusal | None]:
        # Not received has its own window (W3); every other reason the line's after delivery.
        not_received = reason == "not_received"
        window = self._windows.get(not_received)
        if window is None:
            window = self._windows[not_received] = _window(policy, order, line, reason, now)
        return window

    def max_refund(
        self, order: Order, line: OrderLine, quantity: int, already_refunded: int
    ) -> Money:
        if self._max_refund is None or self._max_refund[0] != quantity:
            self._max_refund = (quantity, _max_refund(order, line, quantity, already_refunded))
        return self._max_refund[1]

    def refund_eta(self, policy: Policy, order: Order, now: datetime) -> Advice:
        if self._refund_eta is None:
            self._refund_eta = tips.refund_eta(policy, order.payment.method, now)
        return self._refund_eta


def _line(order: Order, line_id: str) -> OrderLine | None:
    """`order.line(line_id)`: the first line with that id."""
    for line in order.lines:
        if line.line_id == line_id:
            return line
    return None


def _max_refund(order: Order, line: OrderLine, quantity: int, already_refunded: int) -> Money:
    """min(full refund for `quantity`, paid for the line - `already_refunded`), in plain ints."""
    line_id = line.line_id
    unit = line.unit_amount
    if unit.__class__ is not int or order.shipping_amount.__class__ is not int:
        # Not plain integers: Money's own checks decide (and refuse) as they always did.
        left = order.paid_for_line(line_id) - Money(already_refunded, order.currency)
        return min(order.full_refund_for(line_id, quantity), left)
    share = order.shipping_shares()[line_id]
    full = unit * quantity + part_of_share(share, quantity, line.quantity)
    paid_left = unit * line.quantity + share - already_refunded
    return Money(paid_left if paid_left < full else full, order.currency)


_Refusal = tuple[str, str]


def _decided(
    policy: Policy, line: OrderLine, earlier_outcomes: Collection[str]
) -> tuple[str, str, str] | None:
    """The refusal of a line an earlier case closed for good (code, message, clause): the
    platform rejected the claim, and its decision is final (X1); or the buyer never shipped
    the agreed return (D3). Any other outcome leaves the line open to another case, within
    what was paid for it and not refunded yet."""
    if "rejected" in earlier_outcomes:
        why = f"The platform rejected an earlier claim on “{line.title}”, and its decision is final"
        clause_id = "X1"
    elif "expired" in earlier_outcomes:
        why = (
            f"An earlier case on “{line.title}” closed without a refund when the agreed return "
            f"was not shipped within {policy.deadlines['D3'].days} days"
        )
        clause_id = "D3"
    else:
        return None
    return "case_already_decided", f"{why}; no other case can be opened for it.", clause_id


def _window(
    policy: Policy, order: Order, line: OrderLine, reason: str, now: datetime
) -> tuple[str, datetime | None, _Refusal | None]:
    """The window clause, when it closes, and the refusal if `now` is outside it."""
    if reason == "not_received":
        return _not_received_window(policy, order, now)
    days, clause_id, _ = policy.category_facts(line.category)
    if order.delivered_at is None:
        return clause_id, None, _NOT_DELIVERED_YET
    closes_at = order.delivered_at + _days(days)
    if now > closes_at:
        return (
            clause_id,
            closes_at,
            (
                "return_window_closed",
                f"The {days}-day window after delivery closed on {describe_moment(closes_at)}.",
            ),
        )
    return clause_id, closes_at, None


_NOT_DELIVERED_YET: _Refusal = (
    "not_yet_eligible",
    "This item has not been delivered yet; a case about it can be opened once it is "
    "delivered, or as not received once the promised delivery date has passed.",
)


@lru_cache(maxsize=256)
def _days(days: int) -> timedelta:
    return timedelta(days=days)


def _not_received_window(
    policy: Policy, order: Order, now: datetime
) -> tuple[str, datetime | None, _Refusal | None]:
    """W3: after the promised delivery date, until the buyer-protection period ends."""
    started = order.shipped_at or order.placed_at
    closes_at = started + _days(policy.protection_days_after_shipping)
    if order.delivered_at is not None:
        return (
            "W3",
            closes_at,
            (
                "already_delivered",
                f"The order is marked delivered on {describe_moment(order.delivered_at)}; if "
                "something is wrong with the item, open a case with another reason.",
            ),
        )
    opens_after = order.promised_delivery_by or started
    if now <= opens_after:
        return (
            "W3",
            closes_at,
            (
                "not_yet_eligible",
                "A not-received case can be opened once the promised delivery date, "
                f"{describe_moment(opens_after)}, has passed.",
            ),
        )
    if now > closes_at:
        return (
            "W3",
            closes_at,
            (
                "return_window_closed",
                f"The buyer-protection period ended on {describe_moment(closes_at)}.",
            ),
        )
    return "W3", closes_at, None


def remedies_for(policy: Policy, reason: str) -> tuple[str, tuple[str, ...]]:
    """The remedy clause for a reason and the remedies it offers (R1, R2, else R3)."""
    if reason in policy.full_refund_reasons:
        if reason == "not_received":
            return "R1", (FULL_REFUND, REPLACEMENT)
        return "R1", (RETURN_AND_REFUND, FULL_REFUND, REPLACEMENT)
    if reason in policy.partial_refund_reasons:
        return "R2", (PARTIAL_REFUND, RETURN_AND_REFUND, REPLACEMENT)
    return "R3", (RETURN_AND_REFUND,)


def keeps_item_for_full_remedy(policy: Policy, reason: str) -> bool:
    """Whether, for `reason`, the buyer may keep the item and still be made whole (a full
    refund or a replacement without sending it back): R1's reasons; not R2's or R3's."""
    return FULL_REFUND in remedies_for(policy, reason)[1]


class _VerdictBuilder:
    """Collects the clauses that applied while the checks run, then writes the verdict."""

    def __init__(
        self, policy: Policy, order: Order, line_id: str, reason: str, shared: _Shared
    ) -> None:
        self.policy = policy
        self.order = order
        self.line_id = line_id
        self.reason = reason
        self.shared = shared
        self.payer = return_shipping_paid_by(policy, order, reason)
        self.evidence_required = reason in policy.evidence_required_reasons
        self.closes_at: datetime | None = None
        self.applied: list[str] = []

    def refuse(self, code: str, message: str, clause_id: str | None = None) -> Verdict:
        cited = ([clause_id] if clause_id else []) + self.applied
        return Verdict(
            line_id=self.line_id,
            reason=self.reason,
            eligible=False,
            code=code,
            message=message,
            window_closes_at=self.closes_at,
            remedies=(),
            max_refund=_zero(self.order.currency),
            return_shipping_paid_by=self.payer,
            evidence_required=self.evidence_required,
            clauses=self.policy.cite_memo(tuple(cited)),
        )

    def allow(
        self,
        line: OrderLine,
        quantity: int,
        remedy_clause: str,
        remedies: tuple[str, ...],
        max_refund: Money,
        now: datetime,
    ) -> Verdict:
        window_clause = self.applied[0]
        exclusions_passed = self.applied[1:]
        cited = [window_clause, remedy_clause]
        if RETURN_AND_REFUND in remedies:
            cited.append("S1")
        cited += exclusions_passed
        if self.evidence_required:
            cited.append("E1")
        cited.append("F1")

        advice: list[Advice] = []
        if self.closes_at is not None and window_clause != "W3":
            advice.append(tips.window_closing(self.closes_at, window_clause))
        keep = tips.return_or_keep(self.policy, self.order, line, self.reason, quantity, self.payer)
        if keep is not None:
            advice.append(keep)
        checklist = tips.evidence_checklist(self.policy, self.reason)
        if checklist is not None:
            advice.append(checklist)
        advice.append(self.shared.refund_eta(self.policy, self.order, now))

        until = f" until {describe_moment(self.closes_at)}" if self.closes_at else ""
        return Verdict(
            line_id=self.line_id,
            reason=self.reason,
            eligible=True,
            code=None,
            message=(
                f"You can open a “{REASON_NAMES[self.reason]}” case for “{line.title}”{until}; "
                f"you can get back up to {max_refund}."
            ),
            window_closes_at=self.closes_at,
            remedies=remedies,
            max_refund=max_refund,
            return_shipping_paid_by=self.payer,
            evidence_required=self.evidence_required,
            clauses=self.policy.cite_memo(tuple(cited)),
            advice=tuple(advice),
        )


_ZEROS: dict[str, Money] = {}


def _zero(currency: str) -> Money:
    """`Money.zero(currency)`, one shared (immutable) value per currency."""
    zero = _ZEROS.get(currency)
    if zero is None:
        zero = Money.zero(currency)
        if len(_ZEROS) < 1000:
            _ZEROS[currency] = zero
    return zero
