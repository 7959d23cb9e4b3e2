"""Queries of the timeline: a workflow's jobs with their times, and the jobs ended in each
minute (docs/ui.md#timeline)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, case, func, or_, select

from runyard.states import JobState
from runyard.store.schema import jobs, runs, tasks, workers

# A job waiting for a worker, or one that a worker took (its bar): not a Waiting job, nor
# one finished without a worker (a source's outputs, a job aborted before any claim).
_ON_THE_TIMELINE = or_(
    jobs.c.started_at.is_not(None),
    jobs.c.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]),
)


def timeline_jobs(
    conn: Connection,
    workflow_id: int,
    *,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Up to ``limit`` jobs of the workflow whose time (from made to ended, or still going)
    meets ``since``..``until``, the most recently made first."""
    query = (
        select(
            jobs.c.serial,
            jobs.c.state,
            jobs.c.attempt,
            jobs.c.run_id,
            runs.c.name.label("run"),
            tasks.c.name.label("task"),
            workers.c.name.label("worker"),
            jobs.c.created_at,
            jobs.c.started_at,
            jobs.c.script_started_at,
            jobs.c.finished_at,
        )
        .join(tasks, tasks.c.id == jobs.c.task_id)
        .join(runs, runs.c.id == jobs.c.run_id)
        .outerjoin(workers, workers.c.id == jobs.c.worker_id)
        .where(jobs.c.workflow_id == workflow_id, _ON_THE_TIMELINE)
        .order_by(jobs.c.created_at.desc(), jobs.c.serial.desc())
        .limit(limit)
    )
    if until is not None:
        query = query.where(jobs.c.created_at <= until)
    if since is not None:
        query = query.where(or_(jobs.c.finished_at.is_(None), jobs.c.finished_at >= since))
    return [dict(row._mapping) for row in conn.execute(query)]


def ended_per_minute(
    conn: Connection, workflow_id: int, *, since: datetime, until: datetime
) -> dict[datetime, tuple[int, int]]:
    """The jobs of the workflow that a worker ended from ``since`` to ``until``, by the
    minute they ended in (UTC): (ended, of them Failed). One grouped query."""
    minute = _minute(conn, jobs.c.finished_at)
    failed = case((jobs.c.state == JobState.FAILED.value, 1), else_=0)
    query = (
        select(minute.label("minute"), func.count(), func.sum(failed))
        .where(
            jobs.c.workflow_id == workflow_id,
            jobs.c.started_at.is_not(None),
            jobs.c.finished_at >= since,
            jobs.c.finished_at <= until,
        )
        .group_by(minute)
    )
    return {
        _as_minute(at): (int(ended), int(failed_count or 0))
        for at, ended, failed_count in conn.execute(query)
    }


def _minute(conn: Connection, column: Any) -> Any:
    """The minute a timestamp falls in: PostgreSQL truncates it; SQLite keeps UTC timestamps
    as text ('YYYY-MM-DD HH:MM:SS.ffffff'), whose first 16 characters name the minute."""
    if conn.dialect.name == "postgresql":
        return func.date_trunc("minute", column)
    return func.substr(column, 1, 16)


def _as_minute(value: datetime | str) -> datetime:
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.replace(second=0, microsecond=0)
