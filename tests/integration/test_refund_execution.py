"""Refund execution: attempts with idempotency keys, retries with back-off, failure shown to
mediators, and return postage reimbursed when the seller pays return shipping (S1)."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from restitution.adapters.db import tables as t
from restitution.domain.cases import PostMessage
from restitution.services import audit
from restitution.services import cases as case_service
from restitution.services import refunds as service
from restitution.services.auth import OPERATOR
from restitution.services.ports import GatewayResult, RefundRequest
from tests.integration.case_steps import (
    FULL_L1,
    agree_on_return,
    buyer,
    event_types,
    get_case,
    ok,
    open_case,
    refunds,
    seller,
)
from tests.integration.conftest import Api


@dataclass
class FakeGateway:
    """Fails the first `failures` calls; refunds each idempotency key at most once."""

    failures: int = 0
    name: str = "fake"
    settles_in_transaction: bool = False  # a gateway outside the database, called after commit
    calls: list[str] = field(default_factory=list)
    refunded: dict[str, int] = field(default_factory=dict)

    def refund(self, request: RefundRequest) -> GatewayResult:
        self.calls.append(request.idempotency_key)
        if len(self.calls) <= self.failures:
            raise ConnectionError("gateway unavailable")
        self.refunded.setdefault(request.idempotency_key, request.amount)
        return GatewayResult(succeeded=True, reference=request.idempotency_key)


def attempts(api: Api) -> list[tuple[str, str]]:
    with api.app.db.transaction(write=False) as conn:
        found = conn.execute(
            select(t.refund_attempts.c.idempotency_key, t.refund_attempts.c.status).order_by(
                t.refund_attempts.c.created_at, t.refund_attempts.c.id
            )
        ).all()
    return [(key, status) for key, status in found]


def test_the_ledger_settles_at_once_with_a_keyed_attempt(api: Api) -> None:
    case = open_case(api)
    seller(api, case["id"], "accept")
    [refund] = refunds(api, case["id"])
    assert refund["status"] == "succeeded"
    assert attempts(api) == [(f"{refund['id']}:1", "succeeded")]
    assert get_case(api, case["id"])["outcome"] == "refunded"


def test_a_failing_gateway_is_retried_with_backoff(api: Api) -> None:
    gateway = FakeGateway(failures=2)
    api.app.refund_gateway = gateway
    case = open_case(api)
    seller(api, case["id"], "accept")
    [refund] = refunds(api, case["id"])
    assert refund["status"] == "pending"
    api.advance(seconds=1)  # not due yet: back-off is 30 to 60 s
    assert len(gateway.calls) == 1
    api.advance(seconds=60)
    api.advance(seconds=120)
    assert refunds(api, case["id"])[0]["status"] == "succeeded"
    rid = refund["id"]
    assert gateway.calls == [f"{rid}:1", f"{rid}:2", f"{rid}:3"]
    assert [s for _, s in attempts(api)] == ["failed", "failed", "succeeded"]
    assert get_case(api, case["id"])["status"] == "resolved"


def test_after_the_last_try_the_refund_fails_and_mediators_see_it(api: Api) -> None:
    api.app.settings = api.app.settings.model_copy(
        update={"refund_max_attempts": 3, "mediator_email": "team@example.com"}
    )
    api.app.refund_gateway = FakeGateway(failures=99)
    case = open_case(api)
    seller(api, case["id"], "accept")
    for _ in range(3):
        api.advance(minutes=5)
    [refund] = refunds(api, case["id"])
    assert refund["status"] == "failed"
    assert refund["attempts"] == 3
    assert "refund.failed" in event_types(api, case["id"])
    listed = ok(api.as_("mediator", "m_1")("GET", "/v1/refunds"))["data"]
    assert [r["id"] for r in listed] == [refund["id"]]
    with api.app.db.transaction(write=False) as conn:
        templates = list(conn.execute(select(t.emails.c.template)).scalars())
    assert "refund_failed" in templates
    # the marketplace may still pay it out by hand and say so
    paid = api.client.post(f"/v1/refunds/{refund['id']}/succeeded", headers=api.auth())
    assert ok(paid)["status"] == "succeeded"


def test_a_retry_after_a_crash_asks_again_with_the_same_key(api: Api) -> None:
    gateway = FakeGateway()
    api.app.refund_gateway = None  # the grant is written, nothing executes it yet
    case = open_case(api)
    seller(api, case["id"], "accept")
    api.app.refund_gateway = gateway
    claim = service._claim(api.app, gateway, case["id"])  # the worker dies after this
    assert claim is not None
    api.advance(seconds=api.app.settings.delivery_lease_seconds)
    [refund] = refunds(api, case["id"])
    assert refund["status"] == "succeeded"
    key = f"{refund['id']}:1"
    assert gateway.calls == [key]
    assert attempts(api) == [(key, "succeeded")]


def test_an_attempt_the_database_fails_after_the_grant_is_made_by_the_worker(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The accept that granted the refund committed: it answers as done, not as a 503 that
    a client would send again, and the worker makes the attempt the database refused."""
    gateway = FakeGateway()
    api.app.refund_gateway = gateway
    case = open_case(api)

    def database_gone(*args: object) -> None:
        raise OperationalError("BEGIN", {}, psycopg.OperationalError("connection closed"))

    monkeypatch.setattr(service, "_claim", database_gone)
    accepted = seller(api, case["id"], "accept")
    assert accepted["status"] == "refund_pending" and gateway.calls == []
    monkeypatch.undo()
    api.advance(seconds=1)  # the worker's next tick
    [refund] = refunds(api, case["id"])
    assert refund["status"] == "succeeded"
    assert gateway.calls == [f"{refund['id']}:1"]


