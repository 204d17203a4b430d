"""The what-if simulator's comparison: a case replayed under its policy and under a draft."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from restitution.domain.cases import Case, CaseLine
from restitution.domain.money import Money
from restitution.domain.orders import Order, OrderLine, Payment
from restitution.policies import default_policy
from restitution.services.simulation import (
    SimulationReport,
    granted_before,
    outcomes_before,
    replay,
)

DELIVERED = datetime(2026, 11, 12, 10, 0, tzinfo=UTC)
POLICY = default_policy()  # electronics: 30 days after delivery; others 15
SHORTER_ELECTRONICS = replace(POLICY, version=2, category_windows={"electronics": 10})
HYGIENIC_KITCHENS = replace(
    POLICY, version=2, hygiene_categories=(*POLICY.hygiene_categories, "home/kitchen")
)


def _order() -> Order:
    return Order(
        order_id="o1", buyer_id="b1", seller_id="s1", currency="USD",
        placed_at=DELIVERED - timedelta(days=5), payment=Payment("card"),
        lines=(
            OrderLine(line_id="l1", sku="PH", title="Phone", category="electronics/phones",
                      quantity=1, unit_amount=20000),
            OrderLine(line_id="l2", sku="KT", title="Kettle", category="home/kitchen",
                      quantity=2, unit_amount=1500),
        ),
        shipped_at=DELIVERED - timedelta(days=3), delivered_at=DELIVERED,
    )  # fmt: skip


def _case(
    *lines: CaseLine, days_after_delivery: int, reason: str = "damaged", **changes: Any
) -> Case:
    opened = DELIVERED + timedelta(days=days_after_delivery)
    case = Case(
        id="case_1", order_id="o1", buyer_id="b1", seller_id="s1", currency="USD",
        lines=lines or (CaseLine("l1", 1),), reason=reason, description="broken",
        status="resolved", refundable=Money(20000, "USD"), default_return_payer="seller",
        return_address=None, holiday_country="US", policy_id="default", policy_version=1,
        created_at=opened, updated_at=opened, status_since=opened, outcome="refunded",
    )  # fmt: skip
    return replace(case, **changes)


def test_a_case_opened_after_the_drafts_shorter_window_would_be_refused() -> None:
    case = _case(days_after_delivery=20)

    result = replay(case, _order(), {}, POLICY, SHORTER_ELECTRONICS, granted=20000)

    assert result.change == "refused"
    assert result.refusal == ("return_window_closed", "W2")
    assert result.granted == Money(20000, "USD")
    assert (result.cap_before, result.cap_after) == (Money(20000, "USD"), Money(0, "USD"))
    assert (result.judged_under, result.baseline) == ("default v1", "default v1")


def test_a_case_inside_both_windows_does_not_change() -> None:
    result = replay(_case(days_after_delivery=5), _order(), {}, POLICY, SHORTER_ELECTRONICS, 0)

    assert result.eligible_before and result.eligible_after
    assert result.change is None


def test_one_refused_line_refuses_the_case_and_names_that_lines_clause() -> None:
    case = _case(
        CaseLine("l1", 1), CaseLine("l2", 2), days_after_delivery=3, reason="quality_issue"
    )

    result = replay(case, _order(), {}, POLICY, HYGIENIC_KITCHENS, 0)

    assert [line.after.eligible for line in result.lines] == [True, False]
    assert result.change == "refused"
    assert result.refusal == ("not_returnable_hygiene", "H1")


def test_what_earlier_cases_granted_lowers_the_cap_under_both_policies() -> None:
    result = replay(_case(days_after_delivery=5), _order(), {"l1": 15000}, POLICY, POLICY, 0)

    assert (result.cap_before, result.cap_after) == (Money(5000, "USD"), Money(5000, "USD"))
    assert result.change is None


def test_a_line_refunded_in_full_before_stays_refused_under_both() -> None:
    result = replay(_case(days_after_delivery=5), _order(), {"l1": 20000}, POLICY, POLICY, 0)

    assert result.lines[0].after.code == "nothing_left_to_refund"
    assert result.change is None


def test_a_case_the_baseline_refuses_and_the_draft_allows_is_allowed() -> None:
    case = _case(days_after_delivery=20)

    result = replay(case, _order(), {}, SHORTER_ELECTRONICS, POLICY, 0)
    report = SimulationReport(draft="default v1")
    report.add(result, against_active=False)

    assert result.change == "allowed"
    assert result.refusal is None
    assert (report.baseline_refused, report.totals["USD"].allowed_cases) == (1, 1)


def _grant(
    case_id: str, line_id: str, days: int, amount: int, closed_as: str | None = None
) -> SimpleNamespace:
    return SimpleNamespace(
        order_id="o1",
        line_id=line_id,
        case_id=case_id,
        created_at=DELIVERED + timedelta(days=days),
        granted_amount=amount,
        closed_as=closed_as,
    )


def test_granted_before_counts_earlier_cases_on_the_claimed_lines_only() -> None:
    case = _case(CaseLine("l1", 1), id="case_5", days_after_delivery=5)
    rows = [
        _grant("case_1", "l1", 1, 3000),
        _grant("case_2", "l1", 2, 1000),
        _grant("case_2", "l2", 2, 500),  # not claimed by case_5
        _grant("case_4", "l1", 5, 200),  # opened at the same moment, before by id
        _grant("case_6", "l1", 5, 700),  # same moment, after by id
        _grant("case_7", "l1", 9, 900),  # opened later
        _grant("case_5", "l1", 5, 4000),  # the case itself
    ]

    assert granted_before(case, rows) == ({"l1": 4200}, 4000)


def test_outcomes_before_are_those_of_earlier_cases_on_the_claimed_lines_only() -> None:
    case = _case(CaseLine("l1", 1), id="case_5", days_after_delivery=5)
    rows = [
        _grant("case_1", "l1", 1, 0, "withdrawn"),
        _grant("case_2", "l1", 2, 0, "rejected"),
        _grant("case_2", "l2", 2, 0, "rejected"),  # not claimed by case_5
        _grant("case_6", "l1", 9, 0, "expired"),  # opened later
        _grant("case_5", "l1", 5, 0, "refunded"),  # the case itself
    ]

    assert outcomes_before(case, rows) == {"l1": ["withdrawn", "rejected"]}


def test_a_case_opened_after_a_rejection_on_its_line_is_refused_under_both_policies() -> None:
    """Opened before X1's finality was checked: its baseline refuses it, and the draft
    changes nothing about it."""
    case = _case(days_after_delivery=5)

    result = replay(
        case, _order(), {}, POLICY, SHORTER_ELECTRONICS, 0, earlier_outcomes={"l1": ["rejected"]}
    )
    report = SimulationReport(draft="default v2")
    report.add(result, against_active=False)

    assert result.lines[0].before.code == result.lines[0].after.code == "case_already_decided"
    assert result.change is None
    assert report.baseline_refused == 1 and report.changed == []


def test_the_report_totals_each_currency_apart() -> None:
    late = _case(days_after_delivery=20)
    in_euros = replace(late, id="case_2", currency="EUR")
    order_in_euros = replace(_order(), currency="EUR")
    refused = [
        replay(late, _order(), {}, POLICY, SHORTER_ELECTRONICS, 20000),
        replay(in_euros, order_in_euros, {}, POLICY, SHORTER_ELECTRONICS, 12000),
    ]
    unchanged = replay(_case(days_after_delivery=1), _order(), {}, POLICY, SHORTER_ELECTRONICS, 0)
    line = unchanged.lines[0]
    # No setting of today's policy moves a cap by itself: a verdict made to, for the sums.
    raised = replace(
        unchanged,
        case_id="case_3",
        lines=(replace(line, after=line.after._replace(max_refund=Money(25000, "USD"))),),
    )
    report = SimulationReport(draft="default v2")

    for result in (*refused, unchanged, raised):
        report.add(result, against_active=result.case_id == "case_3")

    assert report.replayed == 4
    assert [result.case_id for result in report.changed] == ["case_1", "case_2", "case_3"]
    usd, eur = report.totals["USD"], report.totals["EUR"]
    assert (usd.refused_cases, usd.refused_granted) == (1, 20000)
    assert (eur.refused_cases, eur.refused_granted) == (1, 12000)
    assert (usd.cap_cases, usd.cap_change, eur.cap_cases) == (1, 5000, 0)
    assert report.refusals == {("return_window_closed", "W2"): 2}
    assert report.against_active == {"default v1": 1}
    assert report.baseline_refused == 0
