"""Refunds: the list, the operator's confirmation of refunds it executed, and the retry of
one that failed (operator or mediator)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

from restitution.api.deps import AppDep, OperatorDep, PrincipalDep
from restitution.api.present import page, refund_json
from restitution.api.routing import api_router
from restitution.api.schemas import RefundFailedIn
from restitution.services import refunds as service

router = api_router(prefix="/v1/refunds", tags=["refunds"])
RefundId = Annotated[str, Path(max_length=200)]


@router.get("", summary="List refunds")
def list_refunds(
    app: AppDep,
    principal: PrincipalDep,
    case_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    rows, has_more = service.list_refunds(
        app, principal, case_id, limit=limit, starting_after=starting_after
    )
    return page([refund_json(row) for row in rows], has_more)


@router.post("/{refund_id}/succeeded", summary="The marketplace executed the refund")
def succeeded(refund_id: RefundId, app: AppDep, principal: OperatorDep) -> dict[str, Any]:
    return refund_json(service.confirm(app, principal, refund_id, succeeded=True))


@router.post("/{refund_id}/failed", summary="The marketplace could not execute the refund")
def failed(
    refund_id: RefundId, app: AppDep, principal: OperatorDep, body: RefundFailedIn | None = None
) -> dict[str, Any]:
    reason = body.reason if body else ""
    return refund_json(service.confirm(app, principal, refund_id, succeeded=False, reason=reason))


@router.post("/{refund_id}/retry", summary="Ask the gateway again for a refund that failed")
def retry(refund_id: RefundId, app: AppDep, principal: PrincipalDep) -> dict[str, Any]:
    return refund_json(service.retry(app, principal, refund_id))
