"""Idempotency records: the first response to a key is kept and replayed for the same body."""

from __future__ import annotations

from dataclasses import dataclass

from restitution.adapters.db.idempotency import find_response, insert_response
from restitution.services.context import App


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str
    status_code: int
    body: str


def lookup(app: App, principal: str, key: str) -> StoredResponse | None:
    with app.db.transaction(write=False) as conn:
        row = find_response(conn, principal, key)
    if row is None:
        return None
    return StoredResponse(row.request_hash, row.status_code, row.response_body)


def remember(app: App, principal: str, key: str, response: StoredResponse) -> None:
    with app.db.transaction() as conn:
        # A concurrent request with the same key may have stored its response first: that
        # one is kept (insert_response returns False).
        insert_response(
            conn,
            principal,
            key,
            request_hash=response.request_hash,
            status_code=response.status_code,
            body=response.body,
            now=app.clock.now(),
        )
