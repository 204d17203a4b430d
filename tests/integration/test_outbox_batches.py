"""The outbox is dispatched in batches, each one transaction; on SQLite small ones, so the
server's requests never wait long behind the worker for the single write lock."""

from __future__ import annotations

from restitution.services import outbox
from restitution.services.context import App
from tests.integration.messaging import pending_outbox_rows, undispatched


def test_one_dispatch_takes_one_batch_and_repeated_dispatches_drain_the_rest(app: App) -> None:
    batch = outbox.SQLITE_BATCH if app.db.is_sqlite else outbox.BATCH
    pending_outbox_rows(app, batch + 5)
    assert outbox.dispatch(app) == batch
    assert undispatched(app) == 5
    assert outbox.dispatch_all(app) == 5
    assert undispatched(app) == 0 and outbox.dispatch(app) == 0


def test_an_explicit_limit_wins_and_zero_dispatches_nothing(app: App) -> None:
    pending_outbox_rows(app, 30)
    assert outbox.dispatch(app, limit=0) == 0
    assert outbox.dispatch(app, limit=7) == 7  # on either backend
    assert undispatched(app) == 23
