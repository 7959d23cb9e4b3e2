"""workers.max_jobs_limit: an admin's limit on a worker's concurrent jobs (null: its own)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 00:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_jobs_limit", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_column("max_jobs_limit")
