"""run_states and the counts of runs with a job in each state: how many jobs of each run are
in each state, kept by the triggers on ``jobs``, so that the runs table's state filter reads
its count instead of counting the distinct runs of every job in the state; and a count of
job changes that never decreases (what a state filter's landmarks are valid for)

A run enters a state with its first job in it and leaves it with its last: ``counts`` keeps,
under task_id -1, the runs (any: live, obsolete, the study run) with a job in each state.
On SQLite the job triggers keep ``run_states`` and those counts directly. On PostgreSQL the
job triggers add the job's run to the changes they append (per run and statement for rows
made or deleted), and the server's fold keeps ``run_states`` from them: the triggers still
never update a shared row, so concurrent transactions never wait for one another.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 02:40:00
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

RUNS_IN_STATE = -1  # the task_id of the counts of runs with a job in a state
JOB_CHANGES = "job changes"  # every job made, deleted or changing state


def _counts_0021() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "runyard_migration_0021", Path(__file__).with_name("0021_counts.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sqlite_entered(row: str) -> str:
    """The job ``row`` is in its state now: one more of its run's jobs in that state; the
    run entered the state if it is the first."""
    return (
        "INSERT INTO run_states (run_id, state, n) VALUES "
        f"({row}.run_id, {row}.state, 1) "
        "ON CONFLICT (run_id, state) DO UPDATE SET n = n + 1; "
        "INSERT INTO counts (workflow_id, task_id, state, n) "
        f"SELECT {row}.workflow_id, {RUNS_IN_STATE}, {row}.state, 1 FROM run_states "
        f"WHERE run_id = {row}.run_id AND state = {row}.state AND n = 1 "
        "ON CONFLICT (workflow_id, task_id, state) DO UPDATE SET n = n + excluded.n; "
    )


def _sqlite_left(row: str) -> str:
    """The job ``row`` is no longer in its state: the run left it if it was the last."""
    where = f"WHERE run_id = {row}.run_id AND state = {row}.state"
    return (
        f"UPDATE run_states SET n = n - 1 {where}; "
        "INSERT INTO counts (workflow_id, task_id, state, n) "
        f"SELECT {row}.workflow_id, {RUNS_IN_STATE}, {row}.state, -1 FROM run_states "
        f"{where} AND n = 0 "
        "ON CONFLICT (workflow_id, task_id, state) DO UPDATE SET n = n + excluded.n; "
        f"DELETE FROM run_states {where} AND n = 0; "
    )


def _sqlite_triggers(old: ModuleType) -> dict[str, str]:
    changed = old.sqlite_add("NEW", f"'{JOB_CHANGES}'", 1)
    return {
        "counts_job_made": old.SQLITE_TRIGGERS["counts_job_made"]
        + changed
        + _sqlite_entered("NEW"),
        "counts_job_deleted": old.SQLITE_TRIGGERS["counts_job_deleted"]
        + old.sqlite_add("OLD", f"'{JOB_CHANGES}'", 1)
        + _sqlite_left("OLD"),
        "counts_job_changed": old.SQLITE_TRIGGERS["counts_job_changed"]
        + changed
        + _sqlite_left("OLD")
        + _sqlite_entered("NEW"),
    }


CHANGES = "INSERT INTO count_changes (workflow_id, task_id, state, change, run_id) "
POSTGRESQL_FUNCTIONS = {
    "counts_jobs_made": CHANGES
    + "SELECT workflow_id, task_id, state, count(*), run_id FROM new_rows "
    "GROUP BY workflow_id, task_id, state, run_id "
    "UNION ALL SELECT workflow_id, 0, 'jobs made', count(*), NULL FROM new_rows "
    "GROUP BY workflow_id",
    "counts_jobs_deleted": CHANGES
    + "SELECT workflow_id, task_id, state, -count(*), run_id FROM old_rows "
    "GROUP BY workflow_id, task_id, state, run_id",
    "counts_job_changed": CHANGES
    + "VALUES (OLD.workflow_id, OLD.task_id, OLD.state, -1, OLD.run_id), "
    "(NEW.workflow_id, NEW.task_id, NEW.state, 1, NEW.run_id)",
}


def _replace_functions(bodies: dict[str, str]) -> None:
    for name, body in bodies.items():
        op.execute(
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {body}; RETURN NULL; END $$"
        )


def _replace_sqlite_triggers(bodies: dict[str, str]) -> None:
    for name, body in bodies.items():
        op.execute(f"DROP TRIGGER {name}")
        op.execute(f"CREATE TRIGGER {name} {body} END")


def upgrade() -> None:
    op.create_table(
        "run_states",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "state"),
        sqlite_with_rowid=False,
    )
    op.add_column("count_changes", sa.Column("run_id", sa.Integer(), nullable=True))
    # What there is now; from here on the triggers (and on PostgreSQL the fold) keep it.
    # Changes appended before (no run) are folded into the counts of jobs only.
    op.execute(
        "INSERT INTO run_states (run_id, state, n) "
        "SELECT run_id, state, count(*) FROM jobs GROUP BY run_id, state"
    )
    op.execute(
        "INSERT INTO counts (workflow_id, task_id, state, n) "
        f"SELECT workflow_id, {RUNS_IN_STATE}, state, count(DISTINCT run_id) FROM jobs "
        "GROUP BY workflow_id, state"
    )
    old = _counts_0021()
    if op.get_bind().dialect.name == "postgresql":
        _replace_functions(POSTGRESQL_FUNCTIONS)
    else:
        _replace_sqlite_triggers(_sqlite_triggers(old))


def downgrade() -> None:
    old = _counts_0021()
    if op.get_bind().dialect.name == "postgresql":
        _replace_functions({name: old.POSTGRESQL_FUNCTIONS[name] for name in POSTGRESQL_FUNCTIONS})
    else:
        names = _sqlite_triggers(old)
        _replace_sqlite_triggers({name: old.SQLITE_TRIGGERS[name] for name in names})
    op.execute(f"DELETE FROM counts WHERE task_id = {RUNS_IN_STATE} OR state = '{JOB_CHANGES}'")
    with op.batch_alter_table("count_changes") as batch:
        batch.drop_column("run_id")
    op.drop_table("run_states")
