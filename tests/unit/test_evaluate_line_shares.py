"""`evaluate_line` works out once what a line's reasons share: it must answer exactly what
`evaluate` answers for each reason on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from restitution.domain.cases import OUTCOMES
from restitution.domain.eligibility import evaluate, evaluate_line
from restitution.domain.orders import Order, OrderLine, Payment, SellerTerms
from restitution.domain.policy import REASONS
from restitution.policies import default_policy

POLICY = default_policy()
PLACED = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
CATEGORIES = ("home/kitchen", "electronics/phones", "beauty/cosmetics", "underwear", "toys")


@st.composite
def orders(draw: st.DrawFn) -> Order:
    shipped = PLACED + timedelta(hours=draw(st.integers(0, 200)))
    delivered = draw(st.none() | st.just(shipped + timedelta(days=draw(st.integers(0, 40)))))
    promised = draw(st.none() | st.just(shipped + timedelta(days=draw(st.integers(0, 30)))))
    lines = tuple(
        OrderLine(
            line_id=f"l{n}",
            sku=f"sku-{n}",
            title=f"Item {n}",
            category=draw(st.sampled_from(CATEGORIES)),
            quantity=draw(st.integers(1, 4)),
            unit_amount=draw(st.integers(1, 50_000)),
            custom_made=draw(st.booleans()),
        )
        for n in range(1, draw(st.integers(1, 3)) + 1)
    )
    return Order(
        order_id="o1",
        buyer_id="b1",
        seller_id="s1",
        currency=draw(st.sampled_from(("USD", "JPY", "KWD"))),
        placed_at=PLACED,
        payment=Payment(draw(st.sampled_from(("card", "paypal", "voucher")))),
        lines=lines,
        shipped_at=draw(st.none() | st.just(shipped)),
        delivered_at=delivered,
        promised_delivery_by=promised,
        shipping_amount=draw(st.integers(0, 3_000)),
        return_shipping_estimate=draw(st.none() | st.integers(0, 20_000)),
        seller_terms=SellerTerms(
            free_return_shipping=draw(st.booleans()),
            accepts_change_of_mind=draw(st.booleans()),
        ),
    )


@settings(max_examples=300, deadline=None)
@given(
    order=orders(),
    line_id=st.sampled_from(("l1", "l2", "l3", "missing")),
    after=st.integers(0, 90 * 24 * 3600),
    offset_hours=st.sampled_from((0, -5, 3, 14)),
    already_refunded=st.integers(0, 250_000),
    earlier_outcomes=st.lists(st.sampled_from(OUTCOMES), max_size=2),
)
def test_every_reason_answers_as_evaluate_alone(
    order: Order,
    line_id: str,
    after: int,
    offset_hours: int,
    already_refunded: int,
    earlier_outcomes: list[str],
) -> None:
    now = (PLACED + timedelta(seconds=after)).astimezone(timezone(timedelta(hours=offset_hours)))

    together = evaluate_line(
        POLICY, order, line_id, now, already_refunded, earlier_outcomes=earlier_outcomes
    )

    alone = [
        evaluate(
            POLICY,
            order,
            line_id,
            reason,
            now,
            already_refunded=already_refunded,
            earlier_outcomes=earlier_outcomes,
        )
        for reason in REASONS
    ]
    assert together == alone


def test_a_line_with_nothing_shared_yet_still_answers_each_reason() -> None:
    # A refusal before the window (an unknown line) leaves nothing shared for the next reason.
    order = Order(
        order_id="o1", buyer_id="b1", seller_id="s1", currency="USD", placed_at=PLACED,
        payment=Payment("card"), lines=(OrderLine("l1", "s", "Kettle", "home", 1, 1000),),
        delivered_at=PLACED + timedelta(days=3),
    )  # fmt: skip
    verdicts = evaluate_line(POLICY, order, "nope", PLACED + timedelta(days=4))
    assert [v.code for v in verdicts] == ["unknown_line"] * len(REASONS)
