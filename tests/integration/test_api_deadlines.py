"""Deadlines D1 to D7 through the HTTP API, moved only by the test clock (POST /v1/test/clock)."""

from __future__ import annotations

from datetime import timedelta

from restitution.domain.history import format_time
from tests.conftest import START
from tests.integration.case_steps import (
    FULL_L1,
    RETURN_ADDRESS,
    agree_on_replacement,
    agree_on_return,
    agree_on_return_without_address,
    assert_closed_for_good,
    clause_ids,
    escalated_case,
    events,
    get_case,
    ok,
    open_case,
    refund_request,
    refunds,
    seller,
    ship_return,
    usd,
)
from tests.integration.conftest import Api


def at(**delta: float) -> str:
    return format_time(START + timedelta(**delta))


# --------------------------------------------------------------------------- D1


def test_open_case_shows_the_sellers_d1_deadline(api: Api) -> None:
    case = open_case(api)

    assert case["deadline"]["kind"] == "D1"
    assert case["deadline"]["action"] == "auto_accept"
    assert case["deadline"]["party"] == "seller"
    assert case["deadline"]["due_at"] == at(days=5)


def test_one_second_before_d1_nothing_happens(api: Api) -> None:
    case = open_case(api)

    moved = api.advance(days=5, seconds=-1)

    assert moved["processed"] == 0
    assert get_case(api, case["id"])["status"] == "awaiting_seller"


def test_silent_seller_has_the_buyers_offer_accepted_at_d1(api: Api) -> None:
    case = open_case(api)

    moved = api.advance(days=5)

    assert moved["processed"] == 1
    final = get_case(api, case["id"])
    assert (final["status"], final["outcome"]) == ("resolved", "refunded")
    assert final["refunded"] == usd(FULL_L1)
    accepted = next(e for e in events(api, case["id"]) if e["type"] == "case.offer_accepted")
    assert accepted["actor"] == "system"
    assert accepted["at"] == at(days=5)
    assert {"D1", "N1"} <= set(clause_ids(accepted))


# --------------------------------------------------------------------------- D2


def test_seller_answer_starts_the_buyers_d2_deadline(api: Api) -> None:
    case = open_case(api, reason="not_as_described", request=refund_request(2000))

    countered = seller(api, case["id"], "offers", kind="refund", amount=usd(500))

    assert countered["deadline"] == {
        "kind": "D2",
        "action": "auto_escalate",
        "party": "buyer",
        "due_at": at(days=7),
        "automatic": True,
    }


def test_negotiation_unsettled_seven_days_after_the_sellers_answer_is_escalated(
    api: Api,
) -> None:
    case = open_case(api, reason="not_as_described", request=refund_request(2000))
    seller(api, case["id"], "offers", kind="refund", amount=usd(500))
    api.advance(days=7, seconds=-1)
    assert get_case(api, case["id"])["status"] == "awaiting_buyer"

    api.advance(seconds=1)

    final = get_case(api, case["id"])
    assert final["status"] == "under_review"
    escalated = events(api, case["id"])[-1]
    assert (escalated["type"], escalated["actor"]) == ("case.escalated", "system")
    assert {"D2", "X1"} <= set(clause_ids(escalated))


# --------------------------------------------------------------------------- D3


def test_agreed_return_shows_the_buyers_d3_deadline(api: Api) -> None:
    agreed = agree_on_return(api)

    assert agreed["deadline"]["kind"] == "D3"
    assert agreed["deadline"]["action"] == "expire"
    assert agreed["deadline"]["party"] == "buyer"
    assert agreed["deadline"]["due_at"] == at(days=10)


def test_return_not_shipped_within_ten_days_expires_without_refund(api: Api) -> None:
    case_id = agree_on_return(api)["id"]
    api.advance(days=10, seconds=-1)
    assert get_case(api, case_id)["status"] == "awaiting_return_shipment"

    api.advance(seconds=1)

    final = get_case(api, case_id)
    assert (final["status"], final["outcome"]) == ("resolved", "expired")
    assert final["refunded"] == usd(0)
    assert refunds(api, case_id) == []
    expired = events(api, case_id)[-1]
    assert (expired["type"], expired["actor"]) == ("case.expired", "system")
    assert "D3" in clause_ids(expired)


def test_a_line_whose_return_expired_at_d3_is_closed_to_new_cases(api: Api) -> None:
    case_id = agree_on_return(api)["id"]
    api.advance(days=10)
    assert get_case(api, case_id)["outcome"] == "expired"
    api.forget_tokens()  # the buyer's link of ten days ago has expired

    assert_closed_for_good(api, "D3")


def test_agreed_return_without_an_address_runs_d3_against_the_seller(api: Api) -> None:
    agreed = agree_on_return_without_address(api)

    assert agreed["return"]["address"] is None
    assert agreed["deadline"] == {
        "kind": "D3",
        "action": "auto_escalate",
        "party": "seller",
        "due_at": at(days=10),
        "automatic": True,
    }


