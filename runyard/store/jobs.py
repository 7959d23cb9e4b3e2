"""Statements on jobs: inserts, guarded state changes, claims and leases."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    bindparam,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from runyard.models import Job
from runyard.states import JobState
from runyard.store import counts
from runyard.store import runs as run_rows
from runyard.store.schema import jobs, runs, workers

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
        script_started_at=m.get("script_started_at"),
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
    if if_no_live_job and set(values) == _INSERT_IF_NO_LIVE_COLUMNS:
        return conn.execute(_INSERT_IF_NO_LIVE_JOB, values).scalar()
    values.setdefault("queue_order", run_rows.queue_order(values["run_id"]))
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


def running_on_worker(conn: Connection, worker_id: int) -> list[tuple[Job, str]]:
    """The Running jobs that a worker holds, each with its current lease id."""
    return _running(conn, jobs.c.worker_id == worker_id)


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


def jobs_by_serial(conn: Connection, serials: Sequence[int]) -> list[Job]:
    """The jobs with these serials (those that exist), in serial order."""
    found: list[Job] = []
    for start in range(0, len(serials), 5000):
        chunk = list(serials[start : start + 5000])
        rows = conn.execute(select_jobs().where(jobs.c.serial.in_(chunk)))
        found.extend(from_row(r) for r in rows)
    return sorted(found, key=lambda job: job.serial)


def live_jobs_of(
    conn: Connection,
    workflow_id: int,
    states: Sequence[str],
    task_ids: Sequence[int],
    run_ids: Sequence[int],
    limit: int,
) -> list[Job]:
    """Up to ``limit`` live jobs of a workflow's runs that are not obsolete, in one of
    ``states``, of ``task_ids`` and in ``run_ids`` (each empty: any), in serial order."""
    query = (
        select_jobs()
        .join(runs, runs.c.id == jobs.c.run_id)
        .where(
            jobs.c.workflow_id == workflow_id,
            jobs.c.state.in_(list(states)),
            runs.c.obsolete.is_(False),
        )
    )
    if task_ids:
        query = query.where(jobs.c.task_id.in_(list(task_ids)))
    if run_ids:
        query = query.where(jobs.c.run_id.in_(list(run_ids)))
    rows = conn.execute(query.order_by(jobs.c.serial).limit(limit))
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


def count_by_state(
    conn: Connection, workflow_id: int, task_ids: list[int] | None = None
) -> dict[str, int]:
    """The live jobs of a workflow (of some of its tasks) by state (from ``counts``)."""
    return counts.read(conn, workflow_id).live_jobs(task_ids)


def storable(text: str) -> str:
    """Text as every backend can store it: PostgreSQL refuses NUL characters in text."""
    return text.replace("\x00", "\ufffd")


def read_log(conn: Connection, serial: int) -> str | None:
    return conn.execute(select(jobs.c.log).where(jobs.c.serial == serial)).scalar()


def set_metadata(conn: Connection, serial: int, metadata: dict[str, Any]) -> None:
    conn.execute(update(jobs).where(jobs.c.serial == serial).values(metadata=metadata))


def set_inputs(conn: Connection, serial: int, inputs: dict[str, Any]) -> None:
    conn.execute(update(jobs).where(jobs.c.serial == serial).values(inputs=inputs))


# A follower: a job inserted unless its task has a live job in the run already (the
# database's partial unique index). Written out because SQLAlchemy does not cache the
# compiled form of ``on_conflict_do_nothing``; the same text on SQLite and PostgreSQL.
_INSERT_IF_NO_LIVE_COLUMNS = {
    "workflow_id", "run_id", "task_id", "task_type_id", "state", "inputs", "created_at",
    "outputs", "metadata", "error", "log", "attempt",
}  # fmt: skip
_INSERT_IF_NO_LIVE_JOB = text(
    "INSERT INTO jobs (workflow_id, run_id, task_id, task_type_id, state, inputs, outputs, "
    "metadata, error, log, attempt, created_at, queue_order) VALUES (:workflow_id, :run_id, "
    ":task_id, :task_type_id, :state, :inputs, :outputs, :metadata, :error, :log, :attempt, "
    ":created_at, (SELECT CASE priority "
    + "".join(f"WHEN '{p}' THEN '{n}' " for p, n in run_rows.PRIORITY_RANK.items())
    + f"ELSE '{run_rows.NOT_CLAIMABLE}' END || sort_order FROM runs WHERE id = :run_id)) "
    "ON CONFLICT (task_id, run_id) WHERE state <> 'Obsolete' DO NOTHING RETURNING serial"
).bindparams(
    bindparam("inputs", type_=jobs.c.inputs.type),
    bindparam("outputs", type_=jobs.c.outputs.type),
    bindparam("metadata", type_=jobs.c.metadata.type),
    bindparam("created_at", type_=jobs.c.created_at.type),
)
