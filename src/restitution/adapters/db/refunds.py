"""Refund execution's rows: the grants due an attempt, the claim on one, and its attempts'
outcomes (the repository keeps the rest: reading, listing and settling refunds)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from restitution.adapters.db import tables as t
from restitution.adapters.db.prepared import Prepared

_REFUND_ID: Any = bindparam("refund_id")
_FOR_CLAIM = select(t.refunds).where(t.refunds.c.case_id == bindparam("case_id"))
_REFUND_FOR_CLAIM = Prepared(_FOR_CLAIM)
_REFUND_FOR_CLAIM_LOCKED = Prepared(_FOR_CLAIM.with_for_update())
_LAST_ATTEMPT = Prepared(
    select(t.refund_attempts)
    .where(
        t.refund_attempts.c.refund_id == _REFUND_ID,
        t.refund_attempts.c.gateway == bindparam("gateway"),
    )
    .order_by(t.refund_attempts.c.created_at.desc(), t.refund_attempts.c.id.desc())
    .limit(1)
)
_HOLD = Prepared(
    update(t.refunds).where(t.refunds.c.id == _REFUND_ID),
    columns=["attempts", "next_attempt_at"],
)
_SET_ATTEMPT_OUTCOME = Prepared(
    update(t.refund_attempts).where(t.refund_attempts.c.id == bindparam("attempt_id")),
    columns=["status", "error"],
)


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
    query = _REFUND_FOR_CLAIM_LOCKED if conn.dialect.name == "postgresql" else _REFUND_FOR_CLAIM
    return query.first(conn, {"case_id": case_id})


def last_attempt(conn: Connection, refund_id: str, gateway: str) -> Any:
    """The refund's latest attempt through `gateway`, if any."""
    return _LAST_ATTEMPT.first(conn, {"refund_id": refund_id, "gateway": gateway})


def hold(conn: Connection, refund_id: str, attempts: int, until: datetime) -> None:
    """Count the attempt and hold the grant until `until` while the gateway is asked."""
    _HOLD.run(conn, {"refund_id": refund_id, "attempts": attempts, "next_attempt_at": until})


def set_attempt_outcome(
    conn: Connection, attempt_id: str, *, succeeded: bool, error: str | None
) -> None:
    _SET_ATTEMPT_OUTCOME.run(
        conn,
        {
            "attempt_id": attempt_id,
            "status": "succeeded" if succeeded else "failed",
            "error": error,
        },
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


def retry(conn: Connection, refund_id: str, now: datetime, expected_by: datetime) -> None:
    """A failed refund pending again and due at once, expected anew from now; its next
    `refund_max_attempts` count from the attempts made so far."""
    r = t.refunds.c
    conn.execute(
        update(t.refunds)
        .where(r.id == refund_id)
        .values(
            status="pending",
            attempts_before_retry=r.attempts,
            next_attempt_at=now,
            expected_by=expected_by,
            updated_at=now,
        )
    )
