"""`restitution audit verify` finds tampering in the hash-chained history; `restitution
migrate` builds a fresh PostgreSQL schema, and the app refuses an out-of-date one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, delete, select, text, update
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from restitution.adapters.db import tables as t
from restitution.adapters.db.engine import MIGRATIONS_DIR, Database, current_revision, head_revision
from restitution.bootstrap import SchemaOutOfDate, build_app
from restitution.cli import app as cli
from restitution.services import audit
from tests.integration.conftest import Api, make_settings

runner = CliRunner()
MIGRATE_TEST_DATABASE = "restitution_migrate_test"


def case_with_history(api: Api) -> str:
    """A case with four events: opened, a message, an offer, an answer."""
    api.put_order()
    case_id = str(api.open_case().json()["id"])
    seller = api.as_("seller", "s_1")
    assert seller("POST", f"/v1/cases/{case_id}/messages", json={"body": "hi"}).status_code == 200
    offer = {"kind": "refund", "amount": {"amount": 1000, "currency": "USD"}}
    assert seller("POST", f"/v1/cases/{case_id}/offers", json=offer).status_code == 200
    buyer = api.as_("buyer", "b_1")
    assert buyer("POST", f"/v1/cases/{case_id}/reject", json={"reason": "no"}).status_code == 200
    return case_id


def run_verify(api: Api, tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {
        "RESTITUTION_DATABASE_URL": api.app.settings.database_url,
        "RESTITUTION_STORAGE_DIR": str(tmp_path / "cli-evidence"),
        "RESTITUTION_POLICY": None,
    }
    result = runner.invoke(cli, ["audit", "verify", *args], env=env)
    return result.exit_code, result.output


def test_verifying_a_case_that_does_not_exist_says_so_and_fails(api: Api, tmp_path: Path) -> None:
    case_with_history(api)

    code, output = run_verify(api, tmp_path, "case_nope")

    assert (code, output.strip()) == (1, "no case case_nope")
    assert audit.verify(api.app, "case_nope").cases_checked == 0


def tamper(api: Api, case_id: str, seq: int) -> None:
    with api.app.db.transaction() as conn:
        conn.execute(
            update(t.events)
            .where(t.events.c.case_id == case_id, t.events.c.seq == seq)
            .values(data={"body": "something the seller never wrote"})
        )


def event_id(api: Api, case_id: str, seq: int) -> str:
    with api.app.db.transaction(write=False) as conn:
        return str(
            conn.execute(
                select(t.events.c.id).where(t.events.c.case_id == case_id, t.events.c.seq == seq)
            ).scalar_one()
        )


def test_an_untouched_history_verifies(api: Api, tmp_path: Path) -> None:
    case_id = case_with_history(api)
    other = api.open_case(
        lines=[{"line_id": "l2", "quantity": 1}],
        request={"kind": "refund", "amount": {"amount": 1300, "currency": "USD"}},
    )
    assert other.status_code == 201, other.text
    report = audit.verify(api.app)
    assert (report.cases_checked, report.events_checked, report.broken) == (2, 5, [])
    code, output = run_verify(api, tmp_path)
    assert code == 0, output
    assert "2 cases, 5 events checked, 0 broken" in output
    code, output = run_verify(api, tmp_path, case_id)
    assert code == 0, output
    assert "1 cases, 4 events checked, 0 broken" in output


def test_changed_event_data_is_reported_at_its_seq(api: Api, tmp_path: Path) -> None:
    case_id = case_with_history(api)
    untouched = api.open_case(
        lines=[{"line_id": "l2", "quantity": 1}],
        request={"kind": "refund", "amount": {"amount": 1300, "currency": "USD"}},
    ).json()["id"]
    tamper(api, case_id, 2)

    report = audit.verify(api.app)
    assert [(b.case_id, b.seq, b.event_id) for b in report.broken] == [
        (case_id, 2, event_id(api, case_id, 2))
    ]
    assert "hash" in report.broken[0].problem
    assert audit.verify(api.app, untouched).broken == []

    code, output = run_verify(api, tmp_path)
    assert code == 1, output
    assert f"BROKEN {case_id} at event 2 ({event_id(api, case_id, 2)})" in output
    assert untouched not in output
    assert "1 broken" in output


def test_a_deleted_event_is_reported(api: Api, tmp_path: Path) -> None:
    case_id = case_with_history(api)
    third = event_id(api, case_id, 3)
    with api.app.db.transaction() as conn:
        conn.execute(delete(t.events).where(t.events.c.id == third))

    report = audit.verify(api.app)
    assert len(report.broken) == 1
    broken = report.broken[0]
    assert (broken.case_id, broken.seq) == (case_id, 4)  # the event after the gap
    code, output = run_verify(api, tmp_path)
    assert code == 1, output
    assert f"BROKEN {case_id} at event 4" in output


def test_deleting_the_latest_events_is_reported(api: Api, tmp_path: Path) -> None:
    """Cutting the tail off a history leaves a valid chain; the case's version gives it away."""
    case_id = case_with_history(api)
    with api.app.db.transaction() as conn:
        conn.execute(delete(t.events).where(t.events.c.case_id == case_id, t.events.c.seq >= 3))

    broken = audit.verify(api.app).broken
    assert [(b.case_id, b.seq) for b in broken] == [(case_id, 3)]
    assert "missing" in broken[0].problem
    code, output = run_verify(api, tmp_path, case_id)
    assert code == 1, output
    assert f"BROKEN {case_id} at event 3" in output


