"""Every path of PRODUCT.md's case lifecycle, driven through `apply()`."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from restitution.domain.cases import (
    ACTIONS,
    DEADLINE_COMMANDS,
    SYSTEM,
    Accept,
    Actor,
    AddReturnAddress,
    AddReturnLabel,
    ConfirmReplacementDelivered,
    Decide,
    Escalate,
    FailRefund,
    Inspect,
    MakeOffer,
    MarkReturnDelivered,
    OfferTerms,
    PostMessage,
    Reject,
    RetryRefund,
    SettleRefund,
    ShipReplacement,
    ShipReturn,
    Withdraw,
    allowed_actions,
    apply,
    can,
)
from restitution.domain.errors import Conflict, Forbidden, InvalidInput, PolicyViolation
from restitution.domain.money import Money
from restitution.domain.orders import Address

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
BUYER = Actor("buyer", "b_42")
SELLER = Actor("seller", "s_7")
MEDIATOR = Actor("mediator", "m_1")
OPERATOR = Actor("operator", "op")
USD = "USD"
SELLERS_ADDRESS = Address("Shop 7 returns", "9 Dock St", "Ningbo", "315000", "CN", "Gate 2")

PARTIAL = OfferTerms("refund", Money(1000, USD))
FULL_WITH_RETURN = OfferTerms("refund", Money(2899, USD), return_required=True)
REPLACEMENT = OfferTerms("replacement")

# A sample command for every action, for "nothing is possible" checks.
SAMPLE_COMMANDS = {
    "make_offer": MakeOffer(PARTIAL),
    "accept": Accept(),
    "reject": Reject("no"),
    "escalate": Escalate("help"),
    "decide": Decide("reject"),
    "withdraw": Withdraw(),
    "post_message": PostMessage("hello"),
    "add_return_label": AddReturnLabel("ups", "https://labels.example/1"),
    "add_return_address": AddReturnAddress(SELLERS_ADDRESS),
    "ship_return": ShipReturn("ups", "1Z1"),
    "mark_return_delivered": MarkReturnDelivered(),
    "inspect": Inspect(passed=True),
    "ship_replacement": ShipReplacement("dhl", "JD1"),
    "confirm_replacement_delivered": ConfirmReplacementDelivered(),
    "settle_refund": SettleRefund("rfd_1"),
    "fail_refund": FailRefund("rfd_1", "declined"),
    "retry_refund": RetryRefund("rfd_1"),
    **{action: cls() for action, cls in DEADLINE_COMMANDS.items()},
}


@pytest.fixture
def run(ctx_at):
    """`run(case, command, actor, at)` → the Result of apply() at time `at`."""

    def _run(case, command, actor, at=None):
        return apply(case, command, actor, ctx_at(at or case.updated_at + HOUR))

    return _run


@pytest.fixture
def opened(open_at):
    return open_at(T0)


def _agree_on(run, case, terms):
    """Seller counters with `terms`, buyer accepts: the agreement."""
    case = run(case, MakeOffer(terms), SELLER).case
    return run(case, Accept(), BUYER).case


def _returned(run, case):
    """From awaiting_return_shipment to awaiting_inspection."""
    case = run(case, ShipReturn("ups", "1Z999"), BUYER).case
    return run(case, MarkReturnDelivered(), SELLER).case


def _escalated(run, case):
    case = run(case, Reject("not our fault"), SELLER).case
    return run(case, Escalate("please decide"), BUYER).case


# --------------------------------------------------------------------------- opening


def test_open_case_waits_for_seller_with_buyer_request_as_first_offer(opened):
    assert opened.status == "awaiting_seller"
    assert opened.version == 1
    assert opened.outcome is None
    assert opened.current_offer is not None
    assert opened.current_offer.by == "buyer"
    assert opened.current_offer.amount == Money(2899, USD)


# --------------------------------------------------------------------------- agreements


def test_seller_accepting_full_refund_moves_to_refund_pending(run, opened):
    result = run(opened, Accept(), SELLER)
    assert result.case.status == "refund_pending"
    assert result.case.refund_granted == opened.refundable
    assert result.event.type == "case.offer_accepted"


def test_settling_full_refund_resolves_as_refunded(run, opened):
    case = run(opened, Accept(), SELLER).case
    result = run(case, SettleRefund("rfd_1"), SYSTEM)
    assert result.case.status == "resolved"
    assert result.case.outcome == "refunded"
    assert result.case.refunded == opened.refundable


def test_operator_may_settle_refund(run, opened):
    case = run(opened, Accept(), SELLER).case
    assert run(case, SettleRefund(), OPERATOR).case.outcome == "refunded"


def test_a_failed_refund_is_noted_on_the_case_and_leaves_it_pending(run, opened):
    case = run(opened, Accept(), SELLER).case
    failed = run(case, FailRefund("rfd_1", "declined"), SYSTEM)
    assert failed.case.status == "refund_pending"
    assert failed.case.refund_failed_at == failed.event.at
    assert failed.case.escalated_at is None


@pytest.mark.parametrize("actor", [MEDIATOR, OPERATOR])
def test_a_mediator_or_the_operator_retries_a_failed_refund(run, opened, actor):
    case = run(opened, Accept(), SELLER).case
    case = run(case, FailRefund("rfd_1", "declined"), SYSTEM).case
    result = run(case, RetryRefund("rfd_1"), actor)
    assert result.case.status == "refund_pending"
    assert result.case.refund_granted == opened.refundable
    assert (result.event.type, result.event.actor) == ("refund.retried", actor)
    assert result.event.data["refund_id"] == "rfd_1"
    # once more, it may fail and be settled as before
    assert run(result.case, SettleRefund("rfd_1"), SYSTEM).case.outcome == "refunded"


def test_a_refund_that_never_failed_is_not_retried(run, opened):
    case = run(opened, Accept(), SELLER).case
    with pytest.raises(Conflict) as refused:
        run(case, RetryRefund("rfd_1"), MEDIATOR)
    assert refused.value.code == "refund_not_failed"


@pytest.mark.parametrize("actor", [BUYER, SELLER, SYSTEM])
def test_only_a_mediator_or_the_operator_retries_a_refund(run, opened, actor):
    case = run(opened, Accept(), SELLER).case
    case = run(case, FailRefund("rfd_1", "declined"), SYSTEM).case
    with pytest.raises(Forbidden):
        run(case, RetryRefund("rfd_1"), actor)


def test_partial_refund_to_keep_the_item_resolves_as_partially_refunded(run, open_at):
    case = open_at(T0, reason="not_as_described", request=PARTIAL)
    case = run(case, Accept(), SELLER).case
    assert case.status == "refund_pending"
    case = run(case, SettleRefund(), SYSTEM).case
    assert case.outcome == "partially_refunded"
    assert case.refunded == Money(1000, USD)


def test_seller_counter_waits_for_buyer(run, opened):
    case = run(opened, MakeOffer(PARTIAL), SELLER).case
    assert case.status == "awaiting_buyer"
    assert case.current_offer.by == "seller"
    assert case.offers[0].status == "superseded"


def test_buyer_accepting_seller_counter_makes_the_agreement(run, opened):
    case = run(opened, MakeOffer(PARTIAL), SELLER).case
    case = run(case, Accept(), BUYER).case
    assert case.status == "refund_pending"
    assert case.refund_granted == Money(1000, USD)
    assert case.agreed_offer.by == "seller"


def test_party_cannot_accept_its_own_offer(run, opened):
    case = run(opened, MakeOffer(PARTIAL), SELLER).case
    case = run(case, MakeOffer(PARTIAL), SELLER).case
    with pytest.raises(Forbidden):
        run(case, Accept(), SELLER)


# --------------------------------------------------------------------------- rejection


def test_seller_reject_leaves_awaiting_buyer_without_offer(run, opened):
    case = run(opened, Reject("no"), SELLER).case
    assert case.status == "awaiting_buyer"
    assert case.current_offer is None
    assert case.offers[0].status == "rejected"


def test_buyer_counters_after_seller_reject(run, opened):
    case = run(opened, Reject("no"), SELLER).case
    case = run(case, MakeOffer(PARTIAL), BUYER).case
    assert case.status == "awaiting_seller"
    assert case.current_offer.amount == Money(1000, USD)


def test_buyer_escalates_after_seller_reject(run, opened):
    case = _escalated(run, opened)
    assert case.status == "under_review"
    assert case.escalated_at is not None


def test_buyer_withdraws_after_seller_reject(run, opened):
    case = run(opened, Reject("no"), SELLER).case
    case = run(case, Withdraw(), BUYER).case
    assert (case.status, case.outcome) == ("resolved", "withdrawn")


def test_buyer_cannot_accept_when_there_is_no_offer(run, opened):
    case = run(opened, Reject("no"), SELLER).case
    with pytest.raises(Conflict) as refused:
        run(case, Accept(), BUYER)
    assert refused.value.code == "no_open_offer"


# --------------------------------------------------------------------------- return flow


def test_accepting_offer_with_return_waits_for_return_shipment(run, opened):
    case = _agree_on(run, opened, FULL_WITH_RETURN)
    assert case.status == "awaiting_return_shipment"
    assert case.return_shipment.address == opened.return_address


def test_seller_adds_return_label_without_changing_status(run, opened):
    case = _agree_on(run, opened, FULL_WITH_RETURN)
    case = run(case, AddReturnLabel("ups", "https://labels.example/1"), SELLER).case
    assert case.status == "awaiting_return_shipment"
    assert case.return_shipment.label_url == "https://labels.example/1"


def test_seller_gives_a_return_address_without_changing_status(run, open_at):
    case = _agree_on(run, open_at(T0, return_address=None), FULL_WITH_RETURN)
    assert case.return_shipment.address is None

    result = run(case, AddReturnAddress(SELLERS_ADDRESS), SELLER)

    assert result.case.status == "awaiting_return_shipment"
    assert result.case.return_shipment.address == SELLERS_ADDRESS
    assert result.event.type == "case.return_address_added"
    assert result.event.data["address"] == SELLERS_ADDRESS.to_dict()


def test_seller_may_change_the_orders_return_address(run, opened):
    case = _agree_on(run, opened, FULL_WITH_RETURN)
    case = run(case, AddReturnAddress(SELLERS_ADDRESS), SELLER).case
    assert case.return_shipment.address == SELLERS_ADDRESS
    assert case.return_address == opened.return_address  # the order's, as copied at opening


def test_a_return_agreed_again_goes_where_the_seller_said(run, open_at):
    case = _agree_on(run, open_at(T0, return_address=None), FULL_WITH_RETURN)
    case = run(case, AddReturnAddress(SELLERS_ADDRESS), SELLER).case
    case = run(_returned(run, case), Inspect(passed=False, note="not the item sent"), SELLER).case
    decision = Decide("refund", Money(1500, USD), return_required=True)

    case = run(case, decision, MEDIATOR).case

    assert case.status == "awaiting_return_shipment"
    assert case.return_shipment.address == SELLERS_ADDRESS
    assert case.return_shipment.instructions_at is not None
    assert case.deadline.party == "buyer"  # D3: the buyer has somewhere to send it


def test_return_address_is_trimmed(run, opened):
    case = _agree_on(run, opened, FULL_WITH_RETURN)
    padded = Address(" Shop ", " 9 Dock St ", " Ningbo ", " 315000 ", " CN ", "  ")
    case = run(case, AddReturnAddress(padded), SELLER).case
    assert case.return_shipment.address == Address("Shop", "9 Dock St", "Ningbo", "315000", "CN")


@pytest.mark.parametrize(
    ("address", "code", "param"),
    [
        (Address(" ", "9 Dock St", "Ningbo", "315000", "CN"), "missing_field", "address.name"),
        (Address("Shop", "", "Ningbo", "315000", "CN"), "missing_field", "address.line1"),
        (Address("Shop", "9 Dock St", "", "315000", "CN"), "missing_field", "address.city"),
        (Address("Shop", "9 Dock St", "Ningbo", " ", "CN"), "missing_field", "address.postal_code"),
        (Address("Shop", "9 Dock St", "Ningbo", "315000", "cn"), "invalid_country",
         "address.country"),
        (Address("Shop", "9 Dock St", "Ningbo", "315000", "CHN"), "invalid_country",
         "address.country"),
    ],
)  # fmt: skip
def test_incomplete_return_address_is_invalid(run, opened, address, code, param):
    case = _agree_on(run, opened, FULL_WITH_RETURN)
    with pytest.raises(InvalidInput) as refused:
        run(case, AddReturnAddress(address), SELLER)
    assert (refused.value.code, refused.value.param) == (code, param)


@pytest.mark.parametrize("actor", [BUYER, MEDIATOR, OPERATOR, SYSTEM])
def test_only_the_seller_gives_the_return_address(run, opened, actor):
    case = _agree_on(run, opened, FULL_WITH_RETURN)
    with pytest.raises(Forbidden):
        run(case, AddReturnAddress(SELLERS_ADDRESS), actor)


def test_return_address_outside_awaiting_return_shipment_is_conflict(run, opened):
    with pytest.raises(Conflict) as refused:
        run(opened, AddReturnAddress(SELLERS_ADDRESS), SELLER)
    assert refused.value.code == "invalid_state"


def test_buyer_shipping_return_puts_it_in_transit(run, opened):
    case = _agree_on(run, opened, FULL_WITH_RETURN)
    case = run(case, ShipReturn("ups", "1Z999"), BUYER).case
    assert case.status == "return_in_transit"
    assert case.return_shipment.tracking_number == "1Z999"


def test_return_delivered_awaits_inspection(run, opened):
    case = _returned(run, _agree_on(run, opened, FULL_WITH_RETURN))
    assert case.status == "awaiting_inspection"
    assert case.return_shipment.delivered_at == case.status_since


def test_operator_may_mark_return_delivered(run, opened):
    case = _agree_on(run, opened, FULL_WITH_RETURN)
    case = run(case, ShipReturn("ups", "1Z999"), BUYER).case
    assert run(case, MarkReturnDelivered(), OPERATOR).case.status == "awaiting_inspection"


def test_passed_inspection_moves_to_refund_pending(run, opened):
    case = _returned(run, _agree_on(run, opened, FULL_WITH_RETURN))
    result = run(case, Inspect(passed=True), SELLER)
    assert result.case.status == "refund_pending"
    assert result.case.refund_granted == opened.refundable
    assert result.event.clauses == ("I1",)


def test_failed_inspection_goes_to_review(run, opened):
    case = _returned(run, _agree_on(run, opened, FULL_WITH_RETURN))
    result = run(case, Inspect(passed=False, note="scratched"), SELLER)
    assert result.case.status == "under_review"
    assert result.event.clauses == ("I1",)


# --------------------------------------------------------------------------- mediation


def test_mediator_decides_refund(run, opened):
    case = _escalated(run, opened)
    case = run(case, Decide("refund", Money(1500, USD)), MEDIATOR).case
    assert case.status == "refund_pending"
    assert case.refund_granted == Money(1500, USD)


def test_mediator_decides_reject(run, opened):
    result = run(_escalated(run, opened), Decide("reject", note="no evidence"), MEDIATOR)
    assert (result.case.status, result.case.outcome) == ("resolved", "rejected")
    assert result.event.data["outcome"] == "rejected"


def test_mediator_decides_replacement(run, opened):
    case = run(_escalated(run, opened), Decide("replacement"), MEDIATOR).case
    assert case.status == "awaiting_replacement_shipment"


def test_mediator_decides_after_failed_inspection(run, opened):
    case = _returned(run, _agree_on(run, opened, FULL_WITH_RETURN))
    case = run(case, Inspect(passed=False), SELLER).case
    case = run(case, Decide("refund", Money(2000, USD)), MEDIATOR).case
    assert case.status == "refund_pending"
    assert case.refund_granted == Money(2000, USD)


def test_mediator_decision_is_recorded_as_accepted_mediator_offer(run, opened):
    case = run(_escalated(run, opened), Decide("refund", Money(1500, USD)), MEDIATOR).case
    decision = case.offers[-1]
    assert (decision.by, decision.status) == ("mediator", "accepted")
    assert case.agreed_offer_id == decision.id
    assert case.current_offer is None


def test_mediator_cannot_message_before_escalation(run, opened):
    with pytest.raises(Forbidden) as refused:
        run(opened, PostMessage("hello"), MEDIATOR)
    assert refused.value.code == "not_escalated"


def test_mediator_messages_after_escalation(run, opened):
    result = run(_escalated(run, opened), PostMessage("please send photos"), MEDIATOR)
    assert result.event.type == "case.message_posted"


def test_mediator_decision_with_unknown_kind_is_invalid(run, opened):
    with pytest.raises(InvalidInput):
        run(_escalated(run, opened), Decide("shrug"), MEDIATOR)


# --------------------------------------------------------------------------- replacement


def test_replacement_flow_resolves_as_replaced(run, opened):
    case = _agree_on(run, opened, REPLACEMENT)
    assert case.status == "awaiting_replacement_shipment"
    case = run(case, ShipReplacement("dhl", "JD1"), SELLER).case
    assert case.status == "replacement_in_transit"
    case = run(case, ConfirmReplacementDelivered(), BUYER).case
    assert (case.status, case.outcome) == ("resolved", "replaced")
    assert case.replacement_shipment.delivered_at is not None


def test_replacement_with_return_ships_after_passed_inspection(run, opened):
    terms = OfferTerms("replacement", return_required=True)
    case = _returned(run, _agree_on(run, opened, terms))
    case = run(case, Inspect(passed=True), SELLER).case
    assert case.status == "awaiting_replacement_shipment"
    assert case.refund_granted is None


def test_buyer_may_escalate_replacement_in_transit(run, opened):
    case = _agree_on(run, opened, REPLACEMENT)
    case = run(case, ShipReplacement("dhl", "JD1"), SELLER).case
    assert run(case, Escalate("never came"), BUYER).case.status == "under_review"


# --------------------------------------------------------------------------- withdraw


def _case_in(run, opened, status):
    """A case brought to `status` through ordinary actions."""
    if status == "awaiting_seller":
        return opened
    if status == "awaiting_buyer":
        return run(opened, MakeOffer(PARTIAL), SELLER).case
    if status == "under_review":
        return _escalated(run, opened)
    if status == "awaiting_return_shipment":
        return _agree_on(run, opened, FULL_WITH_RETURN)
    if status == "return_in_transit":
        return run(
            _case_in(run, opened, "awaiting_return_shipment"), ShipReturn("u", "1"), BUYER
        ).case
    if status == "awaiting_inspection":
        return _returned(run, _case_in(run, opened, "awaiting_return_shipment"))
    if status == "awaiting_replacement_shipment":
        return _agree_on(run, opened, REPLACEMENT)
    if status == "replacement_in_transit":
        case = _case_in(run, opened, "awaiting_replacement_shipment")
        return run(case, ShipReplacement("dhl", "JD1"), SELLER).case
    if status == "refund_pending":
        return run(opened, Accept(), SELLER).case
    if status == "resolved":
        return run(opened, Withdraw(), BUYER).case
    raise AssertionError(status)


BEFORE_REFUND = (
    "awaiting_seller",
    "awaiting_buyer",
    "under_review",
    "awaiting_return_shipment",
    "return_in_transit",
    "awaiting_inspection",
    "awaiting_replacement_shipment",
    "replacement_in_transit",
)


@pytest.mark.parametrize("status", BEFORE_REFUND)
def test_buyer_may_withdraw_before_refund_pending(run, opened, status):
    case = _case_in(run, opened, status)
    assert case.status == status
    result = run(case, Withdraw("sorted it out"), BUYER)
    assert (result.case.status, result.case.outcome) == ("resolved", "withdrawn")
    assert result.case.current_offer is None


@pytest.mark.parametrize("status", ["refund_pending", "resolved"])
def test_withdraw_is_refused_from_refund_pending_on(run, opened, status):
    case = _case_in(run, opened, status)
    with pytest.raises(Conflict):
        run(case, Withdraw(), BUYER)


def test_seller_cannot_withdraw(run, opened):
    with pytest.raises(Forbidden):
        run(opened, Withdraw(), SELLER)


# --------------------------------------------------------------------------- refusals


def test_wrong_actor_is_forbidden(run, opened):
    with pytest.raises(Forbidden) as refused:
        run(opened, Accept(), BUYER)
    assert refused.value.code == "actor_not_allowed"


def test_system_cannot_take_party_actions(run, opened):
    with pytest.raises(Forbidden):
        run(opened, Accept(), SYSTEM)


def test_wrong_status_is_conflict(run, opened):
    with pytest.raises(Conflict) as refused:
        run(opened, ShipReturn("ups", "1Z1"), BUYER)
    assert refused.value.code == "invalid_state"


def test_refused_action_leaves_case_unchanged(run, opened):
    snapshot = copy.deepcopy(opened)
    with pytest.raises(PolicyViolation):
        run(opened, MakeOffer(OfferTerms("refund", Money(9999, USD))), SELLER)
    assert opened == snapshot


def test_can_and_allowed_actions_follow_the_table(ctx_at, opened):
    ctx = ctx_at(T0 + HOUR)
    assert can(opened, "accept", SELLER, ctx)
    assert not can(opened, "accept", BUYER, ctx)
    assert allowed_actions(opened, SELLER, ctx) == [
        "make_offer",
        "accept",
        "reject",
        "post_message",
    ]
    assert allowed_actions(opened, BUYER, ctx) == ["make_offer", "withdraw", "post_message"]


# --------------------------------------------------------------------------- offer validation


def test_offer_above_refundable_violates_policy(run, opened):
    with pytest.raises(PolicyViolation) as refused:
        run(opened, MakeOffer(OfferTerms("refund", Money(2900, USD))), SELLER)
    assert refused.value.code == "amount_exceeds_refundable"
    assert refused.value.message == "At most 28.99 USD can be refunded on this case."
    assert refused.value.money == Money(2899, USD)
    assert refused.value.clauses == ()  # the cap is what was paid, not one of the clauses


FULL_NO_RETURN = OfferTerms("refund", Money(2899, USD))


@pytest.mark.parametrize("reason", ["quality_issue", "not_as_described"])
def test_buyer_cannot_open_an_r2_case_asking_for_everything_and_keeping_the_item(open_at, reason):
    """R2: keep it for a partial refund (below the full refund), or return it."""
    with pytest.raises(PolicyViolation) as refused:
        open_at(T0, reason=reason, request=FULL_NO_RETURN)
    assert refused.value.code == "full_refund_needs_return"
    assert refused.value.clauses == ("R2",)
    assert refused.value.param == "amount"
    assert "2899" not in refused.value.message and "28.99 USD" in refused.value.message


@pytest.mark.parametrize("reason", ["quality_issue", "not_as_described"])
def test_an_r2_case_may_ask_for_less_than_everything_or_everything_with_a_return(open_at, reason):
    just_below = open_at(T0, reason=reason, request=OfferTerms("refund", Money(2898, USD)))
    assert just_below.current_offer.amount == Money(2898, USD)
    returned = open_at(T0, reason=reason, request=FULL_WITH_RETURN)
    assert returned.current_offer.return_required


@pytest.mark.parametrize("reason", ["damaged", "significantly_not_as_described"])
def test_r1_reasons_may_ask_for_a_full_refund_without_a_return(open_at, reason):
    case = open_at(T0, reason=reason, request=FULL_NO_RETURN)
    assert case.current_offer.amount == Money(2899, USD)


def test_buyer_cannot_counter_with_a_full_refund_without_return_on_an_r2_case(run, open_at):
    case = open_at(T0, reason="quality_issue", request=PARTIAL)
    case = run(case, MakeOffer(OfferTerms("refund", Money(500, USD))), SELLER).case
    with pytest.raises(PolicyViolation) as refused:
        run(case, MakeOffer(FULL_NO_RETURN), BUYER)
    assert refused.value.code == "full_refund_needs_return"
    assert case.status == "awaiting_buyer" and case.current_offer.by == "seller"


@pytest.mark.parametrize("reason", ["quality_issue", "not_as_described"])
def test_an_r2_buyer_asks_for_a_replacement_with_the_item_s_return(open_at, reason):
    """Else the buyer keeps the item and gets a new one, or, should the seller never ship
    it, the full refund of D6 on top."""
    with pytest.raises(PolicyViolation) as refused:
        open_at(T0, reason=reason, request=OfferTerms("replacement"))
    assert (refused.value.code, refused.value.clauses) == ("replacement_needs_return", ("R2",))
    assert refused.value.param == "return_required"
    swapped = open_at(T0, reason=reason, request=OfferTerms("replacement", None, True))
    assert swapped.current_offer.return_required


def test_an_r1_buyer_may_ask_for_a_replacement_and_keep_the_broken_item(open_at):
    case = open_at(T0, reason="damaged", request=OfferTerms("replacement"))
    assert not case.current_offer.return_required


def test_an_r2_replacement_the_seller_never_ships_refunds_after_the_return(run, open_at):
    case = open_at(T0, reason="quality_issue", request=OfferTerms("replacement", None, True))
    case = run(case, Accept(), SELLER).case
    assert case.status == "awaiting_return_shipment"  # not a replacement before the return


def test_seller_may_offer_a_full_refund_without_return_on_an_r2_case(run, open_at):
    """Only the buyer's asking is limited by R2: a seller may be generous."""
    case = open_at(T0, reason="quality_issue", request=PARTIAL)
    case = run(case, MakeOffer(FULL_NO_RETURN), SELLER).case
    case = run(case, Accept(), BUYER).case
    assert case.status == "refund_pending"
    assert case.refund_granted == Money(2899, USD)


