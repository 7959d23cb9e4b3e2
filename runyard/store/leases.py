"""Statements of the worker protocol on jobs: claims, leases, heartbeats, the job log and
the guarded update that finishes a job. The statements of every report, claim and heartbeat
are built once (below), with bound parameters (``b_*``): building a statement costs more
Python than running it on SQLite."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    String,
    bindparam,
    case,
    cast,
    func,
    literal,
    select,
    text,
    update,
)

from runyard.models import Job, Lease
from runyard.states import CLAIMABLE_PRIORITY_RANK, JobState, WorkflowState
from runyard.store import runs as run_rows
from runyard.store.jobs import from_row, select_jobs, storable
from runyard.store.schema import jobs, workers


def finish(
    conn: Connection,
    serial: int,
    lease_id: str,
    *,
    log: str,
    log_limit: int,
    now: datetime,
    outputs: dict[str, Any] | None = None,
    error: str = "",
    workdir: str = "",
) -> bool:
    """The guarded update that ends a Running job under its lease: Done with ``outputs``,
    or Failed with ``error`` (and ``workdir``), adding ``log`` to its log in the same
    statement; False if the lease no longer holds the job. The lease id stays on the
    finished job: it marks who finished it."""
    params = {
        "b_serial": serial,
        "b_lease": lease_id,
        "b_log": storable(log),
        "b_limit": log_limit,
        "b_now": now,
    }
    if outputs is not None:
        return conn.execute(_FINISH_DONE, params | {"b_outputs": outputs}).rowcount == 1
    params |= {"b_error": storable(error), "b_workdir": workdir}
    return conn.execute(_FINISH_FAILED, params).rowcount == 1


def jobs_with_leases(conn: Connection, serials: Sequence[int]) -> dict[int, tuple[Job, str]]:
    """The jobs ``serials`` (those that exist), each with its current lease id ("" for
    none): what a worker's report is checked against."""
    rows = conn.execute(_JOBS_BY_SERIAL, {"b_serials": list(serials)})
    return {r.serial: (from_row(r), r.lease_id or "") for r in rows}


def _claimable(dialect: str, *, of_types: bool, limit: str, lock: bool) -> Any:
    """Queued jobs (of the task types ``:b_types`` if ``of_types``) that may start now, in
    claim order: the run's priority, its sort order, then the serial, read in that order
    from the partial index ``ix_jobs_queue`` and stopped at ``limit``: a claim never sorts
    every Queued job, and reads only the ranks a worker may take (``jobs.queue_order``
    below ``NOT_CLAIMABLE``: not the jobs of paused runs; the run's priority is checked
    again on the joined row). The jobs of a workflow that is not Started are read and passed
    over. Written out: SQLite's planner must be
    told to use that index (``INDEXED BY``; it would take the index on the state and sort),
    which SQLAlchemy does not render. ``lock``: the rows locked, skipping those another
    transaction holds (PostgreSQL)."""
    sqlite_only = dialect == "sqlite"
    priorities = ", ".join(f"'{p.value}'" for p in CLAIMABLE_PRIORITY_RANK)
    statement = text(
        "SELECT jobs.serial FROM jobs"
        + (" INDEXED BY ix_jobs_queue" if sqlite_only else "")
        + " JOIN runs ON runs.id = jobs.run_id"
        " JOIN workflows ON workflows.id = jobs.workflow_id"
        f" WHERE jobs.state = '{JobState.QUEUED.value}'"
        f" AND jobs.queue_order < '{run_rows.NOT_CLAIMABLE}'"
        + (" AND jobs.task_type_id IN :b_types" if of_types else "")
        + f" AND runs.priority IN ({priorities}) AND NOT runs.obsolete"
        f" AND workflows.state = '{WorkflowState.STARTED.value}'"
        f" ORDER BY jobs.queue_order, jobs.serial LIMIT {limit}"
        + (" FOR UPDATE OF jobs SKIP LOCKED" if lock and not sqlite_only else "")
    )
    if of_types:
        statement = statement.bindparams(bindparam("b_types", expanding=True))
    return statement.columns(serial=Integer)


def any_claimable(conn: Connection, task_type_ids: list[int] | None) -> bool:
    if task_type_ids == []:
        return False
    statement = _ANY_CLAIMABLE[conn.dialect.name, task_type_ids is not None]
    return conn.execute(statement, {"b_types": task_type_ids or []}).first() is not None


