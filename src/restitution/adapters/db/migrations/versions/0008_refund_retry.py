"""a failed refund can be retried, and mediators see its case

A refund the gateway gave up on left its case in `refund_pending` for good. Now the operator
or a mediator may ask for it again: its next `refund_max_attempts` count from the attempts
made before (`refunds.attempts_before_retry`), while the idempotency keys go on numbering all
of them. The mediators, told of the failure, see the case from then on
(`cases.refund_failed_at`, written with the `refund.failed` event; filled in here for the
refunds that have already failed).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FAILED_AT = (
    "UPDATE cases SET refund_failed_at = ("
    "SELECT refunds.updated_at FROM refunds"
    " WHERE refunds.case_id = cases.id AND refunds.status = 'failed')"
    " WHERE id IN (SELECT case_id FROM refunds WHERE status = 'failed')"
)


def upgrade() -> None:
    # Defaults given as strings, not as SQL text: on SQLite, Alembic then adds the columns in
    # place instead of copying the whole tables anew.
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("refund_failed_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("attempts_before_retry", sa.Integer(), server_default="0", nullable=False)
        )
    op.execute(FAILED_AT)


def downgrade() -> None:
    # Dropped in place (SQLite 3.35+): copied anew, `cases` and `refunds` could not be dropped
    # while other tables' rows refer to theirs.
    with op.batch_alter_table("refunds", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("attempts_before_retry")
    with op.batch_alter_table("cases", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("refund_failed_at")
