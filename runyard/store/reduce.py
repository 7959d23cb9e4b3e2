"""Statements for reduce tasks: the upstream work of the active runs, and the reduce jobs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, func, select

from runyard.models import Job
from runyard.states import JobState, Priority
from runyard.store import jobs as job_rows
from runyard.store.schema import entities, jobs, runs

# The runs whose results a reduce takes: not obsolete, not paused, not the study run.
ACTIVE_RUN = and_(
    runs.c.obsolete.is_(False), runs.c.study.is_(False), runs.c.priority != Priority.PAUSED.value
)
PENDING = (JobState.WAITING.value, JobState.QUEUED.value, JobState.RUNNING.value)


@dataclass(frozen=True)
class DoneJob:
    """A Done job of an active run, with what a reduce shows of its run."""

    run_id: int
    run_name: str
    entity: dict[str, Any] | None
    task_id: int
    serial: int
    outputs: dict[str, Any]


def has_pending(conn: Connection, workflow_id: int, task_ids: Iterable[int]) -> bool:
    """Whether an active run has a job of these tasks Waiting, Queued or Running."""
    params = {"b_workflow": workflow_id, "b_tasks": list(task_ids)}
    return conn.execute(_HAS_PENDING, params).first() is not None


def pending_runs(conn: Connection, workflow_id: int, task_ids: Iterable[int]) -> dict[str, int]:
    """How many active runs have a job of these tasks pending, by the first of its pending
    states in the order Waiting, Queued, Running (a run with a Waiting and a Queued job
    counts as Waiting)."""
    rank = case({state: n for n, state in enumerate(PENDING)}, value=jobs.c.state)
    per_run = (
        select(jobs.c.run_id, func.min(rank).label("rank"))
        .join(runs, runs.c.id == jobs.c.run_id)
        .where(
            jobs.c.workflow_id == workflow_id,
            jobs.c.task_id.in_(list(task_ids)),
            jobs.c.state.in_(PENDING),
            ACTIVE_RUN,
        )
        .group_by(jobs.c.run_id)
        .subquery()
    )
    rows = conn.execute(select(per_run.c.rank, func.count()).group_by(per_run.c.rank))
    return {PENDING[int(n)]: int(count) for n, count in rows}


def done_jobs(conn: Connection, workflow_id: int, task_ids: Iterable[int]) -> list[DoneJob]:
    """The Done jobs of these tasks in the active runs, in run sort order."""
    query = (
        select(
            runs.c.id,
            runs.c.name,
            entities.c.uuid,
            entities.c.name.label("entity_name"),
            jobs.c.task_id,
            jobs.c.serial,
            jobs.c.outputs,
        )
        .join(runs, runs.c.id == jobs.c.run_id)
        .outerjoin(entities, entities.c.id == runs.c.entity_id)
        .where(
            jobs.c.workflow_id == workflow_id,
            jobs.c.task_id.in_(list(task_ids)),
            jobs.c.state == JobState.DONE.value,
            ACTIVE_RUN,
        )
        .order_by(runs.c.sort_order, runs.c.id, jobs.c.serial)
    )
    return [
        DoneJob(
            run_id=row.id,
            run_name=row.name,
            entity=None
            if row.uuid is None
            else {"type": "Entity", "uuid": row.uuid, "name": row.entity_name},
            task_id=row.task_id,
            serial=row.serial,
            outputs=row.outputs,
        )
        for row in conn.execute(query)
    ]


def live_job(conn: Connection, task_id: int, run_id: int) -> Job | None:
    """The live (not Obsolete) job of a task in a run."""
    row = conn.execute(_LIVE_JOB, {"b_task": task_id, "b_run": run_id}).first()
    return job_rows.from_row(row) if row else None


# Asked on every change of an upstream job: built once.
_HAS_PENDING = (
    select(jobs.c.serial)
    .join(runs, runs.c.id == jobs.c.run_id)
    .where(
        jobs.c.workflow_id == bindparam("b_workflow"),
        jobs.c.task_id.in_(bindparam("b_tasks", expanding=True)),
        jobs.c.state.in_(PENDING),
        ACTIVE_RUN,
    )
    .limit(1)
)
_LIVE_JOB = job_rows.select_jobs().where(
    jobs.c.task_id == bindparam("b_task"), jobs.c.run_id == bindparam("b_run"), job_rows.LIVE
)
