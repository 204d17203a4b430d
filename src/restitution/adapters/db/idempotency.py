"""Idempotency records: the first response to a (principal, key)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from restitution.adapters.db import tables as t


def find_response(conn: Connection, principal: str, key: str) -> Any:
    """The stored row (request_hash, status_code, response_body), or None."""
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
    """Store the response; False when one is already stored for the key."""
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
