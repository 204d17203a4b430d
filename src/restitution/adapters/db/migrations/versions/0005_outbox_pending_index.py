"""outbox rows not yet dispatched, indexed

Dispatching took the oldest undispatched rows by walking the primary key past every row
already dispatched: the longer the outbox, the slower, all under SQLite's write lock (the
write benchmark's worker spent most of its time there; bench/RESULTS.md). A partial index
holds only the rows still to dispatch.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 15:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PENDING = "delivered_at IS NULL"


def upgrade() -> None:
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_pending", table_name="outbox")
