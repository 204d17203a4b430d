"""a line whose case was rejected or expired is closed for good

The platform's decision is final (X1), and a case that expired because the agreed return was
never shipped (D3) ends the claim: no other case may be opened on its lines. Eligibility reads
the order with its case lines in one statement, so each case line keeps its case's outcome
once the case is resolved (`case_lines.closed_as`, written with `is_open`); filled in here
for the cases already resolved.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

CLOSED_AS = (
    "UPDATE case_lines SET closed_as = ("
    "SELECT cases.outcome FROM cases WHERE cases.id = case_lines.case_id)"
    " WHERE case_id IN (SELECT id FROM cases WHERE outcome IS NOT NULL)"
)


def upgrade() -> None:
    with op.batch_alter_table("case_lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_as", sa.String(length=20), nullable=True))
    op.execute(CLOSED_AS)


def downgrade() -> None:
    # Dropped in place (SQLite 3.35+), as 0008 drops its columns.
    with op.batch_alter_table("case_lines", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("closed_as")
