from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from restitution.domain.eligibility import (
    Verdict,
    evaluate,
    evaluate_line,
    require_evidence,
)
from restitution.domain.errors import InvalidInput, PolicyViolation
from restitution.domain.money import Money
from restitution.domain.orders import Order, OrderLine, Payment, SellerTerms
from restitution.domain.policy import REASONS, Policy
from restitution.policies import default_policy

PLACED = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
SHIPPED = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
DELIVERED = datetime(2026, 11, 12, 10, 0, tzinfo=UTC)
PROMISED = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
POLICY = default_policy()


def _line(**changes: Any) -> OrderLine:
    line = OrderLine(
        line_id="l1", sku="sku-1", title="Kettle", category="home/kitchen",
        quantity=1, unit_amount=1000,
    )  # fmt: skip
    return replace(line, **changes)


def _order(*lines: OrderLine, **changes: Any) -> Order:
    order = Order(
        order_id="o1", buyer_id="b1", seller_id="s1", currency="USD", placed_at=PLACED,
        payment=Payment("card"), lines=lines or (_line(),), shipped_at=SHIPPED,
        delivered_at=DELIVERED, promised_delivery_by=PROMISED,
    )  # fmt: skip
    return replace(order, **changes)


def _undelivered(**changes: Any) -> Order:
    return _order(delivered_at=None, **changes)


def _judge(
    order: Order, reason: str, now: datetime, policy: Policy = POLICY, **kwargs: int
) -> Verdict:
    return evaluate(policy, order, "l1", reason, now, **kwargs)


# W1 -----------------------------------------------------------------------------------


def test_w1_allows_a_case_at_exactly_15_days_after_delivery() -> None:
    verdict = _judge(_order(), "damaged", DELIVERED + timedelta(days=15))
    assert verdict.eligible
    assert verdict.window_closes_at == DELIVERED + timedelta(days=15)
    assert verdict.clause_ids[0] == "W1"


def test_w1_refuses_a_case_one_second_after_15_days() -> None:
    verdict = _judge(_order(), "damaged", DELIVERED + timedelta(days=15) + SECOND)
    assert not verdict.eligible
    assert verdict.code == "return_window_closed"
    assert verdict.clause_ids == ("W1",)
    assert verdict.window_closes_at == DELIVERED + timedelta(days=15)
    assert "closed on 27 November 2026, 10:00 UTC" in verdict.message


def test_a_case_about_the_item_waits_for_delivery() -> None:
    verdict = _judge(_undelivered(), "damaged", DELIVERED)
    assert (verdict.eligible, verdict.code) == (False, "not_yet_eligible")
    assert verdict.window_closes_at is None


# W2 -----------------------------------------------------------------------------------


def test_w2_gives_electronics_subcategories_30_days() -> None:
    order = _order(_line(category="electronics/phones"))
    verdict = _judge(order, "damaged", DELIVERED + timedelta(days=30))
    assert verdict.eligible
    assert verdict.clause_ids[0] == "W2"


def test_w2_refuses_electronics_one_second_after_30_days() -> None:
    order = _order(_line(category="electronics/phones"))
    verdict = _judge(order, "damaged", DELIVERED + timedelta(days=30) + SECOND)
    assert verdict.code == "return_window_closed"
    assert verdict.clause_ids == ("W2",)


def test_a_category_that_only_starts_with_the_same_letters_does_not_match() -> None:
    order = _order(_line(category="electronicsx"))
    verdict = _judge(order, "damaged", DELIVERED + timedelta(days=15) + SECOND)
    assert verdict.code == "return_window_closed"
    assert verdict.clause_ids == ("W1",)


def test_the_longest_category_prefix_decides_the_window() -> None:
    policy = replace(
        POLICY, category_windows={"electronics": 30, "electronics/phones/refurbished": 10}
    )
    order = _order(_line(category="electronics/phones/refurbished/grade-b"))
    at_close = _judge(order, "damaged", DELIVERED + timedelta(days=10), policy)
    after = _judge(order, "damaged", DELIVERED + timedelta(days=10) + SECOND, policy)
    assert at_close.eligible and at_close.clause_ids[0] == "W2"
    assert after.code == "return_window_closed"


# W3 -----------------------------------------------------------------------------------


def test_w3_refuses_not_received_before_the_promised_date() -> None:
    verdict = _judge(_undelivered(), "not_received", PROMISED)
    assert (verdict.eligible, verdict.code) == (False, "not_yet_eligible")
    assert verdict.clause_ids == ("W3",)
    assert verdict.window_closes_at == SHIPPED + timedelta(days=60)


