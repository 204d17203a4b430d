"""Deadlines D1-D7: what each status sets, and what the clock does when one passes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from restitution.domain.cases import (
    SYSTEM,
    Accept,
    Actor,
    AddReturnAddress,
    AddReturnLabel,
    AutoAccept,
    AutoEscalate,
    Context,
    Deadline,
    Decide,
    Escalate,
    Expire,
    Inspect,
    MakeOffer,
    MarkReturnDelivered,
    OfferTerms,
    Reject,
    ShipReplacement,
    ShipReturn,
    apply,
    compute_deadline,
    deadline_command,
)
from restitution.domain.errors import Conflict, PolicyViolation
from restitution.domain.money import Money
from restitution.domain.orders import Address
from restitution.domain.policy import DeadlineRule

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
BUYER = Actor("buyer", "b_42")
SELLER = Actor("seller", "s_7")
MEDIATOR = Actor("mediator", "m_1")
USD = "USD"

PARTIAL = OfferTerms("refund", Money(1000, USD))
FULL_WITH_RETURN = OfferTerms("refund", Money(2899, USD), return_required=True)


@pytest.fixture
def run(ctx_at):
    def _run(case, command, actor, at):
        return apply(case, command, actor, ctx_at(at))

    return _run


@pytest.fixture
def fire(ctx_at):
    """The clock firing the case's current deadline at `at`."""

    def _fire(case, at):
        return apply(case, deadline_command(case), SYSTEM, ctx_at(at))

    return _fire


@pytest.fixture
def opened(open_at):
    return open_at(T0)


@pytest.fixture
def countered(run, opened):
    """Seller answered with a counter on day 1: awaiting_buyer."""
    return run(opened, MakeOffer(PARTIAL), SELLER, T0 + DAY).case


@pytest.fixture
def awaiting_return(run, opened):
    """The seller accepted a refund-with-return counter... agreed on day 1."""
    case = run(opened, MakeOffer(FULL_WITH_RETURN), SELLER, T0 + DAY).case
    return run(case, Accept(), BUYER, T0 + 2 * DAY).case


@pytest.fixture
def awaiting_instructions(run, open_at):
    """As `awaiting_return`, on an order without a return address: agreed on day 2."""
    case = open_at(T0, return_address=None)
    case = run(case, MakeOffer(FULL_WITH_RETURN), SELLER, T0 + DAY).case
    return run(case, Accept(), BUYER, T0 + 2 * DAY).case


SELLERS_ADDRESS = Address("Shop 7 returns", "9 Dock St", "Ningbo", "315000", "CN")


@pytest.fixture
def in_transit(run, awaiting_return):
    return run(awaiting_return, ShipReturn("ups", "1Z1"), BUYER, T0 + 3 * DAY).case


@pytest.fixture
def awaiting_inspection(run, in_transit):
    return run(in_transit, MarkReturnDelivered(), SELLER, T0 + 4 * DAY).case


@pytest.fixture
def awaiting_replacement(run, opened):
    case = run(opened, MakeOffer(OfferTerms("replacement")), SELLER, T0 + DAY).case
    return run(case, Accept(), BUYER, T0 + 2 * DAY).case


@pytest.fixture
def under_review(run, countered):
    return run(countered, Escalate("stuck"), BUYER, T0 + 2 * DAY).case


# --------------------------------------------------------------------------- what is set


def test_d1_seller_must_answer_within_5_days_of_opening(opened):
    assert opened.deadline == Deadline("D1", "auto_accept", "seller", T0 + 5 * DAY)


def test_d1_restarts_with_each_buyer_offer(run, opened):
    case = run(opened, MakeOffer(OfferTerms("refund", Money(2000, USD))), BUYER, T0 + 2 * DAY).case
    assert case.deadline == Deadline("D1", "auto_accept", "seller", T0 + 7 * DAY)


def test_d2_negotiation_ends_7_days_after_seller_first_answer(countered):
    assert countered.deadline == Deadline("D2", "auto_escalate", "buyer", T0 + 8 * DAY)


