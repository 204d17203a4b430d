from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from restitution.domain.advice import (
    evidence_checklist,
    expected_refund_by,
    refund_eta,
    return_or_keep,
)
from restitution.domain.eligibility import evaluate
from restitution.domain.orders import Order, OrderLine, Payment, SellerTerms
from restitution.policies import default_policy

POLICY = default_policy()
DELIVERED = datetime(2026, 11, 12, 10, 0, tzinfo=UTC)


def _order(*, quantity: int = 1, estimate: int | None = None, **changes: Any) -> Order:
    order = Order(
        order_id="o1", buyer_id="b1", seller_id="s1", currency="USD",
        placed_at=datetime(2026, 11, 2, 10, 0, tzinfo=UTC), payment=Payment("paypal"),
        lines=(OrderLine("l1", "sku-1", "Lamp", "home/lighting", quantity, 1000),),
        shipped_at=datetime(2026, 11, 3, 10, 0, tzinfo=UTC), delivered_at=DELIVERED,
        promised_delivery_by=datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
        return_shipping_estimate=estimate,
    )  # fmt: skip
    return replace(order, **changes)


def _advice_codes(order: Order, reason: str) -> list[str]:
    return [item.code for item in evaluate(POLICY, order, "l1", reason, DELIVERED).advice]


# F1 -----------------------------------------------------------------------------------


def test_f1_refund_eta_skips_the_weekend() -> None:
    thursday = datetime(2026, 10, 1, 10, 0, tzinfo=UTC)
    assert expected_refund_by(POLICY, "paypal", thursday) == datetime(
        2026, 10, 6, 10, 0, tzinfo=UTC
    )


def test_f1_refund_eta_skips_thanksgiving_in_the_us() -> None:
    tuesday = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert expected_refund_by(POLICY, "paypal", tuesday) == datetime(
        2026, 11, 30, 10, 0, tzinfo=UTC
    )


def test_f1_refund_eta_uses_the_given_country_s_holidays() -> None:
    tuesday = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert expected_refund_by(POLICY, "paypal", tuesday, "GB") == datetime(
        2026, 11, 27, 10, 0, tzinfo=UTC
    )


def test_f1_an_unknown_payment_method_gets_the_default_business_days() -> None:
    monday = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert expected_refund_by(POLICY, "voucher", monday) == datetime(
        2026, 12, 21, 10, 0, tzinfo=UTC
    )


def test_f1_refund_eta_advice_cites_f1_with_the_days_and_date() -> None:
    advice = refund_eta(POLICY, "paypal", datetime(2026, 11, 24, 10, 0, tzinfo=UTC))
    assert advice.code == "refund_eta"
    assert advice.clauses == ("F1",)
    assert advice.data == {
        "method": "paypal",
        "business_days": 3,
        "expected_by": "2026-11-30T10:00:00Z",
    }
    assert "30 November 2026" in advice.message


def test_f1_refund_eta_counts_from_the_date_in_the_asking_time_s_own_zone() -> None:
    # The same instant: Friday evening in UTC, already Saturday in UTC+3.
    friday_evening = datetime(2026, 10, 2, 22, 0, tzinfo=UTC)
    saturday_morning = friday_evening.astimezone(timezone(timedelta(hours=3)))
    assert friday_evening == saturday_morning
    in_utc = refund_eta(POLICY, "paypal", friday_evening)
    in_plus_3 = refund_eta(POLICY, "paypal", saturday_morning)
    assert in_utc.data["expected_by"] == "2026-10-07T22:00:00Z"  # Mon, Tue, Wed
    assert in_plus_3.data["expected_by"] == "2026-10-06T22:00:00Z"  # Wed 7th, 01:00 in UTC+3


def test_an_eligible_verdict_tells_when_the_refund_should_arrive() -> None:
    assert "refund_eta" in _advice_codes(_order(), "damaged")


# return or keep (S1, R2) --------------------------------------------------------------


def _line(order: Order) -> tuple[Order, OrderLine]:
    line = order.line("l1")
    assert line is not None
    return order, line


def test_keeping_is_suggested_when_return_postage_is_exactly_30_percent() -> None:
    advice = return_or_keep(POLICY, *_line(_order(estimate=300)), "quality_issue", 1, "buyer")
    assert advice is not None
    assert advice.code == "keep_and_ask_partial_refund"
    assert advice.clauses == ("S1", "R2")
    assert advice.data["return_shipping_estimate"] == 300


def test_keeping_is_not_suggested_when_return_postage_is_29_percent() -> None:
    assert return_or_keep(POLICY, *_line(_order(estimate=290)), "quality_issue", 1, "buyer") is None


def test_keeping_is_not_suggested_just_below_the_threshold() -> None:
    assert return_or_keep(POLICY, *_line(_order(estimate=299)), "quality_issue", 1, "buyer") is None


def test_the_item_price_for_return_or_keep_is_unit_price_times_quantity() -> None:
    order = _order(quantity=2, estimate=600)
    assert return_or_keep(POLICY, *_line(order), "quality_issue", 2, "buyer") is not None
    cheaper = _order(quantity=2, estimate=599)
    assert return_or_keep(POLICY, *_line(cheaper), "quality_issue", 2, "buyer") is None


def test_a_verdict_suggests_keeping_when_the_buyer_would_pay_large_postage() -> None:
    assert "keep_and_ask_partial_refund" in _advice_codes(_order(estimate=300), "quality_issue")


def test_keeping_is_not_suggested_when_the_seller_pays_return_postage() -> None:
    free_returns = _order(estimate=900, seller_terms=SellerTerms(free_return_shipping=True))
    assert "keep_and_ask_partial_refund" not in _advice_codes(free_returns, "quality_issue")


def test_keeping_is_not_suggested_for_a_reason_without_partial_refund() -> None:
    assert "keep_and_ask_partial_refund" not in _advice_codes(_order(estimate=900), "damaged")


def test_keeping_is_not_suggested_without_a_postage_estimate() -> None:
    assert "keep_and_ask_partial_refund" not in _advice_codes(_order(), "quality_issue")


# E1 checklist, window closing ---------------------------------------------------------


def test_the_evidence_checklist_for_damaged_cites_e1() -> None:
    advice = evidence_checklist(POLICY, "damaged")
    assert advice is not None
    assert advice.clauses == ("E1",)
    assert advice.data["items"] == list(POLICY.evidence_checklist["damaged"])


def test_the_evidence_checklist_for_not_received_is_a_tip_without_e1() -> None:
    advice = evidence_checklist(POLICY, "not_received")
    assert advice is not None
    assert advice.clauses == ()
    assert advice.data["required"] is False


def test_a_delivered_line_is_told_when_its_window_closes() -> None:
    verdict = evaluate(POLICY, _order(), "l1", "damaged", DELIVERED)
    closing = next(item for item in verdict.advice if item.code == "window_closing")
    assert closing.data == {"closes_at": "2026-11-27T10:00:00Z"}
    assert closing.clauses == ("W1",)


def test_a_not_received_verdict_has_no_window_closing_advice() -> None:
    order = _order(delivered_at=None)
    verdict = evaluate(POLICY, order, "l1", "not_received", datetime(2026, 11, 21, tzinfo=UTC))
    assert verdict.eligible
    assert "window_closing" not in [item.code for item in verdict.advice]


def test_a_refused_verdict_gives_no_advice() -> None:
    assert _advice_codes(_order(), "changed_mind") == []
