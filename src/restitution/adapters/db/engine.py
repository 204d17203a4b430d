"""Engines for SQLite (embedded default) and PostgreSQL, and the schema's migrations."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.pool import NullPool

from restitution.adapters.db.prepared import Prepared

log = structlog.get_logger()

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
ASYNC_POOL_SIZE = 10  # per server process, beside the engine's pool of blocking connections


_OUTBOX_WRITTEN = "restitution_outbox_written"


def mark_outbox_written(conn: Connection) -> None:
    """This transaction writes outbox rows: `Database.on_outbox_written` after its commit."""
    conn.info[_OUTBOX_WRITTEN] = True


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
        self._async_pool: Any = None  # PostgreSQL: `open_async_reads`' pool, and its loop
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._together = self._reads_together()  # `read_by_key` on that pool
        in_file = make_url(url).database not in (None, "", ":memory:")
        self.checkpointer = Checkpointer(self.engine) if self.is_sqlite and in_file else None
        # Called, from the committing thread, after a transaction that wrote outbox rows
        # (`mark_outbox_written`) committed: `restitution serve` on SQLite dispatches them.
        self.on_outbox_written: Callable[[], None] | None = None

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        if self._write_lock is not None and write:
            with self._write_lock:
                writer = self._writer = self._kept(self._writer, sqlite_begin="IMMEDIATE")
                writer.info.pop(_OUTBOX_WRITTEN, None)  # left by a transaction rolled back
                with writer.begin():
                    yield writer
                if self.checkpointer is not None:
                    self.checkpointer.committed()
                # Read under the lock: the next writer's transaction clears the flag.
                outbox_written = writer.info.pop(_OUTBOX_WRITTEN, False)
            if outbox_written:
                self._outbox_committed()
            return
        if self.is_sqlite:
            reader = self._readers.reader = self._kept(getattr(self._readers, "reader", None))
            if not reader.in_transaction():  # else nested: a connection of its own, below
                with reader.begin():
                    yield reader
                return
        with self.engine.connect() as conn:
            conn.info.pop(_OUTBOX_WRITTEN, None)
            with conn.begin():
                yield conn
            if conn.info.pop(_OUTBOX_WRITTEN, False):
                self._outbox_committed()

    def _outbox_committed(self) -> None:
        """Tell the listener, if any: the commit stands whatever it answers."""
        listener = self.on_outbox_written
        if listener is None:
            return
        try:
            listener()
        except Exception:  # e.g. the server's loop already closed, at shutdown
            log.warning("outbox_listener_failed", exc_info=True)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads of ONE statement each, outside any transaction (a single
        statement reads one snapshot by itself): no BEGIN and COMMIT to pay for. Run only
        `Prepared` statements on it (`Connection.execute` would begin a transaction)."""
        if self.is_sqlite:
            reader = self._readers.reader = self._kept(getattr(self._readers, "reader", None))
            if not reader.in_transaction():  # the driver is in autocommit (`_on_connect`)
                yield reader
                return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn

    async def open_async_reads(self) -> None:
        """PostgreSQL: open a pool of async connections (autocommit) on the running event
        loop, for `read_all` (the server opens it at start-up, closes it at shutdown)."""
        if self.is_sqlite or self._async_pool is not None:
            return
        from psycopg.types.json import set_json_loads
        from psycopg_pool import AsyncConnectionPool

        async def configure(conn: Any) -> None:
            set_json_loads(json_value, conn)  # as the engine's JSON columns (`_JSON`)

        conninfo = self.engine.url.set(drivername="postgresql")
        pool = AsyncConnectionPool(
            conninfo.render_as_string(hide_password=False),
            min_size=1,
            max_size=ASYNC_POOL_SIZE,
            kwargs={"autocommit": True},
            configure=configure,
            open=False,
        )
        await pool.open()
        self._async_pool, self._async_loop = pool, asyncio.get_running_loop()

    @property
    def async_reads_open(self) -> bool:
        return self._async_pool is not None

    async def close_async_reads(self) -> None:
        pool, self._async_pool, self._async_loop = self._async_pool, None, None
        # A fresh one: keys of the old loop whose send never ran would stop the next loop's
        # from ever being sent (sends already made finish on their own).
        self._together = self._reads_together()
        if pool is not None:
            await pool.close()

    def _reads_together(self) -> _ReadsTogether:
        return _ReadsTogether(self.read_all, final=_asking_again_would_not_help)

    async def read_all(self, statement: Prepared, params: Mapping[str, Any]) -> list[Any]:
        """The rows of one read statement, without blocking the event loop.

        PostgreSQL: on the async pool when it is open on this loop; a connection that
        broke while idle (a server restart) is dropped and the read, which changes nothing,
        asked once more. Otherwise in a thread, on a `reading()` connection. SQLite: inline,
        on this thread's reader (a local file read; its writes are inline too).
        """
        pool = self._async_pool
        if self._on_async_pool():
            import psycopg

            for attempt in (1, 2):
                try:
                    async with pool.connection() as conn:
                        return await statement.all_async(conn, self.engine.dialect, params)
                except psycopg.OperationalError as error:
                    if attempt == 2 or _asking_again_would_not_help(error):
                        raise
                    await pool.check()  # drop every dead idle connection, not just this one

        def read() -> list[Any]:
            with self.reading() as conn:
                return statement.all(conn, params)

        return read() if self.is_sqlite else await asyncio.to_thread(read)

    async def read_by_key(self, read: KeyedRead, key: str) -> list[Any]:
        """The rows `read` finds for `key` (`read_all` of `read.one`), without blocking the
        event loop.

        On the async pool, the keys asked for in one turn of the event loop go together, as
        one statement of `read.many` sent after it: one round trip from one snapshot, instead
        of a checkout, a round trip and a wake-up of the loop each (under load, the eligibility
        reads of the requests that arrived together; bench/RESULTS.md, round 9). A read asked
        for after a commit is sent after it, so it sees what the commit wrote.
        """
        if self._on_async_pool():
            return await self._together.rows(read, key)
        return await self.read_all(read.one, {read.param: key})

    def _on_async_pool(self) -> bool:
        return self._async_pool is not None and self._async_loop is asyncio.get_running_loop()

    def _kept(self, conn: Connection | None, **options: Any) -> Connection:
        """SQLite connections are kept open, not checked out of the pool and back for every
        transaction: that cost as much as a write (bench/RESULTS.md). A broken one is
        replaced."""
        if conn is not None and not conn.closed and not conn.invalidated:
            return conn
        conn = self.engine.connect().execution_options(**options)
        if self.checkpointer is not None and options.get("sqlite_begin") == "IMMEDIATE":
            # The checkpointer's thread does this writer's checkpoints; its own, a safety net.
            driver = conn.connection.driver_connection
            driver.execute(f"PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}")  # type: ignore[union-attr]
        with self._opened_lock:
            self._opened.append(conn)
        return conn

    def dispose(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._writer = None
        self._readers = threading.local()
        self.engine.dispose()


@dataclass(frozen=True, eq=False)
class KeyedRead:
    """A read of the rows of one key (`one`, which takes it as `param`), and the same read of
    many keys at once (`many`, PostgreSQL: which takes them as one array, `ids`), whose rows
    carry their key in the column `key`."""

    one: Prepared
    param: str
    many: Prepared
    key: str


def _asking_again_would_not_help(error: BaseException) -> bool:
    """A busy async pool (its timeout passed) or a query cancelled (`statement_timeout`):
    a read asked again would only wait as long again."""
    import psycopg
    from psycopg_pool import PoolTimeout

    return isinstance(error, PoolTimeout | psycopg.errors.QueryCanceled)


def unavailable_errors() -> tuple[type[Exception], ...]:
    """The errors that may say the database cannot answer now, but may later (`unavailable`
    tells which do): the driver's own, raised on the async pool, and SQLAlchemy's."""
    import psycopg
    from sqlalchemy.exc import TimeoutError as PoolExhausted

    return (psycopg.Error, DBAPIError, PoolExhausted)


def unavailable(error: BaseException) -> bool:
    """The database cannot answer now, and may later: a failure of the database itself
    (`is_database_failure`: down or restarting, a connection lost, a deadlock, SQLite busy),
    a statement cancelled by its timeout, or no pooled connection free in time."""
    from psycopg_pool import PoolClosed, PoolTimeout
    from sqlalchemy.exc import TimeoutError as PoolExhausted

    if isinstance(error, PoolTimeout | PoolClosed | PoolExhausted):
        return True
    driver_error = error.orig if isinstance(error, DBAPIError) else error
    return is_database_failure(error) or getattr(driver_error, "sqlstate", None) == "57014"


# The most keys one statement of `read_by_key` carries; more go as several, side by side.
MAX_KEYS_TOGETHER = 64

_Waiting = dict[str, list[asyncio.Future[list[Any] | None]]]  # key -> its callers' answers


class _ReadsTogether:
    """`Database.read_by_key` on the async pool: the keys asked for in one turn of the event
    loop, per read, sent together after it. A key asked for twice is read once.

    When the statement for many keys fails, each caller reads its own key alone and meets
    the failure, if it lasts, as its own error; a failure that asking again would only
    prolong (`final`: a busy pool) reaches every caller at once instead.
    """

    def __init__(
        self,
        read_all: Callable[[Prepared, Mapping[str, Any]], Awaitable[list[Any]]],
        *,
        final: Callable[[BaseException], bool],
    ) -> None:
        self._read_all = read_all
        self._final = final
        self._asked: dict[KeyedRead, _Waiting] = {}  # sent after this turn of the loop
        self._sending: set[asyncio.Task[None]] = set()  # kept until done (asyncio keeps none)

    async def rows(self, read: KeyedRead, key: str) -> list[Any]:
        loop = asyncio.get_running_loop()
        asked = self._asked.get(read)
        if asked is None:
            asked = self._asked[read] = {}
            loop.call_soon(self._send, read)
        future: asyncio.Future[list[Any] | None] = loop.create_future()
        asked.setdefault(key, []).append(future)
        rows = await future  # cancelled: only this caller's future is
        if rows is None:  # the statement for them all failed: each reads alone
            return await self._read_all(read.one, {read.param: key})
        return rows

    def _send(self, read: KeyedRead) -> None:
        asked = self._asked.pop(read)
        keys = [key for key, futures in asked.items() if not all(f.done() for f in futures)]
        loop = asyncio.get_running_loop()
        for start in range(0, len(keys), MAX_KEYS_TOGETHER):
            part = {key: asked[key] for key in keys[start : start + MAX_KEYS_TOGETHER]}
            task = loop.create_task(self._run(read, part))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _run(self, read: KeyedRead, waiting: _Waiting) -> None:
        keys = list(waiting)
        found: dict[str, list[Any]] | None = None
        failure: Exception | None = None
        try:
            if len(keys) == 1:  # alone: the plain statement, and its failure is the caller's
                found = {keys[0]: await self._read_all(read.one, {read.param: keys[0]})}
            else:
                rows = await self._read_all(read.many, {"ids": keys})
                found = {key: [] for key in keys}
                for row in rows:
                    found[getattr(row, read.key)].append(row)
        except Exception as error:
            if len(keys) == 1 or self._final(error):
                failure = error
            else:
                log.warning("keyed_reads_together_failed", keys=len(keys), exc_info=True)
        finally:  # cancelled (its loop stopping): each caller reads alone
            for key, futures in waiting.items():
                for future in futures:
                    if future.done():  # its caller was cancelled
                        continue
                    if failure is not None:
                        future.set_exception(_own_copy(failure))
                    else:  # each caller a list of its own
                        future.set_result(None if found is None else list(found[key]))


def _own_copy(error: Exception) -> BaseException:
    """`error` for one of the callers it reaches: an exception raised in several tasks would
    gather every task's traceback. The original rides along as the copy's cause."""
    try:
        copy = type(error)(*error.args)
    except Exception:  # a constructor of another shape
        return error
    copy.__cause__ = error
    return copy


# A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0


# SQLite's writer checkpoints the WAL itself every 1,000 pages by default: copying them into
# the database file and syncing it, inside a request's COMMIT (commits' p99.9 38 ms against
# 8 ms without; bench/RESULTS.md). Here a thread of its own does it, after every
# CHECKPOINT_EVERY write transactions; the writer's own is kept as a safety net, rarer.
CHECKPOINT_EVERY = 100
WRITER_CHECKPOINT_PAGES = 10_000


class Checkpointer:
    """SQLite: WAL checkpoints (PASSIVE: never waiting for readers or the writer) on a
    connection and a thread of their own, started when the first one is due."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._commits = 0
        self._guard = threading.Lock()  # the running thread, `idle` and the signals
        self._run: _CheckpointRun | None = None
        self.done = 0  # checkpoints run
        self.last: tuple[int, int, int] | None = None  # (busy, WAL frames, frames copied)
        self.idle = threading.Event()  # set while no checkpoint is due or running
        self.idle.set()

    def committed(self) -> None:
        """A write transaction committed (called under the write lock)."""
        self._commits += 1
        if self._commits < CHECKPOINT_EVERY:
            return
        self._commits = 0
        with self._guard:
            self.idle.clear()
            if self._run is None or not self._run.thread.is_alive():
                self._run = _CheckpointRun(self._loop)
            self._run.due.set()

    def _loop(self, run: _CheckpointRun) -> None:
        try:
            conn = self._engine.raw_connection()
        except Exception as error:  # a new thread tries again at the next one due
            log.warning("sqlite_checkpoint_failed", error=str(error))
            with self._guard:
                self.idle.set()
            return
        try:
            while True:
                run.due.wait()
                run.due.clear()
                if run.stop.is_set():
                    return
                driver: Any = conn.driver_connection
                try:
                    self.last = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as error:  # the writer's own checkpoints still run
                    log.warning("sqlite_checkpoint_failed", error=str(error))
                self.done += 1
                with self._guard:
                    if not run.due.is_set():
                        self.idle.set()
        finally:
            conn.close()

    def stop(self) -> None:
        with self._guard:
            run, self._run = self._run, None
        if run is not None:
            run.stop.set()
            run.due.set()
            run.thread.join(timeout=30)
        self.idle.set()


class _CheckpointRun:
    """One checkpointing thread with its own signals: one stopped is never woken by, nor
    takes the work of, the one started after it."""

    def __init__(self, loop: Callable[[_CheckpointRun], None]) -> None:
        self.due = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=loop, args=(self,), name="sqlite-checkpoint", daemon=True
        )
        self.thread.start()


# Failures of the database itself, by PostgreSQL's SQLSTATE (prefixes): the connection (08),
# a deadlock or serialization failure (40), resources (53), a shutdown (57P01-57P03), a lock
# not available (55P03). Others, a statement timeout (57014) or a limit exceeded (54) say,
# would meet the same work again. SQLite's: busy, locked, I/O, interrupted.
_POSTGRES_FAILURES = ("08", "40", "53", "57P01", "57P02", "57P03", "55P03")
_SQLITE_FAILURES = {
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_INTERRUPT,
}


def is_database_failure(error: BaseException) -> bool:
    """A failure of the database itself (a lost connection, a deadlock, SQLite busy), not of
    the work asked of it: the same work may well succeed when tried again."""
    import psycopg

    driver_error: BaseException | None = error
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        driver_error = error.orig
    if isinstance(driver_error, sqlite3.Error):
        return getattr(driver_error, "sqlite_errorcode", 0) & 0xFF in _SQLITE_FAILURES
    if isinstance(driver_error, psycopg.Error):
        if driver_error.sqlstate is None:  # no answer from the server: the connection failed
            return isinstance(driver_error, psycopg.OperationalError)
        return driver_error.sqlstate.startswith(_POSTGRES_FAILURES)
    return False


def json_text(value: Any) -> str:
    """A JSON column's text, by orjson: ~5x json.dumps, which SQLAlchemy uses otherwise (JSON
    was ~5 % of a write request's CPU; bench/RESULTS.md, round 5). Keys that are not strings
    become strings, as json.dumps makes them; text is not escaped to ASCII (it is UTF-8).
    What orjson refuses (a lone surrogate, an integer beyond 64 bits) as json.dumps wrote it."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


def json_value(text: str | bytes) -> Any:
    """A JSON column's value, by orjson; what it refuses (json.dumps' escaped lone
    surrogates) by json.loads."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


# JSON columns written and read by orjson (`json_text`, `json_value`).
_JSON = {"json_serializer": json_text, "json_deserializer": json_value}


def _create_engine(url: str, *, echo: bool, is_sqlite: bool) -> Engine:
    if not is_sqlite:
        engine = create_engine(url, echo=echo, pool_size=10, max_overflow=10, **_JSON)
        _ping_when_idle(engine)
        return engine
    database = make_url(url).database
    options: dict[str, Any] = {}
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        # The connections kept open by `Database` (a writer, a reader per thread) would
        # exhaust a bounded pool; a file connection is cheap to open.
        options["poolclass"] = NullPool
    engine = create_engine(
        url, echo=echo, connect_args={"check_same_thread": False}, **_JSON, **options
    )

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
        # On the driver's connection: through `exec_driver_sql` the BEGIN cost ~70 µs of
        # SQLAlchemy's Python, most of an empty transaction (85 -> 16 µs; bench/RESULTS.md).
        driver = conn.connection.driver_connection
        driver.execute(f"BEGIN {mode}".strip())  # type: ignore[union-attr]

    return engine


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's `pool_pre_ping` pings at every checkout: a round trip that cost more than
    a whole eligibility read (bench/RESULTS.md). A connection in use moments ago is alive; one
    that sat idle (across a server restart, say) is pinged, and replaced if dead."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # the pool drops it and checks out another (up to 3 times)
            raise DisconnectionError(f"a pooled connection is dead: {error}") from error


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
