"""The case: one complaint about lines of one order, from opening to resolution.

Everything a party or the clock can do to a case is one row of `TRANSITIONS`:
`(status, action) → allowed actors, guard, effect`. `apply()` is the only way a case
changes: it checks the actor and the guard, runs the effect, appends exactly one event,
and recomputes the deadline from the policy. The same table answers "may this party do
this now?" (`can()`) for the API's 409s and the portal's buttons, and draws the diagram.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

from restitution.domain.calendar import add_business_days
from restitution.domain.eligibility import FULL_REFUND, REASON_NAMES, remedies_for
from restitution.domain.errors import Conflict, Forbidden, InvalidInput, PolicyViolation
from restitution.domain.history import format_optional_time
from restitution.domain.money import Money
from restitution.domain.orders import Address
from restitution.domain.policy import PAYERS, Policy

STATUSES: tuple[str, ...] = (
    "awaiting_seller",
    "awaiting_buyer",
    "under_review",
    "awaiting_return_shipment",
    "return_in_transit",
    "awaiting_inspection",
    "awaiting_replacement_shipment",
    "replacement_in_transit",
    "refund_pending",
    "resolved",
)
OUTCOMES: tuple[str, ...] = (
    "refunded",
    "partially_refunded",
    "replaced",
    "rejected",
    "withdrawn",
    "expired",
)
ROLES: tuple[str, ...] = ("buyer", "seller", "mediator", "operator", "system")
OFFER_KINDS: tuple[str, ...] = ("refund", "replacement")


@dataclass(frozen=True)
class Actor:
    role: str
    id: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}")


SYSTEM = Actor("system", "system")


@dataclass(frozen=True)
class CaseLine:
    line_id: str
    quantity: int


@dataclass
class Offer:
    id: str
    by: str
    kind: str
    amount: Money | None
    return_required: bool
    return_shipping_paid_by: str
    status: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "by": self.by,
            "kind": self.kind,
            "amount": self.amount.to_dict() if self.amount else None,
            "return_required": self.return_required,
            "return_shipping_paid_by": self.return_shipping_paid_by,
            "status": self.status,
            "created_at": self.created_at,
        }


@dataclass
class Shipment:
    """The return (buyer → seller) or the replacement (seller → buyer) parcel.

    `instructions_at`, on a return: when the buyer first had somewhere to send it (an address
    or a prepaid label); D3 counts from then. None while they have neither, and on returns
    stored before it was kept (their D3 counts from the agreement, as it did then).
    """

    address: Address | None = None
    label_url: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    postage_paid: Money | None = None
    instructions_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: times as RFC 3339, money as {amount, currency}."""
        return {
            "address": self.address.to_dict() if self.address else None,
            "label_url": self.label_url,
            "carrier": self.carrier,
            "tracking_number": self.tracking_number,
            "shipped_at": format_optional_time(self.shipped_at),
            "delivered_at": format_optional_time(self.delivered_at),
            "postage_paid": self.postage_paid.to_dict() if self.postage_paid else None,
            "instructions_at": format_optional_time(self.instructions_at),
        }


@dataclass(frozen=True)
class Deadline:
    """Who must act by when, and what the clock does if they don't (`auto` False: nothing)."""

    kind: str
    action: str
    party: str
    due_at: datetime
    auto: bool = True


@dataclass
class Case:
    id: str
    order_id: str
    buyer_id: str
    seller_id: str
    currency: str
    lines: tuple[CaseLine, ...]
    reason: str
    description: str
    status: str
    refundable: Money
    default_return_payer: str
    return_address: Address | None
    holiday_country: str
    policy_id: str
    policy_version: int
    created_at: datetime
    updated_at: datetime
    status_since: datetime
    outcome: str | None = None
    offers: list[Offer] = field(default_factory=list)
    agreed_offer_id: str | None = None
    refund_granted: Money | None = None
    refunded: Money | None = None
    seller_first_answer_at: datetime | None = None
    escalated_at: datetime | None = None
    # When a refund of the case last failed: the mediators are told, and see the case from then on.
    refund_failed_at: datetime | None = None
    return_shipment: Shipment | None = None
    replacement_shipment: Shipment | None = None
    deadline: Deadline | None = None
    version: int = 0

    def copy(self) -> Case:
        """A copy whose changes leave this case as it is: its mutable parts (the offers and
        the parcels) are copied too; everything else is immutable and shared."""
        return replace(
            self,
            offers=[replace(offer) for offer in self.offers],
            return_shipment=replace(self.return_shipment) if self.return_shipment else None,
            replacement_shipment=(
                replace(self.replacement_shipment) if self.replacement_shipment else None
            ),
        )

    @property
    def current_offer(self) -> Offer | None:
        return next((o for o in reversed(self.offers) if o.status == "open"), None)

    @property
    def agreed_offer(self) -> Offer | None:
        return next((o for o in self.offers if o.id == self.agreed_offer_id), None)

    @property
    def refunded_amount(self) -> Money:
        return self.refunded or Money.zero(self.currency)

    @property
    def is_resolved(self) -> bool:
        return self.status == "resolved"


