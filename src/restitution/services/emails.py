"""E-mail to the people who must act: which events write which e-mails, and sending them.

E-mail rows are written in the transaction that dispatches an outbox event (or that sends a
window reminder), once per event and recipient (`dedupe_key`). They are sent after commit
over SMTP (`RESTITUTION_SMTP_URL`) or, without it, written to the log and marked `logged`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

import structlog
from sqlalchemy import Connection

from restitution.adapters.db import messaging as db
from restitution.adapters.notify.email import DEFAULT_LOCALE, render
from restitution.domain.deadline_words import deadline_words
from restitution.services.context import App
from restitution.services.parties import PartyContact, get_contacts
from restitution.services.ports import OutgoingEmail
from restitution.services.retry import backoff

log = structlog.get_logger()

MEDIATORS = "mediators"  # the party id of the mediation team's address (RESTITUTION_MEDIATOR_EMAIL)

# After these events, the party the case now waits for is asked to act.
ACTION_EVENTS = frozenset(
    {
        "case.opened",
        "case.offer_made",
        "case.offer_accepted",
        "case.offer_rejected",
        "case.decided",
        "case.return_label_added",
        "case.return_address_added",
        "case.return_shipped",
        "case.return_delivered",
        "case.inspected",
        "case.replacement_shipped",
        "case.converted_to_refund",
    }
)
# Who acts in each status, where the event does not name the party it waits for
# (`waiting_for`, its deadline's: a status without a deadline, or an event written before).
WHO_ACTS = {
    "awaiting_seller": "seller",
    "awaiting_buyer": "buyer",
    "awaiting_return_shipment": "buyer",
    "return_in_transit": "seller",
    "awaiting_inspection": "seller",
    "awaiting_replacement_shipment": "seller",
    "replacement_in_transit": "buyer",
    "under_review": "mediator",
}

# The template of a turn whose words depend on who is asked, by (status, role).
ACTION_TEMPLATES = {("awaiting_return_shipment", "seller"): "return_instructions_needed"}
# Who else is told of a turn that is not theirs, and with which template, by (status, role):
# a buyer whose return is agreed (or decided) while the seller owes them an address.
ALSO_TOLD = {("awaiting_return_shipment", "seller"): ("buyer", "return_address_pending")}


# The deadlines whose reminder says what their passing costs: the buyer's refund (D3), the
# seller's say in the case (D1, and D3 while the buyer has no return address).
SPECIFIC_CONSEQUENCES = frozenset({"D1", "D3"})


@dataclass(frozen=True)
class Recipient:
    role: str
    party_id: str
    template: str


def recipients(event_type: str, data: dict[str, Any]) -> list[Recipient]:
    """Who is written to about an outbox event, and with which template."""

    def party(role: str, template: str) -> Recipient:
        if role == "mediator":
            return Recipient("mediator", MEDIATORS, "escalated")
        return Recipient(role, str(data[f"{role}_id"]), template)

    if event_type == "case.escalated":
        return [party("mediator", "escalated")]
    if event_type in ACTION_EVENTS:
        status = str(data.get("status"))
        role = data.get("waiting_for") or WHO_ACTS.get(status)
        if role is None:
            return []
        told = [party(str(role), ACTION_TEMPLATES.get((status, role), "action_required"))]
        also = ALSO_TOLD.get((status, str(role)))
        return [*told, party(*also)] if also else told
    if event_type == "case.deadline_approaching":
        role = str(data["deadline"]["party"])
        if role == "mediator":
            return [Recipient("mediator", MEDIATORS, "deadline_approaching")]
        return [party(role, "deadline_approaching")]
    if event_type == "case.resolved":
        return [party("buyer", "case_resolved"), party("seller", "case_resolved")]
    if event_type == "refund.failed":
        return [Recipient("mediator", MEDIATORS, "refund_failed")]
    return []


@dataclass(frozen=True)
class Known:
    """What the e-mails of a batch of outbox events need from the database (the recipients'
    contacts, the cases' deadlines), read in two statements rather than two per event."""

    contacts: dict[tuple[str, str], PartyContact]
    deadlines: dict[str, Any]


def known_for_events(conn: Connection, events: Sequence[tuple[str, dict[str, Any]]]) -> Known:
    """`Known` for these (event type, data) pairs, as `queue_for_event` will ask."""
    parties: set[tuple[str, str]] = set()
    case_ids: set[str] = set()
    for event_type, data in events:
        to = recipients(event_type, data)
        parties.update((r.role, r.party_id) for r in to if r.role != "mediator")
        if to and data.get("deadline") is None and data.get("case_id") is not None:
            case_ids.add(str(data["case_id"]))
    return Known(get_contacts(conn, parties), db.case_deadlines(conn, case_ids))


class Queued(NamedTuple):
    written: int  # e-mails written
    unaddressed: int  # recipients without an address: nothing written for them


def report_unaddressed(recipients: int, **batch: Any) -> None:
    """One line for the recipients of a batch that have no address, not one per recipient:
    a marketplace that keeps its parties' addresses to itself would otherwise log every event
    twice or more (each is also a debug line, `email_skipped_no_address`)."""
    if recipients:
        log.info("emails_skipped_no_address", recipients=recipients, **batch)


def queue_for_event(
    app: App, conn: Connection, event_id: str, event_type: str, data: dict[str, Any], known: Known
) -> Queued:
    """Write the e-mails an outbox event asks for (what they need read ahead, for the batch
    of events this one belongs to: `known_for_events`)."""
    written = unaddressed = 0
    to = recipients(event_type, data)
    context = _case_context(app, conn, event_type, data, known.deadlines) if to else {}
    for recipient in to:
        key = f"{event_id}:{recipient.role}:{recipient.party_id}"
        linked = {**context, "case_url": _case_url(app, recipient.role, data.get("case_id"))}
        queued = queue(
            app, conn, recipient, key, linked, known.contacts, case_id=data.get("case_id")
        )
        written += queued.written
        unaddressed += queued.unaddressed
    return Queued(written, unaddressed)


def _contact(
    app: App, recipient: Recipient, contacts: Mapping[tuple[str, str], PartyContact]
) -> tuple[str | None, str | None, str | None, str | None]:
    """The recipient's address (None: unknown), locale, name and time zone."""
    if recipient.role == "mediator":
        return app.settings.mediator_email or None, None, None, None
    contact = contacts.get((recipient.role, recipient.party_id))
    if contact is None:
        return None, None, None, None
    return contact.email or None, contact.locale, contact.name, contact.time_zone


def queue(
    app: App,
    conn: Connection,
    recipient: Recipient,
    dedupe_key: str,
    context: dict[str, Any],
    contacts: Mapping[tuple[str, str], PartyContact],
    *,
    case_id: str | None = None,
) -> Queued:
    """One e-mail row, if an address is known and not written before (no address: a debug
    line, and the caller reports the batch's, `report_unaddressed`). `contacts`: the
    parties' contacts by (role, party_id), read ahead (`get_contacts`)."""
    address, locale, name, zone = _contact(app, recipient, contacts)
    if address is None:
        log.debug(
            "email_skipped_no_address",
            role=recipient.role,
            party_id=recipient.party_id,
            template=recipient.template,
            key=dedupe_key,
        )
        return Queued(0, 1)
    if db.email_written(conn, dedupe_key):
        return Queued(0, 0)
    now = app.clock.now()
    db.insert_email(
        conn,
        {
            "dedupe_key": dedupe_key,
            "role": recipient.role,
            "party_id": recipient.party_id,
            "case_id": case_id,
            "template": recipient.template,
            "locale": locale or DEFAULT_LOCALE,
            "context": {**context, "to": address, "name": name, "time_zone": zone},
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
    )
    return Queued(1, 0)


def _case_url(app: App, role: str, case_id: Any) -> str:
    """Mediators work cases in the console; the portal is for buyers and sellers."""
    area = "console" if role == "mediator" else "portal"
    return f"{app.settings.public_url.rstrip('/')}/{area}/cases/{case_id}"


def deadline_consequence(deadline: Mapping[str, Any]) -> str:
    """What happens when this deadline passes, as the case page says it, where the general
    "the case moves on" would hide what is at stake; "" elsewhere."""
    kind = str(deadline.get("kind") or "")
    if kind not in SPECIFIC_CONSEQUENCES:
        return ""
    return deadline_words(kind, str(deadline.get("action") or ""))[1]


def _case_context(
    app: App,
    conn: Connection,
    event_type: str,
    data: dict[str, Any],
    deadlines: Mapping[str, Any],
) -> dict[str, Any]:
    case_id = data.get("case_id")
    context: dict[str, Any] = {
        "event_type": event_type,
        "case_id": case_id,
        "order_id": data.get("order_id"),
        "status": data.get("status"),
        "outcome": data.get("outcome"),
        "deadline_due_at": None,
        "deadline_auto": False,
    }
    deadline = data.get("deadline")
    if deadline is None and case_id is not None:
        deadline = deadlines.get(case_id)
    if deadline:
        context["deadline_due_at"] = deadline.get("due_at")
        context["deadline_auto"] = deadline.get("auto", True)
        context["deadline_otherwise"] = deadline_consequence(deadline)
    if event_type == "refund.failed" and case_id is not None:
        refund = db.refund_for_case(conn, case_id)
        if refund is not None:
            context.update(
                refund_id=refund.id, attempts=refund.attempts, error=refund.last_error or ""
            )
    return context


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class _Claimed:
    id: int
    template: str
    locale: str
    context: dict[str, Any]
    attempts: int
    dedupe_key: str


def send_due(app: App, *, limit: int = 50) -> int:
    """Send (or log) e-mails whose time has come; returns how many were handled."""
    claimed = _claim(app, limit)
    for email in claimed:
        _send_one(app, email)
    return len(claimed)


def _claim(app: App, limit: int) -> list[_Claimed]:
    now = app.clock.now()
    lease = now + timedelta(seconds=app.settings.delivery_lease_seconds)
    with app.db.transaction() as conn:
        rows = db.claim_due_emails(conn, now, lease, limit)
    return [
        _Claimed(row.id, row.template, row.locale, row.context, row.attempts, row.dedupe_key)
        for row in rows
    ]


def _send_one(app: App, email: _Claimed) -> None:
    now = app.clock.now()
    values: dict[str, Any]
    try:
        rendered = render(email.template, email.locale, email.context)
        outgoing = OutgoingEmail(
            to=str(email.context["to"]),
            subject=rendered.subject,
            body=rendered.body,
            headers={"X-Restitution-Email": email.dedupe_key},
        )
        if app.mailer is None:
            log.info(
                "email",
                to=outgoing.to,
                subject=outgoing.subject,
                body=outgoing.body,
                template=email.template,
                locale=email.locale,
            )
            values = {"status": "logged", "sent_at": now, "last_error": None}
        else:
            app.mailer.send(outgoing)
            values = {"status": "sent", "sent_at": now, "last_error": None}
    except Exception as exc:  # SMTP down, a bad address, a template error: retry, then give up
        error = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("email_failed", email_id=email.id, attempts=email.attempts, error=error)
        if email.attempts >= app.settings.email_max_attempts:
            values = {"status": "failed", "last_error": error, "next_attempt_at": None}
        else:
            delay = backoff(email.attempts, timedelta(minutes=1), timedelta(hours=1))
            values = {"last_error": error, "next_attempt_at": now + delay}
    with app.db.transaction() as conn:
        db.finish_email_attempt(conn, email.id, values)
