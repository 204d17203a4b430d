"""The portal and the console without a browser: sign-in, CSRF, who sees what, every page."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from restitution.adapters.db import tables as t
from restitution.cli import app as cli
from restitution.web import cases as case_views
from restitution.web import sessions
from tests.integration.case_steps import (
    RETURN_ADDRESS,
    TERMS_WITHOUT_ADDRESS,
    agree_on_replacement,
    agree_on_return,
    agree_on_return_without_address,
    seller,
    ship_return,
)
from tests.integration.conftest import PNG, Api
from tests.integration.test_authz_matrix import snapshot
from tests.integration.test_refund_execution import FakeGateway


def signed_in(api: Api, role: str, party_id: str) -> TestClient:
    """A browser-like client (its own cookie jar) signed in through a minted portal_url."""
    minted = api.client.post(
        "/v1/party_tokens", json={"role": role, "party_id": party_id}, headers=api.auth()
    ).json()
    client = TestClient(api.client.app, raise_server_exceptions=True)
    path = minted["portal_url"].split("://", 1)[1].split("/", 1)[1]
    response = client.get("/" + path, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def csrf(page: Any) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "the page has no CSRF token"
    return found.group(1)


def escalated_case(api: Api) -> str:
    api.put_order()
    case_id = str(api.open_case().json()["id"])
    seller = api.as_("seller", "s_1")
    assert seller("POST", f"/v1/cases/{case_id}/reject", json={"reason": "No."}).status_code == 200
    buyer = api.as_("buyer", "b_1")
    assert buyer("POST", f"/v1/cases/{case_id}/escalate", json={}).status_code == 200
    return case_id


def test_a_portal_link_signs_in_with_an_http_only_same_site_cookie(api: Api) -> None:
    minted = api.client.post(
        "/v1/party_tokens", json={"role": "buyer", "party_id": "b_1"}, headers=api.auth()
    ).json()
    client = TestClient(api.client.app)
    response = client.get(
        "/portal/login", params={"token": minted["token"]}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/orders"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert client.get("/portal/orders").status_code == 200


def test_an_unknown_link_is_refused_with_a_page_that_says_what_to_do(api: Api) -> None:
    response = TestClient(api.client.app).get("/portal/login", params={"token": "rst_b_nope"})
    assert response.status_code == 401
    assert "Open the link from the marketplace again" in response.text


def test_a_session_ends_when_the_link_it_came_from_expires(api: Api) -> None:
    minted = api.client.post(
        "/v1/party_tokens",
        json={"role": "buyer", "party_id": "b_1", "ttl_seconds": 60},
        headers=api.auth(),
    ).json()
    client = TestClient(api.client.app)
    signed = client.get("/portal/login", params={"token": minted["token"]}, follow_redirects=False)
    assert signed.status_code == 303
    assert "max-age=60" in signed.headers["set-cookie"].lower()
    assert client.get("/portal/orders").status_code == 200

    api.advance(seconds=61)

    assert client.get("/portal/orders").status_code == 401


def test_pages_need_a_session(api: Api) -> None:
    client = TestClient(api.client.app)
    assert client.get("/portal/orders").status_code == 401
    response = client.get("/console/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/console/login"


def test_a_post_without_its_csrf_token_is_refused_and_changes_nothing(api: Api) -> None:
    api.put_order()
    case_id = api.open_case().json()["id"]
    seller = signed_in(api, "seller", "s_1")
    response = seller.post(f"/portal/cases/{case_id}/accept", data={})
    assert response.status_code == 403
    assert "nothing was changed" in response.text
    wrong = seller.post(f"/portal/cases/{case_id}/accept", data={"csrf_token": "forged"})
    assert wrong.status_code == 403
    case = api.as_("operator")("GET", f"/v1/cases/{case_id}").json()
    assert case["status"] == "awaiting_seller"


def test_a_seller_does_not_see_another_sellers_case(api: Api) -> None:
    api.put_order()
    case_id = api.open_case().json()["id"]
    other = signed_in(api, "seller", "s_2")
    response = other.get(f"/portal/cases/{case_id}")
    assert response.status_code == 404
    assert case_id not in other.get("/portal/cases").text


NOTHING_HERE = "There is nothing here, or it is not yours to see."
# Pages and form posts on b_1/s_1's case (not escalated), its evidence and its order, by
# a party they are not for: (party, method, path, form).
NOT_THEIRS = [
    ("buyer", "GET", "/portal/cases/{case}", None),
    ("buyer", "POST", "/portal/cases/{case}/withdraw", {}),
    ("buyer", "POST", "/portal/cases/{case}/post_message", {"body": "hello"}),
    ("buyer", "GET", "/portal/attachments/{att}", None),
    ("buyer", "GET", "/portal/orders/{order}/claim", None),
    (
        "buyer",
        "POST",
        "/portal/orders/{order}/claim",
        {"line": "l1", "reason": "damaged", "remedy": "replacement"},
    ),
    ("seller", "GET", "/portal/cases/{case}", None),
    ("seller", "POST", "/portal/cases/{case}/accept", {}),
    ("seller", "POST", "/portal/cases/{case}/post_message", {"body": "hello"}),
    ("seller", "GET", "/portal/attachments/{att}", None),
    ("mediator", "GET", "/console/cases/{case}", None),
    ("mediator", "POST", "/console/cases/{case}/decide", {"kind": "reject", "note": "no"}),
    ("mediator", "POST", "/console/cases/{case}/post_message", {"body": "hello"}),
    ("mediator", "GET", "/console/attachments/{att}", None),
]
OTHER_PARTY = {"buyer": "b_2", "seller": "s_2", "mediator": "m_1"}


@pytest.mark.parametrize(
    ("role", "method", "path", "form"),
    NOT_THEIRS,
    ids=[f"{role}-{method}-{path}" for role, method, path, _ in NOT_THEIRS],
)
def test_a_page_that_is_not_yours_is_as_missing_and_its_form_changes_nothing(
    api: Api, role: str, method: str, path: str, form: dict[str, str] | None
) -> None:
    api.put_order()
    case = api.open_case().json()
    attachment = case_attachment(api, case["id"])
    client = signed_in(api, role, OTHER_PARTY[role])
    token = csrf(client.get("/console/" if role == "mediator" else "/portal/cases"))
    data = None if form is None else {**form, "csrf_token": token}
    before = snapshot(api)

    theirs = client.request(
        method, path.format(case=case["id"], att=attachment, order="o_1"), data=data
    )
    missing = client.request(
        method, path.format(case="case_missing", att="att_missing", order="o_missing"), data=data
    )

    assert (theirs.status_code, missing.status_code) == (404, 404)
    assert NOTHING_HERE in theirs.text and NOTHING_HERE in missing.text
    assert snapshot(api) == before


def case_attachment(api: Api, case_id: str) -> str:
    events = api.as_("operator")("GET", f"/v1/cases/{case_id}/events").json()["data"]
    return str(events[0]["data"]["attachments"][0])


def test_lists_and_the_queue_show_no_case_that_is_not_yours(api: Api) -> None:
    api.put_order()
    case_id = api.open_case().json()["id"]
    for role, path in (
        ("buyer", "/portal/cases"),
        ("seller", "/portal/cases"),
        ("mediator", "/console/?status=awaiting_seller"),
        ("mediator", "/console/?status=all"),
    ):
        page = signed_in(api, role, OTHER_PARTY[role]).get(path)
        assert page.status_code == 200, path
        assert case_id not in page.text, path
    assert case_id in signed_in(api, "buyer", "b_1").get("/portal/cases").text


def test_every_page_renders_for_its_party(api: Api) -> None:
    case_id = escalated_case(api)
    buyer = signed_in(api, "buyer", "b_1")
    for path in (
        "/portal/orders",
        "/portal/orders/o_1/claim?line=l2",
        "/portal/orders/o_1/claim?line=l2&reason=quality_issue",
        "/portal/cases",
        f"/portal/cases/{case_id}",
    ):
        assert buyer.get(path).status_code == 200, path
    seller = signed_in(api, "seller", "s_1")
    for path in ("/portal/cases", "/portal/cases?needs=me", f"/portal/cases/{case_id}"):
        assert seller.get(path).status_code == 200, path
    mediator = signed_in(api, "mediator", "m_1")
    for path in (
        "/console/",
        "/console/?status=all",
        "/console/overview",
        f"/console/cases/{case_id}",
    ):
        assert mediator.get(path).status_code == 200, path
    assert "<svg" in mediator.get("/console/overview").text
    attachment = re.search(
        r"/console/attachments/(att_\w+)", mediator.get(f"/console/cases/{case_id}").text
    )
    assert attachment is not None
    image = mediator.get(f"/console/attachments/{attachment.group(1)}")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"


def test_a_mediator_opens_a_failed_refund_from_its_e_mail_and_retries_it(api: Api) -> None:
    api.app.settings = api.app.settings.model_copy(update={"refund_max_attempts": 1})
    api.app.refund_gateway = FakeGateway(failures=1)  # its first attempt fails, for good
    api.put_order()
    case_id = api.open_case().json()["id"]
    accepted = api.as_("seller", "s_1")("POST", f"/v1/cases/{case_id}/accept")
    assert accepted.status_code == 200, accepted.text
    mediator = signed_in(api, "mediator", "m_1")

    page = mediator.get(f"/console/cases/{case_id}")  # the link of the refund_failed e-mail

    assert page.status_code == 200
    assert "The refund failed" in page.text and "Retry the refund" in page.text
    assert f"/console/cases/{case_id}" in mediator.get("/console/?status=refund_pending").text
    buyer = signed_in(api, "buyer", "b_1")
    buyer_page = buyer.get(f"/portal/cases/{case_id}")
    assert "Retry the refund" not in buyer_page.text
    assert "did not go through yet" in buyer_page.text
    assert "Expected to arrive" not in buyer_page.text
    refund_id = re.search(r'name="refund_id" value="(rfd_\w+)"', page.text)
    assert refund_id is not None
    form = {"csrf_token": csrf(buyer_page), "refund_id": refund_id.group(1)}
    before = snapshot(api)
    refused = buyer.post(f"/portal/cases/{case_id}/retry_refund", data=form)
    assert refused.status_code == 403 and "only the operator or a mediator" in refused.text
    assert snapshot(api) == before

    retried = mediator.post(
        f"/console/cases/{case_id}/retry_refund",
        data={"csrf_token": csrf(page), "refund_id": refund_id.group(1)},
        follow_redirects=False,
    )

    assert retried.status_code == 303, retried.text
    page = mediator.get(f"/console/cases/{case_id}")
    assert "asked for the refund to be tried again" in page.text
    assert "Retry the refund" not in page.text  # pending again
    api.advance(seconds=1)  # the gateway, fixed, is asked again
    case = api.as_("operator")("GET", f"/v1/cases/{case_id}").json()
    assert (case["status"], case["outcome"]) == ("resolved", "refunded")


def test_the_overview_counts_deadlines_failing_to_fire(api: Api) -> None:
    escalated_case(api)  # its deadline (D5, the mediator's) is still to fire
    mediator = signed_in(api, "mediator", "m_1")
    assert "failing to fire" not in mediator.get("/console/overview").text
    d = t.deadlines.c
    with api.app.db.transaction() as conn:  # as the worker records a failed attempt
        conn.execute(
            update(t.deadlines)
            .where(d.fired_at.is_(None), d.cleared_at.is_(None))
            .values(attempts=1, last_error="RuntimeError: boom")
        )
    page = mediator.get("/console/overview").text
    assert "1 failing to fire: see the worker's log" in page


def test_the_portal_is_not_the_console(api: Api) -> None:
    buyer = signed_in(api, "buyer", "b_1")
    assert buyer.get("/console/").status_code == 403
    mediator = signed_in(api, "mediator", "m_1")
    assert mediator.get("/portal/orders").status_code == 403


def test_my_orders_shows_the_return_window_countdown(api: Api) -> None:
    api.put_order()
    page = signed_in(api, "buyer", "b_1").get("/portal/orders").text
    assert "Returns close" in page and "in 29 days" in page  # electronics: W2, 30 days
    assert "<time datetime=" in page


def test_my_orders_no_longer_offers_to_report_a_line_the_platform_decided(api: Api) -> None:
    case_id = escalated_case(api)
    mediator = api.as_("mediator", "m_1")
    decided = mediator("POST", f"/v1/cases/{case_id}/decision", json={"kind": "reject"})
    assert decided.status_code == 200, decided.text
    page = signed_in(api, "buyer", "b_1").get("/portal/orders").text
    assert "/portal/orders/o_1/claim?line=l1" not in page
    assert "/portal/orders/o_1/claim?line=l2" in page  # never claimed
    assert "Cannot be returned:</strong> The platform rejected an earlier claim" in page
    assert "its decision is final" in page


def test_the_buyer_opens_a_case_from_the_form_with_a_photo(api: Api) -> None:
    api.put_order()
    buyer = signed_in(api, "buyer", "b_1")
    form = buyer.get("/portal/orders/o_1/claim?line=l1&reason=damaged")
    response = buyer.post(
        "/portal/orders/o_1/claim",
        data={
            "csrf_token": csrf(form),
            "reason": "damaged",
            "line": "l1",
            "remedy": "full_refund",
            "description": "Cracked screen.",
        },
        files={"evidence": ("crack.png", PNG, "image/png")},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    case_id = response.headers["location"].rsplit("/", 1)[-1]
    case = api.as_("operator")("GET", f"/v1/cases/{case_id}").json()
    assert case["reason"] == "damaged"
    assert case["current_offer"]["amount"] == case["refundable"]
    page = buyer.get(f"/portal/cases/{case_id}").text
    assert "/portal/attachments/att_" in page
    assert "Waiting for the <strong>seller</strong>" in page
    assert "/accept" not in page  # the buyer cannot accept their own request


@pytest.mark.parametrize("quantity", ["²", "9" * 5000], ids=["superscript_two", "5000_digits"])
def test_a_claimed_quantity_that_is_not_a_plain_number_is_refused_and_opens_nothing(
    api: Api, quantity: str
) -> None:
    # "²" passes str.isdigit() and 5,000 digits pass it too; int() refused both (a 500).
    api.put_order()
    buyer = signed_in(api, "buyer", "b_1")
    form = buyer.get("/portal/orders/o_1/claim?line=l2&reason=not_received")
    response = buyer.post(
        "/portal/orders/o_1/claim",
        data={"csrf_token": csrf(form), "reason": "not_received", "line": "l2",
              "quantity_l2": quantity, "remedy": "full_refund"},
    )  # fmt: skip
    assert response.status_code == 400
    assert "The quantity must be a whole number." in response.text
    assert api.as_("operator")("GET", "/v1/cases?order_id=o_1").json()["data"] == []


def test_a_quality_claim_cannot_keep_the_item_for_the_full_amount(api: Api) -> None:
    """R2: "Keep it and get a partial refund" of everything was a full refund, no return."""
    api.put_order()
    buyer = signed_in(api, "buyer", "b_1")
    form = buyer.get("/portal/orders/o_1/claim?line=l1&reason=quality_issue")
    assert 'value="full_refund"' not in form.text  # R2 offers no full refund to keep it
    claim = {"csrf_token": csrf(form), "reason": "quality_issue", "line": "l1",
             "remedy": "partial_refund", "description": "It rattles."}  # fmt: skip
    before = snapshot(api)

    response = buyer.post(
        "/portal/orders/o_1/claim",
        data={**claim, "amount": "27.49"},
        files={"evidence": ("rattle.png", PNG, "image/png")},
    )

    assert response.status_code == 422
    assert "partial refund of less than $27.49" in response.text and "R2" in response.text
    assert api.as_("operator")("GET", "/v1/cases?order_id=o_1").json()["data"] == []
    assert snapshot(api)["cases"] == before["cases"]
    opened = buyer.post(
        "/portal/orders/o_1/claim",
        data={**claim, "amount": "27.48"},
        files={"evidence": ("rattle.png", PNG, "image/png")},
        follow_redirects=False,
    )
    assert opened.status_code == 303, opened.text


def test_a_quality_claim_for_a_replacement_sends_the_item_back(api: Api) -> None:
    """R2: the portal asks for the replacement with the item's return, which the domain
    requires (else the buyer keeps the item and gets another)."""
    api.put_order()
    buyer = signed_in(api, "buyer", "b_1")
    form = buyer.get("/portal/orders/o_1/claim?line=l1&reason=quality_issue")
    claim = {"csrf_token": csrf(form), "reason": "quality_issue", "line": "l1",
             "remedy": "replacement", "description": "It rattles."}  # fmt: skip

    opened = buyer.post(
        "/portal/orders/o_1/claim",
        data=claim,
        files={"evidence": ("rattle.png", PNG, "image/png")},
        follow_redirects=False,
    )

    assert opened.status_code == 303, opened.text
    [case] = api.as_("operator")("GET", "/v1/cases?order_id=o_1").json()["data"]
    assert case["current_offer"]["kind"] == "replacement"
    assert case["current_offer"]["return_required"] is True


def test_on_a_quality_claim_the_buyer_is_not_offered_a_full_refund_to_keep_it(api: Api) -> None:
    api.put_order()
    partial = {"kind": "refund", "amount": {"amount": 1000, "currency": "USD"}}
    case_id = api.open_case(reason="quality_issue", request=partial).json()["id"]
    offered = api.as_("seller", "s_1")(
        "POST", f"/v1/cases/{case_id}/offers", json={"kind": "refund", "amount": partial["amount"]}
    )
    assert offered.status_code == 200, offered.text
    seller_page = signed_in(api, "seller", "s_1")
    buyer = signed_in(api, "buyer", "b_1")
    page = buyer.get(f"/portal/cases/{case_id}")

    assert 'name="remedy" value="full_refund"' not in page.text
    refused = buyer.post(
        f"/portal/cases/{case_id}/make_offer",
        data={"csrf_token": csrf(page), "remedy": "partial_refund", "amount": "27.49"},
    )
    assert refused.status_code == 422 and "R2" in refused.text
    assert 'name="remedy" value="full_refund"' in seller_page.get(f"/portal/cases/{case_id}").text


def test_the_claim_form_says_what_a_full_refund_is_for_the_units_chosen(api: Api) -> None:
    """l2 is 2 cases of $13.00 with $1.50 of the shipping: $27.50 for both, not for one."""
    api.put_order()
    buyer = signed_in(api, "buyer", "b_1")

    page = buyer.get("/portal/orders/o_1/claim?line=l2&reason=damaged").text

    assert "Full refund of $27.50" not in page
    assert "up to $27.50 for both" in page
    single = buyer.get("/portal/orders/o_1/claim?line=l1&reason=damaged").text
    assert "Full refund of $27.49, without sending it back" in single


def test_a_refused_claim_is_explained_with_its_clause(api: Api) -> None:
    api.put_order()
    buyer = signed_in(api, "buyer", "b_1")
    form = buyer.get("/portal/orders/o_1/claim?line=l2&reason=changed_mind")
    assert "does not accept returns for a change of mind" in form.text
    response = buyer.post(
        "/portal/orders/o_1/claim",
        data={"csrf_token": csrf(form), "reason": "changed_mind", "line": "l2",
              "remedy": "return_and_refund", "description": "Changed my mind."},
    )  # fmt: skip
    assert response.status_code == 422
    assert "R3" in response.text and "Change of mind is not accepted" in response.text


def test_the_seller_counters_and_the_buyer_sees_it(api: Api) -> None:
    api.put_order()
    case_id = api.open_case().json()["id"]
    seller = signed_in(api, "seller", "s_1")
    page = seller.get(f"/portal/cases/{case_id}")
    assert f"/portal/cases/{case_id}/accept" in page.text
    response = seller.post(
        f"/portal/cases/{case_id}/make_offer",
        data={"csrf_token": csrf(page), "remedy": "partial_refund", "amount": "10.50"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    case = api.as_("operator")("GET", f"/v1/cases/{case_id}").json()
    assert case["current_offer"]["amount"] == {"amount": 1050, "currency": "USD"}
    buyer_page = signed_in(api, "buyer", "b_1").get(f"/portal/cases/{case_id}").text
    assert "$10.50" in buyer_page and f"/portal/cases/{case_id}/accept" in buyer_page


def test_an_offer_above_the_refundable_amount_is_refused_in_words(api: Api) -> None:
    api.put_order()
    case_id = api.open_case().json()["id"]
    seller = signed_in(api, "seller", "s_1")
    page = seller.get(f"/portal/cases/{case_id}")
    response = seller.post(
        f"/portal/cases/{case_id}/make_offer",
        data={"csrf_token": csrf(page), "remedy": "partial_refund", "amount": "9999"},
    )
    assert response.status_code == 422
    notice = response.text.split('id="problem"', 1)[1].split("</div>", 1)[0]
    assert "At most $27.49 can be refunded on this case." in notice
    assert "R1" not in notice  # R1 says when a refund is full, not how much a case may refund


def test_an_amount_with_thousands_separators_is_read_as_written(api: Api) -> None:
    line = {"line_id": "l1", "sku": "TV-1", "title": "Television", "category": "electronics",
            "quantity": 1, "unit_amount": 200000}  # fmt: skip
    api.put_order(lines=[line])
    request = {"kind": "refund", "amount": {"amount": 150000, "currency": "USD"}}
    case_id = api.open_case(request=request).json()["id"]
    seller = signed_in(api, "seller", "s_1")
    page = seller.get(f"/portal/cases/{case_id}")

    response = seller.post(
        f"/portal/cases/{case_id}/make_offer",
        data={"csrf_token": csrf(page), "remedy": "partial_refund", "amount": "1,000.50"},
        follow_redirects=False,
    )

    assert response.status_code == 303, response.text
    case = api.as_("operator")("GET", f"/v1/cases/{case_id}").json()
    assert case["current_offer"]["amount"] == {"amount": 100050, "currency": "USD"}


@pytest.mark.parametrize(
    ("amount", "says"),
    [
        ("1e999999", "Enter an amount in USD in digits, such as 12.50."),
        ("1e400000", "Enter an amount in USD in digits, such as 12.50."),
        ("1e999999999999999999", "Enter an amount in USD in digits, such as 12.50."),
        ("1e1", "Enter an amount in USD in digits, such as 12.50."),  # was read as 10.00
        ("12,50", "A comma may only separate thousands, such as 1,000.50"),  # was 12.50
        ("9" * 5000, "Enter an amount of at most"),
    ],
)
def test_an_amount_beyond_any_order_is_refused_in_words_and_changes_nothing(
    api: Api, amount: str, says: str
) -> None:
    # Each exponent was a 500, or held the server for seconds making a number of ~400,000
    # digits; then exponents were read ("1e1" as 10.00), and a comma as a decimal point.
    api.put_order()
    case_id = api.open_case().json()["id"]
    seller = signed_in(api, "seller", "s_1")
    page = seller.get(f"/portal/cases/{case_id}")
    response = seller.post(
        f"/portal/cases/{case_id}/make_offer",
        data={"csrf_token": csrf(page), "remedy": "partial_refund", "amount": amount},
    )
    assert response.status_code == 400
    assert says in response.text
    case = api.as_("operator")("GET", f"/v1/cases/{case_id}").json()
    assert case["status"] == "awaiting_seller" and len(case["offers"]) == 1


def test_form_text_with_a_nul_character_is_refused_in_words_and_changes_nothing(api: Api) -> None:
    # PostgreSQL cannot store NUL in text (a 500 there); SQLite stored it. The API refuses
    # it on every backend alike, and so do the forms now.
    api.put_order()
    case_id = api.open_case().json()["id"]
    seller = signed_in(api, "seller", "s_1")
    page = seller.get(f"/portal/cases/{case_id}")
    response = seller.post(
        f"/portal/cases/{case_id}/post_message",
        data={"csrf_token": csrf(page), "body": "hello\x00"},
    )
    assert response.status_code == 400
    assert "must not contain NUL characters" in response.text
    events = api.as_("operator")("GET", f"/v1/cases/{case_id}/events").json()["data"]
    assert [event["type"] for event in events] == ["case.opened"]


@pytest.mark.parametrize(
    ("action", "data", "longest"),
    [
        ("post_message", {"body": "b" * 10_001}, 10_000),
        ("ship_return", {"carrier": "c" * 101, "tracking_number": "1Z999"}, 100),
        ("ship_return", {"carrier": "UPS", "tracking_number": "t" * 101}, 100),
    ],
    ids=["message", "carrier", "tracking-number"],
)
def test_form_text_longer_than_the_api_takes_is_refused_and_changes_nothing(
    api: Api, action: str, data: dict[str, str], longest: int
) -> None:
    # A form took anything up to its 64 KiB a field, past the API's limits.
    case_id = agree_on_return(api)["id"]
    buyer = signed_in(api, "buyer", "b_1")
    page = buyer.get(f"/portal/cases/{case_id}")
    response = buyer.post(
        f"/portal/cases/{case_id}/{action}", data={"csrf_token": csrf(page), **data}
    )
    assert response.status_code == 400
    assert f"at most {longest} characters" in response.text
    case = api.as_("operator")("GET", f"/v1/cases/{case_id}").json()
    assert case["status"] == "awaiting_return_shipment" and case["version"] == 2
    events = api.as_("operator")("GET", f"/v1/cases/{case_id}/events").json()["data"]
    assert [event["type"] for event in events] == ["case.opened", "case.offer_accepted"]


@pytest.mark.parametrize(
    ("role", "party_id", "path"),
    [
        ("seller", "s_1", "/portal/cases/case%00"),
        ("seller", "s_1", "/portal/attachments/att%00"),
        ("mediator", "m_1", "/console/cases/case%00"),
        ("mediator", "m_1", "/console/?seller=s%00"),
    ],
)
def test_a_nul_character_in_a_page_address_is_never_a_server_error(
    api: Api, role: str, party_id: str, path: str
) -> None:
    client = signed_in(api, role, party_id)
    response = client.get(path)
    assert response.status_code in (200, 400, 404), response.text
    assert "text/html" in response.headers["content-type"]


@pytest.mark.parametrize(
    ("role", "party_id", "path"),
    [
        ("seller", "s_1", "/portal/cases/" + "c" * 201),
        ("buyer", "b_1", "/portal/orders/o_1/claim?reason=" + "r" * 65),
        ("mediator", "m_1", "/console/?seller=" + "s" * 201),
    ],
    ids=["long-case-id", "long-reason", "long-seller-filter"],
)
def test_a_page_address_out_of_bounds_is_an_error_page(
    api: Api, role: str, party_id: str, path: str
) -> None:
    # It was FastAPI's own JSON {"detail": [...]}, a 422 echoing the input, in a browser.
    response = signed_in(api, role, party_id).get(path)
    assert response.status_code == 400
    assert "text/html" in response.headers["content-type"]
    assert "The address of this page is not valid." in response.text


def test_the_mediator_decides_from_the_console(api: Api) -> None:
    case_id = escalated_case(api)
    mediator = signed_in(api, "mediator", "m_1")
    page = mediator.get(f"/console/cases/{case_id}")
    assert "dispute rate" in page.text
    response = mediator.post(
        f"/console/cases/{case_id}/decide",
        data={"csrf_token": csrf(page), "kind": "refund", "amount": "27.49", "note": "Refund."},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    case = api.as_("operator")("GET", f"/v1/cases/{case_id}").json()
    assert case["status"] == "resolved" and case["outcome"] == "refunded"
    buyer_page = signed_in(api, "buyer", "b_1").get(f"/portal/cases/{case_id}").text
    assert "succeeded" in buyer_page and "Expected to arrive by" in buyer_page


def test_the_review_queue_begins_with_the_case_due_soonest_however_long_it_is(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """D7 orders the queue: the case escalated first is due first, and it leads the queue
    even when more cases wait than the queue shows (not the newest cases, sorted)."""
    monkeypatch.setattr(case_views, "QUEUE_LIMIT", 2)
    escalated = []
    for number in range(3):
        api.put_order(f"o_{number}")
        case_id = api.open_case(f"o_{number}").json()["id"]
        seller = api.as_("seller", "s_1")
        assert seller("POST", f"/v1/cases/{case_id}/reject", json={}).status_code == 200
        buyer = api.as_("buyer", "b_1")
        assert buyer("POST", f"/v1/cases/{case_id}/escalate", json={}).status_code == 200
        escalated.append(case_id)
        api.advance(hours=1)

    queue = signed_in(api, "mediator", "m_1").get("/console/").text

    shown = list(dict.fromkeys(re.findall(r"/console/cases/(case_\w+)", queue)))
    assert shown == escalated[:2]


def test_the_review_queue_filters_by_reason_before_it_is_cut(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reason's cases are found among all of them, not among the first the queue shows."""
    monkeypatch.setattr(case_views, "QUEUE_LIMIT", 2)
    escalated = {}
    for number, reason in enumerate(["damaged", "damaged", "not_as_described"]):
        api.put_order(f"o_{number}")
        partial = {"kind": "refund", "amount": {"amount": 2000, "currency": "USD"}}
        case_id = api.open_case(f"o_{number}", reason=reason, request=partial).json()["id"]
        assert api.as_("seller", "s_1")("POST", f"/v1/cases/{case_id}/reject", json={}).is_success
        assert api.as_("buyer", "b_1")("POST", f"/v1/cases/{case_id}/escalate", json={}).is_success
        escalated[case_id] = reason
        api.advance(hours=1)

    queue = signed_in(api, "mediator", "m_1").get("/console/?reason=not_as_described").text

    shown = list(dict.fromkeys(re.findall(r"/console/cases/(case_\w+)", queue)))
    assert shown == [
        case_id for case_id, reason in escalated.items() if reason == "not_as_described"
    ]


