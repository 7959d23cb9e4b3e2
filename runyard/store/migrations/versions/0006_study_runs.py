"""runs.study: the one run of a workflow that holds its reduce jobs (not a row of the table)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 23:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("study", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index(
            "uq_runs_study",
            ["workflow_id"],
            unique=True,
            sqlite_where=sa.text("study"),
            postgresql_where=sa.text("study"),
        )


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("uq_runs_study")
        batch_op.drop_column("study")
