"""Idempotency records: the first request with a key reserves it; its response is kept and
replayed for the same body. A second request while the first is still running is told so
(`IN_PROGRESS`), rather than run as well."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from restitution.adapters.db.idempotency import (
    delete_response,
    find_response,
    insert_response,
    update_response,
)
from restitution.services.context import App

IN_PROGRESS = 0  # the status kept while the key's first request runs
# A reservation this old belongs to a request that died (a process killed mid-request): the
# key is free again. Longer than any request may take.
ABANDONED_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str
    status_code: int  # IN_PROGRESS while the first request runs
    body: str


def reserve(app: App, principal: str, key: str, request_hash: str) -> StoredResponse | None:
    """Reserve the key for this request (None: go on, then `keep` or `release`), or what the
    key already holds: the first request's response, or that it is `IN_PROGRESS`."""
    now = app.clock.now()
    with app.db.transaction() as conn:
        if insert_response(
            conn, principal, key, request_hash=request_hash, status_code=IN_PROGRESS, body="",
            now=now,
        ):  # fmt: skip
            return None
        row = find_response(conn, principal, key)
        if row is None:  # released between the two statements: it was not kept
            return StoredResponse(request_hash, IN_PROGRESS, "")
        # Taken over only while it is still as old: of two requests that find it abandoned
        # at once, one goes on.
        cutoff = now - ABANDONED_AFTER
        abandoned = row.status_code == IN_PROGRESS and row.created_at <= cutoff
        if abandoned and update_response(
            conn, principal, key, where_status=IN_PROGRESS, older_than=cutoff,
            request_hash=request_hash, status_code=IN_PROGRESS, body="", now=now,
        ):  # fmt: skip
            return None
        return StoredResponse(row.request_hash, row.status_code, row.response_body)


def keep(app: App, principal: str, key: str, response: StoredResponse) -> None:
    """The reserved key's response, to replay."""
    with app.db.transaction() as conn:
        update_response(
            conn, principal, key, where_status=IN_PROGRESS, request_hash=response.request_hash,
            status_code=response.status_code, body=response.body, now=app.clock.now(),
        )  # fmt: skip


def release(app: App, principal: str, key: str) -> None:
    """Free the reserved key: its request kept no response (a 5xx), so a resend runs again."""
    with app.db.transaction() as conn:
        delete_response(conn, principal, key, where_status=IN_PROGRESS)
