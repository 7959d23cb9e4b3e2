"""jobs.queue_order: each job's place in the claim order (its run's priority rank and sort
order), with a partial index of the Queued jobs in that order, so that a claim reads the
first claimable jobs from the index instead of sorting every Queued job

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 10:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

QUEUED = sa.text("state = 'Queued'")


def upgrade() -> None:
    sort_key = sa.String(200).with_variant(sa.String(200, collation="C"), "postgresql")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queue_order", sort_key, nullable=True))
    op.execute(
        "UPDATE jobs SET queue_order = (SELECT CASE runs.priority WHEN 'high' THEN '0' "
        "WHEN 'normal' THEN '1' ELSE '2' END || runs.sort_order FROM runs "
        "WHERE runs.id = jobs.run_id)"
    )
    op.create_index(
        "ix_jobs_queue",
        "jobs",
        ["queue_order", "serial"],
        sqlite_where=QUEUED,
        postgresql_where=QUEUED,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_queue", table_name="jobs")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("queue_order")
