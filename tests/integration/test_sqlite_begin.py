"""SQLite: a write transaction takes the write lock when it begins (BEGIN IMMEDIATE, issued on
the driver's connection), a read transaction does not."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.engine import make_url

from restitution.services.context import App
from tests.integration.conftest import ON_SQLITE


def _other_writer(app: App) -> sqlite3.Connection:
    path = make_url(app.db.url).database
    assert path is not None
    return sqlite3.connect(path, timeout=0, isolation_level=None)


@ON_SQLITE
def test_a_write_transaction_holds_the_write_lock_from_its_begin(app: App) -> None:
    other = _other_writer(app)
    with app.db.transaction() as conn:
        assert conn.connection.driver_connection.in_transaction  # type: ignore[union-attr]
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")  # released at the commit
    other.execute("ROLLBACK")
    other.close()


@ON_SQLITE
def test_a_read_transaction_leaves_the_write_lock_free(app: App) -> None:
    other = _other_writer(app)
    with app.db.transaction(write=False) as conn:
        assert conn.connection.driver_connection.in_transaction  # type: ignore[union-attr]
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    other.close()
