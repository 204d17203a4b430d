"""Buyers' and sellers' contact details and preferences (the `parties` table)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from restitution.adapters.db import tables as t
from restitution.adapters.db.prepared import Prepared

_FIND_PARTY = Prepared(
    select(t.parties).where(
        t.parties.c.role == bindparam("role"), t.parties.c.party_id == bindparam("party_id")
    )
)


def upsert_party(
    conn: Connection, role: str, party_id: str, values: dict[str, Any], now: datetime
) -> None:
    """Update the given columns of the party's row, creating the row when there is none."""
    key = (t.parties.c.role == role, t.parties.c.party_id == party_id)
    if conn.execute(update(t.parties).where(*key).values(**values, updated_at=now)).rowcount:
        return
    try:
        with conn.begin_nested():
            conn.execute(
                insert(t.parties).values(role=role, party_id=party_id, **values, updated_at=now)
            )
    except IntegrityError:  # a concurrent writer created it first
        conn.execute(update(t.parties).where(*key).values(**values, updated_at=now))


# Built once, its IN list a parameter: expanded per call rather than the statement
# rebuilt and each key coerced (~2x the statement's cost; bench/RESULTS.md, round 5).
_FIND_PARTIES = select(t.parties).where(
    tuple_(t.parties.c.role, t.parties.c.party_id).in_(bindparam("keys", expanding=True))
)


def find_parties(conn: Connection, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """The rows of the parties with these (role, party_id) keys, by key; one statement."""
    if not keys:
        return {}
    rows = conn.execute(_FIND_PARTIES, {"keys": list(keys)})
    return {(row.role, row.party_id): row for row in rows}


def find_party(conn: Connection, role: str, party_id: str) -> Any:
    """The party's row (email, locale, name, time_zone), or None."""
    return _FIND_PARTY.first(conn, {"role": role, "party_id": party_id})
