"""`restitution worker` processes against one PostgreSQL: they share due deadlines without
firing any twice, and a worker killed mid-way loses nothing when started again."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from restitution.adapters.db import tables as t
from restitution.adapters.db.engine import Database, migrate
from restitution.adapters.db.repository import Repository
from restitution.bootstrap import build_app
from restitution.domain.cases import Accept, Actor, CaseLine, OfferTerms, OpenCase, apply, open_case
from restitution.domain.money import Money
from restitution.domain.orders import Address, Order, OrderLine, Payment
from restitution.services.clock import TestClock
from restitution.services.recording import record
from restitution.services.webhooks import create_endpoint
from restitution.settings import Settings
from tests.conftest import POSTGRES_URL
from tests.integration.messaging import Receiver, webhook_receiver

pytestmark = pytest.mark.postgres
RESTITUTION = Path(sys.executable).with_name("restitution")


@pytest.fixture
def workers_url() -> str:
    """A dedicated database for worker processes, migrated and emptied for each test."""
    if not POSTGRES_URL:
        pytest.skip("RESTITUTION_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped")
    url = make_url(POSTGRES_URL)
    # Named after the test database, so suites run against different databases never share it.
    name = f"{url.database}_workers"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        ).first():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    workers = url.set(database=name).render_as_string(hide_password=False)
    db = Database(workers)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    migrate(db)
    db.dispose()
    return workers


RETURN_ADDRESS = Address("Shop 1 returns", "1 Harbour Rd", "Shenzhen", "518000", "CN")


def seed_due_returns(url: str, tmp_path: Path, count: int) -> datetime:
    """`count` cases awaiting a return shipment (to a known address) whose D3 deadline
    passed a day ago: each expires."""
    past = datetime.now(UTC).replace(microsecond=0) - timedelta(days=11)
    settings = Settings(database_url=url, operator_key="k", storage_dir=tmp_path / "evidence")
    app = build_app(settings, clock=TestClock(past), auto_migrate=False)
    ctx = app.context()
    line = OrderLine("l1", "PH-1", "Phone", "electronics/phones", 1, 2599)
    with app.db.transaction() as conn:
        repo = Repository(conn)
        for number in range(count):
            order = Order(f"o_{number}", "b_1", "s_1", "USD", past, Payment("card"), (line,))
            repo.save_order(order, past)
            opened = open_case(
                OpenCase(
                    order.order_id,
                    (CaseLine("l1", 1),),
                    "damaged",
                    "",
                    OfferTerms("refund", Money(2599, "USD"), return_required=True),
                ),
                case_id=f"case_{number:05d}",
                buyer_id="b_1",
                seller_id="s_1",
                currency="USD",
                refundable=Money(2599, "USD"),
                default_return_payer="seller",
                return_address=RETURN_ADDRESS,
                holiday_country="US",
                actor=Actor("buyer", "b_1"),
                ctx=ctx,
            )
            accepted = apply(opened.case, Accept(), Actor("seller", "s_1"), ctx)
            repo.insert_case(accepted.case, {"l1": 2599})
            record(app, repo, None, accepted)
    app.db.dispose()
    return past


def start_worker(url: str, tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    environment = {
        **os.environ,
        "RESTITUTION_DATABASE_URL": url,
        "RESTITUTION_OPERATOR_KEY": "k",
        "RESTITUTION_STORAGE_DIR": str(tmp_path / "evidence"),
        "RESTITUTION_WORKER_INTERVAL_SECONDS": "0.2",
        "RESTITUTION_WEBHOOK_ALLOW_PRIVATE": "1",
        "RESTITUTION_DELIVERY_LEASE_SECONDS": "1",
        **env,
    }
    log = tmp_path / f"worker-{time.monotonic_ns()}.log"
    with log.open("w") as output:  # a file, not a pipe: a full pipe would stall the worker
        process = subprocess.Popen(
            [str(RESTITUTION), "worker"],
            cwd=tmp_path,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    LOGS[process.pid] = log
    return process


LOGS: dict[int, Path] = {}


def stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    return LOGS[process.pid].read_text()


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    """Bounded polling while real worker processes do the work."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the workers")
        time.sleep(0.1)


def scalar(url: str, query: Any) -> Any:
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            return conn.execute(query).scalar()
    finally:
        db.dispose()


