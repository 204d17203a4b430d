"""Writing what an action changed, all in the action's transaction: the case, its event
(hash-chained), the refund grant when money is due, and the outbox rows for webhooks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from restitution.adapters.db.repository import Repository
from restitution.domain.advice import expected_refund_by
from restitution.domain.cases import Case, Result
from restitution.domain.refunds import return_postage_reimbursement
from restitution.services.context import App
from restitution.services.ports import StoredEvent


@dataclass(frozen=True)
class Recorded:
    """What `record` wrote: the case, its last event, and the refund granted, if any."""

    case: Case
    last_event: StoredEvent
    granted: dict[str, Any] | None = None  # the refund row, when this action granted one


def record(app: App, repo: Repository, before: Case | None, result: Result) -> Recorded:
    """Write what an action changed: the case, its event, the refund grant, the outbox rows."""
    after = result.case
    if before is not None:
        repo.update_case(before, after)
    stored = repo.append_event(after.id, app.new_id("evt"), result.event)
    at = result.event.at
    # The outbox rows, written together in one statement once all are known.
    outbox = [outbox_row(stored.chained.id, result.event.type, after, at)]
    granted = None
    if after.status == "refund_pending" and (before is None or before.status != "refund_pending"):
        granted = grant_refund(app, repo, after, at)
        outbox.append(
            outbox_row(
                app.new_id("evt"), "refund.requested", after, at, extra={"refund_id": granted["id"]}
            )
        )
    if after.is_resolved and (before is None or not before.is_resolved):
        outbox.append(outbox_row(app.new_id("evt"), "case.resolved", after, at))
    repo.add_outbox_rows(outbox)
    return Recorded(after, stored, granted)


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
        **(extra or {}),
    }
    return (event_id, event_type, data, at)


def grant_refund(app: App, repo: Repository, case: Case, now: datetime) -> dict[str, Any]:
    """Record the decision to refund `case.refund_granted` (and return postage, S1) to the
    original payment method (F1); returns the refund's row."""
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
        "expected_by": expected_refund_by(
            app.policy, order.payment.method, now, order.buyer_country
        ),
        "created_at": now,
        "updated_at": now,
    }
    repo.insert_refund(refund)
    return refund
