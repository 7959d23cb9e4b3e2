"""task_types.jobs_per_process: how many jobs of the task type a worker runs in one reused
process (1: a new process per job, as before)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_types", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("jobs_per_process", sa.Integer(), nullable=False, server_default="1")
        )


def downgrade() -> None:
    with op.batch_alter_table("task_types", schema=None) as batch_op:
        batch_op.drop_column("jobs_per_process")
