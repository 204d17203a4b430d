"""Web sessions (kept by the SHA-256 of their id) and mediator console logins."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from restitution.adapters.db import tables as t


def insert_session(
    conn: Connection,
    id_hash: str,
    role: str,
    party_id: str,
    csrf_token: str,
    expires_at: datetime,
    now: datetime,
) -> None:
    conn.execute(
        insert(t.web_sessions).values(
            id_hash=id_hash,
            role=role,
            party_id=party_id,
            csrf_token=csrf_token,
            expires_at=expires_at,
            created_at=now,
        )
    )


def delete_expired_sessions(conn: Connection, now: datetime) -> None:
    conn.execute(delete(t.web_sessions).where(t.web_sessions.c.expires_at <= now))


def find_session(conn: Connection, id_hash: str) -> Any:
    """The session's row (role, party_id, csrf_token, expires_at), or None."""
    return conn.execute(select(t.web_sessions).where(t.web_sessions.c.id_hash == id_hash)).first()


def delete_session(conn: Connection, id_hash: str) -> None:
    conn.execute(delete(t.web_sessions).where(t.web_sessions.c.id_hash == id_hash))


def mediator_account_exists(conn: Connection, login: str, party_id: str) -> bool:
    """Whether an account has this login or is for this mediator."""
    m = t.mediator_accounts.c
    taken = conn.execute(
        select(m.login).where((m.login == login) | (m.party_id == party_id))
    ).first()
    return taken is not None


def insert_mediator_account(
    conn: Connection, login: str, party_id: str, password_hash: str, now: datetime
) -> None:
    conn.execute(
        insert(t.mediator_accounts).values(
            login=login, party_id=party_id, password_hash=password_hash, created_at=now
        )
    )


def find_mediator_account(conn: Connection, login: str) -> Any:
    """The account's row (party_id, password_hash), or None."""
    return conn.execute(
        select(t.mediator_accounts).where(t.mediator_accounts.c.login == login)
    ).first()