@dataclass(frozen=True)
class Event:
    """One entry of the case's timeline. `clauses` cite the policy behind automated moves."""

    type: str
    actor: Actor
    at: datetime
    data: Mapping[str, Any]
    clauses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Context:
    now: datetime
    policy: Policy
    new_id: Callable[[str], str]


@dataclass(frozen=True)
class Result:
    case: Case
    event: Event


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Command:
    action: ClassVar[str]


@dataclass(frozen=True)
class OfferTerms:
    kind: str
    amount: Money | None = None
    return_required: bool = False
    return_shipping_paid_by: str | None = None


@dataclass(frozen=True)
class MakeOffer(Command):
    action: ClassVar[str] = "make_offer"
    terms: OfferTerms


@dataclass(frozen=True)
class Accept(Command):
    action: ClassVar[str] = "accept"


@dataclass(frozen=True)
class Reject(Command):
    action: ClassVar[str] = "reject"
    reason: str = ""


@dataclass(frozen=True)
class Escalate(Command):
    action: ClassVar[str] = "escalate"
    reason: str = ""


@dataclass(frozen=True)
class Decide(Command):
    """The mediator's binding decision; `kind` is refund, replacement or reject."""

    action: ClassVar[str] = "decide"
    kind: str
    amount: Money | None = None
    return_required: bool = False
    return_shipping_paid_by: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Withdraw(Command):
    action: ClassVar[str] = "withdraw"
    reason: str = ""


@dataclass(frozen=True)
class PostMessage(Command):
    action: ClassVar[str] = "post_message"
    body: str
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True)
class AddReturnLabel(Command):
    action: ClassVar[str] = "add_return_label"
    carrier: str
    label_url: str


@dataclass(frozen=True)
class AddReturnAddress(Command):
    """The seller says where the buyer sends the return (when the order gave no address, or
    to change it)."""

    action: ClassVar[str] = "add_return_address"
    address: Address


@dataclass(frozen=True)
class ShipReturn(Command):
    action: ClassVar[str] = "ship_return"
    carrier: str
    tracking_number: str
    postage_paid: Money | None = None


@dataclass(frozen=True)
class MarkReturnDelivered(Command):
    action: ClassVar[str] = "mark_return_delivered"


@dataclass(frozen=True)
class Inspect(Command):
    action: ClassVar[str] = "inspect"
    passed: bool
    note: str = ""
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True)
class ShipReplacement(Command):
    action: ClassVar[str] = "ship_replacement"
    carrier: str
    tracking_number: str


@dataclass(frozen=True)
class ConfirmReplacementDelivered(Command):
    action: ClassVar[str] = "confirm_replacement_delivered"


@dataclass(frozen=True)
class SettleRefund(Command):
    """The refund reached the payment gateway successfully: the case is resolved."""

    action: ClassVar[str] = "settle_refund"
    refund_id: str | None = None


@dataclass(frozen=True)
class FailRefund(Command):
    action: ClassVar[str] = "fail_refund"
    refund_id: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class RetryRefund(Command):
    """A failed refund is asked of the gateway again (say, once the payment provider's
    credentials are fixed): the grant stands, the case stays in `refund_pending`."""

    action: ClassVar[str] = "retry_refund"
    refund_id: str | None = None
    amount: Money | None = None  # what the payment method is to get back, as first asked


@dataclass(frozen=True)
class AutoAccept(Command):
    action: ClassVar[str] = "auto_accept"


@dataclass(frozen=True)
class AutoEscalate(Command):
    action: ClassVar[str] = "auto_escalate"


@dataclass(frozen=True)
class Expire(Command):
    action: ClassVar[str] = "expire"


@dataclass(frozen=True)
class AutoPassInspection(Command):
    action: ClassVar[str] = "auto_pass_inspection"


@dataclass(frozen=True)
class ConvertToRefund(Command):
    action: ClassVar[str] = "convert_to_refund"


DEADLINE_COMMANDS: dict[str, type[Command]] = {
    cls.action: cls
    for cls in (AutoAccept, AutoEscalate, Expire, AutoPassInspection, ConvertToRefund)
}


def deadline_command(case: Case) -> Command | None:
    """The command the clock fires when the case's current deadline passes, if any."""
    if case.deadline is None or not case.deadline.auto:
        return None
    return DEADLINE_COMMANDS[case.deadline.action]()


# --------------------------------------------------------------------------- guards
# A guard raises when the action is not allowed now; it never changes the case.

Guard = Callable[[Case, Actor, Context], None]


def _always(case: Case, actor: Actor, ctx: Context) -> None:
    return None


def _offer_to_answer(case: Case, actor: Actor, ctx: Context) -> None:
    offer = case.current_offer
    if offer is None:
        raise Conflict("no_open_offer", "there is no open offer to answer")
    if offer.by == _side(actor):
        raise Conflict("own_offer", "a party cannot answer its own offer")


