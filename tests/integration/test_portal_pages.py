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
from tests.integration.conftest import PNG, Api


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
    assert "at most" in response.text and "R1" in response.text


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
