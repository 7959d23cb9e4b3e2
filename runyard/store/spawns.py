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
    any_,
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
from runyard.store.schema import Timestamp, entities, jobs, runs, serial_reservations, tasks
from runyard.store.workflows import bump_tasks_version, source_to_json


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


def spawned_jobs(
    conn: Connection, spawned_by_job: int, keys: Sequence[str]
) -> dict[str, SpawnedJob]:
    """Spawn key -> the job that ``spawned_by_job`` spawned before with that key, as it is."""
    columns = (jobs.c.spawn_key, jobs.c.serial, jobs.c.run_id, jobs.c.task_id, jobs.c.state)
    rows = conn.execute(
        select(*columns).where(
            jobs.c.spawned_by_job == spawned_by_job, _one_of(conn, jobs.c.spawn_key, keys)
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
    rows = conn.execute(select(*columns).where(_one_of(conn, jobs.c.serial, list(serials))))
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


def _one_of(conn: Connection, column: Any, values: Sequence[str] | Sequence[int]) -> Any:
    """``column`` (text or integer) is one of ``values``, any number of them in one parameter
    (an array on PostgreSQL, a JSON array on SQLite): no statement of thousands of parameters
    to build (SQLAlchemy renders an ``IN`` list anew for every call: the most of the time of
    reading 10,000 jobs by serial)."""
    if conn.dialect.name == "postgresql":
        item = BigInteger() if isinstance(column.type, Integer | BigInteger) else Text()
        return column == any_(bindparam("values", list(values), type_=postgresql.ARRAY(item)))
    listed = func.json_each(bindparam("values", json.dumps(list(values)), type_=Text))
    return column.in_(select(listed.table_valued("value").c.value))


def entity_ids(conn: Connection, items: Sequence[Entity]) -> dict[str, int]:
    """uuid -> id of these entities, the new ones stored (entities are shared by uuid)."""
    wanted = {e.uuid: e for e in items}
    ids: dict[str, int] = {}
    if wanted:
        rows = conn.execute(
            select(entities.c.uuid, entities.c.id).where(
                _one_of(conn, entities.c.uuid, list(wanted))
            )
        )
        ids.update({str(uuid): int(id_) for uuid, id_ in rows})
    missing = [wanted[uuid] for uuid in wanted if uuid not in ids]
    if missing:
        new_ids = _insert_in_order(
            conn,
            entities,
            entities.c.id,
            [{"uuid": e.uuid, "name": e.name, "type": e.type} for e in missing],
            {},
        )
        ids.update({e.uuid: id_ for e, id_ in zip(missing, new_ids, strict=True)})
    return ids


def _insert_in_order(
    conn: Connection,
    table: Any,
    key: Any,
    rows: Sequence[dict[str, Any]],
    common: dict[str, Any],
) -> list[int]:
    """Insert ``rows`` (all with the same columns, and the values of ``common`` in every
    row) with few statements; their keys, in the order of ``rows``. The keys are given
    explicitly. SQLite: after the largest one, which is safe because a write transaction
    holds SQLite's only write lock (``BEGIN IMMEDIATE``), so no other writer can take a key
    meanwhile (SQLAlchemy would insert row by row to return keys in order). PostgreSQL:
    taken from the key's sequence, then one INSERT ... SELECT from a JSON parameter."""
    if not rows:
        return []
    if conn.dialect.name == "sqlite":
        first = _sqlite_last_key(conn, key) + 1
        keys = list(range(first, first + len(rows)))
        _sqlite_insert(conn, insert(table), table, rows, common, {key.name: keys})
        return keys
    keys = _next_keys(conn, key, len(rows))
    keyed = [{key.name: k, **common, **row} for row, k in zip(rows, keys, strict=True)]
    conn.execute(_pg_insert_from_json(table, keyed))
    return keys


def _sqlite_last_key(conn: Connection, key: Any) -> int:
    """The largest key given so far (SQLite): the largest in the table, or for a table with
    AUTOINCREMENT (jobs) the largest ever given or reserved (``sqlite_sequence``)."""
    largest = int(conn.execute(select(func.coalesce(func.max(key), 0))).scalar_one())
    if not key.table.dialect_options["sqlite"].get("autoincrement"):
        return largest
    given = conn.exec_driver_sql(
        "SELECT seq FROM sqlite_sequence WHERE name = ?", (key.table.name,)
    ).scalar()
    return max(largest, int(given or 0))


def reserve_serials(conn: Connection, job_serial: int, n: int) -> list[tuple[int, int]]:
    """Reserve ``n`` job serials for job ``job_serial`` (its spawns use them later): no other
    job will be given one. The ranges ``(first, last)``, in order."""
    if conn.dialect.name == "sqlite":
        first = _sqlite_last_key(conn, jobs.c.serial) + 1
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
        ranges = _ranges(_next_keys(conn, jobs.c.serial, n))
    conn.execute(
        insert(serial_reservations),
        [{"job_serial": job_serial, "first": a, "last": b} for a, b in ranges],
    )
    return ranges


def _ranges(values: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted whole numbers as ranges of consecutive ones: ``[1, 2, 3, 7]`` -> ``[(1, 3),
    (7, 7)]``."""
    ranges: list[tuple[int, int]] = []
    for value in values:
        if ranges and value == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], value)
        else:
            ranges.append((value, value))
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


def _defaults(table: Any, names: Iterable[str]) -> dict[str, Any]:
    """The scalar defaults of the columns of ``table`` not in ``names``: a single insert gets
    them from SQLAlchemy, a bulk insert states them."""
    given = set(names)
    return {
        c.name: c.default.arg
        for c in table.c
        if c.name not in given and c.default is not None and c.default.is_scalar
    }


def _sqlite_insert(
    conn: Connection,
    statement: Any,
    table: Any,
    rows: Sequence[dict[str, Any]],
    common: dict[str, Any],
    extra: dict[str, Sequence[Any]] | None = None,
) -> None:
    """Run ``statement`` (an INSERT into ``table``) for every row with one driver-level
    ``executemany``. The values are bound here, by their column's type: those of ``common``
    (and the columns' defaults) once for every row, the others once per distinct value where
    values can be told apart (SQLAlchemy's executemany binds every value of every row on its
    own: most of the time of a 10,000-row insert). ``extra``: more columns, a value per row."""
    columns: dict[str, Sequence[Any]] = {name: [row[name] for row in rows] for name in rows[0]}
    columns.update(extra or {})
    same = common | _defaults(table, [*columns, *common])
    compiled = statement.values({n: bindparam(n) for n in [*columns, *same]}).compile(
        dialect=conn.dialect
    )
    bound = [
        [_bind(table.c[name], [same[name]], conn)[0]] * len(rows)
        if name in same
        else _bind(table.c[name], columns[name], conn)
        for name in compiled.positiontup
    ]
    conn.exec_driver_sql(str(compiled), list(zip(*bound, strict=True)))


def _bind(table_column: Any, values: Sequence[Any], conn: Connection) -> Sequence[Any]:
    """``values`` as the driver takes them for ``table_column`` (JSON as text, timestamps
    as SQLite stores them)."""
    process = table_column.type._cached_bind_processor(conn.dialect)
    if process is None:
        return values
    if isinstance(table_column.type, JSON):
        empty = process({})  # most inputs, outputs and metadata: one encoding for them all
        return [empty if type(v) is dict and not v else process(v) for v in values]
    done: dict[Any, Any] = {}
    result = []
    for value in values:
        if value not in done:
            done[value] = process(value)
        result.append(done[value])
    return result


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
    times: dict[datetime, str] = {}  # most rows have the same timestamps: format them once

    def json_value(value: Any) -> Any:
        if isinstance(value, datetime):
            if value not in times:
                times[value] = value.isoformat()
            return times[value]
        raise TypeError(f"cannot store {type(value).__name__} in a bulk insert")

    payload = json.dumps(complete, default=json_value, separators=(",", ":"))
    record = (
        func.json_to_recordset(cast(bindparam("rows", payload, type_=Text), postgresql.JSON))
        .table_valued(*[column(name, _record_type(table.c[name])) for name in names])
        .render_derived(with_types=True)
    )
    return postgresql.insert(table).from_select(names, select(*[record.c[n] for n in names]))


def _next_keys(conn: Connection, key: Any, n: int) -> list[int]:
    """``n`` new values of the sequence behind the key column ``key`` (PostgreSQL)."""
    sequence = conn.execute(
        select(func.pg_get_serial_sequence(key.table.name, key.name))
    ).scalar_one()
    values = conn.execute(
        select(func.nextval(sequence)).select_from(func.generate_series(1, n))
    ).scalars()
    return sorted(int(v) for v in values)


def insert_runs(
    conn: Connection, rows: Sequence[dict[str, Any]], common: dict[str, Any]
) -> list[int]:
    """Insert runs (all with the same columns; ``common``: values of every run); their ids,
    in the order of ``rows``."""
    return _insert_in_order(conn, runs, runs.c.id, rows, common)


def insert_jobs(
    conn: Connection, rows: Sequence[dict[str, Any]], common: dict[str, Any]
) -> list[int]:
    """Insert jobs (all with the same columns; ``common``: values of every job); their
    serials, in the order of ``rows``."""
    return _insert_in_order(conn, jobs, jobs.c.serial, rows, common)


def insert_jobs_with_serials(
    conn: Connection, rows: Sequence[dict[str, Any]], common: dict[str, Any]
) -> None:
    """Insert jobs whose serials are given (reserved ones: each row has ``serial``)."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        _sqlite_insert(conn, insert(jobs), jobs, rows, common)
    else:
        conn.execute(_pg_insert_from_json(jobs, [common | row for row in rows]))


def insert_followers(
    conn: Connection, rows: Sequence[dict[str, Any]], common: dict[str, Any]
) -> None:
    """Insert follower jobs (as ``insert_jobs``), skipping any whose (task, run) has a live
    job already."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        statement = sqlite.insert(jobs).on_conflict_do_nothing(
            index_elements=["task_id", "run_id"], index_where=text("state <> 'Obsolete'")
        )
        _sqlite_insert(conn, statement, jobs, rows, common)
        return
    rows = [common | row for row in rows]
    conn.execute(
        _pg_insert_from_json(jobs, rows).on_conflict_do_nothing(
            index_elements=["task_id", "run_id"], index_where=text("state <> 'Obsolete'")
        )
    )


def get_jobs(conn: Connection, serials: Sequence[int]) -> dict[int, Job]:
    if not serials:
        return {}
    rows = conn.execute(select_jobs().where(_one_of(conn, jobs.c.serial, list(serials))))
    return {job.serial: job for job in map(from_row, rows)}


def existing_serials(conn: Connection, serials: Sequence[int]) -> list[int]:
    """Those of ``serials`` that are jobs."""
    if not serials:
        return []
    rows = conn.execute(select(jobs.c.serial).where(_one_of(conn, jobs.c.serial, serials)))
    return sorted(int(serial) for (serial,) in rows)


def live_jobs_in_runs(conn: Connection, run_ids: Sequence[int]) -> list[Job]:
    if not run_ids:
        return []
    rows = conn.execute(
        select_jobs().where(_one_of(conn, jobs.c.run_id, sorted(set(run_ids))), LIVE)
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
