"""jobs.spawned_by_job and jobs.spawn_key: spawning is idempotent per spawning job

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("spawned_by_job", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("spawn_key", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "uq_jobs_spawned_by_job", ["spawned_by_job", "spawn_key"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("uq_jobs_spawned_by_job")
        batch_op.drop_column("spawn_key")
        batch_op.drop_column("spawned_by_job")
