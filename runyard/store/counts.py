"""A workflow's jobs by task and state, its runs, and its runs with a job in each state, as
counted by the database's triggers (migrations 0021, 0023): a few rows per workflow instead
of a count over millions of jobs.

On SQLite the triggers keep ``counts`` (and ``run_states``, each run's jobs by state)
itself. On PostgreSQL they append each change to ``count_changes`` (concurrent transactions
never wait on a shared counter row), and ``fold_changes`` moves them into ``counts`` and
``run_states``; a reading adds up both in one statement, so it is exact either way."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal, select, text, union_all

from runyard.states import JobState
from runyard.store.schema import count_changes, counts, run_states

RUNS = "runs"  # live runs (the study run, which holds the reduce jobs, is not counted)
OBSOLETE_RUNS = "obsolete runs"
# Never decrease: every run made, deleted, made obsolete or live, or renamed (a change of
# which runs a page lists, and in which order, even when the counts are as they were), and
# every job made (a restarted job, even when the counts of jobs are as they were).
RUNS_CHANGED = "runs changed"
JOBS_MADE = "jobs made"
JOB_CHANGES = "job changes"  # never decreases: every job made, deleted or changing state
NOT_A_TASK = 0  # task_id of the rows above
# task_id of the runs (any: live, obsolete, the study run) with at least one job in a state.
RUNS_IN_STATE = -1
FOLD_BATCH = 50_000  # changes folded per transaction


class Counts:
    """The counts of one workflow, as read."""

    def __init__(self, rows: Iterable[tuple[int, str, int]]) -> None:
        self.by_task: dict[int, dict[str, int]] = defaultdict(dict)
        self.other: dict[str, int] = {}
        self.runs_in_state: dict[str, int] = {}  # the runs with a job in each state
        for task_id, state, n in rows:
            if task_id == NOT_A_TASK:
                self.other[state] = n
            elif task_id == RUNS_IN_STATE:
                if n:
                    self.runs_in_state[state] = n
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
    chosen = count_changes.c.workflow_id.in_(workflow_ids)
    both = union_all(
        select(counts.c.workflow_id, counts.c.task_id, counts.c.state, counts.c.n).where(
            counts.c.workflow_id.in_(workflow_ids)
        ),
        select(
            count_changes.c.workflow_id,
            count_changes.c.task_id,
            count_changes.c.state,
            count_changes.c.change,
        ).where(chosen),
        # Not folded yet (PostgreSQL): the job changes, and the runs they move in or out of
        # a state.
        select(
            count_changes.c.workflow_id,
            literal(NOT_A_TASK),
            literal(JOB_CHANGES),
            func.count(),
        )
        .where(chosen, count_changes.c.task_id > 0)
        .group_by(count_changes.c.workflow_id),
        _runs_in_state_pending(chosen, by_workflow=True),
    ).subquery()
    query = select(both.c.workflow_id, both.c.task_id, both.c.state, func.sum(both.c.n)).group_by(
        both.c.workflow_id, both.c.task_id, both.c.state
    )
    rows: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
    for workflow_id, task_id, state, n in conn.execute(query):
        rows[int(workflow_id)].append((int(task_id), str(state), int(n)))
    return {w: Counts(r) for w, r in rows.items()}


def runs_with_job_in(workflow_id: int, state: str) -> Any:
    """How many runs of the workflow (any: live, obsolete, the study run) have a job in
    ``state`` now, as a scalar subquery: the count kept, and on PostgreSQL the runs that the
    changes not folded yet move in or out of the state."""
    kept = select(counts.c.n).where(
        counts.c.workflow_id == workflow_id,
        counts.c.task_id == RUNS_IN_STATE,
        counts.c.state == state,
    )
    pending = _runs_in_state_pending(
        and_(count_changes.c.workflow_id == workflow_id, count_changes.c.state == state),
        by_workflow=False,
    )
    return select(
        func.coalesce(kept.scalar_subquery(), 0)
        + func.coalesce(pending.scalar_subquery(), 0)
    ).scalar_subquery()


def _runs_in_state_pending(chosen: Any, *, by_workflow: bool) -> Any:
    """The changes of ``chosen`` not folded yet, summed per run and state, against each
    run's jobs by state as folded: +1 for a run they bring into a state, -1 for one they
    take out. By workflow and state (workflow_id, task_id, state, n), or the sum alone."""
    per_run = (
        select(
            count_changes.c.workflow_id,
            count_changes.c.run_id,
            count_changes.c.state,
            func.sum(count_changes.c.change).label("change"),
        )
        .where(chosen, count_changes.c.run_id.is_not(None))
        .group_by(count_changes.c.workflow_id, count_changes.c.run_id, count_changes.c.state)
        .subquery()
    )
    before = func.coalesce(run_states.c.n, 0)
    step = _in(before + per_run.c.change) - _in(before)
    joined = per_run.outerjoin(
        run_states,
        and_(run_states.c.run_id == per_run.c.run_id, run_states.c.state == per_run.c.state),
    )
    if not by_workflow:
        return select(func.sum(step)).select_from(joined)
    return (
        select(per_run.c.workflow_id, literal(RUNS_IN_STATE), per_run.c.state, func.sum(step))
        .select_from(joined)
        .group_by(per_run.c.workflow_id, per_run.c.state)
    )


def _in(n: Any) -> Any:
    """1 when ``n`` jobs put a run in a state, else 0."""
    return case((n > 0, 1), else_=0)


FOLD = text(
    f"""
    WITH taken AS (
        SELECT id FROM count_changes ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED
    ), moved AS (
        DELETE FROM count_changes WHERE id IN (SELECT id FROM taken)
        RETURNING workflow_id, task_id, state, change, run_id
    ), per_run AS (
        SELECT workflow_id, run_id, state, sum(change) AS change
        FROM moved WHERE run_id IS NOT NULL
        GROUP BY workflow_id, run_id, state HAVING sum(change) <> 0
    ), stepped AS (
        INSERT INTO run_states (run_id, state, n)
        SELECT run_id, state, change FROM per_run ORDER BY run_id, state
        ON CONFLICT (run_id, state) DO UPDATE SET n = run_states.n + excluded.n
        RETURNING run_id, state, n
    ), summed AS (
        SELECT workflow_id, task_id, state, sum(change) AS n FROM moved
        GROUP BY workflow_id, task_id, state
        UNION ALL
        SELECT workflow_id, {NOT_A_TASK}, '{JOB_CHANGES}', count(*) FROM moved
        WHERE task_id > 0 GROUP BY workflow_id
        UNION ALL
        SELECT p.workflow_id, {RUNS_IN_STATE}, p.state,
            sum((s.n > 0)::int - (s.n - p.change > 0)::int)
        FROM stepped s JOIN per_run p ON p.run_id = s.run_id AND p.state = s.state
        GROUP BY p.workflow_id, p.state
    ), kept AS (
        INSERT INTO counts (workflow_id, task_id, state, n)
        SELECT workflow_id, task_id, state, sum(n) FROM summed
        WHERE workflow_id IN (SELECT id FROM workflows)
        GROUP BY workflow_id, task_id, state ORDER BY workflow_id, task_id, state
        ON CONFLICT (workflow_id, task_id, state) DO UPDATE SET n = counts.n + excluded.n
    )
    SELECT (SELECT count(*) FROM moved),
        ARRAY(SELECT run_id FROM stepped WHERE n = 0),
        ARRAY(SELECT state FROM stepped WHERE n = 0)
    """
)
# The runs' rows of no job left (made 0 by the fold above, and not changed since).
DROP_EMPTY = text(
    "DELETE FROM run_states WHERE (run_id, state) IN "
    "(SELECT * FROM unnest(CAST(:runs AS integer[]), CAST(:states AS varchar[]))) AND n = 0"
)


def fold_changes(conn: Connection, batch: int = FOLD_BATCH) -> int:
    """Move up to ``batch`` changes into ``counts`` and ``run_states`` (PostgreSQL; changes
    of a deleted workflow are dropped from the counts); how many were moved. Folds in
    several server processes take different changes (SKIP LOCKED) and add up on the rows,
    taking their locks in one order."""
    if conn.dialect.name != "postgresql":
        return 0
    moved, runs, states = conn.execute(FOLD, {"batch": batch}).one()
    if runs:
        conn.execute(DROP_EMPTY, {"runs": runs, "states": states})
    return int(moved)