def pending_deadlines(url: str) -> int:
    d = t.deadlines.c
    return int(
        scalar(
            url,
            select(func.count())
            .select_from(t.deadlines)
            .where(d.auto.is_(True), d.fired_at.is_(None), d.cleared_at.is_(None)),
        )
    )


def expired_events_per_case(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            found = conn.execute(
                select(t.events.c.case_id, func.count())
                .where(t.events.c.type == "case.expired")
                .group_by(t.events.c.case_id)
            ).all()
    finally:
        db.dispose()
    return {case_id: count for case_id, count in found}


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_two_workers_fire_2000_deadlines_exactly_once(
    workers_url: str, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    seed_due_returns(workers_url, tmp_path, 2000)
    processes += [start_worker(workers_url, tmp_path) for _ in range(2)]
    wait_until(lambda: pending_deadlines(workers_url) == 0, timeout=75)
    outputs = [stop(process) for process in processes]
    fired_by_worker = [
        sum(int(n) for n in re.findall(r'"deadlines_fired": (\d+)', output)) for output in outputs
    ]
    assert sum(fired_by_worker) == 2000, outputs
    per_case = expired_events_per_case(workers_url)
    assert len(per_case) == 2000
    assert set(per_case.values()) == {1}
    d = t.deadlines.c
    fired = select(func.count()).select_from(t.deadlines).where(d.fired_at.is_not(None))
    assert scalar(workers_url, fired) == 2000
    resolved = select(func.count()).select_from(t.cases).where(t.cases.c.outcome == "expired")
    assert scalar(workers_url, resolved) == 2000


def test_a_killed_worker_loses_nothing_when_started_again(
    workers_url: str, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    seed_due_returns(workers_url, tmp_path, 400)
    with webhook_receiver() as receiver:
        _register(workers_url, tmp_path, receiver)
        first = start_worker(workers_url, tmp_path)
        processes.append(first)
        receiver.wait_for(lambda: len(receiver.events()) >= 100)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = len(receiver.events())
        total_events = lambda: int(scalar(workers_url, select(func.count()).select_from(t.outbox)))  # noqa: E731
        assert killed_at < total_events()  # killed while deliveries were still to do

        processes.append(start_worker(workers_url, tmp_path))
        wait_until(lambda: pending_deadlines(workers_url) == 0 and _undelivered(workers_url) == 0)
        stop(processes[-1])

        outbox_ids = _outbox_event_ids(workers_url)
        received = [event["id"] for event in receiver.events()]
        assert receiver.bad_signatures == 0
        assert set(received) == outbox_ids  # nothing lost
        assert len(received) - len(outbox_ids) <= 100  # at most the batch in hand is resent
        per_case = expired_events_per_case(workers_url)
        assert len(per_case) == 400 and set(per_case.values()) == {1}


def _register(url: str, tmp_path: Path, receiver: Receiver) -> None:
    settings = Settings(
        database_url=url,
        operator_key="k",
        storage_dir=tmp_path / "evidence",
        webhook_allow_private=True,
    )
    app = build_app(settings, auto_migrate=False)
    endpoint = create_endpoint(app, receiver.url + "/hooks", ["*"])
    receiver.secrets["/hooks"] = endpoint["secret"]
    app.db.dispose()


def _undelivered(url: str) -> int:
    undispatched = scalar(
        url, select(func.count()).select_from(t.outbox).where(t.outbox.c.delivered_at.is_(None))
    )
    pending = scalar(
        url,
        select(func.count())
        .select_from(t.webhook_deliveries)
        .where(t.webhook_deliveries.c.status != "succeeded"),
    )
    return int(undispatched) + int(pending)


def _outbox_event_ids(url: str) -> set[str]:
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            return set(conn.execute(select(t.outbox.c.event_id)).scalars())
    finally:
        db.dispose()


def test_worker_once_says_what_its_round_did(database_url: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from restitution.cli import app as cli

    env = {
        "RESTITUTION_DATABASE_URL": database_url,
        "RESTITUTION_OPERATOR_KEY": "k",
        "RESTITUTION_STORAGE_DIR": str(tmp_path / "evidence"),
    }
    db = Database(database_url)
    try:
        migrate(db)  # a worker does not migrate: a release's `migrate` does
    finally:
        db.dispose()

    result = CliRunner().invoke(cli, ["worker", "--once"], env=env)

    assert result.exit_code == 0, result.output
    assert result.output.startswith("one round done: 0 clock steps (deadlines fired, ")
    assert "0 messages (outbox events dispatched" in result.output
