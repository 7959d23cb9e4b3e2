"""Statements on jobs: inserts, guarded state changes, claims and leases."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Row,
    String,
    case,
    cast,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from runyard.models import Job, Lease
from runyard.states import CLAIMABLE_PRIORITY_RANK, JobState
from runyard.store.schema import jobs, runs, workers, workflows

LIVE = jobs.c.state != JobState.OBSOLETE.value


def from_row(row: Row[Any]) -> Job:
    m = row._mapping
    return Job(
        serial=m["serial"],
        workflow_id=m["workflow_id"],
        run_id=m["run_id"],
        task_id=m["task_id"],
        task_type_id=m["task_type_id"],
        state=m["state"],
        inputs=m["inputs"],
        outputs=m["outputs"],
        metadata=m["metadata"],
        error=m["error"],
        attempt=m["attempt"],
        worker=m.get("worker_name"),
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        workdir=m["workdir"],
        progress=m["progress"],
        spawned_by_job=m.get("spawned_by_job"),
    )


def select_jobs() -> Any:
    # Every column but the log, which can be large and has its own query.
    columns = [c for c in jobs.c if c.name != "log"]
    return select(*columns, workers.c.name.label("worker_name")).outerjoin(
        workers, workers.c.id == jobs.c.worker_id
    )


def insert_job(conn: Connection, *, if_no_live_job: bool = False, **values: Any) -> int | None:
    """Insert one job; with ``if_no_live_job`` return None instead of a second live job."""
    values.setdefault("outputs", {})
    values.setdefault("metadata", {})
    values.setdefault("error", "")
    values.setdefault("log", "")
    values.setdefault("attempt", 0)
    if values["state"] == JobState.DONE.value:
        values.setdefault("finished_at", values["created_at"])
    if not if_no_live_job:
        key = conn.execute(insert(jobs).values(**values)).inserted_primary_key
        assert key is not None
        return int(key[0])
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(jobs)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=["task_id", "run_id"], index_where=text("state <> 'Obsolete'")
        )
        .returning(jobs.c.serial)
    )
    return conn.execute(statement).scalar()


def get_job(conn: Connection, serial: int) -> Job | None:
    row = conn.execute(select_jobs().where(jobs.c.serial == serial)).first()
    return from_row(row) if row else None


def live_jobs_in_run(conn: Connection, run_id: int) -> list[Job]:
    rows = conn.execute(select_jobs().where(jobs.c.run_id == run_id, LIVE))
    return [from_row(r) for r in rows]


def running_in_run(conn: Connection, run_id: int) -> list[tuple[Job, str]]:
    """The Running jobs of a run, each with its current lease id."""
    return _running(conn, jobs.c.run_id == run_id)


def running_in_workflow(conn: Connection, workflow_id: int) -> list[tuple[Job, str]]:
    """The Running jobs of a workflow (its reduce jobs too), each with its current lease id."""
    return _running(conn, jobs.c.workflow_id == workflow_id)


def _running(conn: Connection, where: Any) -> list[tuple[Job, str]]:
    rows = conn.execute(
        select_jobs().where(where, jobs.c.state == JobState.RUNNING.value).order_by(jobs.c.serial)
    )
    return [(from_row(r), str(r.lease_id)) for r in rows]


def jobs_of_workflow(conn: Connection, workflow_id: int) -> list[Job]:
    rows = conn.execute(
        select_jobs().where(jobs.c.workflow_id == workflow_id, LIVE).order_by(jobs.c.serial)
    )
    return [from_row(r) for r in rows]


def waiting_jobs_of_task(conn: Connection, task_id: int) -> list[Job]:
    rows = conn.execute(
        select_jobs()
        .where(jobs.c.task_id == task_id, jobs.c.state == JobState.WAITING.value)
        .order_by(jobs.c.serial)
    )
    return [from_row(r) for r in rows]


def set_state(
    conn: Connection,
    serial: int,
    target: JobState,
    from_states: Iterable[JobState],
    *,
    held_lease: str | None = None,
    expired_before: datetime | None = None,
    **values: Any,
) -> bool:
    """The guarded update: True only if the job was in one of ``from_states`` (and held
    the lease ``held_lease``, when given)."""
    query = update(jobs).where(
        jobs.c.serial == serial, jobs.c.state.in_([s.value for s in from_states])
    )
    if held_lease is not None:
        query = query.where(jobs.c.lease_id == held_lease)
    if expired_before is not None:
        query = query.where(jobs.c.lease_expires_at < expired_before)
    if isinstance(values.get("error"), str):
        values["error"] = storable(values["error"])
    result = conn.execute(query.values(state=target.value, **values))
    return result.rowcount == 1


def set_states(
    conn: Connection, serials: Sequence[int], target: JobState, source: JobState, **values: Any
) -> int:
    """The guarded update of many jobs from ``source`` to ``target``; how many changed."""
    changed = 0
    for start in range(0, len(serials), 5000):
        chunk = serials[start : start + 5000]
        query = update(jobs).where(jobs.c.serial.in_(chunk), jobs.c.state == source.value)
        changed += conn.execute(query.values(state=target.value, **values)).rowcount
    return changed


def _claimable(task_type_ids: list[int]) -> Any:
    """Queued jobs of these task types that may start now, in claim order."""
    priority_rank = case(
        {p.value: rank for p, rank in CLAIMABLE_PRIORITY_RANK.items()}, value=runs.c.priority
    )
    return (
        select(jobs.c.serial)
        .join(runs, runs.c.id == jobs.c.run_id)
        .join(workflows, workflows.c.id == jobs.c.workflow_id)
        .where(
            jobs.c.state == JobState.QUEUED.value,
            jobs.c.task_type_id.in_(task_type_ids),
            runs.c.priority.in_([p.value for p in CLAIMABLE_PRIORITY_RANK]),
            runs.c.obsolete.is_(False),
            workflows.c.state == "Started",
        )
        .order_by(priority_rank, runs.c.sort_order, jobs.c.serial)
    )


def any_claimable(conn: Connection, task_type_ids: list[int]) -> bool:
    if not task_type_ids:
        return False
    return conn.execute(_claimable(task_type_ids).limit(1)).first() is not None


def claim(
    conn: Connection,
    *,
    task_type_ids: list[int],
    worker_id: int,
    limit: int,
    lease_seconds: float,
    now: datetime,
) -> list[tuple[Job, Lease]]:
    """Claim up to ``limit`` Queued jobs atomically, in priority, run sort order, serial."""
    if limit <= 0 or not task_type_ids:
        return []
    candidates = _claimable(task_type_ids).limit(limit).with_for_update(of=jobs, skip_locked=True)
    expires = now + timedelta(seconds=lease_seconds)
    claimed = []
    for serial in conn.execute(candidates).scalars().all():
        lease_id = secrets.token_hex(16)
        ok = set_state(
            conn,
            serial,
            JobState.RUNNING,
            [JobState.QUEUED],
            worker_id=worker_id,
            lease_id=lease_id,
            lease_expires_at=expires,
            started_at=now,
            attempt=jobs.c.attempt + 1,
            progress=None,
            log=_attempt_separator(worker_id, now),
        )
        if not ok:
            continue
        job = get_job(conn, serial)
        assert job is not None
        claimed.append(
            (
                job,
                Lease(
                    job_serial=serial, lease_id=lease_id, attempt=job.attempt, expires_at=expires
                ),
            )
        )
    return claimed


def _attempt_separator(worker_id: int, now: datetime) -> Any:
    """The job log of a claimed job (in SQL): the log of earlier attempts, if any, then a
    line that says where the new attempt starts."""
    worker = select(workers.c.name).where(workers.c.id == worker_id).scalar_subquery()
    line = (
        literal("----- attempt ")
        + cast(jobs.c.attempt + 1, String)  # the new attempt (SET sees the old row)
        + " on worker "
        + func.coalesce(worker, "?")
        + f" at {now.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC -----\n"
    )
    return case((jobs.c.log == "", ""), else_=jobs.c.log + _line_break() + line)


def _line_break() -> Any:
    """What ends the log's last line before a line is added (in SQL): nothing if the log is
    empty or ends with a newline, else a newline."""
    ends_a_line = func.substr(jobs.c.log, func.length(jobs.c.log)) == "\n"
    return case((jobs.c.log == "", ""), (ends_a_line, ""), else_="\n")


def renew_lease(
    conn: Connection, serial: int, lease_id: str, expires: datetime, worker: str | None = None
) -> bool:
    """Renew a Running job's lease (held by the worker named ``worker``, when given)."""
    query = update(jobs).where(
        jobs.c.serial == serial,
        jobs.c.lease_id == lease_id,
        jobs.c.state == JobState.RUNNING.value,
    )
    if worker is not None:
        query = query.where(
            jobs.c.worker_id.in_(select(workers.c.id).where(workers.c.name == worker))
        )
    return conn.execute(query.values(lease_expires_at=expires)).rowcount == 1


