"""Reminders: 24 h before a case deadline to the party that must act, 48 h before a return
window closes on a delivered line without a case to the buyer; each exactly once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from structlog.testing import capture_logs

from restitution.adapters.db import tables as t
from tests.integration.case_steps import agree_on_return_without_address, open_case
from tests.integration.conftest import Api
from tests.integration.messaging import skipped_for_no_address


def outbox_types(api: Api) -> list[str]:
    with api.app.db.transaction(write=False) as conn:
        return list(conn.execute(select(t.outbox.c.type).order_by(t.outbox.c.id)).scalars())


def rows(api: Api, table: Any) -> list[Any]:
    with api.app.db.transaction(write=False) as conn:
        return list(conn.execute(select(table)).all())


def test_the_seller_is_reminded_a_day_before_the_deadline_once(api: Api) -> None:
    api.put_order(seller={"email": "seller@example.com"})
    case = open_case(api)
    assert api.advance(days=3)["reminders"] == 0
    assert api.advance(days=1, hours=1)["reminders"] == 1  # D1 is due in 23 hours
    assert api.advance(hours=1)["reminders"] == 0
    assert outbox_types(api).count("case.deadline_approaching") == 1
    [reminder] = rows(api, t.reminders)
    assert (reminder.case_id, reminder.party_role, reminder.party_id) == (
        case["id"],
        "seller",
        "s_1",
    )
    [deadline] = [d for d in rows(api, t.deadlines) if d.case_id == case["id"]]
    assert deadline.reminded_at is not None
    templates = [(e.template, e.party_id) for e in rows(api, t.emails)]
    assert ("deadline_approaching", "s_1") in templates


def test_the_seller_is_reminded_to_say_where_the_return_goes(api: Api) -> None:
    case_id = agree_on_return_without_address(api, seller={"email": "seller@example.com"})["id"]
    assert api.advance(days=8)["reminders"] == 0
    assert api.advance(days=1, hours=1)["reminders"] == 1  # D3 is due in 23 hours
    [reminder] = [r for r in rows(api, t.reminders) if r.case_id == case_id]
    assert (reminder.party_role, reminder.party_id) == ("seller", "s_1")
    assert ("deadline_approaching", "s_1") in [
        (e.template, e.party_id) for e in rows(api, t.emails)
    ]


def test_no_reminder_when_the_clock_jumps_past_the_deadline(api: Api) -> None:
    open_case(api)
    moved = api.advance(days=6)
    assert (moved["processed"], moved["reminders"]) == (1, 0)
    assert "case.deadline_approaching" not in outbox_types(api)


def test_the_buyer_is_reminded_before_the_return_window_closes(api: Api) -> None:
    # Delivered the day before the clock starts: l2 (accessories, 15 days) closes in 14
    # days, l1 (electronics, 30 days) in 29.
    api.put_order(buyer={"email": "buyer@example.com"})
    assert api.advance(days=11)["reminders"] == 0
    assert api.advance(days=1, hours=1)["reminders"] == 1
    assert api.advance(hours=12)["reminders"] == 0
    [reminder] = rows(api, t.reminders)
    assert (reminder.order_id, reminder.line_id, reminder.party_role) == ("o_1", "l2", "buyer")
    [email] = rows(api, t.emails)
    assert (email.template, email.party_id, email.dedupe_key) == (
        "return_window_closing",
        "b_1",
        "window:o_1:l2",
    )


def test_a_buyer_without_an_address_is_counted_not_written_to(api: Api) -> None:
    api.put_order()  # no contacts
    api.advance(days=11)
    with capture_logs() as logs:
        assert api.advance(days=1, hours=1)["reminders"] == 1  # l2's window, claimed once
    assert rows(api, t.emails) == []
    assert skipped_for_no_address(logs) == [{"log_level": "info", "recipients": 1, "reminders": 1}]


def test_no_window_reminder_for_a_line_with_a_case(api: Api) -> None:
    open_case(api)  # on l1
    api.advance(days=27, hours=1)
    assert not [r for r in rows(api, t.reminders) if r.line_id == "l1"]
