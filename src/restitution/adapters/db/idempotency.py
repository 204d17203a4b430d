"""Idempotency records: a (principal, key) reserved by its first request, then its response."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from restitution.adapters.db import tables as t


def find_response(conn: Connection, principal: str, key: str) -> Any:
    """The stored row (request_hash, status_code, response_body, created_at), or None."""
    k = t.idempotency_keys.c
    return conn.execute(
        select(t.idempotency_keys).where(k.principal == principal, k.key == key)
    ).first()


def insert_response(
    conn: Connection,
    principal: str,
    key: str,
    *,
    request_hash: str,
    status_code: int,
    body: str,
    now: datetime,
) -> bool:
    """Store a row for the key; False when there is one already."""
    try:
        with conn.begin_nested():
            conn.execute(
                insert(t.idempotency_keys).values(
                    principal=principal,
                    key=key,
                    request_hash=request_hash,
                    status_code=status_code,
                    response_body=body,
                    created_at=now,
                )
            )
    except IntegrityError:
        return False
    return True


def update_response(
    conn: Connection,
    principal: str,
    key: str,
    *,
    where_status: int,
    older_than: datetime | None = None,
    request_hash: str,
    status_code: int,
    body: str,
    now: datetime,
) -> bool:
    """Replace the key's row if its status is still `where_status` (and it was written before
    `older_than`, if given); False if it was not."""
    k = t.idempotency_keys.c
    conditions = [k.principal == principal, k.key == key, k.status_code == where_status]
    if older_than is not None:
        conditions.append(k.created_at <= older_than)
    changed = conn.execute(
        update(t.idempotency_keys)
        .where(*conditions)
        .values(
            request_hash=request_hash, status_code=status_code, response_body=body, created_at=now
        )
    )
    return bool(changed.rowcount)


def delete_response(conn: Connection, principal: str, key: str, *, where_status: int) -> None:
    k = t.idempotency_keys.c
    conn.execute(
        delete(t.idempotency_keys).where(
            k.principal == principal, k.key == key, k.status_code == where_status
        )
    )
