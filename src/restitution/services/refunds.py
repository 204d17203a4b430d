"""Money back: a grant is the decision to refund; attempts execute it against a gateway.

The grant is written in the same transaction as the move to `refund_pending`. A gateway
that keeps its books in this database (`ledger`, the built-in default) settles it in that
same transaction: nothing can be in doubt, and the case reaches `resolved` in one commit.
Any other gateway is called after that commit: an attempt row
with an idempotency key derived from the grant (`<refund id>:<attempt number>`) is
committed *before* the gateway is called, so a crash between the call and the outcome
leaves an attempt "in doubt" that is asked again with the same key — a gateway that saw
the key refunds only once. A failed attempt is retried with back-off; after
`refund_max_attempts` the refund is `failed`, the case records `refund.failed` and the
mediators are told (they see the case from then on). The operator or a mediator may then
retry it (`POST /v1/refunds/{id}/retry`, once the payment provider is fixed, say): pending
again, due at once, with `refund_max_attempts` more; its attempts go on counting, so each new
attempt has a key the gateway never saw, and none it saw is paid twice. The `operator`
gateway waits for the marketplace to confirm (`POST /v1/refunds/{id}/succeeded|failed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog

from restitution.adapters.db import refunds as rows
from restitution.adapters.db.repository import Repository
from restitution.domain.advice import expected_refund_by
from restitution.domain.cases import (
    SYSTEM,
    Actor,
    Case,
    FailRefund,
    Result,
    RetryRefund,
    SettleRefund,
    apply,
)
from restitution.domain.errors import Conflict, Forbidden
from restitution.domain.money import Money
from restitution.services.auth import Principal, can_see_case, not_found
from restitution.services.context import App
from restitution.services.ports import GatewayResult, RefundGateway, RefundRequest
from restitution.services.recording import Recorded, grants_refund, new_refund, record
from restitution.services.retry import backoff

log = structlog.get_logger()

RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)


def record_settling(app: App, repo: Repository, before: Case, result: Result) -> Recorded:
    """Record an action; when it grants a refund that a gateway keeping its books in this
    database (the ledger) settles, settle it in the same transaction: one attempt, keyed
    like any other, and the case written once, resolved. All written together
    (`Repository.batched_writes`)."""
    with repo.batched_writes():
        return _record_settling(app, repo, before, result)


def _record_settling(app: App, repo: Repository, before: Case, result: Result) -> Recorded:
    gateway = app.refund_gateway
    if gateway is None or not gateway.settles_in_transaction:
        return record(app, repo, before, result)
    if not grants_refund(before, result.case):
        return record(app, repo, before, result)
    refund = new_refund(app, repo, result.case, result.event.at)
    key = f"{refund['id']}:1"
    outcome = gateway.refund(_request(refund, key))
    now = app.clock.now()
    if outcome.succeeded:
        settled = apply(result.case, SettleRefund(refund["id"]), SYSTEM, app.context())
        refund.update(status="succeeded", attempts=1, next_attempt_at=None, updated_at=now)
        recorded = record(app, repo, before, result, settled, refund=refund)
    else:
        # Counted, and due again at once: tried after the commit like any other attempt.
        refund.update(attempts=1, last_error=outcome.error)
        recorded = record(app, repo, before, result, refund=refund)
    repo.insert_attempt(
        {
            "id": app.new_id("rfa"),
            "refund_id": refund["id"],
            "idempotency_key": key,
            "gateway": gateway.name,
            "status": "succeeded" if outcome.succeeded else "failed",
            "error": outcome.error,
            "created_at": now,
        }
    )
    return recorded


def _request(refund: Mapping[str, Any], key: str) -> RefundRequest:
    return RefundRequest(
        refund_id=refund["id"],
        case_id=refund["case_id"],
        amount=refund["amount"],
        currency=refund["currency"],
        method=refund["method"],
        payment_reference=refund["payment_reference"],
        idempotency_key=key,
    )


def execute_if_automatic(app: App, case: Case) -> None:
    """With a gateway outside this database, a grant is executed as soon as it is committed.

    The grant stands whatever happens here: if this attempt cannot be made (the database
    gone since the commit), the grant stays pending and `retry_due` makes it, and the action
    that granted it still answers as done (it is: asked again, it would be refused).
    """
    if app.refund_gateway is None or case.status != "refund_pending":
        return
    try:
        execute(app, case.id)
    except Exception:
        log.warning("refund_attempt_deferred", case_id=case.id, exc_info=True)


@dataclass(frozen=True)
class _Claim:
    attempt_id: str
    attempts: int
    request: RefundRequest


def execute(app: App, case_id: str) -> str | None:
    """One attempt at the case's pending grant; returns the refund's status after it."""
    gateway = app.refund_gateway
    if gateway is None:
        return None
    claim = _claim(app, gateway, case_id)
    if claim is None:
        return None
    try:
        result = gateway.refund(claim.request)
    except Exception as exc:  # a gateway that raises has failed this attempt, nothing more
        log.warning("refund_gateway_error", refund_id=claim.request.refund_id, error=str(exc))
        result = GatewayResult(succeeded=False, error=f"{type(exc).__name__}: {exc}"[:500])
    return _record_outcome(app, claim, result)


def retry_due(app: App, *, limit: int = 100) -> int:
    """Execute grants whose next attempt is due (new, retried, or in doubt after a crash)."""
    if app.refund_gateway is None:
        return 0
    now = app.clock.now()
    with app.db.transaction(write=False) as conn:
        case_ids = rows.due_case_ids(conn, now, limit)
    for case_id in case_ids:
        execute(app, case_id)
    return len(case_ids)


def _claim(app: App, gateway: RefundGateway, case_id: str) -> _Claim | None:
    now = app.clock.now()
    with app.db.transaction() as conn:
        refund = rows.refund_for_claim(conn, case_id)
        if refund is None or refund.status != "pending":
            return None
        if refund.next_attempt_at is not None and refund.next_attempt_at > now:
            return None
        # Pending attempts are written only here, with `attempts` counted in the same
        # transaction: a refund never attempted has none to ask again about.
        last = rows.last_attempt(conn, refund.id, gateway.name) if refund.attempts else None
        attempts = refund.attempts
        if last is not None and last.status == "pending":
            # In doubt: an earlier try never wrote its outcome. Ask again with the same key.
            attempt_id, key = last.id, last.idempotency_key
        else:
            attempts += 1
            attempt_id, key = app.new_id("rfa"), f"{refund.id}:{attempts}"
            Repository(conn).record_attempt(
                {
                    "id": attempt_id,
                    "refund_id": refund.id,
                    "idempotency_key": key,
                    "gateway": gateway.name,
                    "status": "pending",
                    "created_at": now,
                }
            )
        # Hold the grant while the gateway is asked; another worker retries only after this.
        rows.hold(
            conn,
            refund.id,
            attempts,
            now + timedelta(seconds=app.settings.delivery_lease_seconds),
        )
    return _Claim(attempt_id, attempts, _request(refund._asdict(), key))


def _record_outcome(app: App, claim: _Claim, result: GatewayResult) -> str | None:
    now = app.clock.now()
    refund_id = claim.request.refund_id
    with app.db.transaction() as conn:
        repo = Repository(conn)
        rows.set_attempt_outcome(
            conn, claim.attempt_id, succeeded=result.succeeded, error=result.error
        )
        refund = repo.get_refund(refund_id)
        if refund is None or refund.status != "pending":
            return refund.status if refund is not None else None  # confirmed meanwhile
        if result.succeeded:
            _finish(app, repo, refund, SYSTEM, succeeded=True, reason="")
            return "succeeded"
        # The attempts since the refund was last retried (all, if never; none, if it was
        # retried while this one was under way) count against the limit and set the back-off.
        counted = claim.attempts - refund.attempts_before_retry
        if counted >= app.settings.refund_max_attempts:
            rows.give_up(conn, refund_id, result.error)
            times = f"{counted} times" + (
                f" since it was retried ({claim.attempts} in all)"
                if refund.attempts_before_retry
                else ""
            )
            reason = f"the gateway failed {times}: {result.error or 'no reason'}"
            _finish(app, repo, refund, SYSTEM, succeeded=False, reason=reason)
            log.warning("refund_failed", refund_id=refund_id, attempts=claim.attempts)
            return "failed"
        rows.schedule_retry(
            conn,
            refund_id,
            result.error,
            now + backoff(counted, RETRY_BASE, RETRY_CAP),
            now,
        )
        return "pending"


def confirm(
    app: App, principal: Principal, refund_id: str, *, succeeded: bool, reason: str = ""
) -> Any:
    """The marketplace executed (or failed to execute) a refund and says so."""
    if not principal.is_operator:
        raise Forbidden("operator_only", "only the operator confirms refunds")
    with app.db.transaction() as conn:
        repo = Repository(conn)
        refund = repo.get_refund(refund_id)
        if refund is None:
            raise not_found("refund", refund_id)
        if refund.status == "succeeded":
            raise Conflict("refund_already_succeeded", "this refund has already succeeded")
        repo.record_attempt(
            {
                "id": app.new_id("rfa"),
                "refund_id": refund.id,
                "idempotency_key": f"{refund.id}:operator:{app.new_id('try')}",
                "gateway": "operator",
                "status": "succeeded" if succeeded else "failed",
                "error": reason or None,
                "created_at": app.clock.now(),
            }
        )
        _finish(
            app, repo, refund, Actor("operator", "operator"), succeeded=succeeded, reason=reason
        )
        return repo.get_refund(refund_id)


def retry(app: App, principal: Principal, refund_id: str, *, case_id: str | None = None) -> Any:
    """Ask the gateway again for a refund that failed: pending, due at once, and recorded on
    its case (`refund.retried`, by whom) with its outbox rows. The operator and the mediators
    (who see the case once its refund failed) may; `case_id`: the case it must belong to."""
    if principal.role not in ("operator", "mediator"):
        raise Forbidden(
            "operator_or_mediator_only", "only the operator or a mediator retries refunds"
        )
    ctx = app.context()
    with app.db.transaction() as conn:
        repo = Repository(conn)
        found = repo.get_refund(refund_id)
        if found is None:
            raise not_found("refund", refund_id)
        # The refund locked first (PostgreSQL), as the worker locks it to record an attempt:
        # the case read after it is as a worker giving up, or a confirmation, left it.
        refund = rows.refund_for_claim(conn, found.case_id)
        case = repo.get_case(found.case_id, for_write=True)
        if case is None or not can_see_case(principal, case) or case_id not in (None, case.id):
            raise not_found("refund", refund_id)
        if refund.status != "failed":
            raise Conflict(
                "refund_not_failed",
                f"only a failed refund can be retried; this one is {refund.status}",
            )
        actor = Actor("operator", "operator") if principal.is_operator else principal.actor()
        amount = Money(refund.amount, refund.currency)
        result = apply(case, RetryRefund(refund.id, amount), actor, ctx)
        # The buyer is told when to expect it (F1): counted again from the new attempt.
        order = repo.get_order(case.order_id)
        country = order.buyer_country if order is not None else None
        expected_by = expected_refund_by(app.policy, refund.method, ctx.now, country)
        rows.retry(conn, refund.id, ctx.now, expected_by)
        record(app, repo, case, result)
        return repo.get_refund(refund_id)


def _finish(
    app: App,
    repo: Repository,
    refund: Any,
    actor: Actor,
    *,
    succeeded: bool,
    reason: str,
) -> None:
    ctx = app.context()
    command = SettleRefund(refund.id) if succeeded else FailRefund(refund.id, reason)
    case = repo.get_case(refund.case_id, for_write=True)
    assert case is not None
    result = apply(case, command, actor, ctx)
    repo.set_refund_status(refund.id, "succeeded" if succeeded else "failed", ctx.now)
    record(app, repo, case, result)


def list_refunds(
    app: App,
    principal: Principal,
    case_id: str | None,
    *,
    limit: int,
    starting_after: str | None,
) -> tuple[list[Any], bool]:
    with app.db.transaction(write=False) as conn:
        repo = Repository(conn)
        scope: dict[str, Any] = {}  # the operator's: every refund
        if case_id is not None:
            case = repo.get_case(case_id)
            if case is None or not can_see_case(principal, case):
                raise not_found("case", case_id)
            scope = {"case_id": case_id}
        elif principal.role in ("buyer", "seller"):
            assert principal.party_id is not None
            scope = {"party": (principal.role, principal.party_id)}
        elif principal.role == "mediator":
            # Escalated cases, and those whose refund failed (every refund the gateway gave up on).
            scope = {"mediators": True}
        return repo.list_refunds(**scope, limit=limit, after=starting_after)
