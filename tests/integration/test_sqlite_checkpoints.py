"""SQLite's WAL is checkpointed by a thread of its own, not inside a request's COMMIT."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from restitution.adapters.db import engine as engine_module
from restitution.adapters.db import tables as t
from restitution.adapters.db.engine import Database, migrate


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    monkeypatch.setattr(engine_module, "CHECKPOINT_EVERY", 3)
    database = Database(f"sqlite:///{tmp_path / 'restitution.db'}")
    migrate(database)
    return database


def _write(db: Database, n: int) -> None:
    with db.transaction() as conn:
        conn.execute(
            insert(t.idempotency_keys).values(
                principal="p",
                key=f"k{n}",
                request_hash="h",
                status_code=200,
                response_body="{}",
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )


def test_every_few_writes_a_thread_of_its_own_checkpoints_the_wal(db: Database) -> None:
    checkpointer = db.checkpointer
    assert checkpointer is not None
    _write(db, 1)
    _write(db, 2)
    assert checkpointer.done == 0 and not _checkpoint_threads()
    _write(db, 3)  # the third: one is due
    assert checkpointer.idle.wait(10)
    assert checkpointer.done == 1 and _checkpoint_threads()
    assert checkpointer.last is not None
    _busy, frames, copied = checkpointer.last
    assert frames > 0 and copied == frames  # all written so far is in the database file
    db.dispose()
    assert not _checkpoint_threads()
    for n in (4, 5, 6):  # a disposed database that is used again checkpoints again
        _write(db, n)
    assert checkpointer.idle.wait(10) and checkpointer.done == 2
    db.dispose()


def test_the_writer_checkpoints_itself_only_as_a_safety_net(db: Database) -> None:
    _write(db, 1)
    with db.transaction() as conn:
        pages = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    assert pages == engine_module.WRITER_CHECKPOINT_PAGES > 1000  # SQLite's default is 1000
    db.dispose()


def test_no_checkpointer_for_memory_or_postgresql() -> None:
    assert Database("sqlite://").checkpointer is None
    assert Database("sqlite:///:memory:").checkpointer is None
    assert Database("postgresql+psycopg://nobody@127.0.0.1:1/none").checkpointer is None


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sqlite-checkpoint" and t.is_alive()]


def test_a_checkpointer_that_could_not_connect_starts_again_at_the_next_one_due(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpointer = db.checkpointer
    assert checkpointer is not None
    real = db.engine.raw_connection
    failures = iter([RuntimeError("no file handle left")])

    def flaky() -> Any:
        for error in failures:
            raise error
        return real()

    _write(db, 1)  # the writer's connection, kept open from now on
    monkeypatch.setattr(db.engine, "raw_connection", flaky)
    for n in (2, 3):
        _write(db, n)
    assert checkpointer.idle.wait(10) and checkpointer.done == 0
    for n in (4, 5, 6):
        _write(db, n)
    assert checkpointer.idle.wait(10) and checkpointer.done == 1
    db.dispose()
