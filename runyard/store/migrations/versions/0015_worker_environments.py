"""Dependency packages installed on workers: workers.installs (the worker installs dependency
packages on demand), workers.installs_allowed (an admin's say), and worker_environments (each
environment a worker made, or failed to make, for a set of dependency packages, with its log)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("installs", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("installs_allowed", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.create_table(
        "worker_environments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "worker_id",
            sa.Integer(),
            sa.ForeignKey("workers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("packages", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("log", sa.Text(), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("worker_id", "key"),
    )


def downgrade() -> None:
    op.drop_table("worker_environments")
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_column("installs_allowed")
        batch_op.drop_column("installs")
