"""counts and count_changes: a workflow's jobs by task and state, and its runs, kept up to
date by triggers, so that the runs table, its live updates and the workflows list read a
few rows instead of counting millions (runyard.store.counts)

On SQLite (one writer at a time) the triggers update ``counts`` itself. On PostgreSQL they
append to ``count_changes`` instead, so that concurrent transactions never wait for one
another on a shared counter row; the server folds those changes into ``counts`` now and
then, and a reading adds up both.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 00:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

# The rows of ``counts`` that are not jobs by task and state (task_id 0: no task has it).
RUNS = "runs"  # live runs, not the study run
OBSOLETE_RUNS = "obsolete runs"
# Never decrease: every run made, deleted, made obsolete or live, or renamed (the study run
# aside), and every job made.
RUNS_CHANGED = "runs changed"
JOBS_MADE = "jobs made"

# A run's row: live or obsolete; the study run (the reduce jobs' run) is not counted.
RUN_KIND = f"CASE WHEN {{row}}.obsolete THEN '{OBSOLETE_RUNS}' ELSE '{RUNS}' END"


def sqlite_add(row: str, state: str, n: int, task: str = "0") -> str:
    """Add ``n`` to a count of the workflow of ``row`` (NEW or OLD), in a trigger."""
    return (
        "INSERT INTO counts (workflow_id, task_id, state, n) "
        f"VALUES ({row}.workflow_id, {task}, {state}, {n}) "
        "ON CONFLICT (workflow_id, task_id, state) DO UPDATE SET n = n + excluded.n; "
    )


def sqlite_job(row: str, n: int) -> str:
    return sqlite_add(row, f"{row}.state", n, task=f"{row}.task_id")


SQLITE_TRIGGERS = {
    "counts_job_made": "AFTER INSERT ON jobs BEGIN "
    + sqlite_job("NEW", 1)
    + sqlite_add("NEW", f"'{JOBS_MADE}'", 1),
    "counts_job_deleted": "AFTER DELETE ON jobs BEGIN " + sqlite_job("OLD", -1),
    "counts_job_changed": "AFTER UPDATE OF state ON jobs WHEN OLD.state <> NEW.state BEGIN "
    + sqlite_job("OLD", -1)
    + sqlite_job("NEW", 1),
    "counts_run_made": "AFTER INSERT ON runs WHEN NOT NEW.study BEGIN "
    + sqlite_add("NEW", RUN_KIND.format(row="NEW"), 1)
    + sqlite_add("NEW", f"'{RUNS_CHANGED}'", 1),
    "counts_run_deleted": "AFTER DELETE ON runs WHEN NOT OLD.study BEGIN "
    + sqlite_add("OLD", RUN_KIND.format(row="OLD"), -1)
    + sqlite_add("OLD", f"'{RUNS_CHANGED}'", 1),
    "counts_run_changed": "AFTER UPDATE OF obsolete ON runs "
    "WHEN NOT NEW.study AND OLD.obsolete <> NEW.obsolete BEGIN "
    + sqlite_add("OLD", RUN_KIND.format(row="OLD"), -1)
    + sqlite_add("NEW", RUN_KIND.format(row="NEW"), 1)
    + sqlite_add("NEW", f"'{RUNS_CHANGED}'", 1),
    "counts_run_renamed": "AFTER UPDATE OF name ON runs "
    "WHEN NOT NEW.study AND OLD.name <> NEW.name BEGIN "
    + sqlite_add("NEW", f"'{RUNS_CHANGED}'", 1),
}

# PostgreSQL: rows made and deleted are counted per statement (a spawn inserts thousands in
# one), a changed row per row (the WHEN clause is checked without calling the function).
CHANGES = "INSERT INTO count_changes (workflow_id, task_id, state, change) "
POSTGRESQL_FUNCTIONS = {
    "counts_jobs_made": CHANGES + "SELECT workflow_id, task_id, state, count(*) FROM new_rows "
    "GROUP BY workflow_id, task_id, state "
    f"UNION ALL SELECT workflow_id, 0, '{JOBS_MADE}', count(*) FROM new_rows "
    "GROUP BY workflow_id",
    "counts_jobs_deleted": CHANGES
    + "SELECT workflow_id, task_id, state, -count(*) FROM old_rows "
    "GROUP BY workflow_id, task_id, state",
    "counts_job_changed": CHANGES + "VALUES (OLD.workflow_id, OLD.task_id, OLD.state, -1), "
    "(NEW.workflow_id, NEW.task_id, NEW.state, 1)",
    "counts_runs_made": CHANGES
    + f"SELECT workflow_id, 0, {RUN_KIND.format(row='new_rows')}, count(*) FROM new_rows "
    "WHERE NOT study GROUP BY 1, 2, 3 "
    f"UNION ALL SELECT workflow_id, 0, '{RUNS_CHANGED}', count(*) FROM new_rows "
    "WHERE NOT study GROUP BY workflow_id",
    "counts_runs_deleted": CHANGES
    + f"SELECT workflow_id, 0, {RUN_KIND.format(row='old_rows')}, -count(*) FROM old_rows "
    "WHERE NOT study GROUP BY 1, 2, 3 "
    f"UNION ALL SELECT workflow_id, 0, '{RUNS_CHANGED}', count(*) FROM old_rows "
    "WHERE NOT study GROUP BY workflow_id",
    "counts_run_changed": "IF OLD.obsolete IS DISTINCT FROM NEW.obsolete THEN "
    + CHANGES
    + f"VALUES (OLD.workflow_id, 0, {RUN_KIND.format(row='OLD')}, -1), "
    f"(NEW.workflow_id, 0, {RUN_KIND.format(row='NEW')}, 1); END IF; "
    + CHANGES
    + f"VALUES (NEW.workflow_id, 0, '{RUNS_CHANGED}', 1)",
}
POSTGRESQL_TRIGGERS = {
    "counts_jobs_made": "AFTER INSERT ON jobs REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT",
    "counts_jobs_deleted": "AFTER DELETE ON jobs REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT",
    "counts_job_changed": "AFTER UPDATE OF state ON jobs FOR EACH ROW "
    "WHEN (OLD.state IS DISTINCT FROM NEW.state)",
    "counts_runs_made": "AFTER INSERT ON runs REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT",
    "counts_runs_deleted": "AFTER DELETE ON runs REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT",
    "counts_run_changed": "AFTER UPDATE OF obsolete, name ON runs FOR EACH ROW "
    "WHEN (NOT NEW.study AND (OLD.obsolete IS DISTINCT FROM NEW.obsolete "
    "OR OLD.name IS DISTINCT FROM NEW.name))",
}


def upgrade() -> None:
    op.create_table(
        "counts",
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workflow_id", "task_id", "state"),
        sqlite_with_rowid=False,  # one B-tree to update per trigger, not two
    )
    op.create_table(
        "count_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("change", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_count_changes_workflow", "count_changes", ["workflow_id"])
    # What there is now; from here on the triggers keep it.
    op.execute(
        "INSERT INTO counts (workflow_id, task_id, state, n) "
        "SELECT workflow_id, task_id, state, count(*) FROM jobs "
        "GROUP BY workflow_id, task_id, state"
    )
    op.execute(
        "INSERT INTO counts (workflow_id, task_id, state, n) "
        f"SELECT workflow_id, 0, {RUN_KIND.format(row='runs')}, count(*) FROM runs "
        "WHERE NOT study GROUP BY 1, 2, 3"
    )
    for made, table in ((RUNS_CHANGED, "runs WHERE NOT study"), (JOBS_MADE, "jobs")):
        op.execute(
            "INSERT INTO counts (workflow_id, task_id, state, n) "
            f"SELECT workflow_id, 0, '{made}', count(*) FROM {table} GROUP BY workflow_id"
        )
    if op.get_bind().dialect.name == "postgresql":
        for name, body in POSTGRESQL_FUNCTIONS.items():
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN {body}; RETURN NULL; END $$"
            )
        for name, when in POSTGRESQL_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION {name}()")
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body} END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, when in POSTGRESQL_TRIGGERS.items():
            table = "jobs" if " ON jobs " in when else "runs"
            op.execute(f"DROP TRIGGER {name} ON {table}")
            op.execute(f"DROP FUNCTION {name}()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index("ix_count_changes_workflow", table_name="count_changes")
    op.drop_table("count_changes")
    op.drop_table("counts")
