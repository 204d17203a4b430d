"""Webhooks from the outbox: signed, logged per endpoint, retried with back-off, given up
after three days, and endpoints disabled after repeated failure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from restitution.adapters.db import tables as t
from restitution.services import webhooks
from restitution.services.webhooks import matches
from tests.integration.case_steps import FULL_L1, ok, open_case, seller
from tests.integration.conftest import Api
from tests.integration.messaging import Receiver, webhook_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as server:
        yield server


def register(api: Api, receiver: Receiver, path: str = "/hooks", events: Any = None) -> str:
    body = {"url": receiver.url + path, "events": events or ["case.*"]}
    created = ok(api.client.post("/v1/webhook_endpoints", json=body, headers=api.auth()), 201)
    receiver.secrets[path] = created["secret"]
    return str(created["id"])


def deliveries(api: Api, endpoint_id: str, **query: Any) -> dict[str, Any]:
    path = f"/v1/webhook_endpoints/{endpoint_id}/deliveries"
    return ok(api.client.get(path, params=query, headers=api.auth()))


def tick(api: Api, seconds: int = 0) -> int:
    """Move the test clock (which dispatches the outbox), then deliver what is due."""
    api.advance(seconds=seconds)
    return webhooks.deliver_due(api.app)


def test_event_patterns_match_families_exact_types_and_everything() -> None:
    assert matches(["case.*"], "case.opened")
    assert not matches(["case.*"], "refund.succeeded")
    assert matches(["refund.succeeded"], "refund.succeeded")
    assert matches(["*"], "webhook_endpoint.disabled")


def test_deliveries_are_signed_and_logged(api: Api, receiver: Receiver) -> None:
    endpoint_id = register(api, receiver)
    case = open_case(api)
    assert tick(api) == 1
    [event] = receiver.events()
    assert receiver.bad_signatures == 0
    assert event["type"] == "case.opened"
    assert event["id"].startswith("evt_")
    assert event["data"]["case_id"] == case["id"]
    assert event["created_at"].endswith("Z")
    log = deliveries(api, endpoint_id)
    assert log["has_more"] is False
    [entry] = log["data"]
    assert entry["event_id"] == event["id"]
    assert entry["event_type"] == "case.opened"
    assert entry["status"] == "succeeded"
    assert entry["attempts"] == 1
    assert entry["last_status_code"] == 200
    assert entry["delivered_at"] is not None
    assert entry["next_attempt_at"] is None


def test_delivery_log_pages_newest_first(api: Api, receiver: Receiver) -> None:
    endpoint_id = register(api, receiver)
    case = open_case(api)
    seller(api, case["id"], "reject", reason="no")
    tick(api)
    first = deliveries(api, endpoint_id, limit=1)
    assert first["has_more"] is True
    assert first["data"][0]["event_type"] == "case.offer_rejected"
    rest = deliveries(api, endpoint_id, limit=1, starting_after=first["data"][0]["id"])
    assert [d["event_type"] for d in rest["data"]] == ["case.opened"]
    unknown = api.client.get(
        f"/v1/webhook_endpoints/{endpoint_id}/deliveries?starting_after=whd_unknown",
        headers=api.auth(),
    )  # it was the first page again, with has_more
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "invalid_cursor"
    missing = api.client.get("/v1/webhook_endpoints/whe_nope/deliveries", headers=api.auth())
    assert missing.status_code == 404
    as_buyer = api.as_("buyer", "b_1")("GET", f"/v1/webhook_endpoints/{endpoint_id}/deliveries")
    assert as_buyer.status_code == 403


def test_only_matching_endpoints_get_an_event(api: Api, receiver: Receiver) -> None:
    register(api, receiver, "/cases", ["case.opened"])
    register(api, receiver, "/refunds", ["refund.*"])
    open_case(api)
    tick(api)
    assert [e["type"] for e in receiver.events("/cases")] == ["case.opened"]
    assert receiver.events("/refunds") == []


def test_a_failed_delivery_is_retried_with_backoff(api: Api, receiver: Receiver) -> None:
    answers = iter([500, 503])
    receiver.status_for = lambda event: next(answers, 200)
    endpoint_id = register(api, receiver)
    open_case(api)
    assert tick(api) == 1
    [entry] = deliveries(api, endpoint_id)["data"]
    assert (entry["status"], entry["attempts"], entry["last_status_code"]) == ("pending", 1, 500)
    assert entry["next_attempt_at"] is not None
    assert tick(api) == 0  # not due yet: back-off
    assert tick(api, 60) == 1  # first back-off is 30 to 60 s
    assert tick(api, 60) == 0  # second is 60 to 120 s
    assert tick(api, 60) == 1
    [entry] = deliveries(api, endpoint_id)["data"]
    assert (entry["status"], entry["attempts"], entry["last_status_code"]) == ("succeeded", 3, 200)
    assert len({e["id"] for e in receiver.events()}) == 1


def test_delivery_gives_up_after_three_days(api: Api, receiver: Receiver) -> None:
    receiver.status_for = lambda event: 500
    endpoint_id = register(api, receiver)
    open_case(api)
    tick(api)
    for _ in range(12):  # the back-off is capped at 6 hours
        tick(api, int(timedelta(hours=6).total_seconds()))
    [entry] = deliveries(api, endpoint_id)["data"]
    assert entry["status"] == "failed"
    assert entry["next_attempt_at"] is None
    attempts = entry["attempts"]
    assert 10 <= attempts <= 25
    tick(api, int(timedelta(days=1).total_seconds()))
    after = {d["id"]: d for d in deliveries(api, endpoint_id, limit=100)["data"]}
    assert after[entry["id"]]["attempts"] == attempts


def test_endpoint_is_disabled_after_consecutive_failures(api: Api, receiver: Receiver) -> None:
    api.app.settings = api.app.settings.model_copy(update={"webhook_disable_after_failures": 3})
    receiver.status_for = lambda event: 200 if event["type"].startswith("webhook_") else 500
    failing = register(api, receiver, "/failing", ["case.*"])
    watcher = register(api, receiver, "/watcher", ["webhook_endpoint.*"])
    case = open_case(api)
    seller(api, case["id"], "reject", reason="no")
    tick(api)  # two failures
    tick(api, 120)  # the third: disabled
    endpoint = ok(api.client.get(f"/v1/webhook_endpoints/{failing}", headers=api.auth()))
    assert endpoint["enabled"] is False
    assert endpoint["disabled_at"] is not None
    assert endpoint["consecutive_failures"] >= 3  # the batch in hand may finish
    tick(api)  # the disabled event goes to the watcher
    [disabled] = receiver.events("/watcher")
    assert disabled["type"] == "webhook_endpoint.disabled"
    assert disabled["data"]["endpoint_id"] == failing
    assert deliveries(api, watcher)["data"][0]["status"] == "succeeded"
    before = len(receiver.events("/failing"))
    tick(api, 3600)
    assert len(receiver.events("/failing")) == before  # nothing goes to a disabled endpoint
    receiver.status_for = lambda event: 200
    enabled = ok(api.client.post(f"/v1/webhook_endpoints/{failing}/enable", headers=api.auth()))
    assert (enabled["enabled"], enabled["consecutive_failures"]) == (True, 0)
    tick(api, 3600)
    assert {d["status"] for d in deliveries(api, failing)["data"]} == {"succeeded"}


def test_deliveries_recheck_the_url_against_private_addresses(api: Api, receiver: Receiver) -> None:
    endpoint_id = register(api, receiver)
    api.app.settings = api.app.settings.model_copy(update={"webhook_allow_private": False})
    open_case(api)
    tick(api)
    assert receiver.events() == []
    [entry] = deliveries(api, endpoint_id)["data"]
    assert entry["status"] == "pending"
    assert entry["last_error"].startswith("blocked")


def test_each_event_becomes_one_delivery_per_endpoint(api: Api, receiver: Receiver) -> None:
    register(api, receiver, "/a")
    register(api, receiver, "/b")
    open_case(api)
    tick(api)
    tick(api)
    with api.app.db.transaction(write=False) as conn:
        count = conn.execute(select(func.count()).select_from(t.webhook_deliveries)).scalar()
    assert count == 2
    assert len(receiver.events("/a")) == len(receiver.events("/b")) == 1


def test_refund_events_name_their_refund_and_what_it_pays_back(
    api: Api, receiver: Receiver
) -> None:
    register(api, receiver, events=["refund.*"])
    case = open_case(api)
    seller(api, case["id"], "accept")  # the ledger settles it at once
    tick(api)

    by_type = {event["type"]: event for event in receiver.events()}
    assert sorted(by_type) == ["refund.requested", "refund.succeeded"]
    requested, succeeded = by_type["refund.requested"], by_type["refund.succeeded"]
    [refund] = ok(api.client.get(f"/v1/refunds?case_id={case['id']}", headers=api.auth()))["data"]
    assert requested["data"]["refund_id"] == refund["id"]
    assert requested["data"]["amount"] == refund["amount"] == {"amount": FULL_L1, "currency": "USD"}
    assert succeeded["data"]["refund_id"] == refund["id"]