def test_d2_counts_from_the_first_answer_not_the_latest(run, countered):
    case = run(countered, MakeOffer(PARTIAL), SELLER, T0 + 3 * DAY).case
    assert case.deadline.due_at == T0 + 8 * DAY


def test_d2_wins_over_d1_when_earlier(run, countered):
    case = run(
        countered, MakeOffer(OfferTerms("refund", Money(2000, USD))), BUYER, T0 + 6 * DAY
    ).case
    assert case.deadline == Deadline("D2", "auto_escalate", "seller", T0 + 8 * DAY)


def test_d1_wins_over_d2_when_earlier(run, countered):
    case = run(
        countered, MakeOffer(OfferTerms("refund", Money(2000, USD))), BUYER, T0 + 2 * DAY
    ).case
    assert case.deadline == Deadline("D1", "auto_accept", "seller", T0 + 7 * DAY)


def test_d3_buyer_ships_return_within_10_days(awaiting_return):
    assert awaiting_return.deadline == Deadline("D3", "expire", "buyer", T0 + 12 * DAY)


def test_d3_runs_against_the_seller_while_the_buyer_has_no_return_address(
    awaiting_instructions,
):
    assert awaiting_instructions.deadline == Deadline(
        "D3", "auto_escalate", "seller", T0 + 12 * DAY
    )


def test_late_label_gives_the_buyer_the_whole_d3_period_from_the_label(run, awaiting_instructions):
    day_9 = T0 + 11 * DAY  # nine days after the agreement
    case = run(
        awaiting_instructions, AddReturnLabel("ups", "https://labels.example/1"), SELLER, day_9
    ).case
    assert case.deadline == Deadline("D3", "expire", "buyer", day_9 + 10 * DAY)
    assert case.return_shipment.instructions_at == day_9


def test_address_given_by_the_seller_starts_the_buyers_d3(run, awaiting_instructions):
    at = T0 + 4 * DAY
    case = run(awaiting_instructions, AddReturnAddress(SELLERS_ADDRESS), SELLER, at).case
    assert case.deadline == Deadline("D3", "expire", "buyer", at + 10 * DAY)


def test_d3_counts_from_the_first_instructions_not_the_latest(run, awaiting_instructions):
    case = run(awaiting_instructions, AddReturnAddress(SELLERS_ADDRESS), SELLER, T0 + 4 * DAY).case
    case = run(case, AddReturnLabel("ups", "https://labels.example/1"), SELLER, T0 + 8 * DAY).case
    assert case.deadline == Deadline("D3", "expire", "buyer", T0 + 14 * DAY)


def test_a_label_for_a_known_address_leaves_d3_from_the_agreement(run, awaiting_return):
    case = run(
        awaiting_return, AddReturnLabel("ups", "https://labels.example/1"), SELLER, T0 + 9 * DAY
    ).case
    assert case.deadline == Deadline("D3", "expire", "buyer", T0 + 12 * DAY)


def test_a_return_stored_without_its_instructions_time_counts_from_the_agreement(
    awaiting_return, policy
):
    # Returns stored before the time was kept hold no `instructions_at`.
    case = awaiting_return.copy()
    case.return_shipment = dataclasses.replace(case.return_shipment, instructions_at=None)
    assert compute_deadline(case, policy) == Deadline("D3", "expire", "buyer", T0 + 12 * DAY)


def test_d4_return_in_transit_for_30_days(in_transit):
    assert in_transit.deadline == Deadline("D4", "auto_escalate", "seller", T0 + 33 * DAY)


def test_d5_seller_inspects_within_3_business_days(awaiting_inspection):
    # delivered Friday 2026-03-06 → Mon, Tue, Wed
    expected = datetime(2026, 3, 11, 10, 0, tzinfo=UTC)
    assert awaiting_inspection.deadline == Deadline(
        "D5", "auto_pass_inspection", "seller", expected
    )


