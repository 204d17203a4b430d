"""Due deadlines fired in batches: every case's changes commit together, stale rows are
skipped, a case that cannot be fired holds back no other, and a case changed behind the
batch's back is detected, on both backends."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import OperationalError

from restitution.adapters.db import tables as t
from restitution.adapters.db.repository import Repository
from restitution.domain.cases import Case, apply
from restitution.domain.errors import Conflict
from restitution.services import audit, deadlines, insights, retry
from restitution.services.clock import TestClock
from restitution.services.deadlines import fire_due
from tests.integration.case_steps import event_types, fired_per_case, get_case, ok, open_cases
from tests.integration.conftest import ON_POSTGRES, Api

DAY = 24 * 3600
RETRY_FIRST_AT_MOST = deadlines.RETRY_BASE.total_seconds()  # the first back-off, jitter included


def _pass_d1(api: Api) -> None:
    """Every seller's D1 passes, and nothing fires it yet."""
    clock = api.app.clock
    assert isinstance(clock, TestClock)
    clock.advance(30 * DAY)


def _failing_for(monkeypatch: pytest.MonkeyPatch, case_id: str) -> Callable[[], None]:
    """Make firing `case_id` raise; the returned function heals it."""
    broken = {case_id}

    def failing_apply(case: Case, *args: Any) -> Any:
        if case.id in broken:
            raise RuntimeError(f"cannot fire {case.id}")
        return apply(case, *args)

    monkeypatch.setattr(deadlines, "apply", failing_apply)
    return broken.clear


def test_a_batch_fires_every_case_with_its_events_chained(api: Api) -> None:
    case_ids = open_cases(api, 7)
    _pass_d1(api)
    assert fire_due(api.app) == 7
    assert fired_per_case(api) == dict.fromkeys(case_ids, 1)
    for case_id in case_ids:
        assert get_case(api, case_id)["outcome"] == "refunded"
        assert event_types(api, case_id) == [
            "case.opened",
            "case.offer_accepted",
            "refund.succeeded",
        ]
    report = audit.verify(api.app)
    assert (report.cases_checked, report.events_checked, report.broken) == (7, 21, [])
    with api.app.db.transaction(write=False) as conn:
        outbox = conn.execute(select(t.outbox.c.type, func.count()).group_by(t.outbox.c.type))
        assert dict(outbox.all()) == {  # type: ignore[arg-type]
            "case.opened": 7,
            "case.offer_accepted": 7,
            "refund.requested": 7,
            "refund.succeeded": 7,
            "case.resolved": 7,
        }
        attempts = conn.execute(select(t.refund_attempts.c.status, t.refund_attempts.c.gateway))
        assert [tuple(row) for row in attempts] == [("succeeded", "ledger")] * 7


def test_a_stale_row_is_marked_and_skipped_and_a_second_row_meets_the_moved_case(
    api: Api,
) -> None:
    stale, doubled, plain = open_cases(api, 3)
    _pass_d1(api)
    due = api.app.clock.now()
    with api.app.db.transaction() as conn:
        extra = {"action": "expire", "party": "buyer", "auto": True, "due_at": due}
        # A row of another kind than the case's deadline (the case moved on), and a second
        # row of the very deadline the case has: each fires nothing.
        conn.execute(insert(t.deadlines).values(case_id=stale, kind="D3", **extra))
        conn.execute(
            insert(t.deadlines).values(case_id=doubled, **{**extra, "kind": "D1"}),
        )
    assert fire_due(api.app) == 5
    assert fired_per_case(api) == {stale: 2, doubled: 2, plain: 1}
    for case_id in (stale, doubled, plain):
        assert event_types(api, case_id).count("case.offer_accepted") == 1
        assert get_case(api, case_id)["outcome"] == "refunded"
    assert audit.verify(api.app).broken == []


