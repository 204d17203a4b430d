"""Webhook endpoint registration (the secret is shown once, at creation)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from restitution.api.deps import AppDep, OperatorDep
from restitution.api.present import page
from restitution.api.schemas import WebhookEndpointIn
from restitution.domain.history import format_time
from restitution.services import webhooks as service

router = APIRouter(prefix="/v1/webhook_endpoints", tags=["webhooks"])


def _endpoint(values: Any, *, with_secret: bool = False) -> dict[str, Any]:
    data = {
        "id": values["id"],
        "object": "webhook_endpoint",
        "url": values["url"],
        "events": values["events"],
        "enabled": values["enabled"],
        "created_at": format_time(values["created_at"]),
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