def claim(
    conn: Connection,
    *,
    task_type_ids: list[int] | None,
    worker_id: int,
    worker_name: str,
    limit: int,
    lease_seconds: float,
    now: datetime,
) -> list[tuple[Job, Lease]]:
    """Claim up to ``limit`` Queued jobs atomically, in priority, run sort order, serial:
    one guarded update of the first claimable ones (locked, skipping rows another
    transaction holds, on PostgreSQL). ``task_type_ids``: the task types the worker can run
    (None: every one). Each job gets a lease of its own: a random part shared by this
    claim, and the job's serial."""
    if limit <= 0 or task_type_ids == []:
        return []
    expires = now + timedelta(seconds=lease_seconds)
    rows = conn.execute(
        _CLAIM[conn.dialect.name, task_type_ids is not None],
        {
            "b_types": task_type_ids or [],
            "b_limit": limit,
            "b_worker": worker_id,
            "b_prefix": secrets.token_hex(16) + ".",
            "b_expires": expires,
            "b_now": now,
            "b_line_head": "----- attempt ",
            "b_line_tail": f" on worker {worker_name} at "
            f"{now.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC -----\n",
        },
    ).all()
    claimed = []
    for row in sorted(rows, key=lambda r: (r.queue_order or "", r.serial)):  # claim order
        job = replace(from_row(row), worker=worker_name)
        lease = Lease(
            job_serial=job.serial, lease_id=row.lease_id, attempt=job.attempt, expires_at=expires
        )
        claimed.append((job, lease))
    return claimed


def _line_break() -> Any:
    """What ends the log's last line before a line is added (in SQL): nothing if the log is
    empty or ends with a newline, else a newline."""
    ends_a_line = func.substr(jobs.c.log, func.length(jobs.c.log)) == "\n"
    return case((jobs.c.log == "", ""), (ends_a_line, ""), else_="\n")


def renew_lease(
    conn: Connection, serial: int, lease_id: str, expires: datetime, worker: str | None = None
) -> int | None:
    """Renew a Running job's lease (held by the worker named ``worker``, when given); the
    job's attempt, or None if the lease does not hold it."""
    params = {"b_serial": serial, "b_lease": lease_id, "b_expires": expires}
    if worker is None:
        return conn.execute(_RENEW, params).scalar()
    return conn.execute(_RENEW_FOR_WORKER, params | {"b_worker": worker}).scalar()


def mark_started(conn: Connection, serial: int, lease_id: str, now: datetime) -> None:
    """Record that the script of a Running job held by ``lease_id`` has started (once)."""
    conn.execute(
        update(jobs)
        .where(*_RUNNING_UNDER_LEASE, jobs.c.script_started_at.is_(None))
        .values(script_started_at=bindparam("b_now", type_=jobs.c.script_started_at.type)),
        {"b_serial": serial, "b_lease": lease_id, "b_now": now},
    )


def expired_leases(conn: Connection, now: datetime) -> list[tuple[int, int]]:
    """(serial, attempt) of Running jobs whose lease has run out."""
    rows = conn.execute(
        select(jobs.c.serial, jobs.c.attempt).where(
            jobs.c.state == JobState.RUNNING.value, jobs.c.lease_expires_at < now
        )
    )
    return [(r.serial, r.attempt) for r in rows]


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


LOG_MARKER = "[... earlier output dropped: the log keeps the last part only ...]\n"


def log_with_line(text: str) -> Any:
    """The job's log with ``text`` added on a line of its own (after the script's unfinished
    line, if any): an expression for the ``log`` of a guarded update."""
    return jobs.c.log + _line_break() + storable(text)


def appended_log(text: Any, limit: Any) -> Any:
    """The job's log with ``text`` added, keeping at most the last ``limit`` characters (in
    SQL: the log is neither read nor sent back, and cut only once it is over ``limit``)."""
    joined = jobs.c.log + text
    length = func.length(jobs.c.log) + func.length(text)
    # Over the limit: the marker, then the last ``limit - len(marker)`` characters.
    start = cast(length - (limit - len(LOG_MARKER)) + 1, Integer)
    return case(
        (length <= limit, joined),
        else_=literal(LOG_MARKER) + func.substr(joined, start),
    )


def append_log(conn: Connection, serial: int, lease_id: str, text: str, limit: int) -> bool:
    """Add ``text`` to a Running job's log under its lease (``appended_log``); False if the
    lease is not the job's current one."""
    params = {"b_serial": serial, "b_lease": lease_id, "b_log": storable(text), "b_limit": limit}
    return conn.execute(_APPEND_LOG, params).rowcount == 1


