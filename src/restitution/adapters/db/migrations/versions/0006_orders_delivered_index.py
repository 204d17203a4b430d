"""orders indexed by delivery time

Every clock tick of the worker (each 5 s by default) looks for orders delivered in the span
where a return window may be closing, to remind their buyers. Without an index that read
every order: ~200 ms for 1,000,000 orders, on SQLite inside a write transaction, so every
request waited for it (the write benchmark's p99 with a million orders: 285 ms against 55 ms
without the worker; bench/RESULTS.md). A partial index holds the delivered orders only.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 19:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DELIVERED = "delivered_at IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_orders_delivered",
        "orders",
        ["delivered_at"],
        unique=False,
        postgresql_where=sa.text(DELIVERED),
        sqlite_where=sa.text(DELIVERED),
    )


def downgrade() -> None:
    op.drop_index("ix_orders_delivered", table_name="orders")