def test_mediator_may_decide_a_full_refund_without_return_on_an_r2_case(run, open_at):
    case = _escalated(run, open_at(T0, reason="quality_issue", request=PARTIAL))
    case = run(case, Decide("refund", Money(2899, USD), return_required=False), MEDIATOR).case
    assert case.status == "refund_pending"
    assert case.refund_granted == Money(2899, USD)


@pytest.mark.parametrize("amount", [0, -1])
def test_offer_of_zero_or_less_is_invalid(run, opened, amount):
    with pytest.raises(InvalidInput) as refused:
        run(opened, MakeOffer(OfferTerms("refund", Money(amount, USD))), SELLER)
    assert refused.value.code == "invalid_amount"
    assert refused.value.message == "A refund must be more than zero."


def test_offer_in_another_currency_is_invalid(run, opened):
    with pytest.raises(InvalidInput) as refused:
        run(opened, MakeOffer(OfferTerms("refund", Money(1000, "EUR"))), SELLER)
    assert refused.value.code == "currency_mismatch"


def test_refund_offer_without_amount_is_invalid(run, opened):
    with pytest.raises(InvalidInput) as refused:
        run(opened, MakeOffer(OfferTerms("refund")), SELLER)
    assert refused.value.code == "amount_required"


def test_replacement_offer_with_amount_is_invalid(run, opened):
    with pytest.raises(InvalidInput) as refused:
        run(opened, MakeOffer(OfferTerms("replacement", Money(100, USD))), SELLER)
    assert refused.value.code == "amount_not_allowed"


