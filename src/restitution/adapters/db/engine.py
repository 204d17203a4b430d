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
from sqlalchemy.pool import NullPool

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class Database:
    """One engine and the way transactions are taken on it.

    SQLite has a single write lock and its busy handler backs off for up to a second
    (CEILINGS.md), so writers are serialised in the process, on one connection kept open
    for them, and begin IMMEDIATE; readers run concurrently under WAL. PostgreSQL takes
    plain transactions from a pool.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        self.engine: Engine = _create_engine(url, echo=echo, is_sqlite=self.is_sqlite)
        self._write_lock = threading.Lock() if self.is_sqlite else None
        self._writer: Connection | None = None  # SQLite's writer, used under the write lock
        self._readers = threading.local()  # SQLite: each thread's own reading connection
        self._opened: list[Connection] = []  # every kept connection, closed by `dispose`
        self._opened_lock = threading.Lock()

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        if self._write_lock is not None and write:
            with self._write_lock:
                self._writer = self._kept(self._writer, sqlite_begin="IMMEDIATE")
                with self._writer.begin():
                    yield self._writer
            return
        if self.is_sqlite:
            reader = self._readers.reader = self._kept(getattr(self._readers, "reader", None))
            if not reader.in_transaction():  # else nested: a connection of its own, below
                with reader.begin():
                    yield reader
                return
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def _kept(self, conn: Connection | None, **options: Any) -> Connection:
        """SQLite connections are kept open, not checked out of the pool and back for every
        transaction: that cost as much as a write (bench/RESULTS.md). A broken one is
        replaced."""
        if conn is not None and not conn.closed and not conn.invalidated:
            return conn
        conn = self.engine.connect().execution_options(**options)
        with self._opened_lock:
            self._opened.append(conn)
        return conn

    def dispose(self) -> None:
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._writer = None
        self._readers = threading.local()
        self.engine.dispose()


def _create_engine(url: str, *, echo: bool, is_sqlite: bool) -> Engine:
    if not is_sqlite:
        return create_engine(url, echo=echo, pool_size=10, max_overflow=10, pool_pre_ping=True)
    database = make_url(url).database
    options: dict[str, Any] = {}
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        # The connections kept open by `Database` (a writer, a reader per thread) would
        # exhaust a bounded pool; a file connection is cheap to open.
        options["poolclass"] = NullPool
    engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False}, **options)

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