def expired_leases(conn: Connection, now: datetime) -> list[tuple[int, int]]:
    """(serial, attempt) of Running jobs whose lease has run out."""
    rows = conn.execute(
        select(jobs.c.serial, jobs.c.attempt).where(
            jobs.c.state == JobState.RUNNING.value, jobs.c.lease_expires_at < now
        )
    )
    return [(r.serial, r.attempt) for r in rows]


def count_by_state(
    conn: Connection, workflow_id: int, task_ids: list[int] | None = None
) -> dict[str, int]:
    """The live jobs of a workflow (of some of its tasks) by state."""
    query = select(jobs.c.state, func.count()).where(jobs.c.workflow_id == workflow_id, LIVE)
    if task_ids is not None:
        query = query.where(jobs.c.task_id.in_(task_ids))
    rows = conn.execute(query.group_by(jobs.c.state))
    return {state: int(n) for state, n in rows}


def current_lease_and_workflow(conn: Connection, serial: int) -> tuple[str, int] | None:
    """(lease, workflow id) of a Running job."""
    row = conn.execute(
        select(jobs.c.lease_id, jobs.c.workflow_id).where(
            jobs.c.serial == serial, jobs.c.state == JobState.RUNNING.value
        )
    ).first()
    return (str(row.lease_id), int(row.workflow_id)) if row and row.lease_id else None