def test_unknown_offer_kind_is_invalid(run, opened):
    with pytest.raises(InvalidInput):
        run(opened, MakeOffer(OfferTerms("voucher", Money(100, USD))), SELLER)


def test_unknown_return_payer_is_invalid(run, opened):
    terms = OfferTerms("refund", Money(100, USD), True, "courier")
    with pytest.raises(InvalidInput) as refused:
        run(opened, MakeOffer(terms), SELLER)
    assert refused.value.code == "invalid_payer"


def test_change_of_mind_refund_without_return_violates_r3(run, open_at):
    case = open_at(T0, reason="changed_mind", request=FULL_WITH_RETURN)
    with pytest.raises(PolicyViolation) as refused:
        run(case, MakeOffer(PARTIAL), SELLER)
    assert refused.value.code == "return_required"
    assert refused.value.clauses == ("R3",)


def test_change_of_mind_request_without_return_cannot_be_opened(open_at):
    with pytest.raises(PolicyViolation):
        open_at(T0, reason="changed_mind", request=PARTIAL)


def test_not_received_with_return_is_invalid(run, open_at):
    case = open_at(T0, reason="not_received")
    with pytest.raises(InvalidInput) as refused:
        run(case, MakeOffer(FULL_WITH_RETURN), SELLER)
    assert refused.value.code == "nothing_to_return"


