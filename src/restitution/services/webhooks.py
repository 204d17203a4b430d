"""Webhook endpoints, and the signed delivery of events to them.

Deliveries are rows (`webhook_deliveries`, written when the outbox is dispatched). A worker
claims due ones (a lease: `next_attempt_at` moves ahead, and on PostgreSQL concurrent
workers skip rows another one holds), POSTs them, and records the outcome: 2xx is
`succeeded`; anything else is retried with exponential back-off and jitter until
`webhook_retry_hours` after the event, then `failed`. Delivery is at least once: a worker
killed after the POST but before recording it sends again; receivers dedupe by event id.
After `webhook_disable_after_failures` consecutive failed attempts the endpoint is disabled
and a `webhook_endpoint.disabled` event is written.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from sqlalchemy import Connection

from restitution.adapters.db import messaging as db
from restitution.adapters.notify.webhooks import PostResult, WebhookPoster
from restitution.domain.errors import InvalidInput
from restitution.services.auth import not_found
from restitution.services.context import App
from restitution.services.retry import backoff

log = structlog.get_logger()

RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=6)

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
    "case.return_address_added",
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
    "refund.retried",
    "webhook_endpoint.disabled",
)


def matches(patterns: list[str], event_type: str) -> bool:
    """`*`, an exact type, or a family such as `case.*`."""
    return any(
        pattern == "*"
        or pattern == event_type
        or (pattern.endswith(".*") and event_type.startswith(pattern[:-1]))
        for pattern in patterns
    )


def _check_pattern(pattern: str) -> None:
    if pattern == "*" or pattern in EVENT_TYPES:
        return
    if pattern.endswith(".*") and any(e.startswith(pattern[:-1]) for e in EVENT_TYPES):
        return
    raise InvalidInput("invalid_event_type", f"unknown event type {pattern!r}", param="events")


def check_url(url: str, *, allow_private: bool) -> None:
    """https only, and never loopback or private addresses, unless the operator allows them."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in 0-65535
    except ValueError as exc:  # e.g. "http://[::1" or "http://host:99999"
        raise InvalidInput("invalid_url", "url is not a valid URL", param="url") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput("invalid_url", "url must be an absolute http(s) URL", param="url")
    if allow_private:
        return
    if parts.scheme != "https":
        raise InvalidInput("insecure_url", "webhook URLs must use https", param="url")
    try:
        infos = socket.getaddrinfo(parts.hostname, port or 443, proto=socket.IPPROTO_TCP)
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
        db.insert_endpoint(conn, values)
    return values


def list_endpoints(app: App) -> list[Any]:
    with app.db.transaction(write=False) as conn:
        return db.list_endpoints(conn)


def get_endpoint(app: App, endpoint_id: str) -> Any:
    with app.db.transaction(write=False) as conn:
        row = db.find_endpoint(conn, endpoint_id)
    if row is None:
        raise not_found("webhook endpoint", endpoint_id)
    return row


def set_enabled(app: App, endpoint_id: str, enabled: bool) -> Any:
    """Disable an endpoint, or enable it again (its failure count starts over)."""
    get_endpoint(app, endpoint_id)
    now = app.clock.now()
    values: dict[str, Any] = {"enabled": enabled, "disabled_at": None if enabled else now}
    if enabled:
        values["consecutive_failures"] = 0
    with app.db.transaction() as conn:
        db.update_endpoint(conn, endpoint_id, values)
    return get_endpoint(app, endpoint_id)


def list_deliveries(
    app: App, endpoint_id: str, *, limit: int, starting_after: str | None
) -> tuple[list[Any], bool]:
    """The endpoint's delivery log, newest first."""
    get_endpoint(app, endpoint_id)
    with app.db.transaction(write=False) as conn:
        return db.list_deliveries(conn, endpoint_id, limit=limit, starting_after=starting_after)


@dataclass(frozen=True)
class _Claimed:
    id: str
    endpoint_id: str
    url: str
    secret: str
    payload: dict[str, Any]
    attempts: int
    created_at: Any


def deliver_due(app: App, *, limit: int = 100) -> int:
    """POST every claimed due delivery once; returns how many were attempted."""
    claimed = _claim(app, limit)
    if not claimed:
        return 0
    with WebhookPoster(app.settings.webhook_timeout_seconds) as poster:
        for delivery in claimed:
            _record(app, delivery, _post(app, poster, delivery))
    return len(claimed)


def _claim(app: App, limit: int) -> list[_Claimed]:
    now = app.clock.now()
    lease = now + timedelta(seconds=app.settings.delivery_lease_seconds)
    with app.db.transaction() as conn:
        rows = db.claim_due_deliveries(conn, now, lease, limit)
    return [
        _Claimed(
            row.id, row.endpoint_id, row.url, row.secret, row.payload, row.attempts,
            row.created_at,
        )
        for row in rows
    ]  # fmt: skip


def _post(app: App, poster: WebhookPoster, delivery: _Claimed) -> PostResult:
    try:  # the address may have moved since registration: check it on every attempt
        check_url(delivery.url, allow_private=app.settings.webhook_allow_private)
    except InvalidInput as exc:
        return PostResult(None, f"blocked: {exc}")
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
    timestamp = int(app.clock.now().timestamp())
    return poster.post(delivery.url, delivery.secret, timestamp, body)


def _record(app: App, delivery: _Claimed, result: PostResult) -> None:
    now = app.clock.now()
    values: dict[str, Any] = {"last_status_code": result.status_code, "last_error": result.error}
    if result.succeeded:
        values.update(status="succeeded", delivered_at=now, next_attempt_at=None)
    elif now - delivery.created_at >= timedelta(hours=app.settings.webhook_retry_hours):
        values.update(status="failed", next_attempt_at=None)
    else:
        values["next_attempt_at"] = now + backoff(delivery.attempts, RETRY_BASE, RETRY_CAP)
    with app.db.transaction() as conn:
        if not db.finish_delivery_attempt(conn, delivery.id, values):
            return
        if result.succeeded:
            db.reset_endpoint_failures(conn, delivery.endpoint_id)
            return
        failures = db.count_endpoint_failure(conn, delivery.endpoint_id)
        if failures.enabled and failures.consecutive_failures >= (
            app.settings.webhook_disable_after_failures
        ):
            _disable(app, conn, delivery.endpoint_id, failures.url, failures.consecutive_failures)


def _disable(app: App, conn: Connection, endpoint_id: str, url: str, failures: int) -> None:
    now = app.clock.now()
    db.disable_endpoint(conn, endpoint_id, now)
    db.add_outbox_event(
        conn,
        app.new_id("evt"),
        "webhook_endpoint.disabled",
        {"endpoint_id": endpoint_id, "url": url, "consecutive_failures": failures},
        now,
    )
    log.warning("webhook_endpoint_disabled", endpoint_id=endpoint_id, failures=failures)