def _may_escalate(case: Case, actor: Actor, ctx: Context) -> None:
    """X1: once the seller has answered without agreement, or the seller's answer is overdue."""
    policy = ctx.policy
    if case.seller_first_answer_at is not None and policy.escalate_after_seller_answer:
        return
    offer = case.current_offer
    if (
        actor.role != "seller"
        and policy.escalate_when_seller_overdue
        and case.status == "awaiting_seller"
        and offer is not None
        and ctx.now >= _seller_answer_due(case, offer, policy)
    ):
        return
    raise PolicyViolation(
        "escalation_not_allowed_yet",
        "the case can be escalated once the seller has answered without agreement, "
        "or once the seller's answer is overdue",
        clauses=("X1",),
    )


def _mediator_involved(case: Case, actor: Actor, ctx: Context) -> None:
    """Mediators take part in the cases escalated to them, and in those whose refund failed
    (they are told of it, and may write to the parties about it)."""
    if actor.role == "mediator" and case.escalated_at is None and case.refund_failed_at is None:
        raise Forbidden("not_escalated", "mediators take part once a case has been escalated")


def _refund_failed(case: Case, actor: Actor, ctx: Context) -> None:
    """A refund of the case has failed (whether it is failed still, rather than retried
    already, is its refund row's to say: `services.refunds.retry` checks that)."""
    if case.refund_failed_at is None:
        raise Conflict("refund_not_failed", "only a refund that has failed can be retried")


def _deadline_due(action: str) -> Guard:
    def guard(case: Case, actor: Actor, ctx: Context) -> None:
        deadline = case.deadline
        if deadline is None or deadline.action != action or not deadline.auto:
            raise Conflict("no_such_deadline", f"no {action} deadline is set on this case")
        if ctx.now < deadline.due_at:
            raise Conflict("deadline_not_due", f"the {deadline.kind} deadline is not due yet")

    return guard


# --------------------------------------------------------------------------- effects
# An effect changes the (copied) case and returns the event it wrote: type, data, clauses.

EffectResult = tuple[str, dict[str, Any], tuple[str, ...]]
Effect = Callable[[Case, Any, Actor, Context], EffectResult]


def _make_offer(case: Case, cmd: MakeOffer, actor: Actor, ctx: Context) -> EffectResult:
    side = _side(actor)
    offer = _new_offer(case, ctx, side, cmd.terms)
    _supersede_open_offers(case)
    case.offers.append(offer)
    if side == "seller":
        _note_seller_answer(case, ctx)
        _move(case, "awaiting_buyer", ctx)
    else:
        _move(case, "awaiting_seller", ctx)
    return "case.offer_made", {"offer": offer.to_dict()}, ("N1",)


def _accept(case: Case, cmd: Accept, actor: Actor, ctx: Context) -> EffectResult:
    offer = _accept_current(case, ctx)
    if _side(actor) == "seller":
        _note_seller_answer(case, ctx)
    return "case.offer_accepted", {"offer": offer.to_dict()}, ("N1",)


def _auto_accept(case: Case, cmd: AutoAccept, actor: Actor, ctx: Context) -> EffectResult:
    offer = _accept_current(case, ctx)
    return "case.offer_accepted", {"offer": offer.to_dict(), "automatic": True}, ("D1", "N1")


def _reject(case: Case, cmd: Reject, actor: Actor, ctx: Context) -> EffectResult:
    offer = case.current_offer
    assert offer is not None  # the guard saw to it
    offer.status = "rejected"
    if _side(actor) == "seller":
        _note_seller_answer(case, ctx)
    _move(case, "awaiting_buyer", ctx)
    return "case.offer_rejected", {"offer_id": offer.id, "reason": cmd.reason}, ("N1",)


def _escalate(case: Case, cmd: Escalate, actor: Actor, ctx: Context) -> EffectResult:
    _to_review(case, ctx)
    return "case.escalated", {"reason": cmd.reason}, ("X1",)


ESCALATION_REASONS = {
    "D3": "the seller gave no return address or label",
    "D4": "return lost in transit",
}


def _auto_escalate(case: Case, cmd: AutoEscalate, actor: Actor, ctx: Context) -> EffectResult:
    kind = case.deadline.kind if case.deadline else "D2"
    reason = ESCALATION_REASONS.get(kind, "negotiation time ran out")
    _to_review(case, ctx)
    return "case.escalated", {"reason": reason, "automatic": True}, (kind, "X1")


def _decide(case: Case, cmd: Decide, actor: Actor, ctx: Context) -> EffectResult:
    if cmd.kind not in (*OFFER_KINDS, "reject"):
        raise InvalidInput(
            "invalid_decision", "kind must be refund, replacement or reject", param="kind"
        )
    data: dict[str, Any] = {"kind": cmd.kind, "note": cmd.note}
    _supersede_open_offers(case)
    if cmd.kind == "reject":
        _resolve(case, "rejected", ctx)
        return "case.decided", data, ("X1",)
    terms = OfferTerms(cmd.kind, cmd.amount, cmd.return_required, cmd.return_shipping_paid_by)
    offer = _new_offer(case, ctx, "mediator", terms, status="accepted")
    case.offers.append(offer)
    _agree(case, offer, ctx)
    data["offer"] = offer.to_dict()
    return "case.decided", data, ("X1", "S1") if offer.return_required else ("X1",)


