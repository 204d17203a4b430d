"""agreed returns with nowhere to send the item wait on the seller

D3 used to give the buyer 10 days to ship an agreed return, and closed the case without a
refund when they passed, even when the buyer had no address and no label to ship with. Now,
while there is neither, D3 runs against the seller and sends the case to the platform. This
hands the returns already waiting so to the seller, with the same due time: their stored
deadline (on the case, and a new row in `deadlines` in place of the buyer's, so that the
seller is reminded even where the buyer was already) becomes the seller's `auto_escalate`.
Nothing is written for a return that has an address or a label.

Downgraded, the code before counts D3 from the status's start again: a return whose address
or label came later (`instructions_at`, kept in its shipment) starts its status then, so that
its buyer keeps the time they were given.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 11:30:00.000000
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

cases = sa.table(
    "cases",
    sa.column("id", sa.String),
    sa.column("status", sa.String),
    sa.column("status_since", sa.DateTime(timezone=True)),
    sa.column("return_shipment", sa.JSON),
    sa.column("deadline", sa.JSON),
)
# due_at is copied as the database gives it: no type, so it goes back as it came.
deadlines = sa.table(
    "deadlines",
    sa.column("id", sa.Integer),
    sa.column("case_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("action", sa.String),
    sa.column("party", sa.String),
    sa.column("auto", sa.Boolean),
    sa.column("due_at"),
    sa.column("fired_at"),
    sa.column("cleared_at", sa.DateTime(timezone=True)),
)


def _waiting_returns() -> list[Any]:
    return list(
        op.get_bind()
        .execute(
            sa.select(
                cases.c.id, cases.c.status_since, cases.c.return_shipment, cases.c.deadline
            ).where(cases.c.status == "awaiting_return_shipment")
        )
        .all()
    )


def _nowhere_to_go(shipment: dict[str, Any] | None) -> bool:
    return shipment is None or not (shipment.get("address") or shipment.get("label_url"))


def _utc(moment: datetime) -> datetime:
    """As the column takes it: naive UTC on SQLite, aware elsewhere."""
    moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None) if op.get_bind().dialect.name == "sqlite" else moment


def _move(old: tuple[str, str], new: tuple[str, str]) -> None:
    """Every waiting return with nowhere to go whose D3 is (action, party) `old` gets `new`:
    on the case, and as a new pending row in `deadlines` (its reminder not yet sent)."""
    conn = op.get_bind()
    now = _utc(datetime.now(UTC))
    action, party = new
    for case_id, _, shipment, deadline in _waiting_returns():
        if not _nowhere_to_go(shipment) or deadline is None:
            continue
        if (deadline.get("kind"), deadline.get("action"), deadline.get("party")) != ("D3", *old):
            continue
        conn.execute(
            cases.update()
            .where(cases.c.id == case_id)
            .values(deadline={**deadline, "action": action, "party": party})
        )
        pending = conn.execute(
            sa.select(deadlines.c.id, deadlines.c.auto, deadlines.c.due_at).where(
                deadlines.c.case_id == case_id,
                deadlines.c.kind == "D3",
                deadlines.c.fired_at.is_(None),
                deadlines.c.cleared_at.is_(None),
            )
        ).all()
        for row_id, auto, due_at in pending:
            conn.execute(deadlines.update().where(deadlines.c.id == row_id).values(cleared_at=now))
            conn.execute(
                deadlines.insert().values(
                    case_id=case_id, kind="D3", action=action, party=party, auto=auto,
                    due_at=due_at,
                )
            )  # fmt: skip


def upgrade() -> None:
    _move(("expire", "buyer"), ("auto_escalate", "seller"))


def downgrade() -> None:
    _move(("auto_escalate", "seller"), ("expire", "buyer"))
    conn = op.get_bind()
    for case_id, status_since, shipment, _ in _waiting_returns():
        given = (shipment or {}).get("instructions_at")
        if given is None:
            continue
        instructions_at = datetime.fromisoformat(given.replace("Z", "+00:00"))
        if status_since.tzinfo is None:
            status_since = status_since.replace(tzinfo=UTC)
        if instructions_at > status_since:
            conn.execute(
                cases.update()
                .where(cases.c.id == case_id)
                .values(status_since=_utc(instructions_at))
            )
