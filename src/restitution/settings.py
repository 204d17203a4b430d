"""Settings from the environment, prefix RESTITUTION_ (see README, Configuration)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_worker_threads(cpus: int | None = None) -> int:
    """One deadline thread per two usable cores, 1 to 4. Firing is mostly this process's own CPU
    (and the GIL): on 2 cores, 4 threads fired no faster than 1, and starved the thread that
    sends webhooks and e-mail (bench/RESULTS.md, round 8)."""
    if cpus is None:
        cpus = _usable_cpus()
    return min(4, max(1, cpus // 2))


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity: a container's cpuset), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RESTITUTION_", extra="ignore")

    database_url: str = "sqlite:///var/restitution.db"
    operator_key: str | None = None
    test_clock: bool = False
    policy: Path | None = None
    storage_dir: Path = Path("var/evidence")
    refund_gateway: Literal["ledger", "operator"] = "ledger"
    webhook_allow_private: bool = False
    max_upload_bytes: int = 20 * 1024 * 1024
    # An upload that no case or message uses is deleted this long after it was made (a case
    # refused, a message never sent), with its file unless other uploads have the same bytes.
    unused_upload_hours: int = Field(default=24, ge=1)
    public_url: str = "http://127.0.0.1:8000"
    key_file: Path = Path("var/operator_key")
    # Logs on stderr: JSON, or the console's format; `auto` picks the console's on a terminal.
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # Messages out (README, "Webhooks, e-mail and the worker")
    smtp_url: str | None = None  # smtp://[user:pass@]host[:port][?starttls=1], or smtps://…
    email_from: str = "Restitution <restitution@localhost>"
    mediator_email: str | None = None  # where new escalations and failed refunds are announced
    webhook_timeout_seconds: float = 10.0
    webhook_retry_hours: int = 72  # keep retrying a delivery this long, then it has failed
    webhook_disable_after_failures: int = 50  # consecutive failed attempts before disabling
    delivery_lease_seconds: int = 60  # a claimed delivery or e-mail is retried after this
    email_max_attempts: int = 10
    refund_max_attempts: int = 5  # gateway attempts before a refund is failed for mediators
    worker_interval_seconds: float = 5.0
    # Batches of deadlines a worker fires at once, each batch in its own transaction
    # (PostgreSQL only: on SQLite writes take turns anyway).
    worker_threads: int = Field(default_factory=default_worker_threads, ge=1)
