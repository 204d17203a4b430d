"""Idempotency records: the first response to a key is kept and replayed for the same body."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from restitution.adapters.db import tables as t
from restitution.services.context import App


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str
    status_code: int
    body: str


def lookup(app: App, principal: str, key: str) -> StoredResponse | None:
    with app.db.transaction(write=False) as conn:
        row = conn.execute(
            select(t.idempotency_keys).where(
                t.idempotency_keys.c.principal == principal, t.idempotency_keys.c.key == key
            )
        ).first()
    if row is None:
        return None
    return StoredResponse(row.request_hash, row.status_code, row.response_body)


def remember(app: App, principal: str, key: str, response: StoredResponse) -> None:
    try:
        with app.db.transaction() as conn:
            conn.execute(
                insert(t.idempotency_keys).values(
                    principal=principal,
                    key=key,
                    request_hash=response.request_hash,
                    status_code=response.status_code,
                    response_body=response.body,
                    created_at=app.clock.now(),
                )
            )
    except IntegrityError:
        pass  # a concurrent request with the same key stored its response first
