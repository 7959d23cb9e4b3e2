"""task_types.retries: how many times a job of the task type whose script fails is restarted
as a new job by itself (0: never, as before)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_types", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retries", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("task_types", schema=None) as batch_op:
        batch_op.drop_column("retries")
