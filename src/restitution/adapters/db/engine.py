"""Engines for SQLite (embedded default) and PostgreSQL, and the schema's migrations."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class Database:
    """One engine and the way transactions are taken on it.

    SQLite has a single write lock and its busy handler backs off for up to a second
    (CEILINGS.md), so writers are serialised in the process and begin IMMEDIATE; readers
    run concurrently under WAL. PostgreSQL takes plain transactions from a pool.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        self.engine: Engine = _create_engine(url, echo=echo, is_sqlite=self.is_sqlite)
        self._write_lock = threading.Lock() if self.is_sqlite else None

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        if self._write_lock is not None and write:
            with self._write_lock, self.engine.connect() as conn:
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    yield conn
            return
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def _create_engine(url: str, *, echo: bool, is_sqlite: bool) -> Engine:
    if not is_sqlite:
        return create_engine(url, echo=echo, pool_size=10, max_overflow=10, pool_pre_ping=True)
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


# --------------------------------------------------------------------------- migrations


def _alembic_config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = db.engine
    return config


def head_revision() -> str | None:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return script.get_current_head()


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_up_to_date(db: Database) -> bool:
    return current_revision(db) == head_revision()


def migrate(db: Database) -> None:
    """Bring the database to the current schema (idempotent)."""
    command.upgrade(_alembic_config(db), "head")