def test_seller_silent_on_where_to_return_for_ten_days_sends_the_case_to_the_platform(
    api: Api,
) -> None:
    case_id = agree_on_return_without_address(api)["id"]
    api.advance(days=10, seconds=-1)
    assert get_case(api, case_id)["status"] == "awaiting_return_shipment"

    api.advance(seconds=1)

    final = get_case(api, case_id)
    assert (final["status"], final["outcome"]) == ("under_review", None)
    assert final["escalated_at"] == at(days=10)
    assert final["deadline"]["kind"] == "D7"
    escalated = events(api, case_id)[-1]
    assert (escalated["type"], escalated["actor"]) == ("case.escalated", "system")
    assert {"D3", "X1"} <= set(clause_ids(escalated))
    # the mediator now sees it, and may decide
    mediator_view = api.as_("mediator", "m_1")("GET", f"/v1/cases/{case_id}")
    assert mediator_view.status_code == 200, mediator_view.text


def test_address_the_seller_gives_late_starts_the_buyers_whole_d3_period(api: Api) -> None:
    case_id = agree_on_return_without_address(api)["id"]
    api.advance(days=9)
    api.forget_tokens()

    given = seller(api, case_id, "return/address", address=RETURN_ADDRESS)

    assert given["deadline"] == {
        "kind": "D3",
        "action": "expire",
        "party": "buyer",
        "due_at": at(days=19),
        "automatic": True,
    }
    assert given["return"]["address"] == RETURN_ADDRESS
    assert given["return"]["instructions_at"] == at(days=9)
    api.advance(days=10, seconds=-1)
    assert get_case(api, case_id)["status"] == "awaiting_return_shipment"

    api.advance(seconds=1)

    final = get_case(api, case_id)
    assert (final["status"], final["outcome"]) == ("resolved", "expired")
    expired = events(api, case_id)[-1]
    assert (expired["type"], expired["at"]) == ("case.expired", at(days=19))


def test_label_the_seller_adds_on_day_nine_leaves_the_buyer_ten_days(api: Api) -> None:
    case_id = agree_on_return_without_address(api)["id"]
    api.advance(days=9)
    api.forget_tokens()

    labelled = seller(
        api, case_id, "return/label", carrier="DHL", label_url="https://labels.example/1"
    )

    assert labelled["deadline"]["due_at"] == at(days=19)
    assert (labelled["deadline"]["party"], labelled["deadline"]["action"]) == ("buyer", "expire")
    api.advance(days=9)
    api.forget_tokens()
    shipped = ship_return(api, case_id)
    assert shipped["status"] == "return_in_transit"


def test_label_for_an_order_with_an_address_keeps_the_buyers_d3(api: Api) -> None:
    case_id = agree_on_return(api)["id"]
    api.advance(days=9)
    api.forget_tokens()

    labelled = seller(
        api, case_id, "return/label", carrier="DHL", label_url="https://labels.example/1"
    )

    assert labelled["deadline"]["due_at"] == at(days=10)


# --------------------------------------------------------------------------- D4


def test_shipped_return_shows_the_sellers_d4_deadline(api: Api) -> None:
    case_id = agree_on_return(api)["id"]

    shipped = ship_return(api, case_id)

    assert shipped["deadline"]["kind"] == "D4"
    assert shipped["deadline"]["action"] == "auto_escalate"
    assert shipped["deadline"]["party"] == "seller"
    assert shipped["deadline"]["due_at"] == at(days=30)


def test_return_in_transit_for_thirty_days_is_escalated_as_lost(api: Api) -> None:
    case_id = agree_on_return(api)["id"]
    ship_return(api, case_id)
    api.advance(days=30, seconds=-1)
    assert get_case(api, case_id)["status"] == "return_in_transit"

    api.advance(seconds=1)

    assert get_case(api, case_id)["status"] == "under_review"
    escalated = events(api, case_id)[-1]
    assert (escalated["type"], escalated["actor"]) == ("case.escalated", "system")
    assert "D4" in clause_ids(escalated)


# --------------------------------------------------------------------------- D5


def test_delivered_return_shows_the_sellers_d5_deadline_in_business_days(api: Api) -> None:
    case_id = agree_on_return(api)["id"]
    ship_return(api, case_id)

    delivered = seller(api, case_id, "return/delivered")

    # Delivered on a Friday: three business days later is the next Wednesday.
    assert delivered["deadline"]["kind"] == "D5"
    assert delivered["deadline"]["action"] == "auto_pass_inspection"
    assert delivered["deadline"]["party"] == "seller"
    assert delivered["deadline"]["due_at"] == at(days=5)


