"""Bulk order writes at the driver level, for `restitution orders import`.

SQLAlchemy's per-row type processing cost more than the insert itself (bench/RESULTS.md), so a
batch of orders is encoded here once — in the importer's worker processes — into what the
driver takes: the text of a COPY (PostgreSQL) or the parameters of one `executemany` (SQLite).
The encoding is exactly what the `orders` table's types store: JSON as text, and times in UTC
as the naive text SQLAlchemy writes on SQLite, which PostgreSQL reads in the UTC time zone that
the import's transactions set.

PostgreSQL: the COPY goes straight into `orders`, which is the fast case (new orders); when
the batch holds an order that is already there, the COPY fails on the primary key and is
undone, and the batch goes through a temporary table and one INSERT … ON CONFLICT instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection

from restitution.adapters.db import tables as t
from restitution.adapters.db.codec import order_to_row
from restitution.adapters.db.engine import json_text
from restitution.adapters.db.tables import utc_text
from restitution.domain.orders import Order

STAMP_COLUMNS = ("created_at", "updated_at")
ROW_COLUMNS = tuple(column.name for column in t.orders.columns if column.name not in STAMP_COLUMNS)
ORDER_COLUMNS = ROW_COLUMNS + STAMP_COLUMNS  # as `encode_orders` gives them
# An order's row without its stamps (`order_row`): JSON as text, times as `utc_text`. The
# importer's quick check builds the same tuples straight from the records.
Row = tuple[str | int | None, ...]
# Encoded: the text of a PostgreSQL COPY, or SQLite `executemany` parameters.
OrderBatch = bytes | list[Row]

_SQLITE_CACHE_KIB = 64 * 1024
_SQLITE_CHECKPOINT_PAGES = 32 * 1024  # of 4 KiB: 128 MiB
_JSON_COLUMNS = ("seller_terms", "lines")
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
# COPY's text format: tab-separated columns, \N for NULL, a backslash escapes the rest.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def order_row(order: Order) -> Row:
    """The `orders` row of `order` without its stamps (see `Row`)."""
    row = order_to_row(order)
    values: list[str | int | None] = []
    for name in ROW_COLUMNS:
        value = row[name]
        if isinstance(value, datetime):
            value = utc_text(value)
        elif name in _JSON_COLUMNS:
            value = json_text(value)
        values.append(value)
    return tuple(values)


def encode_orders(rows: Iterable[Row], now: datetime, *, sqlite: bool) -> OrderBatch:
    """The rows, created or updated at `now`, as the driver takes them; of two rows with the
    same order id, the later one wins."""
    latest = {row[0]: row for row in rows}.values()
    stamp = utc_text(now)
    if sqlite:
        return [(*row, stamp, stamp) for row in latest]
    stamps = f"\t{stamp}\t{stamp}\n"
    return "".join([_copy_line(row) + stamps for row in latest]).encode()


def write_orders(conn: Connection, batch: OrderBatch) -> None:
    """Insert or replace the encoded orders (`encode_orders`)."""
    if not batch:
        return
    if isinstance(batch, list):
        # A batch's entries land all over the indexes. A cache larger than SQLite's 2 MB
        # default saves reading their pages again for every batch, and checkpointing the WAL
        # every 128 MiB rather than every 4 MiB copies the pages that several batches changed
        # into the database file once: together, twice as many rows a second at 1M orders.
        # The connection keeps both settings for the batches that follow.
        conn.exec_driver_sql(f"PRAGMA cache_size = -{_SQLITE_CACHE_KIB}")
        conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint = {_SQLITE_CHECKPOINT_PAGES}")
        conn.exec_driver_sql(_SQLITE_UPSERT, batch)
        return
    from psycopg.errors import UniqueViolation  # here: only PostgreSQL needs psycopg

    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:  # for this transaction: how `encode_orders` wrote them
        cursor.execute("SET LOCAL client_encoding = 'UTF8'; SET LOCAL TIME ZONE 'UTC'")
    try:
        with (
            conn.begin_nested(),
            driver.cursor() as cursor,
            cursor.copy(f"COPY orders ({_NAMES}) FROM STDIN") as copy,
        ):
            copy.write(batch)
        return
    except UniqueViolation:
        pass  # some are already there: replace them
    with driver.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS orders_import "
            "(LIKE orders INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY orders_import ({_NAMES}) FROM STDIN") as copy:
            copy.write(batch)
        cursor.execute(_POSTGRES_UPSERT)


def _copy_line(row: Row) -> str:
    line = "\t".join(["\\N" if value is None else str(value) for value in row])
    # Escaping is rare (a tab, a line break or a backslash in some text): find out at once.
    if (
        line.count("\\") == row.count(None)
        and line.count("\t") == len(row) - 1
        and "\n" not in line
        and "\r" not in line
    ):
        return line
    return "\t".join(
        ["\\N" if value is None else str(value).translate(_COPY_ESCAPES) for value in row]
    )
