"""Contact details of buyers and sellers (pushed with orders), for e-mail."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from restitution.adapters.db.parties import find_parties, upsert_party


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
    upsert_party(conn, role, party_id, values, now)


def get_contacts(
    conn: Connection, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], PartyContact]:
    """The contacts of these (role, party_id) keys that have one, read together."""
    return {
        key: PartyContact(row.email, row.locale, row.name, row.time_zone)
        for key, row in find_parties(conn, keys).items()
    }
