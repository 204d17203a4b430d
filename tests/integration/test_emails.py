"""E-mail to the party that must act: over a real SMTP server, or to the log without one."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from restitution.adapters.db import tables as t
from restitution.adapters.db.repository import Repository
from restitution.adapters.notify.email import SmtpMailer, render
from restitution.services import emails, outbox
from tests.integration.case_steps import (
    RETURN_ADDRESS,
    agree_on_return_without_address,
    buyer,
    ok,
    seller,
)
from tests.integration.conftest import Api
from tests.integration.messaging import skipped_for_no_address, smtp_server

CONTACTS = {
    "buyer": {"email": "buyer@example.com", "name": "Ana", "locale": "en"},
    "seller": {
        "email": "seller@example.com",
        "name": "Jonas",
        "locale": "de-DE",
        "time_zone": "Europe/Berlin",
    },
}


@pytest.fixture
def inbox(api: Api) -> Iterator[list[EmailMessage]]:
    with smtp_server() as (url, messages):
        api.app.mailer = SmtpMailer(url, "Restitution <restitution@example.com>")
        yield messages


def send(api: Api) -> int:
    api.advance(seconds=0)  # dispatches the outbox into e-mails
    return emails.send_due(api.app)


def open_with_contacts(api: Api) -> dict[str, object]:
    api.put_order(**CONTACTS)
    return ok(api.open_case(), 201)


def test_the_seller_is_asked_to_answer_a_new_case(api: Api, inbox: list[EmailMessage]) -> None:
    case = open_with_contacts(api)
    assert send(api) == 1
    [message] = inbox
    assert message["To"] == "seller@example.com"
    assert f"Case {case['id']}" in message["Subject"]
    body = message.get_content()
    assert "Hello Jonas," in body
    assert "Europe/Berlin" in body  # the deadline in the seller's time zone
    assert "11.03.2026" in body  # and in the seller's locale (de): D1 is 5 days after opening


def test_each_turn_goes_to_the_party_that_must_act(api: Api, inbox: list[EmailMessage]) -> None:
    case = open_with_contacts(api)
    seller(api, case["id"], "reject", reason="It left us intact.")
    buyer(api, case["id"], "withdraw")
    send(api)
    recipients = [(m["To"], m["Subject"]) for m in inbox]
    assert [to for to, _ in recipients] == [
        "seller@example.com",  # answer the request
        "buyer@example.com",  # the seller rejected: counter, escalate or withdraw
        "buyer@example.com",  # closed
        "seller@example.com",  # closed
    ]
    assert sum("is closed" in subject for _, subject in recipients) == 2
    assert send(api) == 0  # each e-mail once


def test_a_return_without_an_address_asks_the_seller_for_one_then_tells_the_buyer(
    api: Api, inbox: list[EmailMessage]
) -> None:
    case_id = agree_on_return_without_address(api, **CONTACTS)["id"]
    send(api)
    # the new case, then the agreement: both the seller's to act on; the buyer is told to wait
    assert [m["To"] for m in inbox] == ["seller@example.com"] * 2 + ["buyer@example.com"]
    assert "tell the buyer where to send the item back" in inbox[1]["Subject"]
    assert "your return is agreed" in inbox[2]["Subject"]
    assert "has not said yet where to send it" in inbox[2].get_content()
    inbox.clear()

    seller(api, case_id, "return/address", address=RETURN_ADDRESS)
    send(api)

    [message] = inbox
    assert message["To"] == "buyer@example.com"
    assert "please send the item back" in message["Subject"]


def test_the_seller_is_told_the_buyer_needs_a_return_address() -> None:
    context = {
        "case_id": "case_1",
        "order_id": "o_1",
        "name": "Jonas",
        "case_url": "u",
        "deadline_due_at": "2026-03-16T10:00:00Z",
    }
    email = render("return_instructions_needed", "en", context)
    assert email.subject == "Case case_1: tell the buyer where to send the item back"
    assert "has no return address" in email.body
    assert "goes to the platform" in email.body


def test_mediators_hear_of_new_escalations(api: Api, inbox: list[EmailMessage]) -> None:
    api.app.settings = api.app.settings.model_copy(update={"mediator_email": "team@example.com"})
    case = open_with_contacts(api)
    seller(api, case["id"], "reject", reason="no")
    buyer(api, case["id"], "escalate", reason="please decide")
    send(api)
    escalated = [m for m in inbox if m["To"] == "team@example.com"]
    assert len(escalated) == 1
    assert "escalated" in escalated[0]["Subject"]


def test_mediators_are_linked_to_the_console_and_parties_to_the_portal(
    api: Api, inbox: list[EmailMessage]
) -> None:
    api.app.settings = api.app.settings.model_copy(update={"mediator_email": "team@example.com"})
    case = open_with_contacts(api)
    seller(api, case["id"], "reject", reason="no")
    buyer(api, case["id"], "escalate", reason="please decide")
    send(api)
    links = {m["To"]: m.get_content() for m in inbox}
    assert f"/console/cases/{case['id']}" in links["team@example.com"]
    assert "/portal/" not in links["team@example.com"]
    assert f"/portal/cases/{case['id']}" in links["buyer@example.com"]


def test_without_smtp_emails_are_logged(api: Api) -> None:
    open_with_contacts(api)
    assert send(api) == 1
    with api.app.db.transaction(write=False) as conn:
        [row] = conn.execute(select(t.emails)).all()
    assert (row.status, row.role, row.template, row.locale) == (
        "logged",
        "seller",
        "action_required",
        "de-DE",
    )


def test_no_email_without_an_address(api: Api) -> None:
    api.put_order()
    first = ok(api.open_case(), 201)
    api.put_order("o_2")
    ok(api.open_case(order_id="o_2"), 201)
    seller(api, first["id"], "reject", reason="It left us intact.")
    with capture_logs() as logs:
        send(api)
    with api.app.db.transaction(write=False) as conn:
        assert conn.execute(select(t.emails)).all() == []
    # one line for the batch: the sellers of two new cases, the buyer of the rejected one
    assert skipped_for_no_address(logs) == [{"log_level": "info", "recipients": 3, "events": 3}]


def test_templates_render_in_english_for_unknown_locales() -> None:
    context = {"case_id": "case_1", "order_id": "o_1", "status": "awaiting_buyer", "name": None}
    email = render("action_required", "xx-invalid", {**context, "case_url": "u"})
    assert email.subject == "Case case_1: the seller has answered"
    assert email.body.startswith("Hello,")


def test_an_item_title_with_line_breaks_stays_on_the_subject_line() -> None:
    # The subject is the rendered text's first line: a title's line break cut it there (the
    # rest began the body), and a carriage return left in it made SMTP refuse the header.
    context = {
        "title": "Phone\r\nBcc: someone@example.com",
        "name": None,
        "order_id": "o_1",
        "window_closes_at": "2026-03-20T10:00:00Z",
        "order_url": "u",
    }
    email = render("return_window_closing", "en_US", context)
    assert email.subject == "The return window for Phone Bcc: someone@example.com closes soon"
    assert email.body.startswith("Hello,")
    EmailMessage()["Subject"] = email.subject  # a header SMTP takes


@pytest.mark.parametrize("zone", ["America/", "/etc/localtime", ".."])
def test_a_time_zone_that_names_no_zone_renders_in_utc(zone: str) -> None:
    # The API keeps a party's time zone as given. A name that is no zone renders in UTC, as
    # on the portal; for these Babel raised ValueError (not LookupError): the e-mail failed,
    # was retried, then given up.
    context = {
        "case_id": "case_1",
        "order_id": "o_1",
        "status": "awaiting_seller",
        "name": None,
        "case_url": "u",
        "deadline_due_at": "2026-03-11T10:00:00Z",
        "deadline_auto": True,
        "time_zone": zone,
    }
    email = render("action_required", "en_US", context)
    assert "Mar 11, 2026, 10:00:00\u202fAM (UTC)" in email.body


def test_a_batch_of_events_gets_each_party_s_address_and_each_case_s_deadline(
    api: Api, inbox: list[EmailMessage]
) -> None:
    first = open_with_contacts(api)
    api.put_order("o_2", **CONTACTS)
    second = ok(api.open_case(order_id="o_2"), 201)
    seller(api, first["id"], "reject", reason="It left us intact.")

    assert send(api) == 3  # one dispatch: its contacts and deadlines read once for the batch

    assert sorted(m["To"] for m in inbox) == [
        "buyer@example.com",  # the first case was rejected: the buyer's turn
        "seller@example.com",  # each new case: the seller's turn, by its deadline
        "seller@example.com",
    ]
    subjects = " ".join(m["Subject"] for m in inbox)
    assert str(first["id"]) in subjects and str(second["id"]) in subjects
    to_seller = [m.get_content() for m in inbox if m["To"] == "seller@example.com"]
    assert all("Europe/Berlin" in body for body in to_seller)  # the case's deadline, read ahead


def test_a_dispatch_counts_the_e_mails_it_wrote_and_not_those_written_before(api: Api) -> None:
    """What wakes the messages thread of `serve` on SQLite (`Worker.run_on_event_loop`)."""
    open_with_contacts(api)  # case.opened: the seller is asked to answer
    with api.app.db.transaction(write=False) as conn:
        [(event_id, payload)] = conn.execute(select(t.outbox.c.event_id, t.outbox.c.payload))
    assert outbox.dispatch_batch(api.app) == outbox.Dispatched(events=1, messages=1)

    with api.app.db.transaction() as conn:  # the same event once more: its e-mail exists
        Repository(conn).add_outbox_rows([(event_id, "case.opened", payload, api.app.clock.now())])
    assert outbox.dispatch_batch(api.app) == outbox.Dispatched(events=1, messages=0)


@pytest.mark.parametrize(
    ("kind", "action", "consequence"),
    [
        ("D3", "expire", "If nothing happens by then, the case closes without a refund."),
        ("D3", "auto_escalate", "If nothing happens by then, the case goes to the platform."),
        ("D1", "auto_accept", "the buyer's request is accepted automatically."),
        ("D5", "auto_pass_inspection", "the case moves on automatically."),
    ],
)
def test_a_reminder_says_what_its_deadline_costs_on_its_own_line(
    kind: str, action: str, consequence: str
) -> None:
    deadline = {"kind": kind, "action": action, "party": "buyer", "auto": True,
                "due_at": "2026-03-11T11:45:38Z"}  # fmt: skip
    context = emails._case_context(None, None, "case.deadline_approaching",  # type: ignore[arg-type]
                                   {"case_id": "case_1", "order_id": "o_1", "deadline": deadline},
                                   {})  # fmt: skip
    email = render("deadline_approaching", "en", {**context, "name": "Ana", "case_url": "u"})
    assert "11:45:38\u202fAM (UTC).\nIf nothing happens by then, " in email.body
    assert consequence in email.body


def test_a_reminder_of_a_deadline_that_does_nothing_by_itself_says_nothing_of_it() -> None:
    context = {"case_id": "case_1", "order_id": "o_1", "name": None, "case_url": "u",
               "deadline_due_at": "2026-03-11T10:00:00Z", "deadline_auto": False}  # fmt: skip
    email = render("deadline_approaching", "en", context)
    assert "If nothing happens" not in email.body
    assert "(UTC).\n\nOpen the case: u" in email.body
