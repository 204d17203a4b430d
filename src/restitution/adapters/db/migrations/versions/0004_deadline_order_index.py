"""pending deadlines indexed in the sweeper's order (due_at, id)

With many deadlines due at the same moment, an index on due_at alone made every sweep sort
all of them by id to take the first one (87 ms with 100,000 due; bench/RESULTS.md).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:25:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PENDING = "fired_at IS NULL AND cleared_at IS NULL"


def _create(columns: list[str]) -> None:
    op.create_index(
        "ix_deadlines_pending",
        "deadlines",
        columns,
        unique=False,
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )


def upgrade() -> None:
    op.drop_index("ix_deadlines_pending", table_name="deadlines")
    _create(["due_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_deadlines_pending", table_name="deadlines")
    _create(["due_at"])
