"""The clock's hand: fire every deadline that has fallen due, each in its own transaction.

A deadline fires through the same transition a person would take, as actor `system`,
at the moment it fell due. Firing is idempotent: the row is marked fired in the same
transaction, and on PostgreSQL concurrent sweepers skip rows another one holds; so several
threads of one worker fire side by side, each waiting on its own round trips.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from restitution.adapters.db.repository import Repository
from restitution.domain.cases import SYSTEM, Case, apply, deadline_command
from restitution.services import refunds
from restitution.services.context import App


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


def _fire_in_turn(app: App, now: datetime, limit: int) -> int:
    fired = 0
    while fired < limit:
        moved = _fire_next(app, now)
        if moved is None:
            break
        fired += 1
        if isinstance(moved, Case):
            refunds.execute_if_automatic(app, moved)
    return fired


def _fire_next(app: App, now: datetime) -> Case | str | None:
    """Fire one due deadline: the case as it is now, or its id for a stale row; None when
    nothing is due."""
    with app.db.transaction() as conn:
        repo = Repository(conn)
        row = repo.take_due_deadline(now)
        if row is None:
            return None
        case_id: str = row.case_id
        case = repo.get_case(row.case_id, for_write=True)
        if case is None or case.deadline is None or case.deadline.kind != row.kind:
            return case_id  # a stale row: the case moved on; nothing to do
        command = deadline_command(case)
        if command is None:
            return case_id
        # Fire as of the moment it fell due, so a long jump of the clock replays faithfully.
        ctx = app.context(max(row.due_at, case.updated_at))
        result = apply(case, command, SYSTEM, ctx)
        return refunds.record_settling(app, repo, case, result).case
