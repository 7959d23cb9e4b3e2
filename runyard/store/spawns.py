"""Statements of spawning: spawned tasks, and runs and jobs inserted in bulk."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Connection,
    DateTime,
    Integer,
    Text,
    bindparam,
    cast,
    column,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite

from runyard.models import Entity, Job, SpawnedJob, TaskInput
from runyard.store.jobs import LIVE, from_row, select_jobs
from runyard.store.schema import Timestamp, entities, jobs, runs, tasks
from runyard.store.workflows import bump_tasks_version, source_to_json

CHUNK = 5000  # values per IN (...) list: below every backend's limit of bound parameters


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _dialect_insert(conn: Connection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


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
        _dialect_insert(conn, tasks)
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


def spawned_jobs(conn: Connection, spawned_by_job: int, keys: Sequence[str]) -> dict[str, int]:
    """Spawn key -> serial of the jobs that ``spawned_by_job`` spawned before with these keys."""
    found: dict[str, int] = {}
    for chunk in _chunks(list(keys)):
        rows = conn.execute(
            select(jobs.c.spawn_key, jobs.c.serial).where(
                jobs.c.spawned_by_job == spawned_by_job, jobs.c.spawn_key.in_(chunk)
            )
        )
        found.update({str(key): int(serial) for key, serial in rows})
    return found


def entity_ids(conn: Connection, items: Sequence[Entity]) -> dict[str, int]:
    """uuid -> id of these entities, the new ones stored (entities are shared by uuid)."""
    wanted = {e.uuid: e for e in items}
    ids: dict[str, int] = {}
    for chunk in _chunks(list(wanted)):
        rows = conn.execute(
            select(entities.c.uuid, entities.c.id).where(entities.c.uuid.in_(chunk))
        )
        ids.update({str(uuid): int(id_) for uuid, id_ in rows})
    missing = [wanted[uuid] for uuid in wanted if uuid not in ids]
    if missing:
        new_ids = _insert_in_order(
            conn,
            entities,
            entities.c.id,
            [{"uuid": e.uuid, "name": e.name, "type": e.type} for e in missing],
        )
        ids.update({e.uuid: id_ for e, id_ in zip(missing, new_ids, strict=True)})
    return ids


def _insert_in_order(
    conn: Connection, table: Any, key: Any, rows: Sequence[dict[str, Any]]
) -> list[int]:
    """Insert ``rows`` (all with the same columns) with few statements; their keys, in the
    order of ``rows``. The keys are given explicitly. SQLite: after the largest one, which is
    safe because a write transaction holds SQLite's only write lock (``BEGIN IMMEDIATE``), so
    no other writer can take a key meanwhile (SQLAlchemy would insert row by row to return
    keys in order). PostgreSQL: taken from the key's sequence, then one INSERT ... SELECT
    from a JSON parameter."""
    if not rows:
        return []
    if conn.dialect.name == "sqlite":
        first = int(conn.execute(select(func.coalesce(func.max(key), 0))).scalar_one()) + 1
        keys = list(range(first, first + len(rows)))
        conn.execute(
            insert(table), [{**row, key.name: k} for row, k in zip(rows, keys, strict=True)]
        )
        return keys
    keys = _next_keys(conn, key, len(rows))
    keyed = [{key.name: k, **row} for row, k in zip(rows, keys, strict=True)]
    conn.execute(_pg_insert_from_json(table, keyed))
    return keys


def _record_type(table_column: Any) -> Any:
    """The type of ``column`` in a ``json_to_recordset`` record (strings as text: assigned
    to the column's own type on insert)."""
    kind = table_column.type
    if isinstance(kind, Integer | BigInteger):
        return BigInteger()
    if isinstance(kind, JSON):
        return postgresql.JSON()
    if isinstance(kind, Boolean):
        return Boolean()
    if isinstance(kind, Timestamp):
        return DateTime(timezone=True)
    return Text()


def _pg_insert_from_json(table: Any, rows: Sequence[dict[str, Any]]) -> Any:
    """``INSERT INTO table (...) SELECT ... FROM json_to_recordset(:rows)``: one statement and
    one parameter for any number of rows, parsed by PostgreSQL (a multi-row VALUES statement
    of 10,000 rows costs seconds of query parsing in the driver)."""
    names = list(rows[0])
    for table_column in table.c:
        default = table_column.default
        if table_column.name not in names and default is not None and default.is_scalar:
            names.append(table_column.name)
    defaults = {n: table.c[n].default.arg for n in names if n not in rows[0]}
    complete = [defaults | row for row in rows]
    payload = json.dumps(complete, default=_json_value, separators=(",", ":"))
    record = (
        func.json_to_recordset(cast(bindparam("rows", payload, type_=Text), postgresql.JSON))
        .table_valued(*[column(name, _record_type(table.c[name])) for name in names])
        .render_derived(with_types=True)
    )
    return postgresql.insert(table).from_select(names, select(*[record.c[n] for n in names]))


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in a bulk insert")


def _next_keys(conn: Connection, key: Any, n: int) -> list[int]:
    """``n`` new values of the sequence behind the key column ``key`` (PostgreSQL)."""
    sequence = conn.execute(
        select(func.pg_get_serial_sequence(key.table.name, key.name))
    ).scalar_one()
    values = conn.execute(
        select(func.nextval(sequence)).select_from(func.generate_series(1, n))
    ).scalars()
    return sorted(int(v) for v in values)


def insert_runs(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert runs; their ids, in the order of ``rows``."""
    return _insert_in_order(conn, runs, runs.c.id, rows)


def insert_jobs(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert jobs (all with the same columns); their serials, in the order of ``rows``."""
    return _insert_in_order(conn, jobs, jobs.c.serial, rows)


def insert_followers(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert follower jobs, skipping any whose (task, run) has a live job already."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        statement = sqlite.insert(jobs).on_conflict_do_nothing(
            index_elements=["task_id", "run_id"], index_where=text("state <> 'Obsolete'")
        )
        conn.execute(statement, rows)
        return
    conn.execute(
        _pg_insert_from_json(jobs, rows).on_conflict_do_nothing(
            index_elements=["task_id", "run_id"], index_where=text("state <> 'Obsolete'")
        )
    )


def spawned_job_summaries(conn: Connection, serials: Sequence[int]) -> dict[int, SpawnedJob]:
    found: dict[int, SpawnedJob] = {}
    columns = (jobs.c.serial, jobs.c.run_id, jobs.c.task_id, jobs.c.state, jobs.c.spawned_by_job)
    for chunk in _chunks(list(serials)):
        for row in conn.execute(select(*columns).where(jobs.c.serial.in_(chunk))):
            found[row.serial] = SpawnedJob(
                serial=row.serial,
                run_id=row.run_id,
                task_id=row.task_id,
                state=row.state,
                spawned_by_job=row.spawned_by_job,
            )
    return found


def get_jobs(conn: Connection, serials: Sequence[int]) -> dict[int, Job]:
    found: dict[int, Job] = {}
    for chunk in _chunks(list(serials)):
        for row in conn.execute(select_jobs().where(jobs.c.serial.in_(chunk))):
            job = from_row(row)
            found[job.serial] = job
    return found


def live_jobs_in_runs(conn: Connection, run_ids: Sequence[int]) -> list[Job]:
    found: list[Job] = []
    for chunk in _chunks(sorted(set(run_ids))):
        rows = conn.execute(select_jobs().where(jobs.c.run_id.in_(chunk), LIVE))
        found.extend(from_row(r) for r in rows)
    return found


def sort_orders(conn: Connection, workflow_id: int) -> list[str]:
    """The sort orders of every run of the workflow (Obsolete ones too), in order."""
    rows = conn.execute(
        select(runs.c.sort_order)
        .where(runs.c.workflow_id == workflow_id)
        .order_by(runs.c.sort_order, runs.c.id)
    )
    return [str(v) for v in rows.scalars()]
