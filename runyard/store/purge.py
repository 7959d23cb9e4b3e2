"""Statements of the purge: what is obsolete, which files jobs refer to, and the deletes.

Everything here runs inside the purge's one transaction; ``lock_for_purge`` first makes that
transaction the only writer of runs and jobs (on SQLite the write transaction already is).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Text,
    and_,
    cast,
    delete,
    or_,
    select,
    text,
)
from sqlalchemy.exc import OperationalError

from runyard.states import JobState, WorkflowState
from runyard.store.schema import files, jobs, runs, serial_reservations, tasks, workflows

# Jobs that have not ended: the jobs they spawned may still be finished (Obsolete -> Done).
PENDING = (JobState.WAITING.value, JobState.QUEUED.value, JobState.RUNNING.value)
OBSOLETE = JobState.OBSOLETE.value
CHUNK = 5000  # ids per IN (...) list: below every backend's limit on bound parameters
MENTIONS_A_FILE = "%file_id%"  # file values name their files in "file_id" / "raw_file_id"

T = TypeVar("T")


class Busy(Exception):
    """Another transaction held runs or jobs for longer than the purge waits."""


def lock_for_purge(conn: Connection, *, timeout_ms: int) -> None:
    """On PostgreSQL, take runs and jobs for this transaction: reads go on, every change to
    them waits until the purge commits, so no job can start referring to a file that the
    purge is removing. Waits at most ``timeout_ms`` (less than PostgreSQL's deadlock
    timeout, so that if anyone must give up, it is the purge): then ``Busy``."""
    if conn.dialect.name != "postgresql":
        return
    conn.execute(text(f"SET LOCAL lock_timeout = '{int(timeout_ms)}ms'"))
    try:
        conn.execute(text("LOCK TABLE runs, jobs IN EXCLUSIVE MODE"))
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
            raise Busy from None
        raise


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _quiet_since(cutoff: datetime) -> ColumnElement[bool]:
    """A job with nothing recorded (created, started, finished) at or after ``cutoff``."""
    return and_(
        jobs.c.created_at < cutoff,
        or_(jobs.c.started_at.is_(None), jobs.c.started_at < cutoff),
        or_(jobs.c.finished_at.is_(None), jobs.c.finished_at < cutoff),
    )


def obsolete_workflows(
    conn: Connection, *, workflow_id: int | None, cutoff: datetime | None
) -> list[tuple[int, str]]:
    """(id, name) of the ``Obsolete`` workflows in scope (changed last before ``cutoff``)."""
    query = select(workflows.c.id, workflows.c.name).where(
        workflows.c.state == WorkflowState.OBSOLETE.value
    )
    if workflow_id is not None:
        query = query.where(workflows.c.id == workflow_id)
    if cutoff is not None:
        query = query.where(workflows.c.updated_at < cutoff)
    return [(row.id, row.name) for row in conn.execute(query.order_by(workflows.c.id))]


def obsolete_runs(
    conn: Connection,
    *,
    workflow_id: int | None,
    cutoff: datetime | None,
    skip_workflows: Sequence[int],
) -> list[tuple[int, int]]:
    """(id, workflow id) of the obsolete runs in scope: not a study run, not in a skipped
    workflow, none of its jobs spawned by a job of another run that has not ended (that job
    may still finish them), and, with ``cutoff``, nothing recorded in it since then."""
    spawned, spawner = jobs.alias("spawned"), jobs.alias("spawner")
    pending_spawner = (
        select(spawned.c.serial)
        .join(spawner, spawner.c.serial == spawned.c.spawned_by_job)
        .where(
            spawned.c.run_id == runs.c.id,
            spawner.c.run_id != runs.c.id,
            spawner.c.state.in_(PENDING),
        )
        .exists()
    )
    query = select(runs.c.id, runs.c.workflow_id).where(
        runs.c.obsolete.is_(True), runs.c.study.is_(False), ~pending_spawner
    )
    if skip_workflows:
        query = query.where(runs.c.workflow_id.not_in(skip_workflows))
    if workflow_id is not None:
        query = query.where(runs.c.workflow_id == workflow_id)
    if cutoff is not None:
        recent = select(jobs.c.serial).where(jobs.c.run_id == runs.c.id, ~_quiet_since(cutoff))
        query = query.where(runs.c.created_at < cutoff, ~recent.exists())
    return [(row.id, row.workflow_id) for row in conn.execute(query.order_by(runs.c.id))]


def obsolete_jobs(
    conn: Connection,
    *,
    workflow_id: int | None,
    cutoff: datetime | None,
    skip_workflows: Sequence[int],
) -> list[tuple[int, int, int]]:
    """(serial, run id, workflow id) of the ``Obsolete`` jobs in scope, but not those spawned
    by a job that has not ended (a spawning script finishes its jobs later)."""
    spawner = jobs.alias("spawner")
    pending_spawner = (
        select(spawner.c.serial)
        .where(spawner.c.serial == jobs.c.spawned_by_job, spawner.c.state.in_(PENDING))
        .exists()
    )
    query = select(jobs.c.serial, jobs.c.run_id, jobs.c.workflow_id).where(
        jobs.c.state == OBSOLETE, ~pending_spawner
    )
    if skip_workflows:
        query = query.where(jobs.c.workflow_id.not_in(skip_workflows))
    if workflow_id is not None:
        query = query.where(jobs.c.workflow_id == workflow_id)
    if cutoff is not None:
        query = query.where(_quiet_since(cutoff))
    rows = conn.execute(query.order_by(jobs.c.serial))
    return [(row.serial, row.run_id, row.workflow_id) for row in rows]


def jobs_of(
    conn: Connection, *, run_ids: Sequence[int], workflow_ids: Sequence[int]
) -> list[tuple[int, int]]:
    """(serial, workflow id) of every job in those runs and those workflows."""
    found: list[tuple[int, int]] = []
    for chunk in _chunks(run_ids):
        query = select(jobs.c.serial, jobs.c.workflow_id).where(jobs.c.run_id.in_(chunk))
        found.extend((row.serial, row.workflow_id) for row in conn.execute(query))
    if workflow_ids:
        query = select(jobs.c.serial, jobs.c.workflow_id).where(
            jobs.c.workflow_id.in_(workflow_ids)
        )
        found.extend((row.serial, row.workflow_id) for row in conn.execute(query))
    return found


def _mentions_a_file(*columns: Any) -> ColumnElement[bool]:
    return or_(*(cast(column, Text).like(MENTIONS_A_FILE) for column in columns))


def job_values_with_files(conn: Connection) -> Iterator[tuple[int, list[Any]]]:
    """(serial, [inputs, outputs, metadata]) of every job whose values may name a file."""
    query = select(jobs.c.serial, jobs.c.inputs, jobs.c.outputs, jobs.c.metadata).where(
        _mentions_a_file(jobs.c.inputs, jobs.c.outputs, jobs.c.metadata)
    )
    for row in conn.execute(query):
        yield row.serial, [row.inputs, row.outputs, row.metadata]


def task_inputs_with_files(conn: Connection) -> Iterator[Any]:
    """The inputs of every task whose sources may name a file (a ``define_on_first``
    template)."""
    query = select(tasks.c.inputs).where(_mentions_a_file(tasks.c.inputs))
    for row in conn.execute(query):
        yield row.inputs


def stored_files(conn: Connection) -> list[tuple[str, int, int | None, datetime]]:
    """(id, size, uploading job's serial, created at) of every file of the file store."""
    query = select(files.c.id, files.c.size, files.c.job_serial, files.c.created_at)
    return [
        (row.id, row.size, row.job_serial, row.created_at)
        for row in conn.execute(query.order_by(files.c.id))
    ]


def job_states(conn: Connection, serials: Iterable[int]) -> dict[int, tuple[str, int]]:
    """{serial: (state, workflow id)} of those of ``serials`` that are jobs."""
    found: dict[int, tuple[str, int]] = {}
    for chunk in _chunks(sorted(set(serials))):
        query = select(jobs.c.serial, jobs.c.state, jobs.c.workflow_id).where(
            jobs.c.serial.in_(chunk)
        )
        found.update((row.serial, (row.state, row.workflow_id)) for row in conn.execute(query))
    return found


def delete_purged(
    conn: Connection,
    *,
    workflow_ids: Sequence[int],
    run_ids: Sequence[int],
    obsolete_serials: Sequence[int],
    all_serials: Sequence[int],
    file_ids: Sequence[str],
) -> tuple[int, int, int]:
    """Delete the jobs and runs of the obsolete workflows, the obsolete runs with their jobs,
    the ``Obsolete`` jobs, the serial reservations of every deleted job, and the records of
    the files. Each delete is guarded by what made the row purgeable. (runs, jobs, files)
    deleted."""
    deleted_jobs = deleted_runs = deleted_files = 0
    for chunk in _chunks(all_serials):
        conn.execute(delete(serial_reservations).where(serial_reservations.c.job_serial.in_(chunk)))
    if workflow_ids:
        obsolete = select(workflows.c.id).where(
            workflows.c.id.in_(workflow_ids), workflows.c.state == WorkflowState.OBSOLETE.value
        )
        deleted_jobs += conn.execute(
            delete(jobs).where(jobs.c.workflow_id.in_(obsolete.scalar_subquery()))
        ).rowcount
        deleted_runs += conn.execute(
            delete(runs).where(
                runs.c.workflow_id.in_(obsolete.scalar_subquery()), runs.c.study.is_(False)
            )
        ).rowcount
    for chunk in _chunks(run_ids):
        deleted_jobs += conn.execute(
            delete(jobs).where(
                jobs.c.run_id.in_(
                    select(runs.c.id)
                    .where(runs.c.id.in_(chunk), runs.c.obsolete.is_(True))
                    .scalar_subquery()
                )
            )
        ).rowcount
        deleted_runs += conn.execute(
            delete(runs).where(runs.c.id.in_(chunk), runs.c.obsolete.is_(True))
        ).rowcount
    for chunk in _chunks(obsolete_serials):
        deleted_jobs += conn.execute(
            delete(jobs).where(jobs.c.serial.in_(chunk), jobs.c.state == OBSOLETE)
        ).rowcount
    for ids in _chunks(file_ids):
        deleted_files += conn.execute(delete(files).where(files.c.id.in_(ids))).rowcount
    return deleted_runs, deleted_jobs, deleted_files


def run_workflows(conn: Connection, workflow_ids: Sequence[int]) -> list[int]:
    """The workflow id of each run (not the study run) of those workflows."""
    if not workflow_ids:
        return []
    query = select(runs.c.workflow_id).where(
        runs.c.workflow_id.in_(workflow_ids), runs.c.study.is_(False)
    )
    return [row.workflow_id for row in conn.execute(query)]