def _withdraw(case: Case, cmd: Withdraw, actor: Actor, ctx: Context) -> EffectResult:
    _supersede_open_offers(case)
    _resolve(case, "withdrawn", ctx)
    return "case.withdrawn", {"reason": cmd.reason}, ()


def _post_message(case: Case, cmd: PostMessage, actor: Actor, ctx: Context) -> EffectResult:
    body = cmd.body.strip()
    if not body and not cmd.attachments:
        raise InvalidInput("empty_message", "a message needs a body or an attachment", param="body")
    return "case.message_posted", {"body": body, "attachments": list(cmd.attachments)}, ()


def _add_return_label(case: Case, cmd: AddReturnLabel, actor: Actor, ctx: Context) -> EffectResult:
    first = return_instructions_since(case) is None
    shipment = _return_shipment(case)
    shipment.carrier = _required_text(cmd.carrier, "carrier")
    shipment.label_url = _required_text(cmd.label_url, "label_url")
    if first:
        shipment.instructions_at = ctx.now
    return "case.return_label_added", {"carrier": cmd.carrier, "label_url": cmd.label_url}, ()


def _add_return_address(
    case: Case, cmd: AddReturnAddress, actor: Actor, ctx: Context
) -> EffectResult:
    address = checked_address(cmd.address, "address")
    first = return_instructions_since(case) is None
    shipment = _return_shipment(case)
    shipment.address = address
    if first:
        shipment.instructions_at = ctx.now
    return "case.return_address_added", {"address": address.to_dict()}, ()


def _ship_return(case: Case, cmd: ShipReturn, actor: Actor, ctx: Context) -> EffectResult:
    shipment = _return_shipment(case)
    shipment.carrier = _required_text(cmd.carrier, "carrier")
    shipment.tracking_number = _required_text(cmd.tracking_number, "tracking_number")
    shipment.shipped_at = ctx.now
    if cmd.postage_paid is not None:
        _same_currency(case, cmd.postage_paid, "postage_paid")
        if cmd.postage_paid.amount < 0:
            raise InvalidInput(
                "invalid_amount", "postage must not be negative", param="postage_paid"
            )
        shipment.postage_paid = cmd.postage_paid
    _move(case, "return_in_transit", ctx)
    data = {"carrier": shipment.carrier, "tracking_number": shipment.tracking_number}
    return "case.return_shipped", data, ()


def _mark_return_delivered(
    case: Case, cmd: MarkReturnDelivered, actor: Actor, ctx: Context
) -> EffectResult:
    _return_shipment(case).delivered_at = ctx.now
    _move(case, "awaiting_inspection", ctx)
    return "case.return_delivered", {}, ()


def _inspect(case: Case, cmd: Inspect, actor: Actor, ctx: Context) -> EffectResult:
    data: dict[str, Any] = {
        "passed": cmd.passed,
        "note": cmd.note,
        "attachments": list(cmd.attachments),
    }
    if cmd.passed:
        _after_return_received(case, ctx)
    else:
        _to_review(case, ctx)
    return "case.inspected", data, ("I1",)


def _auto_pass_inspection(
    case: Case, cmd: AutoPassInspection, actor: Actor, ctx: Context
) -> EffectResult:
    _after_return_received(case, ctx)
    return "case.inspected", {"passed": True, "automatic": True}, ("D5", "I1")


def _expire(case: Case, cmd: Expire, actor: Actor, ctx: Context) -> EffectResult:
    _resolve(case, "expired", ctx)
    return "case.expired", {}, ("D3",)


def _ship_replacement(case: Case, cmd: ShipReplacement, actor: Actor, ctx: Context) -> EffectResult:
    case.replacement_shipment = Shipment(
        carrier=_required_text(cmd.carrier, "carrier"),
        tracking_number=_required_text(cmd.tracking_number, "tracking_number"),
        shipped_at=ctx.now,
    )
    _move(case, "replacement_in_transit", ctx)
    data = {"carrier": cmd.carrier, "tracking_number": cmd.tracking_number}
    return "case.replacement_shipped", data, ()


def _confirm_replacement_delivered(
    case: Case, cmd: ConfirmReplacementDelivered, actor: Actor, ctx: Context
) -> EffectResult:
    assert case.replacement_shipment is not None
    case.replacement_shipment.delivered_at = ctx.now
    _resolve(case, "replaced", ctx)
    return "case.replacement_delivered", {}, ()


def _convert_to_refund(
    case: Case, cmd: ConvertToRefund, actor: Actor, ctx: Context
) -> EffectResult:
    case.refund_granted = case.refundable
    _move(case, "refund_pending", ctx)
    data = {"amount": case.refundable.to_dict(), "automatic": True}
    return "case.converted_to_refund", data, ("D6", "R1")


def _settle_refund(case: Case, cmd: SettleRefund, actor: Actor, ctx: Context) -> EffectResult:
    granted = case.refund_granted
    assert granted is not None  # refund_pending always has a grant
    case.refunded = granted
    full = granted >= case.refundable
    _resolve(case, "refunded" if full else "partially_refunded", ctx)
    return "refund.succeeded", {"refund_id": cmd.refund_id, "amount": granted.to_dict()}, ("F1",)


