"""The outbox is dispatched in batches, each one transaction; on SQLite small ones, so the
server's requests never wait long behind the worker for the single write lock."""

from __future__ import annotations

from sqlalchemy import func, select

from restitution.adapters.db import tables as t
from restitution.adapters.db.repository import Repository
from restitution.services import outbox
from restitution.services.context import App


def _pending_rows(app: App, count: int) -> None:
    now = app.clock.now()
    with app.db.transaction() as conn:
        Repository(conn).add_outbox_rows(
            [(f"evt_{n:03}", "case.opened", {"case_id": f"case_{n}"}, now) for n in range(count)]
        )


def _undispatched(app: App) -> int:
    with app.db.transaction(write=False) as conn:
        query = select(func.count()).select_from(t.outbox).where(t.outbox.c.delivered_at.is_(None))
        return int(conn.execute(query).scalar_one())


def test_one_dispatch_takes_one_batch_and_repeated_dispatches_drain_the_rest(app: App) -> None:
    batch = outbox.SQLITE_BATCH if app.db.is_sqlite else outbox.BATCH
    _pending_rows(app, batch + 5)
    assert outbox.dispatch(app) == batch
    assert _undispatched(app) == 5
    assert outbox.dispatch_all(app) == 5
    assert _undispatched(app) == 0 and outbox.dispatch(app) == 0


def test_an_explicit_limit_wins_and_zero_dispatches_nothing(app: App) -> None:
    _pending_rows(app, 30)
    assert outbox.dispatch(app, limit=0) == 0
    assert outbox.dispatch(app, limit=7) == 7  # on either backend
    assert _undispatched(app) == 23
