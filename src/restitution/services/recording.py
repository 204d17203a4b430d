"""Writing what an action changed, all in the action's transaction: the case, its event
(hash-chained), the refund grant when money is due, and the outbox rows for webhooks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from restitution.adapters.db.repository import Repository
from restitution.domain.advice import expected_refund_by
from restitution.domain.cases import Case, Event, Result
from restitution.domain.refunds import return_postage_reimbursement
from restitution.services.context import App
from restitution.services.ports import StoredEvent


@dataclass(frozen=True)
class Recorded:
    """What `record` wrote: the case and its last event."""

    case: Case
    last_event: StoredEvent


def grants_refund(before: Case | None, after: Case) -> bool:
    """Does the move from `before` to `after` decide a refund (enter `refund_pending`)?"""
    return after.status == "refund_pending" and (
        before is None or before.status != "refund_pending"
    )


def record(
    app: App,
    repo: Repository,
    before: Case | None,
    *results: Result,
    refund: dict[str, Any] | None = None,
) -> Recorded:
    """Write what one action changed (or several in a row, each from the case the previous
    one left): the case once, as the last left it; each event, hash-chained; the refund
    grant (`refund`, if already worked out by `new_refund`); the outbox rows. All sent
    together when they are known (`Repository.batched_writes`)."""
    with repo.batched_writes():
        return _record(app, repo, before, results, refund)


def _record(
    app: App,
    repo: Repository,
    before: Case | None,
    results: tuple[Result, ...],
    refund: dict[str, Any] | None,
) -> Recorded:
    after = results[-1].case
    if before is not None:
        repo.update_case(before, after)
    outbox = []
    previous = before
    for result in results:
        case, at = result.case, result.event.at
        stored = repo.append_event(case.id, app.new_id("evt"), result.event)
        outbox.append(
            outbox_row(
                stored.chained.id, result.event.type, case, at, extra=_refund_facts(result.event)
            )
        )
        if grants_refund(previous, case):
            granted = refund or new_refund(app, repo, case, at)
            repo.insert_refund(granted)
            outbox.append(
                outbox_row(
                    app.new_id("evt"),
                    "refund.requested",
                    case,
                    at,
                    extra={
                        "refund_id": granted["id"],
                        # what the payment method gets back: the grant and any return postage
                        "amount": {"amount": granted["amount"], "currency": granted["currency"]},
                    },
                )
            )
        if case.is_resolved and (previous is None or not previous.is_resolved):
            outbox.append(outbox_row(app.new_id("evt"), "case.resolved", case, at))
        previous = case
    repo.add_outbox_rows(outbox)
    return Recorded(after, stored)


def outbox_row(
    event_id: str,
    event_type: str,
    case: Case,
    at: datetime,
    *,
    extra: dict[str, Any] | None = None,
) -> tuple[str, str, dict[str, Any], datetime]:
    """An outbox row's (event id, type, payload, time) for `add_outbox_rows`."""
    data: dict[str, Any] = {
        "case_id": case.id,
        "order_id": case.order_id,
        "buyer_id": case.buyer_id,
        "seller_id": case.seller_id,
        "status": case.status,
        "outcome": case.outcome,
        # the party the case now waits for (its deadline's), as the status alone may not say
        "waiting_for": case.deadline.party if case.deadline else None,
        **(extra or {}),
    }
    return (event_id, event_type, data, at)


def _refund_facts(event: Event) -> dict[str, Any] | None:
    """Which refund a refund's event is about (and why it failed), for its webhook: an
    operator gateway matches it to the refund it paid out, or has to."""
    if not event.type.startswith("refund."):
        return None
    return {key: event.data[key] for key in ("refund_id", "reason", "amount") if key in event.data}


def new_refund(app: App, repo: Repository, case: Case, now: datetime) -> dict[str, Any]:
    """The refund row of the decision to refund `case.refund_granted` (and return postage,
    S1) to the original payment method (F1), pending."""
    order = repo.get_order(case.order_id)
    assert order is not None and case.refund_granted is not None
    postage = return_postage_reimbursement(case, app.policy)
    refund = {
        "id": app.new_id("rfd"),
        "case_id": case.id,
        # what goes back to the payment method: the items' grant plus the postage part
        "amount": case.refund_granted.amount + postage.amount,
        "postage_amount": postage.amount,
        "next_attempt_at": now,
        "currency": case.currency,
        "method": order.payment.method,
        "payment_reference": order.payment.reference,
        "status": "pending",
        "attempts": 0,
        "last_error": None,
        "expected_by": expected_refund_by(
            app.policy, order.payment.method, now, order.buyer_country
        ),
        "created_at": now,
        "updated_at": now,
    }
    return refund
