"""Statements of many rows at once, for every backend: rows inserted with few statements
and their keys known in order (or reserved beforehand), and "is one of these values" as one
parameter. Used by ``runyard.store.spawns``; only the storage layer imports it."""

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
)
from sqlalchemy.dialects import postgresql, sqlite

from runyard.store.schema import Timestamp


def dialect_insert(conn: Connection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def one_of(conn: Connection, column: Any, values: Sequence[str] | Sequence[int]) -> Any:
    """``column`` (text or integer) is one of ``values``, any number of them in one parameter
    (an array on PostgreSQL, a JSON array on SQLite): no statement of thousands of parameters
    to build (SQLAlchemy renders an ``IN`` list anew for every call: the most of the time of
    reading 10,000 jobs by serial)."""
    if conn.dialect.name == "postgresql":
        item = BigInteger() if isinstance(column.type, Integer | BigInteger) else Text()
        return column == any_(bindparam("values", list(values), type_=postgresql.ARRAY(item)))
    listed = func.json_each(bindparam("values", json.dumps(list(values)), type_=Text))
    return column.in_(select(listed.table_valued("value").c.value))


def insert_in_order(
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
        first = sqlite_last_key(conn, key) + 1
        keys = list(range(first, first + len(rows)))
        sqlite_insert(conn, insert(table), table, rows, common, {key.name: keys})
        return keys
    keys = next_keys(conn, key, len(rows))
    keyed = [{key.name: k, **common, **row} for row, k in zip(rows, keys, strict=True)]
    conn.execute(pg_insert_from_json(table, keyed))
    return keys


def sqlite_last_key(conn: Connection, key: Any) -> int:
    """The largest key given so far (SQLite): the largest in the table, or for a table with
    AUTOINCREMENT (jobs) the largest ever given or reserved (``sqlite_sequence``)."""
    largest = int(conn.execute(select(func.coalesce(func.max(key), 0))).scalar_one())
    if not key.table.dialect_options["sqlite"].get("autoincrement"):
        return largest
    given = conn.exec_driver_sql(
        "SELECT seq FROM sqlite_sequence WHERE name = ?", (key.table.name,)
    ).scalar()
    return max(largest, int(given or 0))


def ranges(values: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted whole numbers as ranges of consecutive ones: ``[1, 2, 3, 7]`` -> ``[(1, 3),
    (7, 7)]``."""
    ranges: list[tuple[int, int]] = []
    for value in values:
        if ranges and value == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], value)
        else:
            ranges.append((value, value))
    return ranges


def _defaults(table: Any, names: Iterable[str]) -> dict[str, Any]:
    """The scalar defaults of the columns of ``table`` not in ``names``: a single insert gets
    them from SQLAlchemy, a bulk insert states them."""
    given = set(names)
    return {
        c.name: c.default.arg
        for c in table.c
        if c.name not in given and c.default is not None and c.default.is_scalar
    }


def sqlite_insert(
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


def pg_insert_from_json(table: Any, rows: Sequence[dict[str, Any]]) -> Any:
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


def next_keys(conn: Connection, key: Any, n: int) -> list[int]:
    """``n`` new values of the sequence behind the key column ``key`` (PostgreSQL)."""
    sequence = conn.execute(
        select(func.pg_get_serial_sequence(key.table.name, key.name))
    ).scalar_one()
    values = conn.execute(
        select(func.nextval(sequence)).select_from(func.generate_series(1, n))
    ).scalars()
    return sorted(int(v) for v in values)
