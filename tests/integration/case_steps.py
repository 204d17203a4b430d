"""Steps that drive a case through the HTTP API, shared by the API lifecycle and deadline tests.

The default order (tests.integration.conftest.order_body) has line l1, a phone of 2599 with
a 150 share of the order's shipping: a full refund of l1 is 2749.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from restitution.adapters.db import tables as t
from restitution.adapters.db.tables import metadata
from tests.integration.conftest import Api

FULL_L1 = 2749


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def snapshot(api: Api) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    with api.app.db.transaction(write=False) as conn:
        return {
            table.name: sorted(
                (tuple(row) for row in conn.execute(select(table))), key=lambda row: repr(row)
            )
            for table in metadata.sorted_tables
        }


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json())


def open_case(api: Api, **overrides: Any) -> dict[str, Any]:
    """An order o_1 and a damaged-phone case on it, opened by buyer b_1."""
    api.put_order()
    return ok(api.open_case(**overrides), 201)


def open_cases(api: Api, count: int) -> list[str]:
    """Orders o_0 … o_<count-1>, each with a damaged-phone case opened by buyer b_1: the ids."""
    ids = []
    for number in range(count):
        api.put_order(f"o_{number}")
        ids.append(ok(api.open_case(f"o_{number}"), 201)["id"])
    return ids


def refund_request(amount: int = FULL_L1, **terms: Any) -> dict[str, Any]:
    return {"kind": "refund", "amount": usd(amount), **terms}


def act(api: Api, role: str, party_id: str, case_id: str, action: str, **body: Any) -> Any:
    return api.as_(role, party_id)("POST", f"/v1/cases/{case_id}/{action}", json=body)


def buyer(api: Api, case_id: str, action: str, **body: Any) -> dict[str, Any]:
    return ok(act(api, "buyer", "b_1", case_id, action, **body))


def seller(api: Api, case_id: str, action: str, **body: Any) -> dict[str, Any]:
    return ok(act(api, "seller", "s_1", case_id, action, **body))


def mediator(api: Api, case_id: str, action: str, **body: Any) -> dict[str, Any]:
    return ok(act(api, "mediator", "m_1", case_id, action, **body))


def get_case(api: Api, case_id: str) -> dict[str, Any]:
    return ok(api.client.get(f"/v1/cases/{case_id}", headers=api.auth()))


def events(api: Api, case_id: str) -> list[dict[str, Any]]:
    page = ok(api.client.get(f"/v1/cases/{case_id}/events?limit=100", headers=api.auth()))
    return list(page["data"])


def event_types(api: Api, case_id: str) -> list[str]:
    return [event["type"] for event in events(api, case_id)]


def clause_ids(event: dict[str, Any]) -> list[str]:
    return [clause["id"] for clause in event["clauses"]]


def refunds(api: Api, case_id: str) -> list[dict[str, Any]]:
    page = ok(api.client.get(f"/v1/refunds?case_id={case_id}", headers=api.auth()))
    return list(page["data"])


def agree_on_return(api: Api) -> dict[str, Any]:
    """A damaged phone: the seller accepts a full refund against the item's return."""
    case = open_case(api, request=refund_request(return_required=True))
    return seller(api, case["id"], "accept")


# The seller's terms of an order that gives no return address.
TERMS_WITHOUT_ADDRESS = {"free_return_shipping": False, "accepts_change_of_mind": False}
RETURN_ADDRESS = {
    "name": "Shop 1 returns",
    "line1": "9 Dock St",
    "line2": "Gate 2",
    "city": "Ningbo",
    "postal_code": "315000",
    "country": "CN",
}


def agree_on_return_without_address(api: Api, **order: Any) -> dict[str, Any]:
    """As `agree_on_return`, on an order whose seller gave no return address: the buyer has
    nowhere to send the item until the seller says where."""
    api.put_order(seller_terms=TERMS_WITHOUT_ADDRESS, **order)
    case = ok(api.open_case(request=refund_request(return_required=True)), 201)
    return seller(api, case["id"], "accept")


def ship_return(api: Api, case_id: str) -> dict[str, Any]:
    return buyer(api, case_id, "return/shipment", carrier="UPS", tracking_number="1Z999")


def agree_on_replacement(api: Api) -> dict[str, Any]:
    case = open_case(api, request={"kind": "replacement"})
    return seller(api, case["id"], "accept")


def escalated_case(api: Api) -> dict[str, Any]:
    """The seller rejects the buyer's request and the buyer escalates: under review."""
    case = open_case(api)
    seller(api, case["id"], "reject", reason="The phone left us intact.")
    return buyer(api, case["id"], "escalate", reason="The seller refuses.")


def eligibility_of(api: Api, line_id: str) -> list[dict[str, Any]]:
    """The eligibility answer of o_1's line, every reason, as its buyer asks it."""
    answer = ok(api.client.get("/v1/orders/o_1/eligibility", headers=api.auth("buyer", "b_1")))
    return next(line["reasons"] for line in answer["lines"] if line["line_id"] == line_id)


def assert_closed_for_good(api: Api, clause_id: str) -> None:
    """l1 of o_1 is refused for every reason, citing `clause_id`; opening a case on it is
    refused so, and writes nothing; l2, never claimed, stays open to a case."""
    l1 = eligibility_of(api, "l1")
    assert {(r["eligible"], r["code"]) for r in l1} == {(False, "case_already_decided")}
    assert {tuple(clause_ids(r)) for r in l1} == {(clause_id,)}
    assert all(r["max_refund"] == usd(0) and r["remedies"] == [] for r in l1)
    assert any(r["eligible"] for r in eligibility_of(api, "l2"))
    evidence = api.upload("buyer", "b_1")
    before = snapshot(api)

    response = api.open_case(attachments=[evidence])

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("policy_violation", "case_already_decided")
    assert clause_id in error["clauses"]
    assert snapshot(api) == before


def fired_per_case(api: Api) -> dict[str, int]:
    """How many of each case's deadlines have fired."""
    d = t.deadlines.c
    with api.app.db.transaction(write=False) as conn:
        rows = conn.execute(
            select(d.case_id, func.count()).where(d.fired_at.is_not(None)).group_by(d.case_id)
        ).all()
    return {case_id: count for case_id, count in rows}