def test_d6_seller_ships_replacement_within_7_days(awaiting_replacement):
    assert awaiting_replacement.deadline == Deadline(
        "D6", "convert_to_refund", "seller", T0 + 9 * DAY
    )


def test_d7_mediator_target_has_no_automatic_action(under_review):
    assert under_review.deadline == Deadline("D7", "decide", "mediator", T0 + 9 * DAY, auto=False)
    assert deadline_command(under_review) is None


def test_refund_pending_has_no_deadline(run, opened):
    assert run(opened, Accept(), SELLER, T0 + DAY).case.deadline is None


def test_replacement_in_transit_has_no_deadline(run, awaiting_replacement):
    case = run(awaiting_replacement, ShipReplacement("dhl", "JD1"), SELLER, T0 + 3 * DAY).case
    assert case.deadline is None


def test_d1_in_business_days_skips_the_weekend(open_at, policy, new_id):
    rule = DeadlineRule("D1", "3 business days", 3, business_days=True)
    business = dataclasses.replace(policy, deadlines={**policy.deadlines, "D1": rule})
    friday = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)
    case = open_at(friday)
    case = apply(
        case,
        MakeOffer(PARTIAL),
        BUYER,
        Context(friday, business, new_id),
    ).case
    assert case.deadline.due_at == datetime(2026, 3, 11, 10, 0, tzinfo=UTC)


def test_buyer_may_escalate_when_business_day_d1_is_overdue(open_at, policy, new_id):
    rule = DeadlineRule("D1", "3 business days", 3, business_days=True)
    business = dataclasses.replace(policy, deadlines={**policy.deadlines, "D1": rule})
    friday = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)
    case = open_at(friday)
    monday_after_3_days = friday + 3 * DAY
    with pytest.raises(PolicyViolation):
        apply(case, Escalate(), BUYER, Context(monday_after_3_days, business, new_id))
    due = datetime(2026, 3, 11, 10, 0, tzinfo=UTC)
    escalated = apply(case, Escalate(), BUYER, Context(due, business, new_id)).case
    assert escalated.status == "under_review"


# --------------------------------------------------------------------------- D5 and holidays


def _inspection_due(run, open_at, delivered_at):
    case = open_at(delivered_at - 4 * DAY)
    case = run(case, MakeOffer(FULL_WITH_RETURN), SELLER, delivered_at - 3 * DAY).case
    case = run(case, Accept(), BUYER, delivered_at - 2 * DAY).case
    case = run(case, ShipReturn("ups", "1Z1"), BUYER, delivered_at - DAY).case
    return run(case, MarkReturnDelivered(), SELLER, delivered_at).case.deadline.due_at


def test_d5_skips_thanksgiving_and_the_weekend(run, open_at):
    delivered = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # Wednesday before Thanksgiving
    assert _inspection_due(run, open_at, delivered) == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_d5_from_friday_skips_the_weekend(run, open_at):
    delivered = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert _inspection_due(run, open_at, delivered) == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- the clock fires


def test_deadline_does_not_fire_a_second_early(fire, opened):
    with pytest.raises(Conflict) as refused:
        fire(opened, opened.deadline.due_at - SECOND)
    assert refused.value.code == "deadline_not_due"


def test_clock_cannot_fire_another_deadline_than_the_current_one(run, opened):
    with pytest.raises(Conflict) as refused:
        run(opened, AutoEscalate(), SYSTEM, opened.deadline.due_at + 30 * DAY)
    assert refused.value.code == "no_such_deadline"


def test_d1_auto_accepts_buyer_offer(fire, opened):
    result = fire(opened, opened.deadline.due_at)
    assert result.case.status == "refund_pending"
    assert result.case.agreed_offer.by == "buyer"
    assert result.case.refund_granted == opened.refundable
    assert "D1" in result.event.clauses


def test_d2_auto_escalates_awaiting_buyer(fire, countered):
    result = fire(countered, countered.deadline.due_at)
    assert result.case.status == "under_review"
    assert "D2" in result.event.clauses


