"""Statements behind the views of the web UI: a page of runs with their live jobs, and a
cheap fingerprint that tells whether a workflow's table changed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, select, text

from runyard.models import Job, Run
from runyard.states import JobState
from runyard.store import jobs as job_rows
from runyard.store import runs as run_rows
from runyard.store.schema import activity_log, entities, jobs, runs

LIVE = jobs.c.state != JobState.OBSOLETE.value

# The orders a page of runs can be sorted in: the column and its tie-breaker.
ORDERS = {
    "sort_order": (runs.c.sort_order, runs.c.id),
    "name": (runs.c.name, runs.c.sort_order, runs.c.id),
}


def _select_runs() -> Any:
    # The columns that ``runs.from_row`` reads.
    return select(
        runs,
        entities.c.uuid.label("entity_uuid"),
        entities.c.name.label("entity_name"),
        entities.c.type.label("entity_type"),
    ).outerjoin(entities, entities.c.id == runs.c.entity_id)


def _run_filter(workflow_id: int, state: str | None, name: str | None) -> list[Any]:
    where: list[Any] = [
        runs.c.workflow_id == workflow_id,
        runs.c.obsolete.is_(False),
        runs.c.study.is_(False),
    ]
    if name:
        where.append(runs.c.name.icontains(name, autoescape=True))
    if state:
        # The runs of the jobs in that state (index ix_jobs_state), rather than a look into
        # the jobs of every run: fast for the rare states people filter by (Failed).
        with_state = select(jobs.c.run_id).where(
            jobs.c.state == state, jobs.c.workflow_id == workflow_id
        )
        where.append(runs.c.id.in_(with_state))
    return where


def count_runs(
    conn: Connection, workflow_id: int, *, state: str | None = None, name: str | None = None
) -> int:
    """How many live runs of the workflow pass the filters."""
    query = select(func.count()).select_from(runs).where(*_run_filter(workflow_id, state, name))
    return int(conn.execute(query).scalar_one())


def page_runs(
    conn: Connection,
    workflow_id: int,
    *,
    offset: int,
    limit: int,
    state: str | None = None,
    name: str | None = None,
    order: str = "sort_order",
    descending: bool = False,
) -> list[Run]:
    """One page of the live runs that pass the filters, in ``order``."""
    columns = ORDERS[order]
    query = (
        _select_runs()
        .where(*_run_filter(workflow_id, state, name))
        .order_by(*(c.desc() if descending else c for c in columns))
        .offset(offset)
        .limit(limit)
    )
    return [run_rows.from_row(r) for r in conn.execute(query)]


# The columns of a job the table needs (not its log, which can be large).
_JOB_COLUMNS = [c for c in jobs.c if c.name != "log"]


def live_jobs_of_runs(conn: Connection, run_ids: Sequence[int]) -> list[Job]:
    """The live jobs of these runs (their inputs and outputs too: staleness needs them)."""
    if not run_ids:
        return []
    query = select(*_JOB_COLUMNS).where(jobs.c.run_id.in_(list(run_ids)), LIVE)
    return [job_rows.from_row(row) for row in conn.execute(query)]


def job_activity(conn: Connection, serial: int, limit: int = 200) -> list[dict[str, Any]]:
    """The activity log entries of one job, oldest first (index ix_activity_log_job)."""
    query = (
        select(activity_log)
        .where(activity_log.c.job_serial == serial)
        .order_by(activity_log.c.id.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in reversed(list(conn.execute(query)))]


def study_jobs(conn: Connection, workflow_id: int) -> list[Job]:
    """The live jobs of the workflow's study run (its reduce jobs), as ``live_jobs_of_runs``."""
    # "runs.study" as it is written in the partial index uq_runs_study, so SQLite uses it.
    study = select(runs.c.id).where(runs.c.workflow_id == workflow_id, text("runs.study"))
    run_ids = [int(r) for r in conn.execute(study).scalars()]
    return live_jobs_of_runs(conn, run_ids)


def fingerprint(conn: Connection, workflow_id: int) -> dict[str, Any]:
    """What changes whenever a cell of the workflow's table changes: the live jobs by state,
    the number of runs, the newest run id and the newest live job. A job changing state moves
    its count from one state to another; a new job (a restart too) is a newer serial.
    (Renaming a run or changing its priority does not show here.)"""
    by_state: dict[str, int] = {}
    newest_job = 0
    for state, n, newest in conn.execute(
        select(jobs.c.state, func.count(), func.max(jobs.c.serial))
        .where(jobs.c.workflow_id == workflow_id, LIVE)
        .group_by(jobs.c.state)
    ):
        by_state[state] = int(n)
        newest_job = max(newest_job, int(newest))
    run_count, newest_run = conn.execute(
        select(func.count(), func.max(runs.c.id)).where(
            runs.c.workflow_id == workflow_id, runs.c.obsolete.is_(False), runs.c.study.is_(False)
        )
    ).one()
    return {
        "jobs": by_state,
        "runs": int(run_count),
        "newest_run": newest_run,
        # A restarted job that runs and finishes between two readings leaves the counts as
        # they were; its new serial does not.
        "newest_job": newest_job,
    }
