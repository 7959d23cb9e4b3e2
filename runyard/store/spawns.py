"""Statements of spawning: spawned tasks, and runs and jobs inserted in bulk."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects import sqlite

from runyard.models import Entity, Job, SpawnedJob, TaskInput
from runyard.store import bulk
from runyard.store import runs as run_rows
from runyard.store.jobs import LIVE, from_row, select_jobs
from runyard.store.schema import entities, jobs, runs, serial_reservations, tasks
from runyard.store.workflows import bump_tasks_version, source_to_json


def lock_job(conn: Connection, serial: int) -> Job | None:
    """The job, its row locked until the end of the transaction (PostgreSQL): spawns of one
    spawning job are serialised, so a spawn key is looked up and inserted without a race."""
    conn.execute(select(jobs.c.serial).where(jobs.c.serial == serial).with_for_update())
    row = conn.execute(select_jobs().where(jobs.c.serial == serial)).first()
    return from_row(row) if row else None


def spawned_task_id(conn: Connection, spawned_by_task_id: int, spawn_key: str) -> int | None:
    value = conn.execute(
        select(tasks.c.id).where(
            tasks.c.spawned_by_task_id == spawned_by_task_id, tasks.c.spawn_key == spawn_key
        )
    ).scalar()
    return None if value is None else int(value)


def insert_spawned_task(
    conn: Connection,
    *,
    workflow_id: int,
    name: str,
    task_type_id: int,
    inputs: tuple[TaskInput, ...],
    spawned_by_task_id: int,
    spawn_key: str,
    now: datetime,
) -> int:
    """The id of the task spawned by ``spawned_by_task_id`` with ``spawn_key``: inserted
    now, or the one inserted before (insert-or-nothing, then select: safe under races)."""
    position = conn.execute(
        select(func.coalesce(func.max(tasks.c.position), -1) + 1).where(
            tasks.c.workflow_id == workflow_id
        )
    ).scalar_one()
    statement = (
        bulk.dialect_insert(conn, tasks)
        .values(
            workflow_id=workflow_id,
            name=name,
            position=position,
            task_type_id=task_type_id,
            inputs=[{"key": i.key, "source": source_to_json(i.source)} for i in inputs],
            spawned_by_task_id=spawned_by_task_id,
            spawn_key=spawn_key,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["spawned_by_task_id", "spawn_key"])
        .returning(tasks.c.id)
    )
    inserted = conn.execute(statement).scalar()
    if inserted is not None:
        bump_tasks_version(conn, workflow_id)
        return int(inserted)
    existing = spawned_task_id(conn, spawned_by_task_id, spawn_key)
    assert existing is not None
    return existing


def spawned_jobs(
    conn: Connection, spawned_by_job: int, keys: Sequence[str]
) -> dict[str, SpawnedJob]:
    """Spawn key -> the job that ``spawned_by_job`` spawned before with that key, as it is."""
    columns = (jobs.c.spawn_key, jobs.c.serial, jobs.c.run_id, jobs.c.task_id, jobs.c.state)
    rows = conn.execute(
        select(*columns).where(
            jobs.c.spawned_by_job == spawned_by_job, bulk.one_of(conn, jobs.c.spawn_key, keys)
        )
    )
    return {
        key: SpawnedJob(
            serial=serial,
            run_id=run_id,
            task_id=task_id,
            state=state,
            spawned_by_job=spawned_by_job,
        )
        for key, serial, run_id, task_id, state in rows
    }


def spawned_jobs_by_serial(conn: Connection, serials: Sequence[int]) -> dict[int, SpawnedJob]:
    """The jobs of ``serials`` as spawns answer them (without their values: fast)."""
    columns = (jobs.c.serial, jobs.c.run_id, jobs.c.task_id, jobs.c.state, jobs.c.spawned_by_job)
    if not serials:
        return {}
    rows = conn.execute(select(*columns).where(bulk.one_of(conn, jobs.c.serial, list(serials))))
    return {
        serial: SpawnedJob(
            serial=serial, run_id=run_id, task_id=task_id, state=state, spawned_by_job=by
        )
        for serial, run_id, task_id, state, by in rows
    }


def spawn_keys(
    conn: Connection, spawned_by_job: int, after: int, limit: int
) -> list[tuple[str, int]]:
    """The keys and serials of the jobs that ``spawned_by_job`` spawned, in serial order,
    ``limit`` of them from the first serial above ``after``."""
    rows = conn.execute(
        select(jobs.c.spawn_key, jobs.c.serial)
        .where(jobs.c.spawned_by_job == spawned_by_job, jobs.c.serial > after)
        .order_by(jobs.c.serial)
        .limit(limit)
    )
    return [(str(key), int(serial)) for key, serial in rows]


def entity_ids(conn: Connection, items: Sequence[Entity]) -> dict[str, int]:
    """uuid -> id of these entities, the new ones stored (entities are shared by uuid)."""
    wanted = {e.uuid: e for e in items}
    ids: dict[str, int] = {}
    if wanted:
        rows = conn.execute(
            select(entities.c.uuid, entities.c.id).where(
                bulk.one_of(conn, entities.c.uuid, list(wanted))
            )
        )
        ids.update({str(uuid): int(id_) for uuid, id_ in rows})
    missing = [wanted[uuid] for uuid in wanted if uuid not in ids]
    if missing:
        new_ids = bulk.insert_in_order(
            conn,
            entities,
            entities.c.id,
            [{"uuid": e.uuid, "name": e.name, "type": e.type} for e in missing],
            {},
        )
        ids.update({e.uuid: id_ for e, id_ in zip(missing, new_ids, strict=True)})
    return ids


def reserve_serials(conn: Connection, job_serial: int, n: int) -> list[tuple[int, int]]:
    """Reserve ``n`` job serials for job ``job_serial`` (its spawns use them later): no other
    job will be given one. The ranges ``(first, last)``, in order."""
    if conn.dialect.name == "sqlite":
        first = bulk.sqlite_last_key(conn, jobs.c.serial) + 1
        last = first + n - 1
        updated = conn.exec_driver_sql(
            "UPDATE sqlite_sequence SET seq = ? WHERE name = 'jobs'", (last,)
        ).rowcount
        if not updated:
            conn.exec_driver_sql(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('jobs', ?)", (last,)
            )
        ranges = [(first, last)]
    else:
        ranges = bulk.ranges(bulk.next_keys(conn, jobs.c.serial, n))
    conn.execute(
        insert(serial_reservations),
        [{"job_serial": job_serial, "first": a, "last": b} for a, b in ranges],
    )
    return ranges


def reservations(conn: Connection, job_serial: int) -> list[tuple[int, int]]:
    """The serial ranges reserved for job ``job_serial``."""
    rows = conn.execute(
        select(serial_reservations.c.first, serial_reservations.c.last).where(
            serial_reservations.c.job_serial == job_serial
        )
    )
    return [(int(a), int(b)) for a, b in rows]


def has_spawned_jobs(conn: Connection, job_serial: int) -> bool:
    """Whether job ``job_serial`` has spawned any job."""
    found = conn.execute(
        select(jobs.c.serial).where(jobs.c.spawned_by_job == job_serial).limit(1)
    ).first()
    return found is not None


def insert_runs(
    conn: Connection, rows: Sequence[dict[str, Any]], common: dict[str, Any]
) -> list[int]:
    """Insert runs (all with the same columns; ``common``: values of every run); their ids,
    in the order of ``rows``."""
    return bulk.insert_in_order(conn, runs, runs.c.id, rows, common)


def insert_jobs(
    conn: Connection, rows: Sequence[dict[str, Any]], common: dict[str, Any]
) -> list[int]:
    """Insert jobs (all with the same columns; ``common``: values of every job); their
    serials, in the order of ``rows``."""
    rows = _in_queue_order(conn, rows, common)
    return bulk.insert_in_order(conn, jobs, jobs.c.serial, rows, common)


def insert_jobs_with_serials(
    conn: Connection, rows: Sequence[dict[str, Any]], common: dict[str, Any]
) -> None:
    """Insert jobs whose serials are given (reserved ones: each row has ``serial``)."""
    if not rows:
        return
    rows = _in_queue_order(conn, rows, common)
    if conn.dialect.name == "sqlite":
        bulk.sqlite_insert(conn, insert(jobs), jobs, rows, common)
    else:
        conn.execute(bulk.pg_insert_from_json(jobs, [common | row for row in rows]))


def insert_followers(
    conn: Connection, rows: Sequence[dict[str, Any]], common: dict[str, Any]
) -> None:
    """Insert follower jobs (as ``insert_jobs``), skipping any whose (task, run) has a live
    job already."""
    if not rows:
        return
    rows = _in_queue_order(conn, rows, common)
    if conn.dialect.name == "sqlite":
        statement = sqlite.insert(jobs).on_conflict_do_nothing(
            index_elements=["task_id", "run_id"], index_where=text("state <> 'Obsolete'")
        )
        bulk.sqlite_insert(conn, statement, jobs, rows, common)
        return
    rows = [common | row for row in rows]
    conn.execute(
        bulk.pg_insert_from_json(jobs, rows).on_conflict_do_nothing(
            index_elements=["task_id", "run_id"], index_where=text("state <> 'Obsolete'")
        )
    )


def _in_queue_order(
    conn: Connection, rows: Sequence[dict[str, Any]], common: dict[str, Any]
) -> list[dict[str, Any]]:
    """``rows`` (new jobs) with their place in the claim order (``jobs.queue_order``)."""

    def run_of(row: dict[str, Any]) -> int:
        return int(row.get("run_id", common.get("run_id", 0)))

    keys = run_rows.queue_orders(conn, sorted({run_of(row) for row in rows}))
    return [row | {"queue_order": keys.get(run_of(row))} for row in rows]


def get_jobs(conn: Connection, serials: Sequence[int]) -> dict[int, Job]:
    if not serials:
        return {}
    rows = conn.execute(select_jobs().where(bulk.one_of(conn, jobs.c.serial, list(serials))))
    return {job.serial: job for job in map(from_row, rows)}


def existing_serials(conn: Connection, serials: Sequence[int]) -> list[int]:
    """Those of ``serials`` that are jobs."""
    if not serials:
        return []
    rows = conn.execute(select(jobs.c.serial).where(bulk.one_of(conn, jobs.c.serial, serials)))
    return sorted(int(serial) for (serial,) in rows)


def live_jobs_in_runs(conn: Connection, run_ids: Sequence[int]) -> list[Job]:
    if not run_ids:
        return []
    rows = conn.execute(
        select_jobs().where(bulk.one_of(conn, jobs.c.run_id, sorted(set(run_ids))), LIVE)
    )
    return [from_row(r) for r in rows]


def sort_orders(conn: Connection, workflow_id: int) -> list[str]:
    """The sort orders of every run of the workflow (Obsolete ones too, not the study run),
    in order."""
    rows = conn.execute(
        select(runs.c.sort_order)
        .where(runs.c.workflow_id == workflow_id, runs.c.study.is_(False))
        .order_by(runs.c.sort_order, runs.c.id)
    )
    return [str(v) for v in rows.scalars()]
