"""Webhook endpoint registration (the secret is shown once, at creation)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

from restitution.api.deps import AppDep, OperatorDep
from restitution.api.present import page
from restitution.api.routing import api_router
from restitution.api.schemas import WebhookEndpointIn
from restitution.domain.history import format_optional_time, format_time
from restitution.services import webhooks as service

router = api_router(prefix="/v1/webhook_endpoints", tags=["webhooks"])
EndpointId = Annotated[str, Path(max_length=200)]


def _endpoint(values: Any, *, with_secret: bool = False) -> dict[str, Any]:
    data = {
        "id": values["id"],
        "object": "webhook_endpoint",
        "url": values["url"],
        "events": values["events"],
        "enabled": values["enabled"],
        "created_at": format_time(values["created_at"]),
        "consecutive_failures": values.get("consecutive_failures") or 0,
        "disabled_at": format_optional_time(values.get("disabled_at")),
    }
    if with_secret:
        data["secret"] = values["secret"]
    return data


@router.post("", status_code=201, summary="Register a webhook endpoint")
def create(body: WebhookEndpointIn, app: AppDep, principal: OperatorDep) -> dict[str, Any]:
    return _endpoint(service.create_endpoint(app, body.url, body.events), with_secret=True)


@router.get("", summary="List webhook endpoints")
def list_endpoints(app: AppDep, principal: OperatorDep) -> dict[str, Any]:
    return page([_endpoint(row._mapping) for row in service.list_endpoints(app)], False)


def _delivery(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "webhook_delivery",
        "endpoint_id": row.endpoint_id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "status": row.status,
        "attempts": row.attempts,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "next_attempt_at": (
            format_optional_time(row.next_attempt_at) if row.status == "pending" else None
        ),
        "delivered_at": format_optional_time(row.delivered_at),
        "created_at": format_time(row.created_at),
    }


@router.get("/{endpoint_id}", summary="Get a webhook endpoint")
def get_endpoint(endpoint_id: EndpointId, app: AppDep, principal: OperatorDep) -> dict[str, Any]:
    return _endpoint(service.get_endpoint(app, endpoint_id)._mapping)


@router.get("/{endpoint_id}/deliveries", summary="The endpoint's delivery log, newest first")
def list_deliveries(
    endpoint_id: EndpointId,
    app: AppDep,
    principal: OperatorDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    rows, has_more = service.list_deliveries(
        app, endpoint_id, limit=limit, starting_after=starting_after
    )
    return page([_delivery(row) for row in rows], has_more)


@router.post("/{endpoint_id}/disable", summary="Stop deliveries to an endpoint")
def disable(endpoint_id: EndpointId, app: AppDep, principal: OperatorDep) -> dict[str, Any]:
    return _endpoint(service.set_enabled(app, endpoint_id, False)._mapping)


@router.post(
    "/{endpoint_id}/enable", summary="Resume deliveries to an endpoint (failure count reset)"
)
def enable(endpoint_id: EndpointId, app: AppDep, principal: OperatorDep) -> dict[str, Any]:
    return _endpoint(service.set_enabled(app, endpoint_id, True)._mapping)
