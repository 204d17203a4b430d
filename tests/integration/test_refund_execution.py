"""Refund execution: attempts with idempotency keys, retries with back-off, failure shown to
mediators, and return postage reimbursed when the seller pays return shipping (S1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

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
    events,
    get_case,
    ok,
    open_case,
    refunds,
    seller,
)
from tests.integration.conftest import Api
from tests.integration.test_authz_matrix import snapshot

MAX_ATTEMPTS = 3


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


# --------------------------------------------------------------------------- retry


def _failed_for_good(api: Api, gateway: FakeGateway) -> tuple[dict[str, Any], dict[str, Any]]:
    """A case whose refund `gateway` failed `MAX_ATTEMPTS` times, mediators told: (case, refund)."""
    api.app.settings = api.app.settings.model_copy(
        update={"refund_max_attempts": MAX_ATTEMPTS, "mediator_email": "team@example.com"}
    )
    api.app.refund_gateway = gateway
    case = open_case(api)
    seller(api, case["id"], "accept")
    for _ in range(MAX_ATTEMPTS):
        api.advance(minutes=5)
    [refund] = refunds(api, case["id"])
    assert (refund["status"], refund["attempts"]) == ("failed", MAX_ATTEMPTS)
    assert get_case(api, case["id"])["status"] == "refund_pending"
    return case, refund


def _retry(api: Api, refund_id: str, role: str = "operator", party_id: str | None = None) -> Any:
    return api.as_(role, party_id)("POST", f"/v1/refunds/{refund_id}/retry")


def _outbox_types(api: Api) -> list[str]:
    with api.app.db.transaction(write=False) as conn:
        return list(conn.execute(select(t.outbox.c.type).order_by(t.outbox.c.id)).scalars())


def test_a_mediator_opens_the_case_of_a_failed_refund_and_retries_it(api: Api) -> None:
    gateway = FakeGateway(failures=MAX_ATTEMPTS)  # until the marketplace fixes its provider
    case, refund = _failed_for_good(api, gateway)
    rid = refund["id"]
    mediator = api.as_("mediator", "m_1")
    # The e-mail's link, and what the case page reads: the case, its timeline, its order.
    assert ok(mediator("GET", f"/v1/cases/{case['id']}"))["status"] == "refund_pending"
    timeline = ok(mediator("GET", f"/v1/cases/{case['id']}/events?limit=100"))["data"]
    assert timeline[-1]["type"] == "refund.failed"
    assert ok(mediator("GET", "/v1/orders/o_1"))["order_id"] == "o_1"
    note = "Your refund did not go through; we are asking the bank again."
    ok(mediator("POST", f"/v1/cases/{case['id']}/messages", json={"body": note}))
    written = events(api, case["id"])[-1]
    assert (written["type"], written["actor"], written["data"]["body"]) == (
        "case.message_posted",
        "mediator",
        note,
    )

    retried = ok(_retry(api, rid, "mediator", "m_1"))
    assert (retried["id"], retried["status"], retried["attempts"]) == (rid, "pending", 3)
    last = events(api, case["id"])[-1]
    assert (last["type"], last["actor"], last["actor_id"]) == ("refund.retried", "mediator", "m_1")
    assert last["data"]["refund_id"] == rid
    assert _outbox_types(api)[-1] == "refund.retried"
    with api.app.db.transaction(write=False) as conn:
        told = conn.execute(select(t.outbox.c.payload).order_by(t.outbox.c.id.desc())).scalar()
    # an operator gateway is told what to pay again, as refund.requested told it first
    assert told["refund_id"] == rid and told["amount"] == refund["amount"]
    assert last["data"]["amount"] == refund["amount"]

    api.advance(seconds=1)  # the next sweep: due at once
    [settled] = refunds(api, case["id"])
    assert (settled["status"], settled["attempts"]) == ("succeeded", 4)
    # The keys go on numbering: the gateway never sees one again, and pays once.
    assert gateway.calls == [f"{rid}:{n}" for n in range(1, 5)]
    assert gateway.refunded == {f"{rid}:4": FULL_L1}
    resolved = get_case(api, case["id"])
    assert (resolved["status"], resolved["outcome"]) == ("resolved", "refunded")
    assert resolved["refunded"]["amount"] == settled["amount"]["amount"] == FULL_L1
    assert resolved["refunded"]["amount"] <= resolved["refundable"]["amount"]
    assert audit.verify(api.app, case["id"]).broken == []


def test_a_refund_retried_a_week_later_is_expected_counted_from_the_retry(api: Api) -> None:
    """F1: the buyer is told when the money should arrive; a refund retried later cannot
    arrive by the date its first attempt promised."""
    case, refund = _failed_for_good(api, FakeGateway(failures=MAX_ATTEMPTS))
    api.advance(days=7)
    api.forget_tokens()

    retried = ok(_retry(api, refund["id"], "mediator", "m_1"))

    first, again = (datetime.fromisoformat(r["expected_by"]) for r in (refund, retried))
    assert again - first >= timedelta(days=7)
    shown = ok(api.as_("buyer", "b_1")("GET", f"/v1/refunds?case_id={case['id']}"))["data"]
    assert shown[0]["expected_by"] == retried["expected_by"]


def test_a_retried_refund_that_still_fails_fails_again_after_as_many_attempts(api: Api) -> None:
    gateway = FakeGateway(failures=99)
    case, refund = _failed_for_good(api, gateway)
    rid = refund["id"]
    assert ok(_retry(api, rid))["status"] == "pending"
    api.advance(seconds=1)
    assert refunds(api, case["id"])[0]["status"] == "pending"  # one try of three: back-off
    for _ in range(MAX_ATTEMPTS):
        api.advance(minutes=5)
    [failed] = refunds(api, case["id"])
    assert (failed["status"], failed["attempts"]) == ("failed", 2 * MAX_ATTEMPTS)
    assert gateway.calls == [f"{rid}:{n}" for n in range(1, 2 * MAX_ATTEMPTS + 1)]
    assert gateway.refunded == {}
    still = get_case(api, case["id"])
    assert (still["status"], still["refunded"]["amount"]) == ("refund_pending", 0)
    types = event_types(api, case["id"])
    assert types[-3:] == ["refund.failed", "refund.retried", "refund.failed"], types
    retried = next(e for e in events(api, case["id"]) if e["type"] == "refund.retried")
    assert retried["actor"] == "operator"
    first, again = (e for e in events(api, case["id"]) if e["type"] == "refund.failed")
    assert first["data"]["reason"].startswith(f"the gateway failed {MAX_ATTEMPTS} times: ")
    assert again["data"]["reason"].startswith(
        f"the gateway failed {MAX_ATTEMPTS} times since it was retried ({2 * MAX_ATTEMPTS} in all)"
    )
    with api.app.db.transaction(write=False) as conn:
        templates = list(conn.execute(select(t.emails.c.template)).scalars())
    assert templates.count("refund_failed") == 2  # the mediators are told each time


def test_only_a_failed_refund_is_retried(api: Api) -> None:
    api.app.refund_gateway = FakeGateway(failures=1)
    case = open_case(api)
    seller(api, case["id"], "accept")
    [refund] = refunds(api, case["id"])
    assert refund["status"] == "pending"  # failed once, due again after a back-off
    for expected in ("pending", "succeeded"):
        before = snapshot(api)
        refused = _retry(api, refund["id"])
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["type"] == "conflict"
        assert refused.json()["error"]["code"] == "refund_not_failed"
        assert snapshot(api) == before
        assert refunds(api, case["id"])[0]["status"] == expected
        api.advance(minutes=5)
    assert refunds(api, case["id"])[0]["status"] == "succeeded"


def test_buyers_and_sellers_may_not_retry_and_others_do_not_see_the_refund(api: Api) -> None:
    case, refund = _failed_for_good(api, FakeGateway(failures=99))
    rid = refund["id"]
    api.put_order("o_2", buyer_id="b_2", seller_id="s_2")
    parties = (("buyer", "b_1"), ("seller", "s_1"), ("buyer", "b_2"), ("seller", "s_2"))
    for role, party_id in (*parties, ("mediator", "m_1")):
        api.auth(role, party_id)  # every token minted before the snapshot
    before = snapshot(api)
    for role, party_id in parties:
        for refund_id in (rid, "rfd_missing"):  # the same answer, whoever's refund it is
            refused = _retry(api, refund_id, role, party_id)
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["code"] == "operator_or_mediator_only"
    for role, party_id in (("mediator", "m_1"), ("operator", None)):
        missing = _retry(api, "rfd_missing", role, party_id)
        assert missing.status_code == 404, missing.text
        assert missing.json()["error"]["code"] == "resource_missing"
    assert snapshot(api) == before
    assert get_case(api, case["id"])["status"] == "refund_pending"


def test_a_mediator_does_not_see_a_pending_refund_on_a_case_not_escalated(api: Api) -> None:
    api.app.refund_gateway = FakeGateway(failures=1)
    case = open_case(api)
    seller(api, case["id"], "accept")
    [refund] = refunds(api, case["id"])
    mediator = api.as_("mediator", "m_1")
    assert _retry(api, refund["id"], "mediator", "m_1").status_code == 404
    assert mediator("GET", f"/v1/cases/{case['id']}").status_code == 404
    assert ok(mediator("GET", "/v1/refunds"))["data"] == []


def test_mediators_see_the_cases_of_failed_refunds_and_no_other(api: Api) -> None:
    failed_case, refund = _failed_for_good(api, FakeGateway(failures=99))
    api.put_order("o_2")
    other = ok(api.open_case("o_2"), 201)
    mediator = api.as_("mediator", "m_1")
    listed = ok(mediator("GET", "/v1/cases?limit=100"))["data"]
    assert [c["id"] for c in listed] == [failed_case["id"]]
    assert mediator("GET", f"/v1/cases/{other['id']}").status_code == 404
    assert mediator("GET", f"/v1/cases/{other['id']}/events").status_code == 404
    assert mediator("GET", "/v1/orders/o_2").status_code == 404
    assert [r["id"] for r in ok(mediator("GET", "/v1/refunds"))["data"]] == [refund["id"]]
    # Retried, the refund is pending again: the mediator still follows the case.
    ok(_retry(api, refund["id"], "mediator", "m_1"))
    assert ok(mediator("GET", f"/v1/cases/{failed_case['id']}"))["id"] == failed_case["id"]
    assert [r["id"] for r in ok(mediator("GET", "/v1/refunds"))["data"]] == [refund["id"]]


def test_a_retry_sent_again_with_its_idempotency_key_is_answered_as_the_first(api: Api) -> None:
    _, refund = _failed_for_good(api, FakeGateway(failures=99))
    mediator = api.as_("mediator", "m_1")
    path = f"/v1/refunds/{refund['id']}/retry"
    first = mediator("POST", path, headers={"Idempotency-Key": "retry-1"})
    again = mediator("POST", path, headers={"Idempotency-Key": "retry-1"})
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    other_key = mediator("POST", path, headers={"Idempotency-Key": "retry-2"})
    assert other_key.status_code == 409
    assert other_key.json()["error"]["code"] == "refund_not_failed"


def test_a_party_with_more_cases_than_sqlite_takes_parameters_lists_its_refunds(
    api: Api,
) -> None:
    """A seller's refunds are chosen in the statement, not by a list of their case ids:
    SQLite refuses a statement with more bound parameters than its limit (32,766 by
    default; a big seller has more cases). Here the limit is 10 and the seller has 12."""
    cases = []
    for n in range(12):
        api.put_order(f"o_many_{n}")
        opened = ok(api.open_case(f"o_many_{n}"), 201)
        cases.append(seller(api, opened["id"], "accept")["id"])
    if api.app.db.is_sqlite:
        import sqlite3

        from sqlalchemy import event

        def low_limit(dbapi_connection: Any, _: Any) -> None:
            dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 10)

        event.listen(api.app.db.engine, "connect", low_limit)
        api.app.db.dispose()  # connections made from now on have the low limit

    for role, party_id in (("seller", "s_1"), ("buyer", "b_1")):
        listed = ok(api.as_(role, party_id)("GET", "/v1/refunds?limit=100"))

        assert sorted(refund["case_id"] for refund in listed["data"]) == sorted(cases)
