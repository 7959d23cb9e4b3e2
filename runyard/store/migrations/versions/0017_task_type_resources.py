"""task_types.resources: what a task type's jobs ask of a cluster (``{"cpus", "memory",
"partition"}``, each optional; the Slurm executor's sbatch options), {} for none

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 17:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_types", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resources", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("task_types", schema=None) as batch_op:
        batch_op.drop_column("resources")