def test_w3_allows_not_received_once_the_promised_date_has_passed() -> None:
    verdict = _judge(_undelivered(), "not_received", PROMISED + SECOND)
    assert verdict.eligible
    assert verdict.clause_ids[:2] == ("W3", "R1")
    assert verdict.remedies == ("full_refund", "replacement")


def test_w3_allows_not_received_at_the_end_of_the_protection_period() -> None:
    verdict = _judge(_undelivered(), "not_received", SHIPPED + timedelta(days=60))
    assert verdict.eligible


def test_w3_refuses_not_received_after_the_protection_period() -> None:
    verdict = _judge(_undelivered(), "not_received", SHIPPED + timedelta(days=60) + SECOND)
    assert verdict.code == "return_window_closed"
    assert verdict.clause_ids == ("W3",)


def test_not_received_is_refused_for_an_order_marked_delivered() -> None:
    verdict = _judge(_order(), "not_received", DELIVERED + timedelta(days=1))
    assert verdict.code == "already_delivered"
    assert verdict.clause_ids == ("W3",)


def test_without_a_promised_date_not_received_opens_once_shipped() -> None:
    order = _undelivered(promised_delivery_by=None)
    assert _judge(order, "not_received", SHIPPED).code == "not_yet_eligible"
    assert _judge(order, "not_received", SHIPPED + SECOND).eligible


def test_an_order_never_shipped_is_protected_from_when_it_was_placed() -> None:
    order = _undelivered(shipped_at=None, promised_delivery_by=None)
    assert _judge(order, "not_received", PLACED + timedelta(days=60)).eligible
    late = _judge(order, "not_received", PLACED + timedelta(days=60) + SECOND)
    assert late.code == "return_window_closed"


# R1, R2, R3 ---------------------------------------------------------------------------


def _two_line_order(**changes: Any) -> Order:
    return _order(
        _line(line_id="l1", quantity=2, unit_amount=1000),
        _line(line_id="l2", unit_amount=500),
        shipping_amount=301,
        **changes,
    )


def test_r1_full_refund_is_the_price_times_quantity_plus_the_shipping_share() -> None:
    order = _two_line_order()
    now = DELIVERED + timedelta(days=1)
    first = evaluate(POLICY, order, "l1", "damaged", now)
    second = evaluate(POLICY, order, "l2", "damaged", now)
    assert first.max_refund == Money(2000 + 241, "USD")
    assert second.max_refund == Money(500 + 60, "USD")
    assert (first.max_refund + second.max_refund).amount == 2500 + 301


def test_r1_refund_for_part_of_a_line_gets_that_part_of_the_shipping_share() -> None:
    # half of l1's 241 of shipping, rounded up
    verdict = _judge(_two_line_order(), "damaged", DELIVERED, quantity=1)
    assert verdict.max_refund == Money(1000 + 121, "USD")


def test_r1_a_line_claimed_unit_by_unit_gives_back_all_that_was_paid_for_it() -> None:
    first = _judge(_two_line_order(), "damaged", DELIVERED, quantity=1).max_refund
    second = _judge(
        _two_line_order(), "damaged", DELIVERED, quantity=1, already_refunded=first.amount
    ).max_refund
    assert (first.amount, second.amount) == (1121, 1120)
    assert first.amount + second.amount == 2000 + 241  # what was paid for l1, not a unit less


def test_r1_damaged_offers_a_refund_with_or_without_return_or_a_replacement() -> None:
    verdict = _judge(_order(), "damaged", DELIVERED)
    assert verdict.remedies == ("return_and_refund", "full_refund", "replacement")
    assert "R1" in verdict.clause_ids


def test_r1_cites_every_clause_that_decided_an_allowed_verdict() -> None:
    verdict = _judge(_order(), "significantly_not_as_described", DELIVERED)
    assert verdict.clause_ids == ("W1", "R1", "S1", "E1", "F1")


def test_r2_lets_the_buyer_keep_the_item_for_a_partial_refund() -> None:
    verdict = _judge(_order(), "quality_issue", DELIVERED)
    assert verdict.remedies == ("partial_refund", "return_and_refund", "replacement")
    assert verdict.clause_ids[:2] == ("W1", "R2")


def test_r3_refuses_a_change_of_mind_without_seller_terms() -> None:
    verdict = _judge(_order(), "changed_mind", DELIVERED)
    assert (verdict.eligible, verdict.code) == (False, "change_of_mind_not_accepted")
    assert verdict.clause_ids == ("R3", "W1")
    assert verdict.remedies == ()
    assert verdict.max_refund == Money(0, "USD")