def test_a_mediator_signs_in_with_login_and_password(api: Api) -> None:
    sessions.add_mediator(api.app, "maria", "m_maria", "a long enough password")
    client = TestClient(api.client.app)
    form = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    wrong = client.post(
        "/console/login",
        data={"csrf_token": token.group(1), "login": "maria", "password": "wrong password"},
    )
    assert wrong.status_code == 401
    right = client.post(
        "/console/login",
        data={"csrf_token": token.group(1), "login": "maria", "password": "a long enough password"},
        follow_redirects=False,
    )
    assert right.status_code == 303 and right.headers["location"] == "/console/"
    assert client.get("/console/").status_code == 200


def test_a_login_with_a_nul_character_is_refused_in_words(api: Api) -> None:
    client = TestClient(api.client.app)
    form = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    response = client.post(
        "/console/login",
        data={"csrf_token": token.group(1), "login": "maria\x00", "password": "whatever"},
    )
    assert response.status_code == 400
    assert "must not contain NUL characters" in response.text
    assert "restitution_session" not in response.cookies


def test_the_login_form_needs_its_csrf_token(api: Api) -> None:
    response = TestClient(api.client.app).post(
        "/console/login", data={"login": "maria", "password": "whatever"}
    )
    assert response.status_code == 403


def test_signing_out_ends_the_session(api: Api) -> None:
    buyer = signed_in(api, "buyer", "b_1")
    page = buyer.get("/portal/orders")
    assert buyer.post("/portal/logout", data={"csrf_token": csrf(page)}).status_code == 200
    assert buyer.get("/portal/orders").status_code == 401


