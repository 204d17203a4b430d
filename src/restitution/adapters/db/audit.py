"""What the history audit compares the hash chains with."""

from __future__ import annotations

from sqlalchemy import Connection, select

from restitution.adapters.db import tables as t


def case_versions(conn: Connection, case_id: str | None = None) -> dict[str, int]:
    """case id → its version, for every case or the one given."""
    query = select(t.cases.c.id, t.cases.c.version)
    if case_id:
        query = query.where(t.cases.c.id == case_id)
    return {row.id: row.version for row in conn.execute(query)}
