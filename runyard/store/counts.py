"""A workflow's jobs by task and state and its runs, as counted by the database's triggers
(migration 0021): a few rows per workflow instead of a count over millions of jobs.

On SQLite the triggers keep ``counts`` itself. On PostgreSQL they append each change to
``count_changes`` (concurrent transactions never wait on a shared counter row), and
``fold_changes`` moves them into ``counts``; a reading adds up both in one statement, so it
is exact either way."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import Connection, func, select, text, union_all

from runyard.states import JobState
from runyard.store.schema import count_changes, counts

RUNS = "runs"  # live runs (the study run, which holds the reduce jobs, is not counted)
OBSOLETE_RUNS = "obsolete runs"
# Never decrease: every run made, deleted, made obsolete or live, or renamed (a change of
# which runs a page lists, and in which order, even when the counts are as they were), and
# every job made (a restarted job, even when the counts of jobs are as they were).
RUNS_CHANGED = "runs changed"
JOBS_MADE = "jobs made"
NOT_A_TASK = 0  # task_id of the rows above
FOLD_BATCH = 50_000  # changes folded per transaction


class Counts:
    """The counts of one workflow, as read."""

    def __init__(self, rows: Iterable[tuple[int, str, int]]) -> None:
        self.by_task: dict[int, dict[str, int]] = defaultdict(dict)
        self.other: dict[str, int] = {}
        for task_id, state, n in rows:
            if task_id == NOT_A_TASK:
                self.other[state] = n
            elif n:
                self.by_task[task_id][state] = n

    def live_jobs(self, task_ids: Iterable[int] | None = None) -> dict[str, int]:
        """The live jobs (not Obsolete) by state, of some tasks or all."""
        chosen = self.by_task.keys() if task_ids is None else task_ids
        found: dict[str, int] = defaultdict(int)
        for task_id in chosen:
            for state, n in self.by_task.get(task_id, {}).items():
                if state != JobState.OBSOLETE.value:
                    found[state] += n
        return dict(found)

    def __getitem__(self, name: str) -> int:
        return self.other.get(name, 0)


def read(conn: Connection, workflow_id: int) -> Counts:
    """The counts of one workflow now."""
    return read_many(conn, [workflow_id]).get(workflow_id, Counts(()))


def read_many(conn: Connection, workflow_ids: list[int]) -> dict[int, Counts]:
    """The counts of these workflows now (one statement: one snapshot on PostgreSQL)."""
    if not workflow_ids:
        return {}
    both = union_all(
        select(counts.c.workflow_id, counts.c.task_id, counts.c.state, counts.c.n).where(
            counts.c.workflow_id.in_(workflow_ids)
        ),
        select(
            count_changes.c.workflow_id,
            count_changes.c.task_id,
            count_changes.c.state,
            count_changes.c.change,
        ).where(count_changes.c.workflow_id.in_(workflow_ids)),
    ).subquery()
    query = select(both.c.workflow_id, both.c.task_id, both.c.state, func.sum(both.c.n)).group_by(
        both.c.workflow_id, both.c.task_id, both.c.state
    )
    rows: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
    for workflow_id, task_id, state, n in conn.execute(query):
        rows[int(workflow_id)].append((int(task_id), str(state), int(n)))
    return {w: Counts(r) for w, r in rows.items()}


FOLD = text(
    """
    WITH taken AS (
        SELECT id FROM count_changes ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED
    ), moved AS (
        DELETE FROM count_changes WHERE id IN (SELECT id FROM taken)
        RETURNING workflow_id, task_id, state, change
    ), summed AS (
        SELECT workflow_id, task_id, state, sum(change) AS n, count(*) AS changes
        FROM moved GROUP BY workflow_id, task_id, state
    ), kept AS (
        INSERT INTO counts (workflow_id, task_id, state, n)
        SELECT workflow_id, task_id, state, n FROM summed
        WHERE workflow_id IN (SELECT id FROM workflows)
        ON CONFLICT (workflow_id, task_id, state) DO UPDATE SET n = counts.n + excluded.n
    )
    SELECT coalesce(sum(changes), 0) FROM summed
    """
)


def fold_changes(conn: Connection, batch: int = FOLD_BATCH) -> int:
    """Move up to ``batch`` changes into ``counts`` (PostgreSQL; changes of a deleted
    workflow are dropped); how many were moved. Folds in several server processes take
    different changes (SKIP LOCKED) and add up on the counter rows."""
    if conn.dialect.name != "postgresql":
        return 0
    return int(conn.execute(FOLD, {"batch": batch}).scalar_one())
