"""deadlines that fail to fire back off

A deadline whose firing fails (a case the domain cannot move, a bug) was tried again at every
clock tick, and each time it made the whole batch it was taken with roll back and fire one
by one: the sweeper was slowed for every other case for as long as it kept failing. Now a
deadline that fails alone counts its attempts and waits, with back-off, before it is taken
again; its last error is kept for the operator.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 02:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The deadlines still to fire that have failed to: counted on the console's overview.
FAILING = "attempts > 0 AND fired_at IS NULL AND cleared_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        # A default given as a string, not as SQL text: on SQLite, Alembic then adds the
        # column in place instead of copying the whole table (every fired deadline) anew.
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=True))
    op.create_index(
        "ix_deadlines_failing",
        "deadlines",
        ["id"],
        unique=False,
        postgresql_where=sa.text(FAILING),
        sqlite_where=sa.text(FAILING),
    )


def downgrade() -> None:
    op.drop_index("ix_deadlines_failing", table_name="deadlines")
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.drop_column("last_error")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("attempts")
