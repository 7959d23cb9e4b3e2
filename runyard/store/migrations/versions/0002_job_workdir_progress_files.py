"""job working folder and progress; the file store's table

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 15:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("workdir", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("progress", sa.JSON(), nullable=True))
    op.create_table(
        "files",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("job_serial", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
    )


def downgrade() -> None:
    op.drop_table("files")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("progress")
        batch_op.drop_column("workdir")