def _fail_refund(case: Case, cmd: FailRefund, actor: Actor, ctx: Context) -> EffectResult:
    case.refund_failed_at = ctx.now
    return "refund.failed", {"refund_id": cmd.refund_id, "reason": cmd.reason}, ("F1",)


def _retry_refund(case: Case, cmd: RetryRefund, actor: Actor, ctx: Context) -> EffectResult:
    data: dict[str, Any] = {"refund_id": cmd.refund_id}
    if cmd.amount is not None:
        data["amount"] = cmd.amount.to_dict()
    return "refund.retried", data, ("F1",)


# --------------------------------------------------------------------------- helpers


def _side(actor: Actor) -> str:
    return "seller" if actor.role == "seller" else "buyer"


def _move(case: Case, status: str, ctx: Context) -> None:
    if status != case.status:
        case.status = status
        case.status_since = ctx.now


def _resolve(case: Case, outcome: str, ctx: Context) -> None:
    _supersede_open_offers(case)
    if outcome not in ("refunded", "partially_refunded"):
        case.refund_granted = None  # withdrawn, expired, rejected, replaced: nothing is owed
    case.outcome = outcome
    _move(case, "resolved", ctx)


def _to_review(case: Case, ctx: Context) -> None:
    _supersede_open_offers(case)
    case.escalated_at = ctx.now
    _move(case, "under_review", ctx)


def _note_seller_answer(case: Case, ctx: Context) -> None:
    if case.seller_first_answer_at is None:
        case.seller_first_answer_at = ctx.now


def _supersede_open_offers(case: Case) -> None:
    for offer in case.offers:
        if offer.status == "open":
            offer.status = "superseded"


def _accept_current(case: Case, ctx: Context) -> Offer:
    offer = case.current_offer
    assert offer is not None  # guards and deadlines only allow this with an open offer
    offer.status = "accepted"
    _agree(case, offer, ctx)
    return offer


def _agree(case: Case, offer: Offer, ctx: Context) -> None:
    """An accepted offer or a decision: route the case to what has to happen next."""
    case.agreed_offer_id = offer.id
    # a new agreement (e.g. the mediator's, after a failed inspection) replaces any earlier grant
    case.refund_granted = offer.amount if offer.kind == "refund" else None
    if offer.return_required:
        # A return agreed again (a decision after a failed inspection, a lost return) goes
        # where the seller said the last one should, else to the order's address.
        earlier = case.return_shipment.address if case.return_shipment else None
        address = earlier or case.return_address
        case.return_shipment = Shipment(
            address=address, instructions_at=ctx.now if address is not None else None
        )
        _move(case, "awaiting_return_shipment", ctx)
    elif offer.kind == "refund":
        _move(case, "refund_pending", ctx)
    else:
        _move(case, "awaiting_replacement_shipment", ctx)


def _after_return_received(case: Case, ctx: Context) -> None:
    agreed = case.agreed_offer
    if agreed is not None and agreed.kind == "replacement":
        _move(case, "awaiting_replacement_shipment", ctx)
    else:
        if case.refund_granted is None:
            case.refund_granted = case.refundable
        _move(case, "refund_pending", ctx)


def _return_shipment(case: Case) -> Shipment:
    if case.return_shipment is None:
        case.return_shipment = Shipment(address=case.return_address)
    return case.return_shipment


def checked_address(address: Address, param: str) -> Address:
    """`address` with its text trimmed, refused when a part a parcel needs is empty or the
    country is not an ISO 3166 alpha-2 code."""
    parts = {
        name: _required_text(getattr(address, name), f"{param}.{name}")
        for name in ("name", "line1", "city", "postal_code", "country")
    }
    country = parts["country"]
    if not (len(country) == 2 and country.isascii() and country.isalpha() and country.isupper()):
        raise InvalidInput(
            "invalid_country",
            "the country must be a two-letter ISO 3166 code, such as CN",
            param=f"{param}.country",
        )
    return Address(**parts, line2=(address.line2 or "").strip() or None)


def _required_text(value: str, param: str) -> str:
    text = value.strip()
    if not text:
        raise InvalidInput("missing_field", f"{param} must not be empty", param=param)
    return text


def _same_currency(case: Case, money: Money, param: str) -> None:
    if money.currency != case.currency:
        raise InvalidInput(
            "currency_mismatch",
            f"amounts on this case are in {case.currency}, not {money.currency}",
            param=f"{param}.currency",
        )


def _new_offer(
    case: Case, ctx: Context, by: str, terms: OfferTerms, *, status: str = "open"
) -> Offer:
    validate_terms(case, terms, by, ctx.policy)
    payer = terms.return_shipping_paid_by or case.default_return_payer
    return Offer(
        id=ctx.new_id("off"),
        by=by,
        kind=terms.kind,
        amount=terms.amount,
        return_required=terms.return_required,
        return_shipping_paid_by=payer,
        status=status,
        created_at=ctx.now,
    )


