"""Refund execution's rows: the grants due an attempt, the claim on one, and its attempts'
outcomes (the repository keeps the rest: reading, listing and settling refunds)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from restitution.adapters.db import tables as t


def due_case_ids(conn: Connection, now: datetime, limit: int) -> list[str]:
    """Cases whose pending refund's next attempt is due, the longest due first."""
    return list(
        conn.execute(
            select(t.refunds.c.case_id)
            .where(t.refunds.c.status == "pending", t.refunds.c.next_attempt_at <= now)
            .order_by(t.refunds.c.next_attempt_at)
            .limit(limit)
        ).scalars()
    )


def refund_for_claim(conn: Connection, case_id: str) -> Any:
    """The case's refund, locked for the transaction on PostgreSQL."""
    query = select(t.refunds).where(t.refunds.c.case_id == case_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).first()


def last_attempt(conn: Connection, refund_id: str, gateway: str) -> Any:
    """The refund's latest attempt through `gateway`, if any."""
    return conn.execute(
        select(t.refund_attempts)
        .where(
            t.refund_attempts.c.refund_id == refund_id,
            t.refund_attempts.c.gateway == gateway,
        )
        .order_by(t.refund_attempts.c.created_at.desc(), t.refund_attempts.c.id.desc())
        .limit(1)
    ).first()


def hold(conn: Connection, refund_id: str, attempts: int, until: datetime) -> None:
    """Count the attempt and hold the grant until `until` while the gateway is asked."""
    conn.execute(
        update(t.refunds)
        .where(t.refunds.c.id == refund_id)
        .values(attempts=attempts, next_attempt_at=until)
    )


def set_attempt_outcome(
    conn: Connection, attempt_id: str, *, succeeded: bool, error: str | None
) -> None:
    conn.execute(
        update(t.refund_attempts)
        .where(t.refund_attempts.c.id == attempt_id)
        .values(status="succeeded" if succeeded else "failed", error=error)
    )


def give_up(conn: Connection, refund_id: str, error: str | None) -> None:
    """No further attempt: keep the last error, clear the next attempt."""
    conn.execute(
        update(t.refunds)
        .where(t.refunds.c.id == refund_id)
        .values(last_error=error, next_attempt_at=None)
    )


def schedule_retry(
    conn: Connection, refund_id: str, error: str | None, at: datetime, now: datetime
) -> None:
    conn.execute(
        update(t.refunds)
        .where(t.refunds.c.id == refund_id)
        .values(last_error=error, next_attempt_at=at, updated_at=now)
    )


def failed_case_ids(conn: Connection) -> list[str]:
    """Cases whose refund the gateway gave up on."""
    return list(
        conn.execute(select(t.refunds.c.case_id).where(t.refunds.c.status == "failed")).scalars()
    )
