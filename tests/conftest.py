"""Fixtures shared by every test layer: databases on SQLite and PostgreSQL, a test clock."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import text

from restitution.adapters.db.engine import Database, migrate
from restitution.adapters.db.tables import metadata
from restitution.services.clock import TestClock

POSTGRES_URL = os.environ.get("RESTITUTION_TEST_POSTGRES_URL")
# A Friday morning; the first business days after it are clear of US holidays.
START = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)

# Property tests test behaviour, not speed: no time limit per example, nor a check that data
# is made fast, which a busy machine (CI beside other work) failed once in a while.
settings.register_profile(
    "restitution", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("restitution")


@pytest.fixture
def clock() -> TestClock:
    return TestClock(START)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for every test: fresh and fast."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    migrate(db)
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_migrated() -> str:
    if not POSTGRES_URL:
        pytest.skip("RESTITUTION_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped")
    db = Database(POSTGRES_URL)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    migrate(db)
    db.dispose()
    return POSTGRES_URL


def _truncate_all(url: str) -> None:
    db = Database(url)
    names = ", ".join(table.name for table in metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    db.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for one test, on each backend in turn."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "restitution.db"
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_migrated")
        _truncate_all(url)
        yield url