def test_offer_without_payer_uses_case_default(run, open_at):
    case = open_at(T0, default_return_payer="seller")
    case = run(case, MakeOffer(FULL_WITH_RETURN), SELLER).case
    assert case.current_offer.return_shipping_paid_by == "seller"


# --------------------------------------------------------------------------- escalation (X1)


def test_buyer_cannot_escalate_right_after_opening(run, opened):
    with pytest.raises(PolicyViolation) as refused:
        run(opened, Escalate("now"), BUYER)
    assert refused.value.code == "escalation_not_allowed_yet"
    assert refused.value.clauses == ("X1",)


def test_buyer_may_escalate_once_seller_answered(run, opened):
    case = run(opened, MakeOffer(PARTIAL), SELLER).case
    result = run(case, Escalate("too little"), BUYER)
    assert result.case.status == "under_review"
    assert result.event.clauses == ("X1",)


def test_buyer_may_escalate_once_seller_answer_is_overdue(run, opened):
    due = opened.deadline.due_at
    assert run(opened, Escalate("no answer"), BUYER, due).case.status == "under_review"


def test_buyer_cannot_escalate_just_before_seller_answer_is_due(run, opened):
    due = opened.deadline.due_at
    with pytest.raises(PolicyViolation):
        run(opened, Escalate("no answer"), BUYER, due - timedelta(seconds=1))