def _return_with_postage(
    api: Api, postage: int, *, prepaid_label: bool = False
) -> dict[str, object]:
    case = agree_on_return(api)  # damaged: the seller pays return shipping (S1)
    if prepaid_label:
        seller(api, case["id"], "return/label", carrier="DHL", label_url="https://labels.example/1")
    buyer(
        api,
        case["id"],
        "return/shipment",
        carrier="UPS",
        tracking_number="1Z999",
        postage_paid={"amount": postage, "currency": "USD"},
    )
    seller(api, case["id"], "return/delivered")
    return seller(api, case["id"], "inspection", passed=True)


def test_return_postage_is_reimbursed_when_the_seller_pays(api: Api) -> None:
    case = _return_with_postage(api, 900)
    [refund] = refunds(api, case["id"])  # type: ignore[arg-type]
    assert refund["amount"]["amount"] == FULL_L1 + 900
    assert refund["postage_amount"]["amount"] == 900
    assert get_case(api, case["id"])["refunded"]["amount"] == FULL_L1  # type: ignore[arg-type]


def test_return_postage_is_capped_by_the_policy(api: Api) -> None:
    case = _return_with_postage(api, 4000)
    [refund] = refunds(api, case["id"])  # type: ignore[arg-type]
    cap = api.app.policy.max_return_postage_reimbursement
    assert refund["postage_amount"]["amount"] == cap
    assert refund["amount"]["amount"] == FULL_L1 + cap


def test_no_postage_is_reimbursed_when_the_seller_gave_a_prepaid_label(api: Api) -> None:
    """The seller paid for the return's postage with its label: the buyer's declared
    postage is not paid a second time."""
    case = _return_with_postage(api, 900, prepaid_label=True)
    [refund] = refunds(api, case["id"])  # type: ignore[arg-type]
    assert refund["postage_amount"]["amount"] == 0
    assert refund["amount"]["amount"] == FULL_L1


def test_a_case_changed_before_the_gateway_answers_is_settled_as_stored(api: Api) -> None:
    """An outside gateway is called after the accept's commit; when the case moved meanwhile,
    the outcome is recorded on the case as stored, its chain unbroken."""
    case = open_case(api)

    @dataclass
    class MovingGateway(FakeGateway):
        def refund(self, request: RefundRequest) -> GatewayResult:
            # another request acts on the case between the accept's commit and the outcome
            case_service.act(
                api.app, OPERATOR, case["id"], PostMessage("Any news?"), acting_as="buyer"
            )
            return super().refund(request)

    api.app.refund_gateway = MovingGateway()
    assert seller(api, case["id"], "accept")["status"] == "refund_pending"
    assert refunds(api, case["id"])[0]["status"] == "succeeded"
    assert get_case(api, case["id"])["outcome"] == "refunded"
    types = event_types(api, case["id"])
    assert types[-2:] == ["case.message_posted", "refund.succeeded"], types
    assert audit.verify(api.app, case["id"]).broken == []