def lease_holder(conn: Connection, serial: int, lease_id: str) -> str | None:
    """The name of the worker that holds (or, for a job it finished, held) the job under
    the lease ``lease_id``; None if that lease is not the job's."""
    value = conn.execute(
        select(workers.c.name)
        .join(jobs, jobs.c.worker_id == workers.c.id)
        .where(jobs.c.serial == serial, jobs.c.lease_id == lease_id)
    ).scalar()
    return str(value) if value is not None else None


def finished_by(conn: Connection, serial: int, lease_id: str) -> str | None:
    """The state of a job that the lease ``lease_id`` finished (Done or Failed, its lease id
    kept as the mark of who finished it); None if that lease did not finish it."""
    value = conn.execute(
        select(jobs.c.state).where(
            jobs.c.serial == serial,
            jobs.c.lease_id == lease_id,
            jobs.c.state.in_([JobState.DONE.value, JobState.FAILED.value]),
        )
    ).scalar()
    return str(value) if value is not None else None


def storable(text: str) -> str:
    """Text as every backend can store it: PostgreSQL refuses NUL characters in text."""
    return text.replace("\x00", "\ufffd")


def read_log(conn: Connection, serial: int) -> str | None:
    return conn.execute(select(jobs.c.log).where(jobs.c.serial == serial)).scalar()


LOG_MARKER = "[... earlier output dropped: the log keeps the last part only ...]\n"


def log_with_line(text: str) -> Any:
    """The job's log with ``text`` added on a line of its own (after the script's unfinished
    line, if any): an expression for the ``log`` of a guarded update."""
    return jobs.c.log + _line_break() + storable(text)


def append_log(conn: Connection, serial: int, lease_id: str, text: str, limit: int) -> bool:
    """Add ``text`` to a Running job's log under its lease, keeping at most the last ``limit``
    characters; False if the lease is not the job's current one. One statement that appends
    in SQL: the log is neither read nor sent back, and cut only once it is over ``limit``."""
    text = storable(text)
    joined = jobs.c.log + text
    length = func.length(jobs.c.log) + len(text)
    # Over the limit: the marker, then the last ``limit - len(marker)`` characters.
    start = cast(length - (limit - len(LOG_MARKER)) + 1, Integer)
    log = case(
        (length <= limit, joined),
        else_=literal(LOG_MARKER) + func.substr(joined, start),
    )
    result = conn.execute(
        update(jobs)
        .where(
            jobs.c.serial == serial,
            jobs.c.lease_id == lease_id,
            jobs.c.state == JobState.RUNNING.value,
        )
        .values(log=log)
    )
    return result.rowcount == 1


def set_progress(conn: Connection, serial: int, progress: dict[str, Any]) -> bool:
    result = conn.execute(
        update(jobs)
        .where(jobs.c.serial == serial, jobs.c.state == JobState.RUNNING.value)
        .values(progress=progress)
    )
    return result.rowcount == 1


def set_metadata(conn: Connection, serial: int, metadata: dict[str, Any]) -> None:
    conn.execute(update(jobs).where(jobs.c.serial == serial).values(metadata=metadata))


def set_inputs(conn: Connection, serial: int, inputs: dict[str, Any]) -> None:
    conn.execute(update(jobs).where(jobs.c.serial == serial).values(inputs=inputs))