def test_a_case_that_cannot_be_fired_holds_back_no_other(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_ids = open_cases(api, 5)
    bad = case_ids[2]
    with api.app.db.transaction() as conn:  # and a stale row in the same batch
        conn.execute(
            insert(t.deadlines).values(
                case_id=case_ids[0],
                kind="D3",
                action="expire",
                party="buyer",
                auto=True,
                due_at=api.app.clock.now(),
            )
        )
    _pass_d1(api)
    heal = _failing_for(monkeypatch, bad)

    assert fire_due(api.app) == 5  # the batch failed; one by one, all but the bad one fired
    good = [case_id for case_id in case_ids if case_id != bad]
    assert fired_per_case(api) == {**dict.fromkeys(good, 1), case_ids[0]: 2}
    assert {get_case(api, case_id)["outcome"] for case_id in good} == {"refunded"}
    assert get_case(api, bad)["status"] == "awaiting_seller"  # rolled back, still due
    assert event_types(api, bad) == ["case.opened"]

    heal()
    assert fire_due(api.app) == 0  # still due, but backing off: not taken yet
    api.app.clock.advance(RETRY_FIRST_AT_MOST)
    assert fire_due(api.app) == 1
    assert get_case(api, bad)["outcome"] == "refunded"
    assert fired_per_case(api)[bad] == 1
    assert audit.verify(api.app).broken == []


def test_a_case_changed_behind_a_batch_is_a_conflict(api: Api) -> None:
    [case_id] = open_cases(api, 1)
    with api.app.db.transaction() as conn:
        repo = Repository(conn)
        [case] = repo.get_cases([case_id], for_write=True)
        conn.execute(
            update(t.cases).where(t.cases.c.id == case_id).values(version=t.cases.c.version + 1)
        )
        with pytest.raises(Conflict) as refused, repo.batched_writes():
            repo.update_case(case, dataclasses.replace(case, version=case.version + 1))
    assert refused.value.code == "concurrent_update"


def test_what_a_case_was_opened_with_is_never_rewritten(api: Api) -> None:
    # Its UPDATE leaves out the identity columns (and their indexes); a change to one would
    # be lost, so it is refused instead of written without it.
    [case_id] = open_cases(api, 1)
    with api.app.db.transaction() as conn:
        repo = Repository(conn)
        [case] = repo.get_cases([case_id], for_write=True)
        moved = dataclasses.replace(case, buyer_id="b_other", version=case.version + 1)
        with pytest.raises(ValueError, match=case_id), repo.batched_writes():
            repo.update_case(case, moved)
    assert get_case(api, case_id)["buyer_id"] == case.buyer_id


@ON_POSTGRES
def test_a_case_changed_while_its_batch_runs_is_fired_one_by_one(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_ids = open_cases(api, 4)
    _pass_d1(api)
    moved = case_ids[1]
    changed: list[str] = []

    def apply_after_a_concurrent_change(case: Case, *args: Any) -> Any:
        if case.id == moved and not changed:  # another transaction writes the case first
            changed.append(case.id)
            with api.app.db.engine.begin() as other:
                other.execute(
                    update(t.cases)
                    .where(t.cases.c.id == moved)
                    .values(version=t.cases.c.version + 1)
                )
        return apply(case, *args)

    monkeypatch.setattr(deadlines, "apply", apply_after_a_concurrent_change)
    assert fire_due(api.app) == 4
    assert changed == [moved]
    assert fired_per_case(api) == dict.fromkeys(case_ids, 1)
    assert {get_case(api, case_id)["outcome"] for case_id in case_ids} == {"refunded"}


def _pending_deadline(api: Api, case_id: str) -> Any:
    d = t.deadlines.c
    with api.app.db.transaction(write=False) as conn:
        return conn.execute(
            select(d.attempts, d.next_attempt_at, d.last_error).where(
                d.case_id == case_id, d.fired_at.is_(None), d.cleared_at.is_(None)
            )
        ).one()


def _no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Back-off at its full length (without it, 0.5 to 1 times that): exact instants."""
    monkeypatch.setattr(retry, "random", SimpleNamespace(random=lambda: 1.0))


def test_a_deadline_that_fails_alone_backs_off_and_keeps_its_error(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    [bad] = open_cases(api, 1)
    _pass_d1(api)
    _failing_for(monkeypatch, bad)
    _no_jitter(monkeypatch)
    assert fire_due(api.app) == 0
    first_try = api.app.clock.now()
    row = _pending_deadline(api, bad)
    assert row.attempts == 1
    assert row.last_error == f"RuntimeError: cannot fire {bad}"
    assert row.next_attempt_at == first_try + timedelta(minutes=1)
    assert insights.overview(api.app, first_try).deadlines_failing == 1

    api.app.clock.advance(30)
    assert fire_due(api.app) == 0  # not tried before its time
    assert _pending_deadline(api, bad).attempts == 1
    clock = api.app.clock
    assert isinstance(clock, TestClock)
    clock.set(row.next_attempt_at)
    assert fire_due(api.app) == 0  # tried, failed again: the wait doubles
    row = _pending_deadline(api, bad)
    assert row.attempts == 2
    assert row.next_attempt_at == first_try + timedelta(minutes=1 + 2)


def test_a_deadline_the_database_failed_on_is_left_due_without_backing_off(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost connection or a deadlock is not the deadline's fault: the next tick tries it."""
    [case_id] = open_cases(api, 1)
    _pass_d1(api)

    def database_failing(case: Case, *args: Any) -> Any:
        lost = Exception("server closed the connection unexpectedly")
        raise OperationalError("UPDATE cases ...", {}, lost, connection_invalidated=True)

    monkeypatch.setattr(deadlines, "apply", database_failing)
    assert fire_due(api.app) == 0
    row = _pending_deadline(api, case_id)
    assert (row.attempts, row.next_attempt_at, row.last_error) == (0, None, None)
    assert insights.overview(api.app, api.app.clock.now()).deadlines_failing == 0

    monkeypatch.setattr(deadlines, "apply", apply)
    assert fire_due(api.app) == 1  # at the next tick, without waiting


def test_a_failure_is_counted_once_when_another_sweeper_meets_it_meanwhile(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between a failed attempt's rollback and its deferral the deadline is due: another
    sweeper's batch (another thread or worker) may take it, fail and defer it first."""
    [bad] = open_cases(api, 1)
    _pass_d1(api)
    _failing_for(monkeypatch, bad)
    defer = deadlines._defer

    def another_sweeper_first(app: Any, row: Any, now: Any, error: Exception) -> bool:
        monkeypatch.setattr(deadlines, "_defer", defer)
        assert fire_due(app, now) == 0  # it takes the deadline, fails and defers it
        assert _pending_deadline(api, bad).attempts == 1
        return defer(app, row, now, error)

    monkeypatch.setattr(deadlines, "_defer", another_sweeper_first)
    assert fire_due(api.app) == 0
    assert _pending_deadline(api, bad).attempts == 1  # one failure, counted once


def test_a_deadline_backing_off_leaves_the_next_batch_whole(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    [bad] = open_cases(api, 1)
    api.app.clock.advance(10)
    later = []
    for number in range(3):  # their D1 falls due 10 s after the bad one's
        api.put_order(f"o_later_{number}")
        later.append(ok(api.open_case(f"o_later_{number}"), 201)["id"])
    bad_due = _pending_deadline_due(api, bad)
    later_due = max(_pending_deadline_due(api, case_id) for case_id in later)
    assert bad_due < later_due
    _failing_for(monkeypatch, bad)
    fallen_back: list[int] = []
    one_by_one = deadlines._fire_one_by_one

    def counting(app: Any, now: Any, rows: list[Any]) -> Any:
        fallen_back.append(len(rows))
        return one_by_one(app, now, rows)

    monkeypatch.setattr(deadlines, "_fire_one_by_one", counting)
    clock = api.app.clock
    assert isinstance(clock, TestClock)
    clock.set(bad_due)
    assert fire_due(api.app) == 0  # the bad one alone, failed, backing off
    assert fallen_back == [1]
    assert _pending_deadline(api, bad).next_attempt_at > later_due

    clock.set(later_due)
    assert fire_due(api.app) == 3
    assert fallen_back == [1]  # the batch of three fired whole, without the bad one
    assert fired_per_case(api) == dict.fromkeys(later, 1)
    assert insights.overview(api.app, later_due).deadlines_failing == 1


def _pending_deadline_due(api: Api, case_id: str) -> Any:
    d = t.deadlines.c
    with api.app.db.transaction(write=False) as conn:
        return conn.execute(
            select(d.due_at).where(
                d.case_id == case_id, d.fired_at.is_(None), d.cleared_at.is_(None)
            )
        ).scalar_one()


def test_the_tick_goes_on_past_a_batch_that_only_backed_off(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad, good = open_cases(api, 2)  # the bad one falls due first
    _pass_d1(api)
    _failing_for(monkeypatch, bad)
    monkeypatch.setattr(deadlines, "BATCH", 1)
    monkeypatch.setattr(deadlines, "SQLITE_BATCH", 1)
    assert fire_due(api.app) == 1  # the bad one's batch, then the good one's, in one tick
    assert fired_per_case(api) == {good: 1}
    assert _pending_deadline(api, bad).attempts == 1