def set_progress(conn: Connection, serial: int, progress: dict[str, Any]) -> bool:
    result = conn.execute(
        update(jobs)
        .where(jobs.c.serial == serial, jobs.c.state == JobState.RUNNING.value)
        .values(progress=progress)
    )
    return result.rowcount == 1


# -- statements built once ---------------------------------------------------------------

_RUNNING_UNDER_LEASE = (
    jobs.c.serial == bindparam("b_serial"),
    jobs.c.lease_id == bindparam("b_lease"),
    jobs.c.state == JobState.RUNNING.value,
)
_LOG_ADDED = appended_log(bindparam("b_log", type_=String), bindparam("b_limit", type_=Integer))
_FINISHED = {
    "lease_expires_at": None,
    "finished_at": bindparam("b_now", type_=jobs.c.finished_at.type),
    "log": _LOG_ADDED,
}
_FINISH_DONE = (
    update(jobs)
    .where(*_RUNNING_UNDER_LEASE)
    .values(
        state=JobState.DONE.value,
        outputs=bindparam("b_outputs", type_=jobs.c.outputs.type),
        error="",
        **_FINISHED,
    )
)
_FINISH_FAILED = (
    update(jobs)
    .where(*_RUNNING_UNDER_LEASE)
    .values(
        state=JobState.FAILED.value,
        error=bindparam("b_error", type_=String),
        workdir=bindparam("b_workdir", type_=String),
        **_FINISHED,
    )
)
_APPEND_LOG = update(jobs).where(*_RUNNING_UNDER_LEASE).values(log=_LOG_ADDED)
_RENEW = (
    update(jobs)
    .where(*_RUNNING_UNDER_LEASE)
    .values(lease_expires_at=bindparam("b_expires", type_=jobs.c.lease_expires_at.type))
    .returning(jobs.c.attempt)
)
_RENEW_FOR_WORKER = _RENEW.where(
    jobs.c.worker_id.in_(select(workers.c.id).where(workers.c.name == bindparam("b_worker")))
)
_JOBS_BY_SERIAL = select_jobs().where(jobs.c.serial.in_(bindparam("b_serials", expanding=True)))

_BACKENDS = ("sqlite", "postgresql")
_ANY_CLAIMABLE = {
    (dialect, of_types): _claimable(dialect, of_types=of_types, limit="1", lock=False)
    for dialect in _BACKENDS
    for of_types in (False, True)
}


def _claim_statement(dialect: str, of_types: bool) -> Any:
    """The claim: the first claimable jobs (``_claimable``, locked) made Running at once.
    The candidates are a materialized common table expression, chosen once: as a subquery
    PostgreSQL may scan them again while updating, and skipping the rows this statement has
    just locked, find more than ``limit``."""
    candidates = (
        _claimable(dialect, of_types=of_types, limit=":b_limit", lock=True)
        .cte("candidates")
        .prefix_with("MATERIALIZED")
    )
    return (
        update(jobs)
        .where(
            jobs.c.serial.in_(select(candidates.c.serial)),
            # The guard written so that no index can serve it: SQLite would otherwise read
            # every Queued job from the index on the state instead of the few candidates.
            jobs.c.state.concat("") == JobState.QUEUED.value,
        )
        .values(
            state=JobState.RUNNING.value,
            worker_id=bindparam("b_worker", type_=Integer),
            lease_id=bindparam("b_prefix", type_=String) + cast(jobs.c.serial, String),
            lease_expires_at=bindparam("b_expires", type_=jobs.c.lease_expires_at.type),
            started_at=bindparam("b_now", type_=jobs.c.started_at.type),
            script_started_at=None,  # claimed: the worker says when the script starts
            attempt=jobs.c.attempt + 1,
            progress=None,
            # The log of earlier attempts, if any, then a line that says where this one starts.
            log=case(
                (jobs.c.log == "", ""),
                else_=jobs.c.log
                + _line_break()
                + bindparam("b_line_head", type_=String)
                + cast(jobs.c.attempt + 1, String)  # the new attempt (SET sees the old row)
                + bindparam("b_line_tail", type_=String),
            ),
        )
        .returning(*[c for c in jobs.c if c.name != "log"])
    )


_CLAIM = {
    (dialect, of_types): _claim_statement(dialect, of_types)
    for dialect in _BACKENDS
    for of_types in (False, True)
}
