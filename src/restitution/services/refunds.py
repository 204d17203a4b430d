"""Money back: a grant is the decision to refund; attempts execute it against a gateway.

The grant is written in the same transaction as the move to `refund_pending`. The
`ledger` gateway settles at once after that commit; the `operator` gateway waits for the
marketplace to confirm (`POST /v1/refunds/{id}/succeeded|failed`). Each attempt carries an
idempotency key derived from the grant, so a retry after a crash never refunds twice.
"""

from __future__ import annotations

from typing import Any

from restitution.adapters.db.repository import Repository
from restitution.domain.cases import SYSTEM, Actor, Case, FailRefund, SettleRefund, apply
from restitution.domain.errors import Conflict, Forbidden
from restitution.services.auth import Principal, can_see_case, not_found
from restitution.services.context import App
from restitution.services.recording import record


def settle_if_ledger(app: App, case: Case) -> None:
    """With the built-in ledger gateway a refund settles as soon as it is granted."""
    if app.settings.refund_gateway == "ledger" and case.status == "refund_pending":
        execute(app, case.id)


def execute(app: App, case_id: str) -> None:
    """Run the ledger attempt for the case's pending grant and resolve the case."""
    with app.db.transaction() as conn:
        repo = Repository(conn)
        refund = repo.refund_for_case(case_id)
        if refund is None or refund.status != "pending":
            return
        now = app.clock.now()
        if not repo.record_attempt(
            {
                "id": app.new_id("rfa"),
                "refund_id": refund.id,
                "idempotency_key": f"{refund.id}:ledger",
                "gateway": "ledger",
                "status": "succeeded",
                "created_at": now,
            }
        ):
            return
        _finish(app, repo, refund, SYSTEM, succeeded=True, reason="")


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


def _finish(
    app: App, repo: Repository, refund: Any, actor: Actor, *, succeeded: bool, reason: str
) -> None:
    case = repo.get_case(refund.case_id)
    assert case is not None
    ctx = app.context()
    command = SettleRefund(refund.id) if succeeded else FailRefund(refund.id, reason)
    result = apply(case, command, actor, ctx)
    repo.set_refund_status(refund.id, "succeeded" if succeeded else "failed", ctx.now)
    record(app, repo, case, result)


def list_refunds(
    app: App, principal: Principal, case_id: str | None, *, limit: int, starting_after: str | None
) -> tuple[list[Any], bool]:
    with app.db.transaction(write=False) as conn:
        repo = Repository(conn)
        case_ids: list[str] | None = None
        if case_id is not None:
            case = repo.get_case(case_id)
            if case is None or not can_see_case(principal, case):
                raise not_found("case", case_id)
            case_ids = [case_id]
        elif principal.role in ("buyer", "seller"):
            assert principal.party_id is not None
            case_ids = repo.case_ids_visible_to(f"{principal.role}_id", principal.party_id)
        elif principal.role == "mediator":
            case_ids = repo.case_ids_escalated()
        return repo.list_refunds(case_ids, limit=limit, after=starting_after)
