"""What is a failure of the database itself (tried again as it is) and what is a failure of
the work (a deadline that fails so backs off): `is_database_failure`."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from sqlalchemy.exc import OperationalError

from restitution.adapters.db.engine import is_database_failure


def _sqlite(message: str, code: int) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    ("error", "of_the_database"),
    [
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (psycopg.errors.DeadlockDetected(), True),
        (psycopg.errors.SerializationFailure(), True),
        (psycopg.errors.AdminShutdown(), True),
        (psycopg.errors.LockNotAvailable(), True),
        (psycopg.errors.QueryCanceled(), False),  # a statement timeout: the same again
        (psycopg.errors.ProgramLimitExceeded(), False),
        (psycopg.errors.UniqueViolation(), False),
        (_sqlite("database is locked", sqlite3.SQLITE_BUSY), True),
        (_sqlite("disk I/O error", sqlite3.SQLITE_IOERR | 10 << 8), True),  # an extended code
        (_sqlite("no such column: x", sqlite3.SQLITE_ERROR), False),
        (OperationalError("SELECT 1", {}, psycopg.errors.DeadlockDetected()), True),
        (OperationalError("SELECT 1", {}, Exception("gone"), connection_invalidated=True), True),
        (OperationalError("SELECT 1", {}, psycopg.errors.QueryCanceled()), False),
        (RuntimeError("a bug"), False),
    ],
)
def test_failures_of_the_database_are_told_from_failures_of_the_work(
    error: BaseException, of_the_database: bool
) -> None:
    assert is_database_failure(error) is of_the_database
