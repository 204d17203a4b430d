"""agreed returns with nowhere to send the item wait on the seller

D3 used to give the buyer 10 days to ship an agreed return, and closed the case without a
refund when they passed, even when the buyer had no address and no label to ship with. Now,
while there is neither, D3 runs against the seller and sends the case to the platform. This
moves the returns already waiting so, with the same due time: their stored deadline (on the
case and in `deadlines`) becomes the seller's `auto_escalate`. Nothing is written for a return
that has an address or a label.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 11:30:00.000000
"""

from __future__ import annotations

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
    sa.column("return_shipment", sa.JSON),
    sa.column("deadline", sa.JSON),
)
deadlines = sa.table(
    "deadlines",
    sa.column("case_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("action", sa.String),
    sa.column("party", sa.String),
    sa.column("fired_at", sa.DateTime),
    sa.column("cleared_at", sa.DateTime),
)


def _nowhere_to_go(shipment: dict[str, Any] | None) -> bool:
    return shipment is None or not (shipment.get("address") or shipment.get("label_url"))


def _move(old: tuple[str, str], new: tuple[str, str]) -> None:
    """Every waiting return with nowhere to go whose D3 is (action, party) `old` gets `new`."""
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(cases.c.id, cases.c.return_shipment, cases.c.deadline).where(
            cases.c.status == "awaiting_return_shipment"
        )
    ).all()
    for case_id, shipment, deadline in rows:
        if not _nowhere_to_go(shipment) or deadline is None:
            continue
        if (deadline.get("kind"), deadline.get("action"), deadline.get("party")) != ("D3", *old):
            continue
        action, party = new
        conn.execute(
            cases.update()
            .where(cases.c.id == case_id)
            .values(deadline={**deadline, "action": action, "party": party})
        )
        conn.execute(
            deadlines.update()
            .where(
                deadlines.c.case_id == case_id,
                deadlines.c.kind == "D3",
                deadlines.c.fired_at.is_(None),
                deadlines.c.cleared_at.is_(None),
            )
            .values(action=action, party=party)
        )


def upgrade() -> None:
    _move(("expire", "buyer"), ("auto_escalate", "seller"))


def downgrade() -> None:
    _move(("auto_escalate", "seller"), ("expire", "buyer"))
