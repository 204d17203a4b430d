"""Two parties acting at the same instant, on PostgreSQL (SQLite serialises every writer).

One wins, the other gets a 409 conflict, and no race ever refunds more than was paid.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from restitution.adapters.db.repository import Repository
from restitution.domain.cases import Case, apply
from restitution.services import audit, deadlines
from restitution.services.clock import TestClock
from restitution.services.deadlines import fire_due
from tests.integration.case_steps import get_case, refunds
from tests.integration.conftest import Api, order_body

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("RESTITUTION_TEST_POSTGRES_URL"),
        reason="concurrency needs PostgreSQL: set RESTITUTION_TEST_POSTGRES_URL",
    ),
    pytest.mark.parametrize(
        "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
    ),
]

ROUNDS = 50
LINE_PAID = 2599  # line l1 of the test order
ORDER_SHIPPING = 300


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at the same moment, each on its own thread; their responses in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except BaseException as error:  # surfaced by the caller's assertions
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def open_case_on(api: Api, order_id: str) -> str:
    api.put_order(order_id)
    opened = api.open_case(order_id)
    assert opened.status_code == 201, opened.text
    return str(opened.json()["id"])


def refunded_total(api: Api, case_id: str) -> int:
    listed = api.client.get("/v1/refunds", params={"case_id": case_id}, headers=api.auth())
    assert listed.status_code == 200, listed.text
    return sum(
        refund["amount"]["amount"]
        for refund in listed.json()["data"]
        if refund["status"] != "failed"
    )


def assert_one_winner(responses: list[Any]) -> int:
    """Exactly one 200; the other a 409 conflict. Returns the winner's index."""
    for response in responses:
        assert not isinstance(response, BaseException), repr(response)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 409], [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json()["error"]["type"] == "conflict"
    return next(i for i, r in enumerate(responses) if r.status_code == 200)


def test_accept_and_withdraw_at_once_one_wins(api: Api) -> None:
    seller = api.as_("seller", "s_1")
    buyer = api.as_("buyer", "b_1")
    winners = {"accept": 0, "withdraw": 0}
    for round_no in range(ROUNDS):
        case_id = open_case_on(api, f"o_{round_no}")
        responses = race(
            lambda case_id=case_id: seller("POST", f"/v1/cases/{case_id}/accept"),
            lambda case_id=case_id: buyer("POST", f"/v1/cases/{case_id}/withdraw", json={}),
        )
        winner = ("accept", "withdraw")[assert_one_winner(responses)]
        winners[winner] += 1
        case = api.client.get(f"/v1/cases/{case_id}", headers=api.auth()).json()
        total = refunded_total(api, case_id)
        if winner == "withdraw":
            assert (case["status"], case["outcome"]) == ("resolved", "withdrawn")
            assert total == 0
        else:
            assert case["outcome"] != "withdrawn"
            assert 0 < total <= LINE_PAID + ORDER_SHIPPING
        assert case["refunded"]["amount"] <= case["refundable"]["amount"]
        events = api.client.get(
            f"/v1/cases/{case_id}/events", params={"limit": 100}, headers=api.auth()
        ).json()["data"]
        assert [e["type"] for e in events].count("case.withdrawn") == (winner == "withdraw")
    assert sum(winners.values()) == ROUNDS


def test_double_accept_refunds_once(api: Api) -> None:
    seller = api.as_("seller", "s_1")
    for round_no in range(10):
        case_id = open_case_on(api, f"o_{round_no}")
        responses = race(
            lambda case_id=case_id: seller("POST", f"/v1/cases/{case_id}/accept"),
            lambda case_id=case_id: seller("POST", f"/v1/cases/{case_id}/accept"),
        )
        assert_one_winner(responses)
        listed = api.client.get("/v1/refunds", params={"case_id": case_id}, headers=api.auth())
        assert len(listed.json()["data"]) == 1
        assert refunded_total(api, case_id) <= LINE_PAID + ORDER_SHIPPING


def test_accept_and_escalate_at_once_one_wins(api: Api) -> None:
    """The seller gives in as the buyer escalates: either the agreement and its one refund,
    or the case under review with none."""
    seller = api.as_("seller", "s_1")
    buyer = api.as_("buyer", "b_1")
    winners = {"accept": 0, "escalate": 0}
    for round_no in range(ROUNDS):
        case_id = open_case_on(api, f"o_{round_no}")
        assert seller("POST", f"/v1/cases/{case_id}/reject", json={}).status_code == 200
        countered = buyer(
            "POST",
            f"/v1/cases/{case_id}/offers",
            json={"kind": "refund", "amount": {"amount": 2000, "currency": "USD"}},
        )
        assert countered.status_code == 200, countered.text
        responses = race(
            lambda case_id=case_id: seller("POST", f"/v1/cases/{case_id}/accept"),
            lambda case_id=case_id: buyer("POST", f"/v1/cases/{case_id}/escalate", json={}),
        )
        winner = ("accept", "escalate")[assert_one_winner(responses)]
        winners[winner] += 1
        case = api.client.get(f"/v1/cases/{case_id}", headers=api.auth()).json()
        listed = api.client.get("/v1/refunds", params={"case_id": case_id}, headers=api.auth())
        if winner == "escalate":
            assert case["status"] == "under_review"
            assert listed.json()["data"] == []
        else:
            assert (case["status"], case["outcome"]) == ("resolved", "partially_refunded")
            assert [r["amount"]["amount"] for r in listed.json()["data"]] == [2000]
    assert sum(winners.values()) == ROUNDS


def test_two_cases_on_one_line_at_once_only_one_opens(api: Api) -> None:
    for round_no in range(10):
        order_id = f"o_{round_no}"
        api.put_order(order_id)
        attachments = [api.upload("buyer", "b_1"), api.upload("buyer", "b_1")]
        responses = race(
            *(
                lambda order_id=order_id, attachment=attachment: api.open_case(
                    order_id, attachments=[attachment]
                )
                for attachment in attachments
            )
        )
        for response in responses:
            assert not isinstance(response, BaseException), repr(response)
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [201, 409], [r.text for r in responses]
        loser = next(r for r in responses if r.status_code == 409)
        assert loser.json()["error"]["code"] == "case_already_open"
        listed = api.client.get(
            "/v1/cases", params={"order_id": order_id}, headers=api.auth()
        ).json()
        assert len(listed["data"]) == 1


def wait_for_a_lock_wait(api: Api) -> None:
    """Return once a transaction on this database waits for a row another one holds."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    give_up_at = time.monotonic() + 30
    with api.app.db.engine.connect() as conn:
        while True:
            found = conn.execute(waiting).scalar()
            conn.rollback()  # pg_stat_activity stays as first read until the transaction ends
            if found:
                return
            assert time.monotonic() < give_up_at, "nothing ever waited for a lock"


def test_a_party_answering_as_the_deadline_fires_loses_with_a_conflict(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweeper holds the D1 row it took; the seller's answer, changing the case's
    deadline, waits for that row before it touches the case: no deadlock (whose victim,
    the seller, was answered 503), one outcome, and the seller told it came too late."""
    case_id = open_case_on(api, "o_1")
    clock = api.app.clock
    assert isinstance(clock, TestClock)
    clock.advance(5 * 24 * 3600)  # the seller's D1 falls due
    seller = api.as_("seller", "s_1")
    taken, fire = threading.Event(), threading.Event()

    def fire_once_the_seller_waits(case: Case, *args: Any) -> Any:
        taken.set()  # the sweeper has taken the deadline row
        fire.wait(timeout=30)
        return apply(case, *args)

    monkeypatch.setattr(deadlines, "apply", fire_once_the_seller_waits)
    fired: list[Any] = []
    sweeper = threading.Thread(target=lambda: fired.append(fire_due(api.app)))
    sweeper.start()
    assert taken.wait(timeout=30)
    answered: list[Any] = []
    answer = threading.Thread(
        target=lambda: answered.append(
            seller("POST", f"/v1/cases/{case_id}/reject", json={"reason": "Not our fault."})
        )
    )
    answer.start()
    wait_for_a_lock_wait(api)
    fire.set()
    sweeper.join(timeout=30)
    answer.join(timeout=30)

    [response] = answered
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "concurrent_update"
    assert fired == [1]
    case = get_case(api, case_id)
    assert (case["status"], case["outcome"]) == ("resolved", "refunded")
    assert [refund["status"] for refund in refunds(api, case_id)] == ["succeeded"]
    assert audit.verify(api.app, case_id).broken == []


def test_a_case_opened_while_its_order_is_repriced_is_judged_on_the_new_price(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PUT holds the order it replaces; a case being opened on it waits for the PUT, and
    is judged on what the PUT wrote: never a case on a price the order no longer says."""
    api.put_order("o_1")
    checked, go_on = threading.Event(), threading.Event()
    has_cases = Repository.order_has_cases

    def check_then_wait(repo: Repository, order_id: str) -> bool:
        found = has_cases(repo, order_id)
        checked.set()  # no case yet: the PUT goes on to re-price the order
        go_on.wait(timeout=30)
        return found

    monkeypatch.setattr(Repository, "order_has_cases", check_then_wait)
    lines = order_body()["lines"]
    lines[0]["unit_amount"] = 1000
    answers: dict[str, Any] = {}
    put = threading.Thread(
        target=lambda: answers.update(
            put=api.client.put("/v1/orders/o_1", json=order_body(lines=lines), headers=api.auth())
        )
    )
    put.start()
    assert checked.wait(timeout=30)
    opening = threading.Thread(target=lambda: answers.update(opened=api.open_case("o_1")))
    opening.start()
    wait_for_a_lock_wait(api)  # the case waits for the order the PUT holds
    go_on.set()
    put.join(timeout=30)
    opening.join(timeout=30)

    assert answers["put"].status_code == 200, answers["put"].text
    # asked for the old full price (2749), judged on the new one
    assert answers["opened"].status_code == 422, answers["opened"].text
    assert answers["opened"].json()["error"]["code"] == "amount_exceeds_refundable"