def test_r3_allows_a_change_of_mind_with_return_when_the_seller_accepts_it() -> None:
    order = _order(seller_terms=SellerTerms(accepts_change_of_mind=True))
    verdict = _judge(order, "changed_mind", DELIVERED)
    assert verdict.eligible
    assert verdict.remedies == ("return_and_refund",)
    assert verdict.clause_ids[:2] == ("W1", "R3")


def test_r3_a_policy_may_accept_changes_of_mind_from_every_seller() -> None:
    policy = replace(POLICY, change_of_mind_needs_seller_terms=False)
    assert _judge(_order(), "changed_mind", DELIVERED, policy).eligible


# S1 -----------------------------------------------------------------------------------


def test_s1_the_buyer_pays_return_shipping_for_a_quality_issue() -> None:
    assert _judge(_order(), "quality_issue", DELIVERED).return_shipping_paid_by == "buyer"


def test_s1_the_seller_pays_return_shipping_when_it_offers_free_returns() -> None:
    order = _order(seller_terms=SellerTerms(free_return_shipping=True))
    assert _judge(order, "quality_issue", DELIVERED).return_shipping_paid_by == "seller"


def test_s1_the_seller_pays_return_shipping_for_a_damaged_item() -> None:
    assert _judge(_order(), "damaged", DELIVERED).return_shipping_paid_by == "seller"


# H1, H2 -------------------------------------------------------------------------------


@pytest.mark.parametrize("category", ["apparel/underwear", "apparel/underwear/briefs"])
def test_h1_refuses_a_quality_issue_on_a_hygiene_item(category: str) -> None:
    verdict = _judge(_order(_line(category=category)), "quality_issue", DELIVERED)
    assert (verdict.eligible, verdict.code) == (False, "not_returnable_hygiene")
    assert verdict.clause_ids == ("H1", "W1")


@pytest.mark.parametrize("category", ["apparel/underwear", "apparel/underwear/briefs"])
def test_h1_allows_a_damaged_hygiene_item_and_cites_the_exemption(category: str) -> None:
    verdict = _judge(_order(_line(category=category)), "damaged", DELIVERED)
    assert verdict.eligible
    assert "H1" in verdict.clause_ids


def test_h1_does_not_apply_outside_hygiene_categories() -> None:
    verdict = _judge(_order(_line(category="apparel/outerwear")), "quality_issue", DELIVERED)
    assert verdict.eligible
    assert "H1" not in verdict.clause_ids


def test_h2_refuses_not_as_described_for_a_custom_made_item() -> None:
    verdict = _judge(_order(_line(custom_made=True)), "not_as_described", DELIVERED)
    assert (verdict.eligible, verdict.code) == (False, "not_returnable_custom_made")
    assert verdict.clause_ids == ("H2", "W1")


def test_h2_allows_significantly_not_as_described_for_a_custom_made_item() -> None:
    order = _order(_line(custom_made=True))
    verdict = _judge(order, "significantly_not_as_described", DELIVERED)
    assert verdict.eligible
    assert "H2" in verdict.clause_ids


# E1 -----------------------------------------------------------------------------------


def test_e1_evidence_is_required_for_a_damaged_item() -> None:
    verdict = _judge(_order(), "damaged", DELIVERED)
    assert verdict.evidence_required
    assert "E1" in verdict.clause_ids


def test_e1_evidence_is_not_required_for_not_received() -> None:
    verdict = _judge(_undelivered(), "not_received", PROMISED + SECOND)
    assert not verdict.evidence_required
    assert "E1" not in verdict.clause_ids


def test_require_evidence_refuses_a_damaged_claim_without_attachments() -> None:
    with pytest.raises(PolicyViolation) as raised:
        require_evidence(POLICY, "damaged", 0)
    assert raised.value.code == "evidence_required"
    assert raised.value.clauses == ("E1",)


def test_require_evidence_accepts_a_damaged_claim_with_one_attachment() -> None:
    require_evidence(POLICY, "damaged", 1)


def test_require_evidence_accepts_not_received_without_attachments() -> None:
    require_evidence(POLICY, "not_received", 0)


# amounts and input --------------------------------------------------------------------


def test_already_refunded_money_caps_the_refund() -> None:
    verdict = _judge(_two_line_order(), "damaged", DELIVERED, already_refunded=2000)
    assert verdict.max_refund == Money(241, "USD")


def test_a_line_refunded_in_full_has_nothing_left_to_refund() -> None:
    verdict = _judge(_two_line_order(), "damaged", DELIVERED, already_refunded=2241)
    assert (verdict.eligible, verdict.code) == (False, "nothing_left_to_refund")
    assert verdict.clause_ids[0] == "R1"


