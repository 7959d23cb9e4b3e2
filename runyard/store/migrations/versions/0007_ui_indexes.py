"""Indexes of the web UI: the runs table's page query (live runs of a workflow in sort
order), the runs of a workflow by name, and the activity log of one job

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 10:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_runs_workflow_live_sort", "runs", ["workflow_id", "obsolete", "study", "sort_order"]
    )
    op.create_index("ix_runs_workflow_name", "runs", ["workflow_id", "name"])
    op.create_index("ix_activity_log_job", "activity_log", ["job_serial"])


def downgrade() -> None:
    op.drop_index("ix_activity_log_job", table_name="activity_log")
    op.drop_index("ix_runs_workflow_name", table_name="runs")
    op.drop_index("ix_runs_workflow_live_sort", table_name="runs")
