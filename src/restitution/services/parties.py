"""Contact details of buyers and sellers (pushed with orders), for e-mail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from restitution.adapters.db import tables as t


@dataclass(frozen=True)
class PartyContact:
    email: str | None = None
    locale: str | None = None
    name: str | None = None
    time_zone: str | None = None


def save_contact(
    conn: Connection, role: str, party_id: str, contact: PartyContact, now: datetime
) -> None:
    """Create or update; fields not given keep what an earlier order said."""
    values: dict[str, Any] = {
        key: value for key, value in contact.__dict__.items() if value is not None
    }
    key = (t.parties.c.role == role, t.parties.c.party_id == party_id)
    if conn.execute(update(t.parties).where(*key).values(**values, updated_at=now)).rowcount:
        return
    try:
        with conn.begin_nested():
            conn.execute(
                insert(t.parties).values(role=role, party_id=party_id, **values, updated_at=now)
            )
    except IntegrityError:  # a concurrent PUT created it first
        conn.execute(update(t.parties).where(*key).values(**values, updated_at=now))


def get_contact(conn: Connection, role: str, party_id: str) -> PartyContact | None:
    row = conn.execute(
        select(t.parties).where(t.parties.c.role == role, t.parties.c.party_id == party_id)
    ).first()
    if row is None:
        return None
    return PartyContact(row.email, row.locale, row.name, row.time_zone)
