"""Building the application from settings: database, migrations, policy, clock, keys."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from restitution.adapters.db.engine import Database, is_up_to_date, migrate
from restitution.adapters.notify.email import SmtpMailer
from restitution.adapters.payments import LedgerGateway
from restitution.adapters.storage import LocalEvidenceStore
from restitution.policies import default_policy, load_policy
from restitution.services.clock import Clock, SystemClock, TestClock
from restitution.services.context import App
from restitution.settings import Settings


class SchemaOutOfDate(RuntimeError):
    pass


def build_app(
    settings: Settings, *, clock: Clock | None = None, auto_migrate: bool | None = None
) -> App:
    """The application on the configured database. SQLite is migrated on start; PostgreSQL
    must be migrated with `restitution migrate` first (many processes may share it)."""
    db = Database(settings.database_url)
    if auto_migrate if auto_migrate is not None else db.is_sqlite:
        migrate(db)
    elif not is_up_to_date(db):
        db.dispose()
        raise SchemaOutOfDate("the database schema is out of date: run `restitution migrate` first")
    policy = load_policy(settings.policy) if settings.policy else default_policy()
    if clock is None:
        clock = TestClock() if settings.test_clock else SystemClock()
    return App(
        db=db,
        clock=clock,
        policy=policy,
        settings=settings,
        storage=LocalEvidenceStore(settings.storage_dir),
        refund_gateway=LedgerGateway() if settings.refund_gateway == "ledger" else None,
        mailer=SmtpMailer(settings.smtp_url, settings.email_from) if settings.smtp_url else None,
    )


def operator_key(settings: Settings) -> tuple[str, bool]:
    """The operator key from the environment, or one generated once and kept in `key_file`.

    Returns the key and whether it was generated just now (so it can be printed once).
    """
    if settings.operator_key:
        return settings.operator_key, False
    path = Path(settings.key_file)
    if path.exists():
        return path.read_text().strip(), False
    key = f"rst_op_{secrets.token_urlsafe(32)}"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key, True