def test_uninspected_return_passes_inspection_at_d5_and_is_refunded(api: Api) -> None:
    case_id = agree_on_return(api)["id"]
    ship_return(api, case_id)
    seller(api, case_id, "return/delivered")
    api.advance(days=5, seconds=-1)
    assert get_case(api, case_id)["status"] == "awaiting_inspection"

    api.advance(seconds=1)

    final = get_case(api, case_id)
    assert (final["status"], final["outcome"]) == ("resolved", "refunded")
    assert [r["status"] for r in refunds(api, case_id)] == ["succeeded"]
    inspected = next(e for e in events(api, case_id) if e["type"] == "case.inspected")
    assert inspected["actor"] == "system"
    assert {"D5", "I1"} <= set(clause_ids(inspected))


# --------------------------------------------------------------------------- D6


def test_agreed_replacement_shows_the_sellers_d6_deadline(api: Api) -> None:
    agreed = agree_on_replacement(api)

    assert agreed["deadline"]["kind"] == "D6"
    assert agreed["deadline"]["action"] == "convert_to_refund"
    assert agreed["deadline"]["party"] == "seller"
    assert agreed["deadline"]["due_at"] == at(days=7)


def test_replacement_not_shipped_in_seven_days_becomes_a_full_refund(api: Api) -> None:
    case_id = agree_on_replacement(api)["id"]
    api.advance(days=7, seconds=-1)
    assert get_case(api, case_id)["status"] == "awaiting_replacement_shipment"

    api.advance(seconds=1)

    final = get_case(api, case_id)
    assert (final["status"], final["outcome"]) == ("resolved", "refunded")
    assert final["refunded"] == usd(FULL_L1)
    [refund] = refunds(api, case_id)
    assert (refund["status"], refund["amount"]) == ("succeeded", usd(FULL_L1))
    converted = next(e for e in events(api, case_id) if e["type"] == "case.converted_to_refund")
    assert converted["actor"] == "system"
    assert {"D6", "R1"} <= set(clause_ids(converted))


# --------------------------------------------------------------------------- D7


def test_case_under_review_shows_the_mediators_d7_target(api: Api) -> None:
    escalated = escalated_case(api)

    assert escalated["deadline"] == {
        "kind": "D7",
        "action": "decide",
        "party": "mediator",
        "due_at": at(days=7),
        "automatic": False,
    }


def test_nothing_fires_when_the_d7_target_passes(api: Api) -> None:
    case_id = escalated_case(api)["id"]
    before = len(events(api, case_id))

    moved = api.advance(days=8)

    assert moved["processed"] == 0
    assert get_case(api, case_id)["status"] == "under_review"
    assert len(events(api, case_id)) == before


# --------------------------------------------------------------------------- the test clock


def test_get_test_clock_answers_the_current_time(api: Api) -> None:
    response = ok(api.client.get("/v1/test/clock", headers=api.auth()))

    assert response["now"] == at()


def test_moving_the_clock_answers_now_and_processed(api: Api) -> None:
    response = api.client.post("/v1/test/clock", json={"now": at(hours=1)}, headers=api.auth())

    moved = ok(response)
    assert (moved["now"], moved["processed"]) == (at(hours=1), 0)
    assert ok(api.client.get("/v1/test/clock", headers=api.auth()))["now"] == at(hours=1)


def test_moving_the_clock_backwards_is_refused(api: Api) -> None:
    response = api.client.post("/v1/test/clock", json={"now": at(seconds=-1)}, headers=api.auth())

    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request"
    assert ok(api.client.get("/v1/test/clock", headers=api.auth()))["now"] == at()


def test_advancing_the_clock_past_the_calendar_is_refused(api: Api) -> None:
    # Times in requests stop before 9000; the clock went on, to an OverflowError (a 500)
    # in year 9999 and date arithmetic out of range before that.
    last = "8999-12-31T23:59:59Z"
    ok(api.client.post("/v1/test/clock", json={"now": last}, headers=api.auth()))

    response = api.client.post("/v1/test/clock", json={"advance_seconds": 1}, headers=api.auth())

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request", "clock_out_of_range")
    assert ok(api.client.get("/v1/test/clock", headers=api.auth()))["now"] == last


def test_moving_the_clock_needs_the_operator(api: Api) -> None:
    response = api.as_("buyer", "b_1")("POST", "/v1/test/clock", json={"advance_seconds": 60})

    assert response.status_code == 403, response.text
    assert response.json()["error"]["type"] == "forbidden"


def test_one_long_clock_jump_fires_each_deadline_in_turn_at_its_due_time(api: Api) -> None:
    case = open_case(api, request=refund_request(return_required=True))

    moved = api.advance(days=20)

    assert moved["processed"] == 2  # D1 accepts the return; D3 expires it ten days later
    final = get_case(api, case["id"])
    assert (final["status"], final["outcome"]) == ("resolved", "expired")
    timeline = events(api, case["id"])
    assert [(e["type"], e["at"]) for e in timeline[1:]] == [
        ("case.offer_accepted", at(days=5)),
        ("case.expired", at(days=15)),
    ]
