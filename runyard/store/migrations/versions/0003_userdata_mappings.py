"""User Data: the mappings of virtual roots to real folders

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "userdata_mappings",
        sa.Column("root", sa.String(length=500), nullable=False),
        sa.Column("folder", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("root", name=op.f("pk_userdata_mappings")),
    )


def downgrade() -> None:
    op.drop_table("userdata_mappings")