def test_d2_auto_escalates_awaiting_seller(run, fire, countered):
    case = run(
        countered, MakeOffer(OfferTerms("refund", Money(2000, USD))), BUYER, T0 + 6 * DAY
    ).case
    result = fire(case, T0 + 8 * DAY)
    assert result.case.status == "under_review"
    assert "D2" in result.event.clauses


def test_d3_expires_unshipped_return_without_refund(fire, awaiting_return):
    result = fire(awaiting_return, awaiting_return.deadline.due_at)
    assert (result.case.status, result.case.outcome) == ("resolved", "expired")
    assert result.case.refunded is None
    assert result.case.refund_granted is None
    assert "D3" in result.event.clauses


def test_d3_without_return_instructions_escalates_to_the_platform(fire, awaiting_instructions):
    result = fire(awaiting_instructions, awaiting_instructions.deadline.due_at)
    assert result.case.status == "under_review"
    assert result.case.outcome is None
    assert result.case.escalated_at == T0 + 12 * DAY
    assert result.event.type == "case.escalated"
    assert result.event.data["reason"] == "the seller gave no return address or label"
    assert result.event.clauses == ("D3", "X1")


def test_the_clock_cannot_expire_a_return_the_buyer_had_nowhere_to_send(run, awaiting_instructions):
    with pytest.raises(Conflict) as refused:
        run(awaiting_instructions, Expire(), SYSTEM, T0 + 30 * DAY)
    assert refused.value.code == "no_such_deadline"


def test_d4_escalates_lost_return(fire, in_transit):
    result = fire(in_transit, in_transit.deadline.due_at)
    assert result.case.status == "under_review"
    assert "D4" in result.event.clauses


def test_d5_passes_inspection_and_refunds(fire, awaiting_inspection):
    result = fire(awaiting_inspection, awaiting_inspection.deadline.due_at)
    assert result.case.status == "refund_pending"
    assert {"D5", "I1"} <= set(result.event.clauses)


def test_d6_converts_to_full_refund(fire, awaiting_replacement):
    result = fire(awaiting_replacement, awaiting_replacement.deadline.due_at)
    assert result.case.status == "refund_pending"
    assert result.case.refund_granted == awaiting_replacement.refundable
    assert {"D6", "R1"} <= set(result.event.clauses)


@pytest.mark.parametrize(
    "fixture", ["opened", "countered", "awaiting_return", "awaiting_instructions", "in_transit",
                "awaiting_inspection", "awaiting_replacement"],
)  # fmt: skip
def test_every_auto_deadline_refuses_one_second_early_and_fires_when_due(request, fire, fixture):
    case = request.getfixturevalue(fixture)
    with pytest.raises(Conflict):
        fire(case, case.deadline.due_at - SECOND)
    result = fire(case, case.deadline.due_at)
    assert case.deadline.kind in result.event.clauses
    assert result.case.version == case.version + 1


def test_mediator_target_does_not_fire(run, under_review):
    with pytest.raises(Conflict):
        run(under_review, AutoAccept(), SYSTEM, under_review.deadline.due_at + 30 * DAY)


def test_person_acting_after_due_time_is_not_blocked(run, opened):
    case = run(opened, Reject("no"), SELLER, opened.deadline.due_at + DAY).case
    assert case.status == "awaiting_buyer"


def test_decision_after_review_clears_d7(run, under_review):
    case = run(under_review, Decide("replacement"), MEDIATOR, T0 + 3 * DAY).case
    assert case.deadline.kind == "D6"


def test_inspection_failure_starts_d7_from_the_inspection(run, awaiting_inspection):
    at = T0 + 5 * DAY
    case = run(awaiting_inspection, Inspect(passed=False), SELLER, at).case
    assert case.deadline == Deadline("D7", "decide", "mediator", at + 7 * DAY, auto=False)


def test_reject_by_seller_sets_d2_for_buyer(run, opened):
    case = run(opened, Reject("no"), SELLER, T0 + DAY).case
    assert case.deadline == Deadline("D2", "auto_escalate", "buyer", T0 + 8 * DAY)
