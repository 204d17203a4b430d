"""What every step of a case writes, whichever way the case goes: one event per change (the
case's version counts them), hash-chained, each with its outbox row; and one deadline row
still to fire, the case's own, or none once nobody has to act.

Each path below is a list of steps; the records are checked after the opening and after
every step, on both backends. Steps after a clock jump are taken by the operator for the
party, whose token the jump has expired.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from restitution.adapters.db import tables as t
from restitution.services import audit
from tests.integration.case_steps import get_case, ok, open_case, refund_request, usd
from tests.integration.conftest import Api

Step = Callable[[Api, str], Any]


def by(role: str, action: str, **body: Any) -> Step:
    def step(api: Api, case_id: str) -> Any:
        path = f"/v1/cases/{case_id}/{action}"
        return ok(api.as_(role, f"{role[0]}_1")("POST", path, json=body))

    return step


def for_(role: str, action: str, **body: Any) -> Step:
    """The operator acting for `role` (after a clock jump)."""

    def step(api: Api, case_id: str) -> Any:
        path = f"/v1/cases/{case_id}/{action}"
        return ok(api.client.post(path, json={**body, "acting_as": role}, headers=api.auth()))

    return step


def clock(**delta: float) -> Step:
    return lambda api, case_id: api.advance(**delta)


PATHS: dict[str, tuple[dict[str, Any], list[Step], tuple[str, str]]] = {
    "negotiated replacement, returned, never shipped: a refund (D5, D6)": (
        {"reason": "not_as_described", "request": {"kind": "refund", "amount": usd(2000)}},
        [
            by("seller", "offers", kind="refund", amount=usd(500)),
            by("buyer", "offers", kind="refund", amount=usd(1500)),
            by("seller", "reject", reason="Too much."),
            by("buyer", "offers", kind="replacement", return_required=True),
            by("seller", "accept"),
            by("seller", "return/label", carrier="DHL", label_url="https://labels.example/1"),
            by("buyer", "return/shipment", carrier="DHL", tracking_number="JD1"),
            by("seller", "return/delivered"),
            by("buyer", "messages", body="It is with you."),
            clock(days=5),
            clock(days=7),
        ],
        ("resolved", "refunded"),
    ),
    "replacement lost, decided, return lost, decided again (D4)": (
        {"request": {"kind": "replacement"}},
        [
            by("seller", "accept"),
            by("seller", "replacement/shipment", carrier="EMS", tracking_number="EE1"),
            by("buyer", "escalate", reason="It never came."),
            by(
                "mediator",
                "decision",
                kind="refund",
                amount=usd(2000),
                return_required=True,
                return_shipping_paid_by="seller",
            ),
            by(
                "buyer",
                "return/shipment",
                carrier="UPS",
                tracking_number="1Z9",
                postage_paid=usd(300),
            ),
            clock(days=30),
            for_("mediator", "decision", kind="refund", amount=usd(2749)),
        ],
        ("resolved", "refunded"),
    ),
    "a silent seller (D1)": ({}, [clock(days=5)], ("resolved", "refunded")),
    "rejected, escalated, withdrawn": (
        {},
        [
            by("seller", "reject", reason="Not our fault."),
            by("buyer", "escalate", reason="It is."),
            by("mediator", "messages", body="Photos of the box, please."),
            by("buyer", "withdraw", reason="Found the box undamaged."),
        ],
        ("resolved", "withdrawn"),
    ),
    "a return never shipped (D3)": (
        {"request": refund_request(return_required=True)},
        [by("seller", "accept"), clock(days=10)],
        ("resolved", "expired"),
    ),
}


def assert_records(api: Api, case_id: str) -> dict[str, Any]:
    case = get_case(api, case_id)
    e, o, d = t.events.c, t.outbox.c, t.deadlines.c
    with api.app.db.transaction(write=False) as conn:
        event_ids = list(conn.execute(select(e.id).where(e.case_id == case_id)).scalars())
        outboxed = conn.execute(
            select(func.count()).select_from(t.outbox).where(o.event_id.in_(event_ids))
        ).scalar_one()
        pending = conn.execute(
            select(d.kind, d.action, d.party).where(
                d.case_id == case_id, d.fired_at.is_(None), d.cleared_at.is_(None)
            )
        ).all()
    assert len(event_ids) == case["version"] == outboxed
    assert audit.verify(api.app, case_id).broken == []
    deadline = case["deadline"]
    expected = [(deadline["kind"], deadline["action"], deadline["party"])] if deadline else []
    assert [tuple(row) for row in pending] == expected
    return case


@pytest.mark.parametrize("path", PATHS)
def test_every_step_writes_its_event_outbox_row_and_deadline(api: Api, path: str) -> None:
    opening, steps, outcome = PATHS[path]
    case_id = open_case(api, **opening)["id"]
    assert_records(api, case_id)
    for step in steps:
        step(api, case_id)
        case = assert_records(api, case_id)
    assert (case["status"], case["outcome"]) == outcome
