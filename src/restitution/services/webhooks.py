"""Webhook endpoints: where the marketplace wants signed event deliveries."""

from __future__ import annotations

import ipaddress
import secrets
import socket
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import insert, select

from restitution.adapters.db import tables as t
from restitution.domain.errors import InvalidInput
from restitution.services.context import App

EVENT_TYPES = (
    "case.opened",
    "case.offer_made",
    "case.offer_accepted",
    "case.offer_rejected",
    "case.escalated",
    "case.decided",
    "case.withdrawn",
    "case.expired",
    "case.message_posted",
    "case.return_label_added",
    "case.return_shipped",
    "case.return_delivered",
    "case.inspected",
    "case.replacement_shipped",
    "case.replacement_delivered",
    "case.converted_to_refund",
    "case.resolved",
    "case.deadline_approaching",
    "refund.requested",
    "refund.succeeded",
    "refund.failed",
)


def _check_pattern(pattern: str) -> None:
    if pattern == "*" or pattern in EVENT_TYPES:
        return
    if pattern.endswith(".*") and any(e.startswith(pattern[:-1]) for e in EVENT_TYPES):
        return
    raise InvalidInput("invalid_event_type", f"unknown event type {pattern!r}", param="events")


def check_url(url: str, *, allow_private: bool) -> None:
    """https only, and never loopback or private addresses, unless the operator allows them."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput("invalid_url", "url must be an absolute http(s) URL", param="url")
    if allow_private:
        return
    if parts.scheme != "https":
        raise InvalidInput("insecure_url", "webhook URLs must use https", param="url")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInput(
            "unresolvable_url", "the URL's host does not resolve", param="url"
        ) from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise InvalidInput(
                "private_url", "webhook URLs must not point to private addresses", param="url"
            )


def create_endpoint(app: App, url: str, events: list[str]) -> dict[str, Any]:
    for pattern in events:
        _check_pattern(pattern)
    check_url(url, allow_private=app.settings.webhook_allow_private)
    values = {
        "id": app.new_id("whe"),
        "url": url,
        "events": list(dict.fromkeys(events)),
        "secret": f"whsec_{secrets.token_urlsafe(32)}",
        "enabled": True,
        "created_at": app.clock.now(),
    }
    with app.db.transaction() as conn:
        conn.execute(insert(t.webhook_endpoints).values(**values))
    return values


def list_endpoints(app: App) -> list[Any]:
    with app.db.transaction(write=False) as conn:
        return list(
            conn.execute(select(t.webhook_endpoints).order_by(t.webhook_endpoints.c.created_at))
        )