def validate_terms(case: Case, terms: OfferTerms, by: str, policy: Policy) -> None:
    """An offer must be possible: a refund within what is refundable, a return when R3 needs
    one, and the buyer asks to keep the item for everything only where the reason's remedies
    include a full refund (R1); else (R2) the buyer keeps it for a partial refund, below the
    full one, or returns it. The seller may offer more, and the mediator decide anything
    up to what is refundable."""
    if terms.kind not in OFFER_KINDS:
        raise InvalidInput("invalid_offer_kind", "kind must be refund or replacement", param="kind")
    if terms.return_shipping_paid_by is not None and terms.return_shipping_paid_by not in PAYERS:
        raise InvalidInput(
            "invalid_payer",
            "return_shipping_paid_by must be buyer or seller",
            param="return_shipping_paid_by",
        )
    if terms.kind == "refund":
        if terms.amount is None:
            raise InvalidInput("amount_required", "a refund offer needs an amount", param="amount")
        _same_currency(case, terms.amount, "amount")
        if not terms.amount.is_positive:
            raise InvalidInput("invalid_amount", "A refund must be more than zero.", param="amount")
        if terms.amount > case.refundable:
            # The cap is what was paid for the lines (less what was refunded on them already):
            # the product's rule on amounts, not one of the policy's clauses.
            raise PolicyViolation(
                "amount_exceeds_refundable",
                f"At most {case.refundable} can be refunded on this case.",
                param="amount",
                money=case.refundable,
            )
    elif terms.amount is not None:
        raise InvalidInput(
            "amount_not_allowed", "a replacement offer carries no amount", param="amount"
        )
    if case.reason == "not_received" and terms.return_required:
        raise InvalidInput(
            "nothing_to_return",
            "an item that did not arrive cannot be returned",
            param="return_required",
        )
    if case.reason == "changed_mind" and by != "mediator" and not terms.return_required:
        raise PolicyViolation(
            "return_required",
            "a change-of-mind refund requires the item to be returned",
            param="return_required",
            clauses=("R3",),
        )
    keeps_the_item_for_everything = not terms.return_required and (
        terms.kind == "replacement"
        or (terms.kind == "refund" and terms.amount is not None and terms.amount >= case.refundable)
    )
    if by == "buyer" and keeps_the_item_for_everything:
        clause, remedies = remedies_for(policy, case.reason)
        if FULL_REFUND not in remedies:
            reason = REASON_NAMES.get(case.reason, case.reason.replace("_", " "))
            if terms.kind == "replacement":
                # Else the buyer would keep the item and get a new one, or, if the seller
                # never ships it, a full refund (D6) on top.
                raise PolicyViolation(
                    "replacement_needs_return",
                    f"For “{reason}” a replacement is sent for the item sent back: ask for it "
                    f"with the item's return, or keep the item with a partial refund of less "
                    f"than {case.refundable}.",
                    param="return_required",
                    clauses=(clause,),
                    money=case.refundable,
                )
            raise PolicyViolation(
                "full_refund_needs_return",
                f"For “{reason}” you can keep the item with a partial refund of less than "
                f"{case.refundable}, or send it back for a full refund.",
                param="amount",
                clauses=(clause,),
                money=case.refundable,
            )


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Transition:
    status: str
    action: str
    actors: frozenset[str]
    effect: Effect
    targets: tuple[str, ...]
    guard: Guard = _always


def _rows(
    statuses: tuple[str, ...],
    action: str,
    actors: tuple[str, ...],
    effect: Effect,
    targets: tuple[str, ...],
    guard: Guard = _always,
) -> list[Transition]:
    return [
        Transition(status, action, frozenset(actors), effect, targets or (status,), guard)
        for status in statuses
    ]


NEGOTIATING = ("awaiting_seller", "awaiting_buyer")
_AGREEMENT = ("refund_pending", "awaiting_return_shipment", "awaiting_replacement_shipment")
OPEN_STATUSES = tuple(s for s in STATUSES if s != "resolved")
WITHDRAWABLE = tuple(s for s in OPEN_STATUSES if s != "refund_pending")