def test_mediators_add_stores_an_argon2_hash(
    database_url: str, tmp_path: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("RESTITUTION_DATABASE_URL", database_url)
    monkeypatch.setenv("RESTITUTION_STORAGE_DIR", str(tmp_path / "evidence"))
    result = CliRunner().invoke(
        cli,
        ["mediators", "add", "sam", "--party-id", "m_sam"],
        input="correct horse battery\ncorrect horse battery\n",
    )
    assert result.exit_code == 0, result.output
    from restitution.bootstrap import build_app
    from restitution.settings import Settings

    application = build_app(Settings(database_url=database_url), auto_migrate=False)
    try:
        assert (
            sessions.check_mediator(application, "sam", "correct horse battery").party_id == "m_sam"
        )
    finally:
        application.db.dispose()


def test_a_page_the_database_cannot_serve_now_says_to_try_again(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = signed_in(api, "buyer", "b_1")
    lost = psycopg.OperationalError("server closed the connection unexpectedly")
    monkeypatch.setattr(sessions, "load", failing(OperationalError("SELECT", {}, lost)))
    page = client.get("/portal/orders")
    assert page.status_code == 503
    assert page.headers["Retry-After"] == "1"
    assert "cannot reach its database right now" in page.text


def failing(error: Exception) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail


def failed_refund_case(api: Api) -> str:
    """The seller accepts b_1's request and its refund fails for good: the mediators see it."""
    api.app.settings = api.app.settings.model_copy(update={"refund_max_attempts": 1})
    api.app.refund_gateway = FakeGateway(failures=1)
    api.put_order()
    case_id = str(api.open_case().json()["id"])
    accepted = api.as_("seller", "s_1")("POST", f"/v1/cases/{case_id}/accept")
    assert accepted.status_code == 200, accepted.text
    return case_id


def escalated_on(api: Api, order_id: str, counter: bool = False, **order: Any) -> str:
    """A case on a new order that the seller rejects (or counters) and b_1 escalates."""
    api.put_order(order_id, **order)
    case_id = str(api.open_case(order_id).json()["id"])
    seller = api.as_("seller", "s_1")
    if counter:
        offer = {"kind": "refund", "amount": {"amount": 500, "currency": "USD"}}
        answered = seller("POST", f"/v1/cases/{case_id}/offers", json=offer)
    else:
        answered = seller("POST", f"/v1/cases/{case_id}/reject", json={"reason": "No."})
    assert answered.status_code == 200, answered.text
    escalated = api.as_("buyer", "b_1")("POST", f"/v1/cases/{case_id}/escalate", json={})
    assert escalated.status_code == 200, escalated.text
    return case_id


def test_the_console_says_what_the_seller_last_answered(api: Api) -> None:
    mediator = signed_in(api, "mediator", "m_1")
    accepted = mediator.get(f"/console/cases/{failed_refund_case(api)}").text
    assert "Last answer: the seller accepted the buyer&#39;s offer." in accepted
    assert "only rejected" not in accepted

    rejected = mediator.get(f"/console/cases/{escalated_on(api, 'o_2')}").text
    assert "Last answer: the seller rejected the buyer&#39;s offer: “No.”" in rejected

    countered = mediator.get(f"/console/cases/{escalated_on(api, 'o_3', counter=True)}").text
    assert "Last answer: the seller countered with an offer of their own." in countered


def test_a_failed_refund_names_no_one_and_its_gateway_reason_is_for_mediators(api: Api) -> None:
    api.app.refund_gateway = None  # the marketplace pays refunds itself, and says how it went
    api.put_order()
    case_id = str(api.open_case().json()["id"])
    assert api.as_("seller", "s_1")("POST", f"/v1/cases/{case_id}/accept").status_code == 200
    refund_id = api.client.get(f"/v1/refunds?case_id={case_id}", headers=api.auth()).json()
    refund_path = f"/v1/refunds/{refund_id['data'][0]['id']}"
    reason = "card_declined: issuer said no (code 51)"
    failed = api.client.post(f"{refund_path}/failed", json={"reason": reason}, headers=api.auth())
    assert failed.status_code == 200, failed.text

    console = signed_in(api, "mediator", "m_1").get(f"/console/cases/{case_id}").text
    assert "The refund failed" in console and reason in console
    for role, party in (("buyer", "b_1"), ("seller", "s_1")):
        page = signed_in(api, role, party).get(f"/portal/cases/{case_id}").text
        assert reason not in page
        assert "The refund did not go through yet; the marketplace&#39;s staff will try" in page
        assert "The marketplace The refund" not in page

    assert api.client.post(f"{refund_path}/succeeded", headers=api.auth()).status_code == 200
    page = signed_in(api, "buyer", "b_1").get(f"/portal/cases/{case_id}").text
    assert "The refund was sent to the original payment method" in page
    assert "The marketplace The refund" not in page


def test_needs_my_action_counts_only_the_cases_whose_turn_is_mine(api: Api) -> None:
    api.put_order()
    case_id = api.open_case().json()["id"]
    buyer = signed_in(api, "buyer", "b_1")
    seller = signed_in(api, "seller", "s_1")
    # The seller must answer (D1): the buyer could revise the request, but it is not their turn.
    assert "Needs my action (0)" in buyer.get("/portal/cases").text
    assert case_id not in buyer.get("/portal/cases?needs=me").text
    assert "Needs my action (1)" in seller.get("/portal/cases").text

    offer = {"kind": "refund", "amount": {"amount": 500, "currency": "USD"}}
    countered = api.as_("seller", "s_1")("POST", f"/v1/cases/{case_id}/offers", json=offer)
    assert countered.status_code == 200, countered.text

    assert "Needs my action (1)" in buyer.get("/portal/cases").text
    assert case_id in buyer.get("/portal/cases?needs=me").text
    assert "Needs my action (0)" in seller.get("/portal/cases").text


def test_a_replacement_on_its_way_needs_the_buyer_to_say_it_came(api: Api) -> None:
    """No deadline runs while a replacement travels: only the buyer can move the case on."""
    case_id = agree_on_replacement(api)["id"]
    shipped = seller(api, case_id, "replacement/shipment", carrier="DHL", tracking_number="JD1")
    assert (shipped["status"], shipped["deadline"]) == ("replacement_in_transit", None)

    assert "Needs my action (1)" in signed_in(api, "buyer", "b_1").get("/portal/cases").text
    assert "Needs my action (0)" in signed_in(api, "seller", "s_1").get("/portal/cases").text


def test_a_case_action_address_opened_directly_leads_to_the_case(api: Api) -> None:
    case_id = escalated_case(api)
    buyer = signed_in(api, "buyer", "b_1")
    for action in ("make_offer", "withdraw", "no_such_action"):
        response = buyer.get(f"/portal/cases/{case_id}/{action}", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == f"/portal/cases/{case_id}"
    mediator = signed_in(api, "mediator", "m_1")
    response = mediator.get(f"/console/cases/{case_id}/decide", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/console/cases/{case_id}"
    assert mediator.get(f"/console/cases/{case_id}/decide").status_code == 200
    assert TestClient(api.client.app).get(f"/portal/cases/{case_id}/withdraw").status_code == 401


def test_withdrawing_needs_its_box_ticked_and_warns_once_the_item_is_sent_back(api: Api) -> None:
    case_id = agree_on_return(api)["id"]
    buyer = signed_in(api, "buyer", "b_1")
    page = buyer.get(f"/portal/cases/{case_id}")
    assert 'name="confirm" value="yes" required' in page.text
    assert "I understand the case closes without a refund" in page.text
    assert "already sent the item back" not in page.text
    ship_return(api, case_id)
    page = buyer.get(f"/portal/cases/{case_id}")
    assert "You have already sent the item back; withdrawing gives up the refund." in page.text
    before = snapshot(api)

    refused = buyer.post(f"/portal/cases/{case_id}/withdraw", data={"csrf_token": csrf(page)})

    assert refused.status_code == 400
    assert "To withdraw the case, tick" in refused.text and "Nothing was changed" in refused.text
    assert snapshot(api) == before
    withdrawn = buyer.post(
        f"/portal/cases/{case_id}/withdraw",
        data={"csrf_token": csrf(page), "confirm": "yes"},
        follow_redirects=False,
    )
    assert withdrawn.status_code == 303
    case = api.as_("operator")("GET", f"/v1/cases/{case_id}").json()
    assert (case["status"], case["outcome"]) == ("resolved", "withdrawn")


def test_the_buyer_is_asked_to_ship_only_once_there_is_somewhere_to_send_it(api: Api) -> None:
    case_id = agree_on_return_without_address(api)["id"]
    buyer = signed_in(api, "buyer", "b_1")
    page = buyer.get(f"/portal/cases/{case_id}").text
    assert "The seller has not yet said where to send the item" in page
    assert "I have shipped the return" not in page and 'name="tracking_number"' not in page

    added = api.as_("seller", "s_1")(
        "POST", f"/v1/cases/{case_id}/return/address", json={"address": RETURN_ADDRESS}
    )
    assert added.status_code == 200, added.text

    page = buyer.get(f"/portal/cases/{case_id}").text
    assert "I have shipped the return" in page and 'name="tracking_number"' in page
    assert "The seller has not yet said where to send the item" not in page


def test_the_decision_form_warns_when_no_return_address_is_known(api: Api) -> None:
    mediator = signed_in(api, "mediator", "m_1")
    with_address = mediator.get(f"/console/cases/{escalated_case(api)}").text
    assert "No return address is known for this case" not in with_address

    case_id = escalated_on(api, "o_2", seller_terms=TERMS_WITHOUT_ADDRESS)
    page = mediator.get(f"/console/cases/{case_id}").text
    assert "No return address is known for this case" in page


def test_outcomes_have_their_own_badge_and_cards_name_the_item(api: Api) -> None:
    case_id = agree_on_return(api)["id"]
    buyer = signed_in(api, "buyer", "b_1")
    page = buyer.get(f"/portal/cases/{case_id}")
    buyer.post(
        f"/portal/cases/{case_id}/withdraw", data={"csrf_token": csrf(page), "confirm": "yes"}
    )
    cases = buyer.get("/portal/cases").text
    assert "badge-resolved badge-outcome-withdrawn" in cases
    title = api.as_("operator")("GET", "/v1/orders/o_1").json()["lines"][0]["title"]
    assert f"</strong>: {title} · order o_1</a>" in cases
