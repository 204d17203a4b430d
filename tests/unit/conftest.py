"""Shared builders for unit tests: the default policy, a deterministic id factory, and an
opener that puts a fresh case in `awaiting_seller` at a given time."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from restitution.domain.cases import (
    Actor,
    Case,
    CaseLine,
    Context,
    OfferTerms,
    OpenCase,
    open_case,
)
from restitution.domain.money import Money
from restitution.domain.orders import Address
from restitution.domain.policy import CLAUSE_IDS, Clause, DeadlineRule, Policy

# A Monday, well away from US holidays.
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
REFUNDABLE = Money(2899, "USD")
RETURN_ADDRESS = Address(
    name="Shop 7 returns",
    line1="1 Harbour Road",
    city="Shenzhen",
    postal_code="518000",
    country="CN",
)

_DEADLINES = {
    "D1": ("The seller has 5 days to answer each buyer offer.", 5, False),
    "D2": ("Negotiation ends 7 days after the seller's first answer.", 7, False),
    "D3": ("The buyer has 10 days to ship the return.", 10, False),
    "D4": ("A return in transit for 30 days is escalated as lost.", 30, False),
    "D5": ("The seller inspects within 3 business days of delivery.", 3, True),
    "D6": ("The seller ships the replacement within 7 days.", 7, False),
    "D7": ("The platform decides within 7 days.", 7, False),
}


def build_policy() -> Policy:
    return Policy(
        id="default",
        version=1,
        clauses={cid: Clause(cid, f"clause {cid}") for cid in CLAUSE_IDS},
        deadlines={
            did: DeadlineRule(did, text, days, business_days)
            for did, (text, days, business_days) in _DEADLINES.items()
        },
    )


def counter_ids() -> Callable[[str], str]:
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}_{next(counter)}"


OpenAt = Callable[..., Case]


def make_opener(policy: Policy, new_id: Callable[[str], str]) -> OpenAt:
    def open_at(
        now: datetime = T0,
        *,
        reason: str = "damaged",
        request: OfferTerms | None = None,
        default_return_payer: str = "buyer",
        return_address: Address | None = RETURN_ADDRESS,
    ) -> Case:
        command = OpenCase(
            order_id="ord_1",
            lines=(CaseLine("l1", 1),),
            reason=reason,
            description="it arrived broken",
            request=request or OfferTerms("refund", REFUNDABLE),
        )
        return open_case(
            command,
            case_id=new_id("case"),
            buyer_id="b_42",
            seller_id="s_7",
            currency="USD",
            refundable=REFUNDABLE,
            default_return_payer=default_return_payer,
            return_address=return_address,
            holiday_country="US",
            actor=Actor("buyer", "b_42"),
            ctx=Context(now, policy, new_id),
        ).case

    return open_at


@pytest.fixture
def policy() -> Policy:
    return build_policy()


@pytest.fixture
def new_id() -> Callable[[str], str]:
    return counter_ids()


@pytest.fixture
def ctx_at(policy: Policy, new_id: Callable[[str], str]) -> Callable[[datetime], Context]:
    return lambda now: Context(now, policy, new_id)


@pytest.fixture
def open_at(policy: Policy, new_id: Callable[[str], str]) -> OpenAt:
    """`open_at(now, reason=..., request=OfferTerms(...))` → a case in awaiting_seller."""
    return make_opener(policy, new_id)