def test_a_case_whose_whole_history_is_deleted_is_reported(api: Api) -> None:
    case_id = case_with_history(api)
    with api.app.db.transaction() as conn:
        conn.execute(delete(t.events).where(t.events.c.case_id == case_id))
    report = audit.verify(api.app)
    assert [(b.case_id, b.seq) for b in report.broken] == [(case_id, 1)]
    assert report.cases_checked == 1


def test_a_rehashed_forgery_still_breaks_the_next_link(api: Api) -> None:
    """Recomputing the changed event's own hash is not enough: the next event names the old one."""
    case_id = case_with_history(api)
    tamper(api, case_id, 2)
    with api.app.db.transaction() as conn:
        from restitution.adapters.db.repository import Repository

        stored = Repository(conn).case_events(case_id)[1]
        conn.execute(
            update(t.events)
            .where(t.events.c.id == stored.chained.id)
            .values(hash=stored.chained.compute_hash())
        )
    broken = audit.verify(api.app).broken
    assert [(b.case_id, b.seq) for b in broken] == [(case_id, 3)]


# --------------------------------------------------------------------------- migrations


@pytest.fixture
def scratch_postgres_url() -> Iterator[str]:
    """A database of its own, so the shared test database is never touched."""
    base = os.environ.get("RESTITUTION_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("RESTITUTION_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    drop = f"DROP DATABASE IF EXISTS {MIGRATE_TEST_DATABASE} WITH (FORCE)"
    with admin.connect() as conn:
        conn.execute(text(drop))
        conn.execute(text(f"CREATE DATABASE {MIGRATE_TEST_DATABASE}"))
    url = make_url(base).set(database=MIGRATE_TEST_DATABASE)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(drop))
    admin.dispose()


@pytest.mark.postgres
def test_migrate_builds_a_fresh_postgres_schema_and_stale_ones_are_refused(
    scratch_postgres_url: str, tmp_path: Path
) -> None:
    settings = make_settings(scratch_postgres_url, tmp_path)
    with pytest.raises(SchemaOutOfDate, match="restitution migrate"):
        build_app(settings, auto_migrate=False)

    env = {"RESTITUTION_DATABASE_URL": scratch_postgres_url, "RESTITUTION_POLICY": None}
    result = runner.invoke(cli, ["migrate"], env=env)
    assert result.exit_code == 0, result.output
    assert "schema is current" in result.output
    assert runner.invoke(cli, ["migrate"], env=env).exit_code == 0  # idempotent

    application = build_app(settings, auto_migrate=False)
    try:
        with application.db.transaction(write=False) as conn:
            assert conn.execute(select(t.cases.c.id)).all() == []
    finally:
        application.db.dispose()

    head = head_revision()
    previous = ScriptDirectory(str(MIGRATIONS_DIR)).get_revision(head).down_revision
    assert isinstance(previous, str)
    db = Database(scratch_postgres_url)
    try:
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": previous})
        assert current_revision(db) == previous
    finally:
        db.dispose()
    with pytest.raises(SchemaOutOfDate, match="restitution migrate"):
        build_app(settings, auto_migrate=False)
    refused = runner.invoke(cli, ["audit", "verify"], env=env)
    assert refused.exit_code == 2
    assert "restitution migrate" in refused.output
