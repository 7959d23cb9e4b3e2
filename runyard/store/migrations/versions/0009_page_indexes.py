"""Indexes of the runs table's filtered and sorted pages: the runs in sort order and by name
with every column a page's filters and orders read (so that a page and its count read the
index alone), the jobs of a workflow by state with their runs (the count of runs with a job
in a state), and the jobs of a run by state (whether a run has a job in a state)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 10:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

LIVE = ["workflow_id", "obsolete", "study"]


def upgrade() -> None:
    op.drop_index("ix_runs_workflow_live_sort", table_name="runs")
    op.drop_index("ix_runs_workflow_name", table_name="runs")
    op.create_index("ix_runs_live_sort", "runs", [*LIVE, "sort_order", "id", "name"])
    op.create_index("ix_runs_live_name", "runs", [*LIVE, "name", "sort_order", "id"])
    op.drop_index("ix_jobs_run", table_name="jobs")
    op.create_index("ix_jobs_run_state", "jobs", ["run_id", "state"])
    op.create_index("ix_jobs_workflow_state_run", "jobs", ["workflow_id", "state", "run_id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_workflow_state_run", table_name="jobs")
    op.drop_index("ix_jobs_run_state", table_name="jobs")
    op.create_index("ix_jobs_run", "jobs", ["run_id"])
    op.drop_index("ix_runs_live_name", table_name="runs")
    op.drop_index("ix_runs_live_sort", table_name="runs")
    op.create_index("ix_runs_workflow_name", "runs", ["workflow_id", "name"])
    op.create_index("ix_runs_workflow_live_sort", "runs", [*LIVE, "sort_order"])