def test_a_negative_already_refunded_amount_is_invalid() -> None:
    with pytest.raises(InvalidInput):
        _judge(_order(), "damaged", DELIVERED, already_refunded=-1)


def test_an_unknown_line_is_refused() -> None:
    verdict = evaluate(POLICY, _order(), "nope", "damaged", DELIVERED)
    assert (verdict.eligible, verdict.code, verdict.clauses) == (False, "unknown_line", ())


@pytest.mark.parametrize("quantity", [0, 3, -1])
def test_a_quantity_outside_the_line_is_refused(quantity: int) -> None:
    verdict = _judge(_two_line_order(), "damaged", DELIVERED, quantity=quantity)
    assert verdict.code == "invalid_quantity"


def test_an_unknown_reason_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as raised:
        _judge(_order(), "bored", DELIVERED)
    assert raised.value.param == "reason"


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError):
        _judge(_order(), "damaged", datetime(2026, 11, 12, 10, 0))


def test_evaluate_line_answers_every_reason_in_order() -> None:
    verdicts = evaluate_line(POLICY, _order(), "l1", DELIVERED)
    assert [v.reason for v in verdicts] == list(REASONS)


def test_a_verdict_serialises_to_the_eligibility_entry() -> None:
    entry = _judge(_order(), "damaged", DELIVERED).to_dict()
    assert entry["window_closes_at"] == "2026-11-27T10:00:00Z"
    assert entry["max_refund"] == {"amount": 1000, "currency": "USD"}
    assert entry["clauses"][0] == {"id": "W1", "text": POLICY.clauses["W1"].text}  # type: ignore[index]
    assert {"line_id", "reason", "eligible", "remedies", "return_shipping_paid_by",
            "evidence_required", "advice"} <= entry.keys()  # fmt: skip


# earlier cases on the line (X1, D3) -----------------------------------------------------


def _after(*outcomes: str, reason: str = "damaged", **kwargs: Any) -> Verdict:
    return evaluate(POLICY, _order(), "l1", reason, DELIVERED, earlier_outcomes=outcomes, **kwargs)


@pytest.mark.parametrize("reason", REASONS)
def test_a_line_whose_claim_the_platform_rejected_is_refused_for_every_reason_citing_x1(
    reason: str,
) -> None:
    verdict = _after("withdrawn", "rejected", reason=reason)
    assert (verdict.eligible, verdict.code) == (False, "case_already_decided")
    assert verdict.clause_ids == ("X1",)
    assert "rejected" in verdict.message and "decision is final" in verdict.message
    assert (verdict.remedies, verdict.max_refund) == ((), Money(0, "USD"))


@pytest.mark.parametrize("reason", REASONS)
def test_a_line_whose_return_was_never_shipped_is_refused_for_every_reason_citing_d3(
    reason: str,
) -> None:
    verdict = _after("expired", reason=reason)
    assert (verdict.eligible, verdict.code) == (False, "case_already_decided")
    assert verdict.clause_ids == ("D3",)
    assert verdict.clauses[0].text == POLICY.deadlines["D3"].text
    assert "not shipped within 10 days" in verdict.message


def test_a_rejection_is_cited_before_an_expiry_on_the_same_line() -> None:
    assert _after("expired", "rejected").clause_ids == ("X1",)


@pytest.mark.parametrize("outcome", ["withdrawn", "replaced", "refunded", "partially_refunded"])
def test_other_outcomes_leave_the_line_open_to_another_case(outcome: str) -> None:
    verdict = _after(outcome)
    assert verdict.eligible and verdict.code is None
    assert verdict.max_refund == Money(1000, "USD")


def test_money_an_earlier_case_refunded_still_caps_the_next_one() -> None:
    verdict = evaluate(
        POLICY, _two_line_order(), "l1", "damaged", DELIVERED,
        already_refunded=2000, earlier_outcomes=("partially_refunded",),
    )  # fmt: skip
    assert verdict.eligible and verdict.max_refund == Money(241, "USD")


def test_a_decided_line_is_refused_even_after_its_window_closed() -> None:
    late = DELIVERED + timedelta(days=40)
    verdict = evaluate(POLICY, _order(), "l1", "damaged", late, earlier_outcomes=("rejected",))
    assert verdict.code == "case_already_decided"


def test_evaluate_line_refuses_every_reason_of_a_decided_line() -> None:
    verdicts = evaluate_line(POLICY, _order(), "l1", DELIVERED, earlier_outcomes=("expired",))
    assert {(v.eligible, v.code, v.clause_ids) for v in verdicts} == {
        (False, "case_already_decided", ("D3",))
    }