TRANSITIONS: dict[tuple[str, str], Transition] = {
    (t.status, t.action): t
    for t in [
        *_rows(NEGOTIATING, "make_offer", ("buyer", "seller"), _make_offer, NEGOTIATING),
        *_rows(("awaiting_seller",), "accept", ("seller",), _accept, _AGREEMENT, _offer_to_answer),
        *_rows(("awaiting_buyer",), "accept", ("buyer",), _accept, _AGREEMENT, _offer_to_answer),
        *_rows(
            ("awaiting_seller",), "reject", ("seller",), _reject, ("awaiting_buyer",),
            _offer_to_answer,
        ),
        *_rows(
            ("awaiting_buyer",), "reject", ("buyer",), _reject, ("awaiting_buyer",),
            _offer_to_answer,
        ),
        *_rows(NEGOTIATING, "escalate", ("buyer", "seller"), _escalate, ("under_review",),
               _may_escalate),
        *_rows(("replacement_in_transit",), "escalate", ("buyer",), _escalate, ("under_review",)),
        *_rows(("under_review",), "decide", ("mediator",), _decide, (*_AGREEMENT, "resolved")),
        *_rows(WITHDRAWABLE, "withdraw", ("buyer",), _withdraw, ("resolved",)),
        *_rows(OPEN_STATUSES, "post_message", ("buyer", "seller", "mediator"), _post_message, (),
               _mediator_involved),
        *_rows(("awaiting_return_shipment",), "add_return_label", ("seller",), _add_return_label,
               ()),
        *_rows(("awaiting_return_shipment",), "add_return_address", ("seller",),
               _add_return_address, ()),
        *_rows(("awaiting_return_shipment",), "ship_return", ("buyer",), _ship_return,
               ("return_in_transit",)),
        *_rows(("return_in_transit",), "mark_return_delivered", ("seller", "operator"),
               _mark_return_delivered, ("awaiting_inspection",)),
        *_rows(("awaiting_inspection",), "inspect", ("seller",), _inspect,
               ("refund_pending", "awaiting_replacement_shipment", "under_review")),
        *_rows(("awaiting_replacement_shipment",), "ship_replacement", ("seller",),
               _ship_replacement, ("replacement_in_transit",)),
        *_rows(("replacement_in_transit",), "confirm_replacement_delivered", ("buyer", "operator"),
               _confirm_replacement_delivered, ("resolved",)),
        *_rows(("refund_pending",), "settle_refund", ("system", "operator"), _settle_refund,
               ("resolved",)),
        *_rows(("refund_pending",), "fail_refund", ("system", "operator"), _fail_refund, ()),
        *_rows(("refund_pending",), "retry_refund", ("mediator", "operator"), _retry_refund, (),
               _refund_failed),
        # the clock: fired by the sweeper when the case's deadline passes (D1…D6)
        *_rows(("awaiting_seller",), "auto_accept", ("system",), _auto_accept, _AGREEMENT,
               _deadline_due("auto_accept")),
        *_rows((*NEGOTIATING, "awaiting_return_shipment", "return_in_transit"), "auto_escalate",
               ("system",), _auto_escalate, ("under_review",), _deadline_due("auto_escalate")),
        *_rows(("awaiting_return_shipment",), "expire", ("system",), _expire, ("resolved",),
               _deadline_due("expire")),
        *_rows(("awaiting_inspection",), "auto_pass_inspection", ("system",),
               _auto_pass_inspection, ("refund_pending", "awaiting_replacement_shipment"),
               _deadline_due("auto_pass_inspection")),
        *_rows(("awaiting_replacement_shipment",), "convert_to_refund", ("system",),
               _convert_to_refund, ("refund_pending",), _deadline_due("convert_to_refund")),
    ]
}  # fmt: skip

ACTIONS: tuple[str, ...] = tuple(dict.fromkeys(action for _, action in TRANSITIONS))


def transition_for(case: Case, action: str, actor: Actor, ctx: Context) -> Transition:
    """The row that allows `actor` to take `action` now, or the refusal saying why not."""
    row = TRANSITIONS.get((case.status, action))
    if row is None:
        if not any(a == action for _, a in TRANSITIONS):
            raise InvalidInput("unknown_action", f"unknown action {action!r}")
        raise Conflict(
            "invalid_state",
            f"{action.replace('_', ' ')} is not possible while the case is "
            f"{case.status.replace('_', ' ')}",
        )
    if actor.role not in row.actors:
        raise Forbidden("actor_not_allowed", f"a {actor.role} cannot {action.replace('_', ' ')}")
    row.guard(case, actor, ctx)
    return row


def can(case: Case, action: str, actor: Actor, ctx: Context) -> bool:
    """May `actor` take `action` on `case` now? The predicate behind buttons and 409s."""
    try:
        transition_for(case, action, actor, ctx)
    except (Conflict, Forbidden, PolicyViolation, InvalidInput):
        return False
    return True


def allowed_actions(case: Case, actor: Actor, ctx: Context) -> list[str]:
    return [action for action in ACTIONS if can(case, action, actor, ctx)]


def apply(case: Case, command: Command, actor: Actor, ctx: Context) -> Result:
    """Take one action: check actor and guard, change a copy of the case, write one event."""
    row = transition_for(case, command.action, actor, ctx)
    new = case.copy()
    event_type, data, clauses = row.effect(new, command, actor, ctx)
    data = {"action": command.action, "from": case.status, "to": new.status, **data}
    if new.outcome is not None and case.outcome is None:
        data["outcome"] = new.outcome
    new.deadline = compute_deadline(new, ctx.policy)
    if new.deadline is not None:
        data["deadline"] = {
            "kind": new.deadline.kind,
            "action": new.deadline.action,
            "party": new.deadline.party,
            "due_at": new.deadline.due_at,
        }
    new.updated_at = ctx.now
    new.version += 1
    return Result(new, Event(event_type, actor, ctx.now, data, clauses))


# --------------------------------------------------------------------------- deadlines


def _after(policy: Policy, kind: str, start: datetime, country: str) -> datetime:
    rule = policy.deadlines[kind]
    if rule.business_days:
        return add_business_days(start, rule.days, country)
    return start + timedelta(days=rule.days)


def _seller_answer_due(case: Case, offer: Offer, policy: Policy) -> datetime:
    return _after(policy, "D1", offer.created_at, case.holiday_country)


