"""The clock's hand: fire every deadline that has fallen due, each in its own transaction.

A deadline fires through the same transition a person would take, as actor `system`,
at the moment it fell due. Firing is idempotent: the row is marked fired in the same
transaction, and on PostgreSQL concurrent sweepers skip rows another one holds.
"""

from __future__ import annotations

from datetime import datetime

from restitution.adapters.db.repository import Repository
from restitution.domain.cases import SYSTEM, Case, apply, deadline_command
from restitution.services import refunds
from restitution.services.context import App
from restitution.services.recording import record


def fire_due(app: App, now: datetime | None = None, *, limit: int = 10_000) -> int:
    """Fire deadlines due by `now` (default: the clock) until none is left; returns the count."""
    now = now or app.clock.now()
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
        due = repo.due_deadlines(now, limit=1)
        if not due:
            return None
        row = due[0]
        case_id: str = row.case_id
        repo.mark_deadline_fired(row.id, now)
        case = repo.get_case(row.case_id, for_write=True)
        if case is None or case.deadline is None or case.deadline.kind != row.kind:
            return case_id  # a stale row: the case moved on; nothing to do
        command = deadline_command(case)
        if command is None:
            return case_id
        # Fire as of the moment it fell due, so a long jump of the clock replays faithfully.
        ctx = app.context(max(row.due_at, case.updated_at))
        result = apply(case, command, SYSTEM, ctx)
        record(app, repo, case, result)
        return result.case
