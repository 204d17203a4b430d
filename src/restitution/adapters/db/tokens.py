"""Party tokens: only their SHA-256 is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from restitution.adapters.db import tables as t


def insert_party_token(
    conn: Connection,
    token_hash: str,
    role: str,
    party_id: str,
    expires_at: datetime,
    now: datetime,
) -> None:
    conn.execute(
        insert(t.party_tokens).values(
            token_hash=token_hash,
            role=role,
            party_id=party_id,
            expires_at=expires_at,
            created_at=now,
        )
    )


def find_party_token(conn: Connection, token_hash: str) -> Any:
    """The token's row (role, party_id, expires_at), or None."""
    return conn.execute(
        select(t.party_tokens).where(t.party_tokens.c.token_hash == token_hash)
    ).first()
