"""Bulk order writes at the driver level, for `restitution orders import`.

SQLAlchemy's per-row type processing cost more than the insert itself (bench/RESULTS.md), so
orders are encoded here once into plain tuples — made in parallel processes by the importer —
and written with one `executemany` (SQLite) or a COPY into a temporary table followed by one
INSERT … ON CONFLICT (PostgreSQL). The encoding is exactly what the `orders` table's types
store: UTC times (naive text on SQLite, as SQLAlchemy writes them) and JSON as text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from restitution.adapters.db import tables as t
from restitution.adapters.db.codec import order_to_row
from restitution.domain.orders import Order

ORDER_COLUMNS: tuple[str, ...] = tuple(column.name for column in t.orders.columns)
_TIMES = frozenset(
    name for name, column in t.orders.columns.items() if isinstance(column.type, t.UTCDateTime)
)
_JSON = frozenset(("seller_terms", "lines"))
_NAMES = ", ".join(f'"{name}"' for name in ORDER_COLUMNS)
_REPLACED = ", ".join(
    f'"{name}" = excluded."{name}"'
    for name in ORDER_COLUMNS
    if name not in ("order_id", "created_at")
)
_SQLITE_UPSERT = (
    f"INSERT INTO orders ({_NAMES}) VALUES ({', '.join('?' * len(ORDER_COLUMNS))}) "
    f"ON CONFLICT (order_id) DO UPDATE SET {_REPLACED}"
)
_POSTGRES_UPSERT = (
    f"INSERT INTO orders ({_NAMES}) SELECT {_NAMES} FROM orders_import "
    f"ON CONFLICT (order_id) DO UPDATE SET {_REPLACED}"
)


def _sqlite_time(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def order_params(order: Order, now: datetime, *, sqlite: bool) -> tuple[Any, ...]:
    """The `orders` row of `order`, created or updated at `now`, as the driver takes it."""
    row = order_to_row(order)
    row["created_at"] = row["updated_at"] = now
    values = []
    for name in ORDER_COLUMNS:
        value = row[name]
        if value is not None and name in _TIMES:
            if value.tzinfo is None:
                raise ValueError("naive datetimes are not stored; use UTC")
            value = _sqlite_time(value) if sqlite else value.astimezone(UTC)
        elif name in _JSON:
            value = json.dumps(value)
        values.append(value)
    return tuple(values)


def upsert_order_params(conn: Connection, params: Sequence[tuple[Any, ...]]) -> None:
    """Insert or replace the encoded orders; of two with the same id, the later one wins."""
    latest = list({row[0]: row for row in params}.values())
    if not latest:
        return
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_SQLITE_UPSERT, latest)
        return
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS orders_import "
            "(LIKE orders INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY orders_import ({_NAMES}) FROM STDIN") as copy:
            for row in latest:
                copy.write_row(row)
        cursor.execute(_POSTGRES_UPSERT)
