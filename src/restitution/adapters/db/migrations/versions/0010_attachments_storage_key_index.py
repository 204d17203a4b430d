"""attachments indexed by storage key

Uploads that no case or message uses are deleted after `unused_upload_hours`, and their file
with the last row that refers to it (the store keeps the same bytes once, whoever uploaded
them): each batch asks which of its files other rows still refer to.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 10:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_attachments_storage_key"), ["storage_key"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachments_storage_key"))
