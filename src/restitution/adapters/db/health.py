"""Whether the database answers."""

from __future__ import annotations

from sqlalchemy import Connection, text


def ping(conn: Connection) -> None:
    conn.execute(text("SELECT 1"))