def return_instructions_since(case: Case) -> datetime | None:
    """Since when the buyer has known where to send the return (an address or a prepaid
    label), or None while they do not."""
    shipment = case.return_shipment
    if shipment is None or (shipment.address is None and shipment.label_url is None):
        return None
    # A return stored before the time was kept had its instructions from the agreement.
    return shipment.instructions_at or case.status_since


def compute_deadline(case: Case, policy: Policy) -> Deadline | None:
    """The one deadline that the case's status sets: who must act, by when, and what follows."""
    status, country = case.status, case.holiday_country
    negotiation_ends = (
        _after(policy, "D2", case.seller_first_answer_at, country)
        if case.seller_first_answer_at is not None
        else None
    )
    if status == "awaiting_seller":
        offer = case.current_offer
        candidates = []
        if offer is not None:
            candidates.append(
                Deadline("D1", "auto_accept", "seller", _seller_answer_due(case, offer, policy))
            )
        if negotiation_ends is not None:
            candidates.append(Deadline("D2", "auto_escalate", "seller", negotiation_ends))
        return min(candidates, key=lambda d: d.due_at, default=None)
    if status == "awaiting_buyer" and negotiation_ends is not None:
        return Deadline("D2", "auto_escalate", "buyer", negotiation_ends)
    if status == "awaiting_return_shipment":
        instructed = return_instructions_since(case)
        if instructed is None:
            # The buyer cannot ship without an address or a label: the seller's silence must
            # not cost them the refund, so the time runs against the seller meanwhile.
            return Deadline(
                "D3", "auto_escalate", "seller", _after(policy, "D3", case.status_since, country)
            )
        return Deadline("D3", "expire", "buyer", _after(policy, "D3", instructed, country))
    if status == "return_in_transit":
        return Deadline(
            "D4", "auto_escalate", "seller", _after(policy, "D4", case.status_since, country)
        )
    if status == "awaiting_inspection":
        return Deadline(
            "D5",
            "auto_pass_inspection",
            "seller",
            _after(policy, "D5", case.status_since, country),
        )
    if status == "awaiting_replacement_shipment":
        return Deadline(
            "D6", "convert_to_refund", "seller", _after(policy, "D6", case.status_since, country)
        )
    if status == "under_review":
        return Deadline(
            "D7", "decide", "mediator", _after(policy, "D7", case.status_since, country), auto=False
        )
    return None


# --------------------------------------------------------------------------- opening


@dataclass(frozen=True)
class OpenCase:
    """What the buyer asks for when opening: the lines, why, and the first offer."""

    order_id: str
    lines: tuple[CaseLine, ...]
    reason: str
    description: str
    request: OfferTerms
    attachments: tuple[str, ...] = ()


def open_case(
    command: OpenCase,
    *,
    case_id: str,
    buyer_id: str,
    seller_id: str,
    currency: str,
    refundable: Money,
    default_return_payer: str,
    return_address: Address | None,
    holiday_country: str,
    actor: Actor,
    ctx: Context,
) -> Result:
    """A new case in `awaiting_seller` with the buyer's request as the first offer.

    Eligibility (windows, hygiene, evidence…) is judged before this by the eligibility
    engine, which also yields `refundable` and `default_return_payer`.
    """
    if actor.role not in ("buyer", "operator"):
        raise Forbidden("actor_not_allowed", "only the buyer opens a case")
    now = ctx.now
    case = Case(
        id=case_id,
        order_id=command.order_id,
        buyer_id=buyer_id,
        seller_id=seller_id,
        currency=currency,
        lines=command.lines,
        reason=command.reason,
        description=command.description,
        status="awaiting_seller",
        refundable=refundable,
        default_return_payer=default_return_payer,
        return_address=return_address,
        holiday_country=holiday_country,
        policy_id=ctx.policy.id,
        policy_version=ctx.policy.version,
        created_at=now,
        updated_at=now,
        status_since=now,
    )
    offer = _new_offer(case, ctx, "buyer", command.request)
    case.offers.append(offer)
    case.deadline = compute_deadline(case, ctx.policy)
    case.version = 1
    data: dict[str, Any] = {
        "action": "open",
        "from": None,
        "to": case.status,
        "reason": command.reason,
        "lines": [{"line_id": line.line_id, "quantity": line.quantity} for line in command.lines],
        "offer": offer.to_dict(),
        "attachments": list(command.attachments),
    }
    return Result(case, Event("case.opened", actor, now, data, ()))


# --------------------------------------------------------------------------- the diagram


def mermaid_diagram() -> str:
    """The transition table as a Mermaid state diagram (docs/lifecycle.md is generated from it)."""
    lines = ["stateDiagram-v2", "    [*] --> awaiting_seller: open (buyer)"]
    edges: dict[tuple[str, str], list[str]] = {}
    for row in TRANSITIONS.values():
        for target in row.targets:
            label = f"{row.action} ({', '.join(sorted(row.actors))})"
            edges.setdefault((row.status, target), [])
            if label not in edges[(row.status, target)]:
                edges[(row.status, target)].append(label)
    for (source, target), labels in edges.items():
        lines.append(f"    {source} --> {target}: {' / '.join(labels)}")
    lines.append("    resolved --> [*]")
    return "\n".join(lines) + "\n"
