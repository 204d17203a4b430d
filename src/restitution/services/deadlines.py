"""The clock's hand: fire every deadline that has fallen due, in batches.

A deadline fires through the same transition a person would take, as actor `system`,
at the moment it fell due. Firing is idempotent: the row is marked fired in the same
transaction, and on PostgreSQL concurrent sweepers skip rows another one holds; so several
threads of one worker fire side by side.

One transaction takes a batch of due deadlines, reads their cases (and orders) with a few
set-based queries, applies the domain to each case in turn, and sends all their writes at
the end, a statement or two per table (`Repository.batched_writes`): each case's state,
events, outbox rows, refund and deadline rows commit together. When a batch fails (a case
changed meanwhile, a case that cannot be fired), it is rolled back and its deadlines are
fired one by one, each in its own transaction, so one bad case never holds back the
others. A deadline that fails alone stays due, but backs off: its attempts are counted and it
is not taken again, by any batch, before its next attempt is due (1 minute, doubling, at most
an hour), so it does not make every tick's batch fall back to one by one.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import structlog

from restitution.adapters.db.engine import is_database_failure
from restitution.adapters.db.repository import Repository
from restitution.domain.cases import SYSTEM, Case, apply, deadline_command
from restitution.services import refunds
from restitution.services.context import App
from restitution.services.retry import backoff

log = structlog.get_logger()

# Deadlines per transaction; SQLite's single write lock is held for a short batch only.
BATCH = 200
SQLITE_BATCH = 50
# A deadline that failed to fire is taken again after about this, doubling, at most RETRY_CAP.
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)


def fire_due(
    app: App, now: datetime | None = None, *, limit: int = 10_000, threads: int = 1
) -> int:
    """Fire deadlines due by `now` (default: the clock) until none is left, or `limit`;
    returns the count. With `threads` > 1 (PostgreSQL), that many transactions at once."""
    now = now or app.clock.now()
    if threads > 1 and not app.db.is_sqlite:
        shares = [limit // threads + (1 if n < limit % threads else 0) for n in range(threads)]
        with ThreadPoolExecutor(threads, thread_name_prefix="deadlines") as pool:
            return sum(pool.map(lambda share: _fire_in_turn(app, now, share), shares))
    return _fire_in_turn(app, now, limit)


class _Batch(NamedTuple):
    taken: int  # deadlines taken from the due ones: fired, stale, or now backing off
    fired: int  # of them, fired or stale
    moved: list[Case]  # the cases they moved, as they are now
    complete: bool  # False: the database failed; some are still due


def _fire_in_turn(app: App, now: datetime, limit: int) -> int:
    size = SQLITE_BATCH if app.db.is_sqlite else BATCH
    fired = 0
    while fired < limit:
        batch = _fire_batch(app, now, min(size, limit - fired))
        fired += batch.fired
        for case in batch.moved:
            refunds.execute_if_automatic(app, case)
        # Firing may set deadlines already due (a long clock jump): ask again until none is.
        # (One that backs off is not due again at `now`: each turn takes others, or none.)
        if not batch.taken or not batch.complete:
            break  # nothing is due, or the database failed: tried again at the next tick
    return fired


def _fire_batch(app: App, now: datetime, size: int) -> _Batch:
    """Fire up to `size` due deadlines in one transaction."""
    rows: list[Any] = []
    try:
        with app.db.transaction() as conn:
            repo = Repository(conn)
            repo.plan_by_keys()
            rows = repo.take_due_deadlines(now, size)
            moved = _fire_rows(app, repo, rows)
    except Exception as exc:
        if not rows:
            raise  # nothing was taken: no deadline to blame
        log.warning("deadline_batch_failed", deadlines=len(rows), error=repr(exc))
        return _fire_one_by_one(app, now, rows)
    return _Batch(len(rows), len(rows), moved, True)


def _fire_rows(app: App, repo: Repository, rows: list[Any]) -> list[Case]:
    """Fire each row's deadline on its case, in the order they fell due; all writes are
    sent at the end, together. The cases they moved, as they are now."""
    cases = {
        case.id: case for case in repo.get_cases([row.case_id for row in rows], for_write=True)
    }
    repo.load_orders({case.order_id for case in cases.values()})
    moved: dict[str, Case] = {}
    with repo.batched_writes():
        for row in rows:
            case = cases.get(row.case_id)
            after = _fire(app, repo, row, case)
            if after is not None:
                # A second row of the same case meets the case as this one left it: stale,
                # or (two changes of one case) the batch falls back to one by one.
                cases[row.case_id] = moved[row.case_id] = after
    return list(moved.values())


def _fire_one_by_one(app: App, now: datetime, rows: list[Any]) -> _Batch:
    """Fire these deadlines (of a failed batch) each in its own transaction, unless another
    sweeper fired them meanwhile. A deadline that fails again backs off (`_defer`); when the
    database itself fails (a lost connection, a deadlock), the rest are left due."""
    fired = 0
    moved: list[Case] = []
    for row in rows:
        try:
            with app.db.transaction() as conn:
                repo = Repository(conn)
                again = repo.take_deadline(row.id, now)
                if again is None:
                    continue
                after = _fire(app, repo, again, repo.get_case(again.case_id, for_write=True))
        except Exception as exc:
            if is_database_failure(exc):
                log.warning("deadlines_not_fired", deadline_id=row.id, error=str(exc))
                return _Batch(len(rows), fired, moved, False)
            if not _defer(app, row, now, exc):
                return _Batch(len(rows), fired, moved, False)
            continue
        fired += 1
        if after is not None:
            moved.append(after)
    return _Batch(len(rows), fired, moved, True)


def _defer(app: App, row: Any, now: datetime, error: Exception) -> bool:
    """Count a failed attempt at `row` and set when it is due again (logged either way);
    False when that could not be written."""
    attempts = row.attempts + 1
    # From the failure, not from the tick's start (`now`, which may be long past).
    next_attempt_at = max(now, app.clock.now()) + backoff(attempts, RETRY_BASE, RETRY_CAP)
    try:
        with app.db.transaction() as conn:
            counted = Repository(conn).defer_deadline(
                row.id, now, next_attempt_at, f"{type(error).__name__}: {error}"[:500]
            )
    except Exception:  # the database itself failing: the deadline is simply tried again
        log.exception("deadline_defer_failed", deadline_id=row.id)
        return False
    log.error(
        "deadline_failed",
        deadline_id=row.id,
        case_id=row.case_id,
        attempts=attempts if counted else None,  # None: counted by the sweeper that also failed
        next_attempt_at=next_attempt_at.isoformat() if counted else None,
        exc_info=error,
    )
    return True


def _fire(app: App, repo: Repository, row: Any, case: Case | None) -> Case | None:
    """Fire the deadline `row` on `case` (read for writing): the case as it is now, or None
    for a stale row (the case moved on: nothing to do)."""
    if case is None or case.deadline is None or case.deadline.kind != row.kind:
        return None
    command = deadline_command(case)
    if command is None:
        return None
    # Fire as of the moment it fell due, so a long jump of the clock replays faithfully.
    ctx = app.context(max(row.due_at, case.updated_at))
    result = apply(case, command, SYSTEM, ctx)
    return refunds.record_settling(app, repo, case, result).case