def test_seller_cannot_escalate_before_answering(run, opened):
    with pytest.raises(PolicyViolation) as refused:
        run(opened, Escalate("buyer lies"), SELLER, opened.deadline.due_at)
    assert refused.value.code == "escalation_not_allowed_yet"


def test_seller_may_escalate_after_answering(run, opened):
    case = run(opened, MakeOffer(PARTIAL), SELLER).case
    case = run(case, MakeOffer(OfferTerms("refund", Money(2000, USD))), BUYER).case
    assert run(case, Escalate("stuck"), SELLER).case.status == "under_review"


# --------------------------------------------------------------------------- resolved


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("actor", [BUYER, SELLER, MEDIATOR, OPERATOR, SYSTEM])
def test_resolved_case_accepts_no_action(run, opened, action, actor):
    case = run(opened, Withdraw(), BUYER).case
    with pytest.raises(Conflict):
        run(case, SAMPLE_COMMANDS[action], actor, case.updated_at + timedelta(days=365))


def test_every_action_has_a_sample_command():
    assert set(SAMPLE_COMMANDS) == set(ACTIONS)


# --------------------------------------------------------------------------- refund grant


def test_mediator_replacement_after_failed_inspection_drops_the_refund_grant(run, opened):
    case = _returned(run, _agree_on(run, opened, FULL_WITH_RETURN))
    case = run(case, Inspect(passed=False), SELLER).case
    case = run(case, Decide("replacement"), MEDIATOR).case
    assert case.status == "awaiting_replacement_shipment"
    assert case.refund_granted is None


def test_withdrawing_after_agreeing_on_a_refund_leaves_no_grant(run, opened):
    case = _agree_on(run, opened, FULL_WITH_RETURN)
    case = run(case, Withdraw(), BUYER).case
    assert case.outcome == "withdrawn"
    assert case.refund_granted is None


def test_mediator_rejecting_after_failed_inspection_leaves_no_grant(run, opened):
    case = _returned(run, _agree_on(run, opened, FULL_WITH_RETURN))
    case = run(case, Inspect(passed=False), SELLER).case
    case = run(case, Decide("reject"), MEDIATOR).case
    assert case.outcome == "rejected"
    assert case.refund_granted is None
