"""POST /v1/cases/{id}/return/address: the seller tells the buyer where to send the return.

Its effect on the D3 deadline is tested with the other deadlines (test_api_deadlines.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.case_steps import (
    RETURN_ADDRESS,
    TERMS_WITHOUT_ADDRESS,
    act,
    agree_on_return,
    agree_on_return_without_address,
    events,
    get_case,
    mediator,
    ok,
    open_case,
    refund_request,
    seller,
    ship_return,
)
from tests.integration.conftest import Api
from tests.integration.test_api_conventions import error_of
from tests.integration.test_authz_matrix import snapshot
from tests.integration.test_portal_pages import csrf, signed_in


def give_address(api: Api, case_id: str, address: Any, role: str = "seller") -> Any:
    party_id = {"seller": "s_1", "buyer": "b_1", "mediator": "m_1"}[role]
    return act(api, role, party_id, case_id, "return/address", address=address)


def test_the_seller_gives_a_return_address_that_everyone_on_the_case_sees(api: Api) -> None:
    case_id = agree_on_return_without_address(api)["id"]

    given = ok(give_address(api, case_id, RETURN_ADDRESS))

    assert given["status"] == "awaiting_return_shipment"
    assert given["return"]["address"] == RETURN_ADDRESS
    buyers_view = ok(api.as_("buyer", "b_1")("GET", f"/v1/cases/{case_id}"))
    assert buyers_view["return"]["address"] == RETURN_ADDRESS
    added = events(api, case_id)[-1]
    assert (added["type"], added["actor"], added["actor_id"]) == (
        "case.return_address_added",
        "seller",
        "s_1",
    )
    assert added["data"]["address"] == RETURN_ADDRESS


def test_the_seller_may_change_the_orders_return_address(api: Api) -> None:
    case_id = agree_on_return(api)["id"]

    given = ok(give_address(api, case_id, {**RETURN_ADDRESS, "line2": None}))

    assert given["return"]["address"] == {**RETURN_ADDRESS, "line2": None}


def test_the_operator_gives_the_address_for_the_seller(api: Api) -> None:
    case_id = agree_on_return_without_address(api)["id"]

    response = api.client.post(
        f"/v1/cases/{case_id}/return/address",
        json={"address": RETURN_ADDRESS},
        headers=api.auth(),
    )

    assert ok(response)["return"]["address"] == RETURN_ADDRESS
    assert events(api, case_id)[-1]["actor"] == "seller"


def test_the_buyer_then_ships_to_it(api: Api) -> None:
    case_id = agree_on_return_without_address(api)["id"]
    ok(give_address(api, case_id, RETURN_ADDRESS))

    shipped = ship_return(api, case_id)

    assert shipped["status"] == "return_in_transit"
    assert shipped["return"]["address"] == RETURN_ADDRESS


BAD_ADDRESSES = {
    "no-postal-code": ({k: v for k, v in RETURN_ADDRESS.items() if k != "postal_code"},
                       "invalid_field", "address.postal_code"),
    "country-name": ({**RETURN_ADDRESS, "country": "China"}, "invalid_field", "address.country"),
    "nul": ({**RETURN_ADDRESS, "name": "Shop\x00"}, "invalid_field", "address.name"),
    "over-long": ({**RETURN_ADDRESS, "line1": "x" * 501}, "invalid_field", "address.line1"),
    "long-postal-code": ({**RETURN_ADDRESS, "postal_code": "9" * 41}, "invalid_field",
                         "address.postal_code"),
    "not-text": ({**RETURN_ADDRESS, "city": 315000}, "invalid_field", "address.city"),
    "blank-name": ({**RETURN_ADDRESS, "name": "  "}, "missing_field", "address.name"),
    "not-an-object": ("9 Dock St, Ningbo", "invalid_field", "address"),
}  # fmt: skip


@pytest.mark.parametrize(("address", "code", "param"), BAD_ADDRESSES.values(), ids=BAD_ADDRESSES)
def test_a_bad_address_is_refused_and_changes_nothing(
    api: Api, address: Any, code: str, param: str
) -> None:
    case_id = agree_on_return_without_address(api)["id"]
    before = snapshot(api)

    error = error_of(give_address(api, case_id, address), 400, "invalid_request", code)

    assert error["param"] == param
    assert snapshot(api) == before


def test_a_missing_address_is_refused(api: Api) -> None:
    case_id = agree_on_return_without_address(api)["id"]

    response = api.as_("seller", "s_1")("POST", f"/v1/cases/{case_id}/return/address", json={})

    assert error_of(response, 400, "invalid_request")["param"] == "address"


def test_no_address_before_a_return_is_agreed(api: Api) -> None:
    case_id = open_case(api, request=refund_request(return_required=True))["id"]
    api.auth("seller", "s_1")  # minted before the snapshot
    before = snapshot(api)

    error_of(give_address(api, case_id, RETURN_ADDRESS), 409, "conflict", "invalid_state")

    assert snapshot(api) == before


def test_no_address_once_the_return_has_shipped(api: Api) -> None:
    case_id = agree_on_return(api)["id"]
    ship_return(api, case_id)

    error_of(give_address(api, case_id, RETURN_ADDRESS), 409, "conflict", "invalid_state")

    assert get_case(api, case_id)["return"]["address"]["name"] == "Shop 1 returns"


def test_the_buyer_cannot_give_the_return_address(api: Api) -> None:
    case_id = agree_on_return_without_address(api)["id"]
    before = snapshot(api)

    response = give_address(api, case_id, RETURN_ADDRESS, role="buyer")

    error_of(response, 403, "forbidden", "actor_not_allowed")
    assert snapshot(api) == before


def test_the_mediator_cannot_give_the_return_address(api: Api) -> None:
    # Escalated and decided with a return: the mediator sees the case, but does not act for
    # the seller.
    api.put_order(seller_terms=TERMS_WITHOUT_ADDRESS)
    case_id = ok(api.open_case(), 201)["id"]
    seller(api, case_id, "reject", reason="It left us intact.")
    act(api, "buyer", "b_1", case_id, "escalate", reason="Please decide.")
    decided = mediator(
        api, case_id, "decision", kind="refund", amount={"amount": 2749, "currency": "USD"},
        return_required=True, note="Return it first.",
    )  # fmt: skip
    assert (decided["status"], decided["deadline"]["party"]) == (
        "awaiting_return_shipment",
        "seller",
    )
    before = snapshot(api)

    response = give_address(api, case_id, RETURN_ADDRESS, role="mediator")

    error_of(response, 403, "forbidden", "actor_not_allowed")
    assert snapshot(api) == before


# --------------------------------------------------------------------------- the portal


PORTAL_ADDRESS = {
    "name": "Shop 1 returns",
    "line1": "9 Dock St",
    "line2": "",
    "city": "Ningbo",
    "postal_code": "315000",
    "country": "cn",
}


def test_the_seller_gives_the_address_from_the_portal_and_the_buyer_sees_it(api: Api) -> None:
    case_id = agree_on_return_without_address(api)["id"]
    seller_client = signed_in(api, "seller", "s_1")
    page = seller_client.get(f"/portal/cases/{case_id}")
    assert f"/portal/cases/{case_id}/add_return_address" in page.text
    assert "give the buyer a return address or a prepaid label" in page.text

    response = seller_client.post(
        f"/portal/cases/{case_id}/add_return_address",
        data={"csrf_token": csrf(page), **PORTAL_ADDRESS},
        follow_redirects=False,
    )

    assert response.status_code == 303, response.text
    case = get_case(api, case_id)
    assert case["return"]["address"] == {**RETURN_ADDRESS, "line2": None}
    buyer_page = signed_in(api, "buyer", "b_1").get(f"/portal/cases/{case_id}").text
    assert "9 Dock St" in buyer_page
    assert "gave the address to send the return to" in buyer_page
    assert "Your turn:</strong> ship the return" in buyer_page


def test_the_buyer_is_told_the_seller_has_not_said_where_to_return(api: Api) -> None:
    case_id = agree_on_return_without_address(api)["id"]

    page = signed_in(api, "buyer", "b_1").get(f"/portal/cases/{case_id}").text

    assert "The seller has not yet said where to send the item" in page
    assert (
        "Waiting for the <strong>seller</strong> to give you a return address or a prepaid label"
        in page
    )
    assert "/add_return_address" not in page


def test_a_portal_address_with_a_bad_country_is_refused_in_words(api: Api) -> None:
    case_id = agree_on_return_without_address(api)["id"]
    seller_client = signed_in(api, "seller", "s_1")
    page = seller_client.get(f"/portal/cases/{case_id}")

    response = seller_client.post(
        f"/portal/cases/{case_id}/add_return_address",
        data={"csrf_token": csrf(page), **PORTAL_ADDRESS, "country": "China"},
    )

    assert response.status_code == 400
    assert "two-letter ISO 3166 code" in response.text
    assert get_case(api, case_id)["return"]["address"] is None


def test_the_console_shows_where_the_return_goes(api: Api) -> None:
    api.put_order(seller_terms=TERMS_WITHOUT_ADDRESS)
    case_id = ok(api.open_case(request=refund_request(return_required=True)), 201)["id"]
    seller(api, case_id, "reject", reason="No.")
    act(api, "buyer", "b_1", case_id, "escalate", reason="Please decide.")
    mediator(
        api, case_id, "decision", kind="refund", amount={"amount": 2749, "currency": "USD"},
        return_required=True, note="Return it first.",
    )  # fmt: skip
    console = signed_in(api, "mediator", "m_1")
    assert (
        "Return to: no address given, no prepaid label"
        in console.get(f"/console/cases/{case_id}").text
    )

    ok(give_address(api, case_id, RETURN_ADDRESS))

    page = console.get(f"/console/cases/{case_id}").text
    assert "Return to: Shop 1 returns, 9 Dock St, Gate 2, 315000 Ningbo, CN" in page
