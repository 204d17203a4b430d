"""Whole case lifecycles through the HTTP API: statuses, offers, money, refunds, the timeline."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from restitution.api.app import create_api
from restitution.bootstrap import build_app
from restitution.services.clock import TestClock
from tests.conftest import START
from tests.integration.case_steps import (
    FULL_L1,
    act,
    agree_on_replacement,
    agree_on_return,
    assert_closed_for_good,
    buyer,
    clause_ids,
    eligibility_of,
    escalated_case,
    event_types,
    events,
    get_case,
    mediator,
    ok,
    open_case,
    refund_request,
    refunds,
    seller,
    ship_return,
    usd,
)
from tests.integration.conftest import OPERATOR_KEY, Api, make_settings, order_body


@pytest.fixture
def operator_api(database_url: str, tmp_path: Path, clock: TestClock) -> Iterator[Api]:
    """The API with the `operator` refund gateway: the marketplace confirms each refund."""
    app = build_app(
        make_settings(database_url, tmp_path, refund_gateway="operator"),
        clock=clock,
        auto_migrate=False,
    )
    with TestClient(create_api(app, OPERATOR_KEY), raise_server_exceptions=False) as client:
        yield Api(client, app)
    app.db.dispose()


def assert_error(response: Any, status: int, kind: str, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == (kind, code)
    return dict(error)


def assert_chained(timeline: list[dict[str, Any]]) -> None:
    assert [event["seq"] for event in timeline] == list(range(1, len(timeline) + 1))
    for previous, event in itertools.pairwise(timeline):
        assert event["prev_hash"] == previous["hash"]
    assert len({event["hash"] for event in timeline}) == len(timeline)


# --------------------------------------------------------------------------- refund, no return


def test_accepted_full_refund_without_return_resolves_refunded(api: Api) -> None:
    case = open_case(api)
    assert case["status"] == "awaiting_seller"
    assert case["refundable"] == usd(FULL_L1)

    # The built-in ledger settles the refund in the accept's own transaction.
    accepted = seller(api, case["id"], "accept")
    assert (accepted["status"], accepted["outcome"]) == ("resolved", "refunded")

    final = get_case(api, case["id"])
    assert (final["status"], final["outcome"]) == ("resolved", "refunded")
    assert final["refunded"] == usd(FULL_L1)
    assert final["current_offer"] is None
    assert [(o["by"], o["status"]) for o in final["offers"]] == [("buyer", "accepted")]
    assert final["deadline"] is None


def test_full_refund_is_recorded_as_one_succeeded_refund_to_the_payment_method(api: Api) -> None:
    case = open_case(api)
    seller(api, case["id"], "accept")

    [refund] = refunds(api, case["id"])
    assert refund["id"].startswith("rfd_")
    assert refund["status"] == "succeeded"
    assert refund["amount"] == usd(FULL_L1)
    assert (refund["method"], refund["payment_reference"]) == ("card", "pi_123")
    assert refund["expected_by"]


def test_full_refund_timeline_is_ordered_attributed_and_hash_chained(api: Api) -> None:
    case = open_case(api)
    seller(api, case["id"], "accept")

    timeline = events(api, case["id"])
    assert [(e["type"], e["actor"]) for e in timeline] == [
        ("case.opened", "buyer"),
        ("case.offer_accepted", "seller"),
        ("refund.succeeded", "system"),
    ]
    assert "F1" in clause_ids(timeline[-1])
    assert all(clause["text"] for clause in timeline[-1]["clauses"])
    assert_chained(timeline)


# --------------------------------------------------------------------------- partial refund


def test_buyer_accepting_the_sellers_lower_counter_resolves_partially_refunded(api: Api) -> None:
    case = open_case(
        api, reason="not_as_described", description="Wrong colour.", request=refund_request(2000)
    )
    countered = seller(api, case["id"], "offers", kind="refund", amount=usd(1000))
    assert countered["status"] == "awaiting_buyer"
    assert countered["current_offer"]["by"] == "seller"

    buyer(api, case["id"], "accept")

    final = get_case(api, case["id"])
    assert (final["status"], final["outcome"]) == ("resolved", "partially_refunded")
    assert final["refunded"] == usd(1000)
    assert [(o["by"], o["status"]) for o in final["offers"]] == [
        ("buyer", "superseded"),
        ("seller", "accepted"),
    ]
    [refund] = refunds(api, case["id"])
    assert (refund["status"], refund["amount"]) == ("succeeded", usd(1000))
    assert event_types(api, case["id"]) == [
        "case.opened",
        "case.offer_made",
        "case.offer_accepted",
        "refund.succeeded",
    ]


# --------------------------------------------------------------------------- with a return


def test_return_then_passed_inspection_refunds_in_full(api: Api) -> None:
    agreed = agree_on_return(api)
    case_id = agreed["id"]
    assert agreed["status"] == "awaiting_return_shipment"
    assert agreed["return"]["address"]["country"] == "CN"

    labelled = seller(
        api, case_id, "return/label", carrier="DHL", label_url="https://labels.example/1"
    )
    assert labelled["return"]["label_url"] == "https://labels.example/1"
    shipped = ship_return(api, case_id)
    assert shipped["status"] == "return_in_transit"
    assert shipped["return"]["tracking_number"] == "1Z999"
    delivered = seller(api, case_id, "return/delivered")
    assert delivered["status"] == "awaiting_inspection"
    assert delivered["return"]["delivered_at"]
    inspected = seller(api, case_id, "inspection", passed=True, note="As sent.")
    assert inspected["status"] == "resolved"  # the ledger settled it in the same transaction

    final = get_case(api, case_id)
    assert (final["status"], final["outcome"]) == ("resolved", "refunded")
    assert final["refunded"] == usd(FULL_L1)
    [refund] = refunds(api, case_id)
    assert refund["status"] == "succeeded"


def test_return_timeline_cites_inspection_clause(api: Api) -> None:
    case_id = agree_on_return(api)["id"]
    ship_return(api, case_id)
    seller(api, case_id, "return/delivered")
    seller(api, case_id, "inspection", passed=True)

    timeline = events(api, case_id)
    assert [e["type"] for e in timeline] == [
        "case.opened",
        "case.offer_accepted",
        "case.return_shipped",
        "case.return_delivered",
        "case.inspected",
        "refund.succeeded",
    ]
    assert "I1" in clause_ids(timeline[4])
    assert_chained(timeline)


def test_failed_inspection_goes_to_review_and_the_mediators_refund_resolves(api: Api) -> None:
    case_id = agree_on_return(api)["id"]
    ship_return(api, case_id)
    seller(api, case_id, "return/delivered")
    failed = seller(api, case_id, "inspection", passed=False, note="Screen swapped.")
    assert failed["status"] == "under_review"
    assert failed["deadline"]["party"] == "mediator"

    decided = mediator(
        api, case_id, "decision", kind="refund", amount=usd(2000), note="Partly at fault."
    )
    assert decided["status"] == "resolved"  # the ledger settled it in the same transaction
    assert decided["offers"][-1]["by"] == "mediator"
    assert decided["offers"][-1]["status"] == "accepted"

    final = get_case(api, case_id)
    assert (final["status"], final["outcome"]) == ("resolved", "partially_refunded")
    assert final["refunded"] == usd(2000)
    timeline = events(api, case_id)
    decision = next(e for e in timeline if e["type"] == "case.decided")
    assert decision["actor"] == "mediator"
    assert_chained(timeline)


def test_mediator_rejecting_resolves_rejected_without_refund(api: Api) -> None:
    case_id = escalated_case(api)["id"]

    decided = mediator(api, case_id, "decision", kind="reject", note="No evidence of damage.")

    assert (decided["status"], decided["outcome"]) == ("resolved", "rejected")
    assert decided["refunded"] == usd(0)
    assert refunds(api, case_id) == []
    assert event_types(api, case_id)[-1] == "case.decided"


# --------------------------------------------------------------------------- replacement


def test_replacement_shipped_and_delivered_resolves_replaced(api: Api) -> None:
    agreed = agree_on_replacement(api)
    case_id = agreed["id"]
    assert agreed["status"] == "awaiting_replacement_shipment"

    shipped = seller(api, case_id, "replacement/shipment", carrier="EMS", tracking_number="EE1")
    assert shipped["status"] == "replacement_in_transit"
    delivered = buyer(api, case_id, "replacement/delivered")

    assert (delivered["status"], delivered["outcome"]) == ("resolved", "replaced")
    assert delivered["refunded"] == usd(0)
    assert refunds(api, case_id) == []
    assert event_types(api, case_id) == [
        "case.opened",
        "case.offer_accepted",
        "case.replacement_shipped",
        "case.replacement_delivered",
    ]


# --------------------------------------------------------------------------- reject, escalate


def test_seller_rejection_leaves_the_buyer_to_answer_with_no_offer(api: Api) -> None:
    case = open_case(api)

    rejected = seller(api, case["id"], "reject", reason="Not our fault.")

    assert rejected["status"] == "awaiting_buyer"
    assert rejected["current_offer"] is None
    assert rejected["offers"][0]["status"] == "rejected"


def test_buyer_escalating_after_rejection_puts_the_case_under_review(api: Api) -> None:
    escalated = escalated_case(api)

    assert escalated["status"] == "under_review"
    assert escalated["escalated_at"]
    timeline = events(api, escalated["id"])
    assert [(e["type"], e["actor"]) for e in timeline] == [
        ("case.opened", "buyer"),
        ("case.offer_rejected", "seller"),
        ("case.escalated", "buyer"),
    ]


def test_withdrawal_resolves_withdrawn(api: Api) -> None:
    case = open_case(api)

    withdrawn = buyer(api, case["id"], "withdraw", reason="Found a fix.")

    assert (withdrawn["status"], withdrawn["outcome"]) == ("resolved", "withdrawn")
    assert withdrawn["offers"][0]["status"] == "superseded"
    assert refunds(api, case["id"]) == []


# --------------------------------------------------------------------------- refusals at opening


def test_change_of_mind_is_refused_when_the_seller_does_not_accept_it(api: Api) -> None:
    api.put_order()

    response = api.open_case(
        reason="changed_mind", attachments=[], request=refund_request(return_required=True)
    )

    error = assert_error(response, 422, "policy_violation", "change_of_mind_not_accepted")
    assert "R3" in error["clauses"]


def test_case_after_the_return_window_is_refused(api: Api) -> None:
    api.put_order()
    api.advance(days=30)  # delivered a day before the start: the 30-day window has closed

    body = {"order_id": "o_1", "lines": [{"line_id": "l1"}], "reason": "damaged",
            "request": refund_request()}  # fmt: skip
    response = api.client.post("/v1/cases", json=body, headers=api.auth())

    error = assert_error(response, 422, "policy_violation", "return_window_closed")
    assert "W2" in error["clauses"]


def test_hygiene_item_cannot_be_returned_for_a_minor_difference(api: Api) -> None:
    line = {"line_id": "l1", "sku": "UW-1", "title": "Briefs", "category": "apparel/underwear",
            "quantity": 1, "unit_amount": 2599}  # fmt: skip
    api.put_order(lines=[line])

    response = api.open_case(reason="not_as_described")

    error = assert_error(response, 422, "policy_violation", "not_returnable_hygiene")
    assert "H1" in error["clauses"]


def test_damage_claim_without_evidence_is_refused(api: Api) -> None:
    api.put_order()

    response = api.open_case(attachments=[])

    assert_error(response, 422, "policy_violation", "evidence_required")


def test_request_above_the_refundable_amount_is_refused(api: Api) -> None:
    api.put_order()

    response = api.open_case(request=refund_request(FULL_L1 + 1))

    error = assert_error(response, 422, "policy_violation", "amount_exceeds_refundable")
    assert error["param"]


def test_quality_claim_asking_for_everything_without_a_return_is_refused_by_r2(api: Api) -> None:
    """R2: keep the item for a partial refund, or return it; never everything and keep it."""
    api.put_order()

    for amount in (FULL_L1, FULL_L1 + 1):
        response = api.open_case(reason="quality_issue", request=refund_request(amount))
        assert response.status_code == 422, response.text
    response = api.open_case(reason="quality_issue", request=refund_request(FULL_L1))

    error = assert_error(response, 422, "policy_violation", "full_refund_needs_return")
    assert error["clauses"] == ["R2"]
    assert error["param"] == "amount"
    listed = api.client.get("/v1/cases", headers=api.auth()).json()
    assert listed["data"] == []
    ok(api.open_case(reason="quality_issue", request=refund_request(FULL_L1 - 1)), 201)


def test_quality_claim_asks_for_a_replacement_with_the_item_s_return(api: Api) -> None:
    """R2: a replacement is for the item sent back; kept, the seller's silence would turn
    it into a full refund (D6) on top of the item."""
    api.put_order()

    kept = api.open_case(reason="quality_issue", request={"kind": "replacement"})

    error = assert_error(kept, 422, "policy_violation", "replacement_needs_return")
    assert (error["clauses"], error["param"]) == (["R2"], "return_required")
    assert api.client.get("/v1/cases", headers=api.auth()).json()["data"] == []
    swapped = api.open_case(
        reason="quality_issue", request={"kind": "replacement", "return_required": True}
    )
    assert ok(swapped, 201)["current_offer"]["return_required"] is True


def test_quality_claim_may_ask_for_everything_with_a_return(api: Api) -> None:
    api.put_order()

    case = ok(
        api.open_case(
            reason="quality_issue", request=refund_request(FULL_L1, return_required=True)
        ),
        201,
    )

    assert case["current_offer"]["return_required"] is True


def test_on_a_quality_claim_only_the_buyer_is_held_to_a_partial_refund(api: Api) -> None:
    case = open_case(api, reason="quality_issue", request=refund_request(1000))
    seller(api, case["id"], "offers", kind="refund", amount=usd(500))

    countered = act(api, "buyer", "b_1", case["id"], "offers", kind="refund", amount=usd(FULL_L1))

    assert_error(countered, 422, "policy_violation", "full_refund_needs_return")
    assert get_case(api, case["id"])["current_offer"]["by"] == "seller"
    generous = seller(api, case["id"], "offers", kind="refund", amount=usd(FULL_L1))
    assert generous["current_offer"]["amount"] == usd(FULL_L1)
    buyer(api, case["id"], "accept")
    assert get_case(api, case["id"])["outcome"] == "refunded"


# --------------------------------------------------------------------------- one open case per line


def test_second_case_on_a_line_with_an_open_case_is_a_conflict(api: Api) -> None:
    open_case(api)

    response = api.open_case()

    assert_error(response, 409, "conflict", "case_already_open")


def test_eligibility_answers_a_line_with_an_open_case_as_not_open_to_another(api: Api) -> None:
    open_case(api)

    answer = ok(api.client.get("/v1/orders/o_1/eligibility", headers=api.auth()))

    by_line = {line["line_id"]: line["reasons"] for line in answer["lines"]}
    assert {(r["eligible"], r["code"]) for r in by_line["l1"]} == {(False, "case_already_open")}
    assert all(r["max_refund"] == usd(0) and r["window_closes_at"] for r in by_line["l1"])
    assert any(r["eligible"] for r in by_line["l2"])


# --------------------------------------------------------------------------- an order with cases

_LINES = order_body()["lines"]  # l1, the phone the cases claim; l2


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"lines": [dict(_LINES[0], unit_amount=100), _LINES[1]]}, "lines"),
        ({"lines": _LINES[1:]}, "lines"),
        ({"shipping_amount": 0}, "shipping_amount"),
        ({"buyer_id": "b_2"}, "buyer_id"),
        ({"seller_id": "s_2"}, "seller_id"),
        ({"currency": "EUR"}, "currency"),
        ({"payment": {"method": "wallet", "reference": "w_1"}}, "payment"),
        ({"lines": _LINES[::-1]}, "lines"),  # the order of lines splits the shipping's odd units
    ],
)
def test_an_order_with_a_case_keeps_what_was_paid_by_whom(
    api: Api, change: dict[str, Any], param: str
) -> None:
    case = open_case(api)
    before = ok(api.client.get("/v1/orders/o_1", headers=api.auth()))

    response = api.client.put("/v1/orders/o_1", json=order_body(**change), headers=api.auth())

    assert assert_error(response, 409, "conflict", "order_has_cases")["param"] == param
    assert ok(api.client.get("/v1/orders/o_1", headers=api.auth())) == before
    seller(api, case["id"], "accept")  # its refund is capped by what the order said was paid
    assert ok(api.client.get(f"/v1/cases/{case['id']}", headers=api.auth()))["refunded"] == usd(
        FULL_L1
    )


def test_an_order_with_a_case_still_takes_its_dates_and_descriptions(api: Api) -> None:
    open_case(api)
    titled = [dict(_LINES[0], title="Phone, black"), _LINES[1]]

    response = api.client.put(
        "/v1/orders/o_1",
        json=order_body(lines=titled, delivered_at=START.isoformat()),
        headers=api.auth(),
    )

    replaced = ok(response)
    assert replaced["lines"][0]["title"] == "Phone, black"
    assert replaced["delivered_at"] == START.isoformat().replace("+00:00", "Z")


def test_an_order_whose_cases_are_all_closed_still_keeps_what_was_paid(api: Api) -> None:
    case = open_case(api)
    buyer(api, case["id"], "withdraw")

    response = api.client.put(
        "/v1/orders/o_1", json=order_body(shipping_amount=0), headers=api.auth()
    )

    assert_error(response, 409, "conflict", "order_has_cases")


def test_new_case_is_allowed_once_the_earlier_one_is_withdrawn(api: Api) -> None:
    first = open_case(api)
    buyer(api, first["id"], "withdraw")

    second = ok(api.open_case(), 201)

    assert second["id"] != first["id"]
    assert second["refundable"] == usd(FULL_L1)


def test_a_line_whose_claim_the_mediator_rejected_is_closed_to_new_cases(api: Api) -> None:
    case_id = escalated_case(api)["id"]
    mediator(api, case_id, "decision", kind="reject", note="No evidence of damage.")

    assert_closed_for_good(api, "X1")


def test_a_line_whose_earlier_case_was_withdrawn_shows_it_open_to_a_new_case(api: Api) -> None:
    first = open_case(api)
    buyer(api, first["id"], "withdraw")

    l1 = eligibility_of(api, "l1")
    assert "case_already_decided" not in {r["code"] for r in l1}
    assert next(r for r in l1 if r["reason"] == "damaged")["eligible"]
    assert ok(api.open_case(), 201)["refundable"] == usd(FULL_L1)


def test_refundable_on_a_later_case_is_what_earlier_refunds_left(api: Api) -> None:
    first = open_case(api, reason="not_as_described", request=refund_request(2000))
    seller(api, first["id"], "offers", kind="refund", amount=usd(1000))
    buyer(api, first["id"], "accept")

    too_much = api.open_case(request=refund_request(FULL_L1 - 1000 + 1))
    assert_error(too_much, 422, "policy_violation", "amount_exceeds_refundable")
    second = ok(api.open_case(request=refund_request(FULL_L1 - 1000)), 201)
    assert second["refundable"] == usd(FULL_L1 - 1000)


def test_a_partial_refund_on_two_lines_leaves_each_line_its_share(api: Api) -> None:
    """2000 refunded on l1 (2749 paid) and l2 (2750 paid) is split by what each could
    refund, 1000 each: a later case on l2 may refund at most the 1750 its part left."""
    api.put_order()
    both = ok(
        api.open_case(
            lines=[{"line_id": "l1"}, {"line_id": "l2"}],
            reason="not_as_described",
            request=refund_request(2000),
        ),
        201,
    )
    assert both["refundable"] == usd(FULL_L1 + 2750)
    seller(api, both["id"], "accept")

    later = ok(api.open_case(lines=[{"line_id": "l2"}], request=refund_request(1750)), 201)

    assert later["refundable"] == usd(1750)
    too_much = api.open_case(lines=[{"line_id": "l1"}], request=refund_request(FULL_L1 - 999))
    assert_error(too_much, 422, "policy_violation", "amount_exceeds_refundable")


def test_a_fully_refunded_line_cannot_be_claimed_again(api: Api) -> None:
    first = open_case(api)
    seller(api, first["id"], "accept")

    response = api.open_case(request=refund_request(1))

    assert_error(response, 422, "policy_violation", "nothing_left_to_refund")


# --------------------------------------------------------------------------- the operator gateway


def _pending_refund(api: Api) -> tuple[str, dict[str, Any]]:
    case = open_case(api)
    seller(api, case["id"], "accept")
    [refund] = refunds(api, case["id"])
    return case["id"], refund


def test_operator_gateway_leaves_the_refund_pending(operator_api: Api) -> None:
    case_id, refund = _pending_refund(operator_api)

    assert refund["status"] == "pending"
    assert refund["amount"] == usd(FULL_L1)
    assert get_case(operator_api, case_id)["status"] == "refund_pending"


def test_operator_confirming_the_refund_resolves_the_case(operator_api: Api) -> None:
    case_id, refund = _pending_refund(operator_api)

    confirmed = operator_api.client.post(
        f"/v1/refunds/{refund['id']}/succeeded", headers=operator_api.auth()
    )

    assert ok(confirmed)["status"] == "succeeded"
    final = get_case(operator_api, case_id)
    assert (final["status"], final["outcome"]) == ("resolved", "refunded")
    assert final["refunded"] == usd(FULL_L1)
    timeline = events(operator_api, case_id)
    assert (timeline[-1]["type"], timeline[-1]["actor"]) == ("refund.succeeded", "operator")


def test_operator_reporting_a_failed_refund_keeps_the_case_pending(operator_api: Api) -> None:
    case_id, refund = _pending_refund(operator_api)

    failed = operator_api.client.post(
        f"/v1/refunds/{refund['id']}/failed",
        json={"reason": "card expired"},
        headers=operator_api.auth(),
    )

    assert ok(failed)["status"] == "failed"
    assert get_case(operator_api, case_id)["status"] == "refund_pending"
    assert refunds(operator_api, case_id)[0]["status"] == "failed"
    assert event_types(operator_api, case_id)[-1] == "refund.failed"


def test_refund_confirmation_needs_the_operator(operator_api: Api) -> None:
    _, refund = _pending_refund(operator_api)

    response = operator_api.as_("seller", "s_1")("POST", f"/v1/refunds/{refund['id']}/succeeded")

    assert_error(response, 403, "forbidden", "operator_only")


def test_operator_may_confirm_a_refund_it_first_reported_failed(operator_api: Api) -> None:
    case_id, refund = _pending_refund(operator_api)
    path = f"/v1/refunds/{refund['id']}"
    ok(operator_api.client.post(f"{path}/failed", headers=operator_api.auth()))

    confirmed = operator_api.client.post(f"{path}/succeeded", headers=operator_api.auth())

    assert ok(confirmed)["status"] == "succeeded"
    assert get_case(operator_api, case_id)["outcome"] == "refunded"


def test_a_refund_reported_failed_is_retried_by_a_mediator_and_then_confirmed(
    operator_api: Api,
) -> None:
    """With the operator gateway, a retried refund is pending again for the marketplace to
    execute (told by the `refund.retried` webhook) and confirm."""
    case_id, refund = _pending_refund(operator_api)
    path = f"/v1/refunds/{refund['id']}"
    failed = operator_api.client.post(
        f"{path}/failed", json={"reason": "card expired"}, headers=operator_api.auth()
    )
    assert ok(failed)["status"] == "failed"
    mediator = operator_api.as_("mediator", "m_1")
    assert ok(mediator("GET", f"/v1/cases/{case_id}"))["status"] == "refund_pending"

    assert ok(mediator("POST", f"{path}/retry"))["status"] == "pending"
    operator_api.advance(minutes=5)  # nothing executes it here: the marketplace does
    assert refunds(operator_api, case_id)[0]["status"] == "pending"
    confirmed = operator_api.client.post(f"{path}/succeeded", headers=operator_api.auth())

    assert ok(confirmed)["status"] == "succeeded"
    final = get_case(operator_api, case_id)
    assert (final["status"], final["outcome"], final["refunded"]) == (
        "resolved",
        "refunded",
        usd(FULL_L1),
    )
    types = event_types(operator_api, case_id)
    assert types[-3:] == ["refund.failed", "refund.retried", "refund.succeeded"], types


def test_withdrawal_is_refused_once_the_refund_is_pending(operator_api: Api) -> None:
    case_id, _ = _pending_refund(operator_api)

    response = operator_api.as_("buyer", "b_1")("POST", f"/v1/cases/{case_id}/withdraw")

    assert_error(response, 409, "conflict", "invalid_state")
